#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A VMD driver bound and unbound many times in one boot, with IO in between:
# by module load/unload, then through sysfs while idle.  Usage:
#   cycles.sh <vmd|vmd_rs> <manifest> [cycles] [module parameters]
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
CYCLES=${3:-50}
shift 3
read -r name bdf _ nvme _ <"$MANIFEST"

load() {
	if [ "$DRV" = vmd_rs ]; then
		insmod "$KO" "$@"
	else
		modprobe vmd "$@"
	fi
}

ktap_header 3

fails=0
for i in $(seq "$CYCLES"); do
	load "$@" || { ktap_diag "cycle $i: loading $DRV failed"; fails=1; break; }
	if ! wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 30; then
		ktap_diag "cycle $i: $(vmd_disks "$bdf" | wc -l) of $nvme namespaces"
		fails=1
		break
	fi
	d=$(vmd_disks "$bdf" | head -1)
	fio_verify "$d" 1M || { ktap_diag "cycle $i: fio on $d failed"; fails=1; break; }
	rmmod "$DRV" || { ktap_diag "cycle $i: rmmod failed"; fails=1; break; }
	echo "cycle $i done" >/dev/kmsg
done
ktap_result "$fails" "$CYCLES load/fio/unload cycles of $DRV on $name"

load "$@"
wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 30
echo "$bdf" >"/sys/bus/pci/drivers/$DRV/unbind"
gone=$(vmd_disks "$bdf" | wc -l)
ktap_result "$([ "$gone" -eq 0 ] && [ -z "$(vmd_domain "$bdf")" ]; echo $?)" \
	"sysfs unbind removes the domain" "namespaces left: $gone"
echo "$bdf" >"/sys/bus/pci/drivers/$DRV/bind"
wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 30
d=$(vmd_disks "$bdf" | head -1)
ktap_result "$([ -n "$d" ] && fio_verify "$d" 4M; echo $?)" \
	"sysfs bind brings it back, and IO works"
rmmod "$DRV"
ktap_done
