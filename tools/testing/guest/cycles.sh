#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A VMD driver bound and unbound many times in one boot, with IO on every
# VMD in between: by module load/unload, then through sysfs while idle.
# Usage:
#   cycles.sh <vmd|vmd_rs> <manifest> [cycles] [module parameters]
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
CYCLES=${3:-50}
shift 3
names=$(awk '{ print $1 }' "$MANIFEST" | xargs)
bdfs=$(awk '{ print $2 }' "$MANIFEST")
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")

load() {
	if [ "$DRV" = vmd_rs ]; then
		insmod "$KO" "$@"
	else
		modprobe vmd "$@"
	fi
}

all_disks() {
	local b
	for b in $bdfs; do vmd_disks "$b"; done
}

# One short verified write per VMD.
io_each() {
	local b d
	for b in $bdfs; do
		d=$(vmd_disks "$b" | head -1)
		fio_verify "$d" "$1" || { ktap_diag "fio on '$d' ($b) failed"; return 1; }
	done
}

ktap_header 3

fails=0
for i in $(seq "$CYCLES"); do
	load "$@" || { ktap_diag "cycle $i: loading $DRV failed"; fails=1; break; }
	if ! wait_for "[ \$(all_disks | wc -l) -eq $total ]" 30; then
		ktap_diag "cycle $i: $(all_disks | wc -l) of $total namespaces"
		fails=1
		break
	fi
	io_each 1M || { ktap_diag "cycle $i: IO failed"; fails=1; break; }
	rmmod "$DRV" || { ktap_diag "cycle $i: rmmod failed"; fails=1; break; }
	echo "cycle $i done" >/dev/kmsg
done
ktap_result "$fails" "$CYCLES load/fio/unload cycles of $DRV on $names"

# Unbind and bind every VMD through sysfs, idle.
load "$@"
wait_for "[ \$(all_disks | wc -l) -eq $total ]" 30
for b in $bdfs; do echo "$b" >"/sys/bus/pci/drivers/$DRV/unbind"; done
left=$(all_disks | wc -l)
doms=$(for b in $bdfs; do vmd_domain "$b"; done)
ktap_result "$([ "$left" -eq 0 ] && [ -z "$doms" ]; echo $?)" \
	"sysfs unbind removes the domains" "namespaces left: $left, domains: $doms"
for b in $bdfs; do echo "$b" >"/sys/bus/pci/drivers/$DRV/bind"; done
wait_for "[ \$(all_disks | wc -l) -eq $total ]" 30
rc=0
back=$(all_disks | wc -l)
if [ "$back" -ne "$total" ]; then
	ktap_diag "$back of $total namespaces after bind"
	rc=1
else
	io_each 4M || rc=1
fi
ktap_result "$rc" "sysfs bind brings them back, and IO works"
rmmod "$DRV"
ktap_done
