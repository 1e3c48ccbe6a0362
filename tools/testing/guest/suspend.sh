#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# System sleep with a VMD driver bound: suspend to idle with pm_test=devices
# (every driver's suspend and resume runs, the CPUs do not sleep), then IO
# on every VMD, whose interrupts must still arrive where the mode sends
# them.  Needs a VM whose virtio devices survive sleep (vmtest.py --sleep).
# Usage:
#   suspend.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
nvmds=$(wc -l <"$MANIFEST")

all_disks() {
	local name bdf rest
	while read -r name bdf rest; do vmd_disks "$bdf"; done <"$MANIFEST"
}

# Where a VMD's children's interrupts are counted: the VMD's own vectors
# when remapped, the children's IRQs when they bypass it.
vmd_irq_count() {
	local bdf=$1 mode=$2 d irqs=""
	if [ "$mode" = remap ]; then
		irqs=$(pci_irqs "$bdf")
	else
		for d in $(vmd_disks "$bdf"); do irqs="$irqs $(pci_irqs "$(disk_pci "$d")")"; done
	fi
	irq_sum $irqs
}

ktap_header "$((3 + nvmds * 2 + 2))"
if [ "$DRV" = vmd_rs ]; then
	ktap_check "load $DRV" insmod "$KO"
else
	ktap_check "load $DRV" modprobe vmd
fi
wait_for "[ \$(all_disks | wc -l) -eq $total ]" 60
ktap_check "all $total NVMe namespaces behind the VMDs appear" test "$(all_disks | wc -l)" -eq "$total"

# The PM core logs each device callback and what it returned.
echo 1 >/sys/power/pm_print_times
echo devices >/sys/power/pm_test
echo "suspend: going down" >/dev/kmsg
err=$( (echo freeze >/sys/power/state) 2>&1)
rc=$?
echo none >/sys/power/pm_test
echo 0 >/sys/power/pm_print_times
log=$(dmesg | sed -n '/suspend: going down/,$p')
ktap_result "$([ $rc -eq 0 ] && echo "$log" | grep -q 'PM: suspend exit'; echo $?)" \
	"suspend to idle (pm_test=devices) and resume" "$err" \
	"$(echo "$log" | grep -E 'PM:|error|fail' | tail -8)"

while read -r name bdf id nvme bstart shadow mode rest; do
	tag="$name ($id, $mode)"
	# The driver's suspend and resume ran on the VMD and succeeded.
	calls=$(echo "$log" | grep -E "$bdf: PM: pci_pm_(suspend|resume) returned" | sed 's/^\[[^]]*\] *//')
	ok=$(echo "$calls" | grep -q "pci_pm_suspend returned 0 " &&
		echo "$calls" | grep -q "pci_pm_resume returned 0 " &&
		! echo "$calls" | grep -qv "returned 0 "; echo $?)
	ktap_result "$ok" "$tag: $DRV's suspend and resume callbacks ran and returned 0" "$calls"

	before=$(vmd_irq_count "$bdf" "$mode")
	fails=0
	for d in $(vmd_disks "$bdf"); do
		fio_verify "$d" 8M || fails=$((fails + 1))
	done
	after=$(vmd_irq_count "$bdf" "$mode")
	ktap_result "$([ -n "$(vmd_disks "$bdf")" ] && [ $fails -eq 0 ] && [ "$after" -gt "$before" ]; echo $?)" \
		"$tag: IO after resume, its interrupts through the same path" \
		"disks: $(vmd_disks "$bdf" | xargs), fio failures: $fails, interrupts ($mode) $before -> $after"
done <"$MANIFEST"

# A lost interrupt still completes IO, late, through the NVMe timeout path.
lost=$(dmesg | sed -n '/suspend: going down/,$p' | grep -E 'nvme.*(timeout|polled)')
ktap_result "$([ -z "$lost" ]; echo $?)" "no NVMe command timed out after resume" "$lost"
ktap_check "unload $DRV after resume" rmmod "$DRV"
ktap_done
