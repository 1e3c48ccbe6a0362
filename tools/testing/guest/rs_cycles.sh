#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vmd_rs bound and unbound many times in one boot, with IO in between: by
# insmod/rmmod, then through sysfs while idle.  Usage:
#   rs_cycles.sh <manifest> [cycles]
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
MANIFEST=$1
CYCLES=${2:-50}
read -r name bdf _ nvme _ <"$MANIFEST"

ktap_header 3

fails=0
for i in $(seq "$CYCLES"); do
	insmod "$REPO/vmd_rs.ko" || { ktap_diag "cycle $i: insmod failed"; fails=1; break; }
	if ! wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 30; then
		ktap_diag "cycle $i: $(vmd_disks "$bdf" | wc -l) of $nvme namespaces"
		fails=1
		break
	fi
	d=$(vmd_disks "$bdf" | head -1)
	fio_verify "$d" 1M || { ktap_diag "cycle $i: fio on $d failed"; fails=1; break; }
	rmmod vmd_rs || { ktap_diag "cycle $i: rmmod failed"; fails=1; break; }
done
ktap_result "$fails" "$CYCLES insmod/fio/rmmod cycles on $name"

insmod "$REPO/vmd_rs.ko"
wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 30
echo "$bdf" >/sys/bus/pci/drivers/vmd_rs/unbind
gone=$(vmd_disks "$bdf" | wc -l)
ktap_result "$([ "$gone" -eq 0 ] && [ -z "$(vmd_domain "$bdf")" ]; echo $?)" \
	"sysfs unbind removes the domain" "namespaces left: $gone"
echo "$bdf" >/sys/bus/pci/drivers/vmd_rs/bind
wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 30
d=$(vmd_disks "$bdf" | head -1)
ktap_result "$([ -n "$d" ] && fio_verify "$d" 4M; echo $?)" \
	"sysfs bind brings it back, and IO works"
rmmod vmd_rs
ktap_done
