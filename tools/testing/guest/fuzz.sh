#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Seeded hostile hardware: the VMDs corrupt a fraction of config and MMIO
# reads (the emulated VMD's fuzz-seed/fuzz-rate), reproducibly from their
# seeds (a VMD's name in the manifest says which: seed<N>r, seed<N>b).
# One driver loads, binds what it can, does IO where it bound and
# unloads.  Whatever the corruption, the driver must unload within its time
# and leave no domain behind; the boot must end with no kernel complaint
# and kmemleak clean (vmtest's checks).  What the driver bound and what the
# IO did are diagnostics: corrupted reads may rightly fail either.
# Usage: fuzz.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
bdfs=$(awk '{ print $2 }' "$MANIFEST")

ktap_header 3
if [ "$DRV" = vmd_rs ]; then
	timeout 120 insmod "$KO"
else
	timeout 120 modprobe vmd
fi
ktap_result $? "$DRV loads within 120 s"
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total ]" 30
while read -r name b rest; do
	drv=$(basename "$(readlink "/sys/bus/pci/devices/$b/driver")" 2>/dev/null)
	disks=$(vmd_disks "$b" | xargs)
	io=""
	for d in $disks; do
		timeout 20 fio --name=fuzz --filename="/dev/$d" --rw=randrw --bs=4k --size=1M \
			--ioengine=libaio --direct=1 --iodepth=4 --output-format=terse >/dev/null 2>&1
		io="$io $d:rc=$?"
	done
	ktap_diag "$name $b: driver '${drv:-none}', disks: ${disks:-none}, IO:${io:- none}"
done <"$MANIFEST"
start=$(date +%s)
timeout 120 rmmod "$DRV"
ktap_result $? "$DRV unloads within 120 s" "after $(($(date +%s) - start)) s"
left=""
for b in $bdfs; do left="$left$(vmd_domain "$b")"; done
ktap_result "$([ -z "$left" ] && [ "$(ls /sys/block | grep -c nvme)" = 0 ]; echo $?)" \
	"no domain and no NVMe left after unload" "domains: '$left'" "$(ls /sys/block)"
ktap_done
