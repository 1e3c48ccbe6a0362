#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# System sleep with a VMD driver bound: suspend to idle with pm_test=devices
# (every driver's suspend and resume runs, the CPUs do not sleep), then IO
# on every VMD, whose interrupts must still arrive.  Usage:
#   suspend.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
bdfs=$(awk '{ print $2 }' "$MANIFEST")

all_disks() {
	local b
	for b in $bdfs; do vmd_disks "$b"; done
}

ktap_header 5
if [ "$DRV" = vmd_rs ]; then
	ktap_check "load $DRV" insmod "$KO"
else
	ktap_check "load $DRV" modprobe vmd
fi
wait_for "[ \$(all_disks | wc -l) -eq $total ]" 60

echo devices >/sys/power/pm_test
echo "suspend: going down" >/dev/kmsg
err=$( (echo freeze >/sys/power/state) 2>&1)
ktap_result $? "suspend to idle (pm_test=devices) and resume" "$err" \
	"$(dmesg | sed -n '/suspend: going down/,$p' | grep -iE 'vmd|error|fail' | tail -5)"

fails=0
for b in $bdfs; do
	d=$(vmd_disks "$b" | head -1)
	fio_verify "$d" 8M || fails=$((fails + 1))
done
ktap_result "$([ "$(all_disks | wc -l)" -eq "$total" ] && [ $fails -eq 0 ]; echo $?)" \
	"IO on every VMD after resume"
# A lost interrupt still completes IO, late, through the NVMe timeout path.
lost=$(dmesg | sed -n '/suspend: going down/,$p' | grep -E 'nvme.*(timeout|polled)')
ktap_result "$([ -z "$lost" ]; echo $?)" "no NVMe command timed out after resume" "$lost"
echo none >/sys/power/pm_test
ktap_check "unload $DRV after resume" rmmod "$DRV"
ktap_done
