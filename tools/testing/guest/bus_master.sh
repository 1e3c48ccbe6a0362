#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A child's DMA while the VMD's Bus Master Enable is clear never reaches
# memory: the model blocks it (and traces the first blocked access,
# intel_vmd_dma_blocked, in $OUT/qemu.log), so a read of the first NVMe
# behind the first VMD does not complete; the NVMe driver reports the lost
# command (its timeout, shortened to 5 s, finds the controller down: QEMU's
# NVMe could not fetch the command); with Bus Master Enable set again the
# controller recovers and the read returns what was written before.
# Usage: bus_master.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2

ktap_header 6
ktap_check "$DRV loads" load_vmd_driver "$DRV"
read -r name bdf id nvme bstart shadow mode rest <"$MANIFEST"
tag="$name ($id, $mode)"
wait_for "[ \$(vmd_disks $bdf | wc -l) -ge 1 ]" 60
d=$(vmd_disks "$bdf" | head -1)
echo 5000 >"/sys/block/$d/queue/io_timeout"
# A pattern at 1 MiB, written and read back with bus mastering on.
pattern=$OUT/bus_master.pattern
head -c 65536 /dev/urandom >"$pattern"
dd if="$pattern" of="/dev/$d" bs=64K seek=16 oflag=direct status=none
dd if="/dev/$d" of="$OUT/bus_master.before" bs=64K skip=16 count=1 iflag=direct status=none
ktap_result "$(cmp -s "$pattern" "$OUT/bus_master.before"; echo $?)" \
	"$tag: its first NVMe reads back what was written, bus mastering on ($DRV)" "disk $d"

lines=$(wc -l <"$OUT/qemu.log" 2>/dev/null || echo 0)
setpci -s "$bdf" COMMAND=0000:0004
dd if="/dev/$d" of="$OUT/bus_master.read" bs=64K skip=16 count=1 iflag=direct status=none &
dd_pid=$!
sleep 3
# Nothing of the read reached memory: no completion, so dd still waits.
running=1
kill -0 "$dd_pid" 2>/dev/null && running=0
blocked=$(tail -n +"$((lines + 1))" "$OUT/qemu.log" 2>/dev/null | grep "intel_vmd_dma_blocked $name:" | head -1)
ktap_result "$running" "$tag: with Bus Master Enable clear, a read of its first NVMe does not complete ($DRV)"
ktap_result "$([ -n "$blocked" ]; echo $?)" \
	"$tag: the model blocked the child's DMA ($DRV)" "${blocked:-no intel_vmd_dma_blocked for $name}"
setpci -s "$bdf" COMMAND=0004:0004

# The NVMe driver times the command out and recovers the controller.
ended=1
for _ in $(seq 90); do
	kill -0 "$dd_pid" 2>/dev/null || { ended=0; break; }
	sleep 1
done
wait "$dd_pid" 2>/dev/null
# A timeout, or (QEMU's NVMe sets Controller Fatal Status when it cannot
# fetch a command) the fatal status the timeout handler finds.
report=$(dmesg | grep -E "nvme[0-9]+: (I/O tag .* timeout|controller is down)" | head -2)
ktap_result "$([ -n "$report" ]; echo $?)" \
	"$tag: the NVMe driver reports the lost command ($DRV)" "${report:-no NVMe timeout in the log}"
same=1
[ "$ended" = 0 ] && wait_for "[ -b /dev/$d ]" 30 &&
	dd if="/dev/$d" of="$OUT/bus_master.after" bs=64K skip=16 count=1 iflag=direct status=none &&
	cmp -s "$pattern" "$OUT/bus_master.after" && same=0
ktap_result "$same" \
	"$tag: with Bus Master Enable set again, the NVMe recovers and reads what was written ($DRV)" \
	"the blocked read ended: $([ "$ended" = 0 ] && echo yes || echo no)"
ktap_done
