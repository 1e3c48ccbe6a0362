#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Races for a guest whose CPUs run at once (vmtest.py --tcg multi): for
# SECS seconds, CPU 0 reads the config space of every device in the VMD
# domains (the driver's config accessors and their lock), CPU 1 unbinds
# and binds the NVMe of the remapping VMD (its child interrupts freed and
# allocated, their demux lists changed), the model floods that VMD's
# vector 0 with MSIs, and fio writes and verifies on the bypass VMD's disks.
# Then every namespace must be back and verify.  The boot's checks (no
# complaint, lockdep, kmemleak) judge the rest.
# Usage: smp_race.sh <vmd|vmd_rs> <manifest> [seconds]
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
SECS=${3:-60}
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
read -r rname rbdf _ < <(awk '$7 == "remap"' "$MANIFEST")
read -r _ bbdf _ < <(awk '$7 == "bypass"' "$MANIFEST")

ktap_header 2
if [ "$DRV" = vmd_rs ]; then insmod "$KO"; else modprobe vmd; fi
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total ]" 60
child=$(disk_pci "$(vmd_disks "$rbdf" | head -1)")
ncpus=$(nproc)
ktap_diag "$ncpus CPUs; remapping $rname $rbdf, its NVMe $child; bypass $bbdf"

end=$(($(date +%s) + SECS))
# CPU 0: config reads through the VMD's accessors.
taskset -c 0 bash -c "n=0; while [ \$(date +%s) -lt $end ]; do
	for d in /sys/bus/pci/devices/1????:*; do cat \"\$d/config\" >/dev/null 2>&1; done
	n=\$((n + 1)); done; echo \$n >/tmp/race.reads" &
reads_pid=$!
# CPU 1 (the last): the remapped child's interrupts freed and allocated.
taskset -c $((ncpus - 1)) bash -c "n=0; while [ \$(date +%s) -lt $end ]; do
	echo $child >/sys/bus/pci/drivers/nvme/unbind
	echo $child >/sys/bus/pci/drivers/nvme/bind
	n=\$((n + 1)); done; echo \$n >/tmp/race.rebinds" &
rebind_pid=$!
host_monitor "qom-set $rname flood-interval 50" >/dev/null
host_monitor "qom-set $rname flood-vector 0" >/dev/null
host_monitor "qom-set $rname flood-count 100000000" >/dev/null
fio_rc=0
for d in $(vmd_disks "$bbdf"); do
	fio --name=race --filename="/dev/$d" --rw=randwrite --bs=4k --size=16M \
		--ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c --do_verify=1 \
		--verify_fatal=1 --time_based --runtime="$SECS" --output-format=terse \
		>/dev/null 2>&1 &
	fio_pids="$fio_pids $!"
done
for p in $fio_pids; do wait "$p" || fio_rc=1; done
wait $reads_pid $rebind_pid
host_monitor "qom-set $rname flood-count 0" >/dev/null
ktap_diag "$(cat /tmp/race.reads 2>/dev/null) rounds of config reads on CPU 0," \
	"$(cat /tmp/race.rebinds 2>/dev/null) rebinds of $child on CPU $((ncpus - 1))"
ktap_result "$fio_rc" "fio verify on the bypass VMD through $SECS s of races ($DRV)"
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total ]" 60
rc=0
for d in $(ls /sys/block | grep nvme); do fio_verify "$d" 4M || rc=1; done
ktap_result "$([ "$rc" = 0 ] && [ "$(ls /sys/block | grep -c nvme)" -ge "$total" ]; echo $?)" \
	"every namespace back and verified after the races ($DRV)"
rmmod "$DRV"
ktap_done
