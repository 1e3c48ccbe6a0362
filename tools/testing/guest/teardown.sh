#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Teardown under load: a VMD unbound through sysfs, N times, while fio
# randrw runs on every namespace behind it; then bound again and verified;
# then the driver unloaded while IO runs on every VMD.  fio must end (with
# errors: its disks went away) within 30 s of the unbind, the unbind must
# return, and the boot must end with no kernel complaint (vmtest's checks).
# Results are named `<case> (<driver>)` (check.py labels them teardown:).
# Usage: teardown.sh <vmd|vmd_rs> <manifest> [N]
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
N=${3:-20}
nvmds=$(wc -l <"$MANIFEST")
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")

load() {
	if [ "$DRV" = vmd_rs ]; then insmod "$KO"; else modprobe vmd; fi
}

ktap_header "$((nvmds * 2 + 2))"
load
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total ]" 60
while read -r name bdf id nvme _ _ mode _; do
	what="$N x unbind under fio randrw, $name ($id, $mode)"
	rc=0
	worst=0 worst_io=0 worst_bind=0
	for i in $(seq "$N"); do
		disks=$(vmd_disks "$bdf" | xargs)
		if [ "$(echo "$disks" | wc -w)" -ne "$nvme" ]; then
			ktap_diag "round $i: disks before the unbind: '$disks'"
			rc=1
			break
		fi
		# shellcheck disable=SC2086
		t0=$(date +%s)
		fio_start $disks
		# shellcheck disable=SC2086
		io_running $disks || { ktap_diag "round $i: no IO on $disks"; rc=1; fio_end 0; break; }
		start=$(date +%s)
		[ $((start - t0)) -gt "$worst_io" ] && worst_io=$((start - t0))
		echo "$bdf" >"/sys/bus/pci/drivers/$DRV/unbind"
		fio_end 30
		ended=$?
		took=$(($(date +%s) - start))
		[ "$took" -gt "$worst" ] && worst=$took
		if [ "$ended" -ne 0 ] || [ "$FIO_OK" -ne 0 ] || [ -n "$(vmd_domain "$bdf")" ]; then
			ktap_diag "round $i: fio ended: $([ "$ended" = 0 ] && echo yes || echo no)," \
				"$FIO_OK of $nvme without error, domain '$(vmd_domain "$bdf")' left"
			rc=1
			break
		fi
		t0=$(date +%s)
		echo "$bdf" >"/sys/bus/pci/drivers/$DRV/bind"
		if ! wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 60; then
			ktap_diag "round $i: $(vmd_disks "$bdf" | wc -l) of $nvme namespaces after bind"
			rc=1
			break
		fi
		[ $(($(date +%s) - t0)) -gt "$worst_bind" ] && worst_bind=$(($(date +%s) - t0))
	done
	ktap_result "$rc" "$what ($DRV)" "unbind to the end of fio: at most $worst s"
	ktap_diag "$name: at most $worst_io s from fio's start to IO, $worst s from unbind to fio's end, $worst_bind s from bind to every namespace"
	rc=0
	for d in $(vmd_disks "$bdf"); do fio_verify "$d" 8M || rc=1; done
	[ -n "$(vmd_disks "$bdf")" ] || rc=1
	ktap_result "$rc" "$name: fio verify after the rebinds ($DRV)"
done <"$MANIFEST"

# rmmod while IO runs on every VMD.
# shellcheck disable=SC2046
fio_start $(ls /sys/block | grep nvme)
# shellcheck disable=SC2046
io_running $(ls /sys/block | grep nvme) || ktap_diag "no IO on every disk before rmmod"
start=$(date +%s)
timeout 120 rmmod "$DRV"
r=$?
fio_end 30
ended=$?
ktap_result "$([ "$r" = 0 ] && [ "$ended" = 0 ] && [ "$(ls /sys/block | grep -c nvme)" = 0 ]; echo $?)" \
	"rmmod under fio randrw on every VMD ($DRV)" \
	"rmmod rc $r after $(($(date +%s) - start)) s, fio ended: $ended, $FIO_OK without error"
load
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total ]" 60
rc=0
for d in $(ls /sys/block | grep nvme); do fio_verify "$d" 8M || rc=1; done
ktap_result "$([ "$rc" = 0 ] && [ "$(ls /sys/block | grep -c nvme)" -eq "$total" ]; echo $?)" \
	"load again after rmmod under IO: every namespace back and verified ($DRV)"
rmmod "$DRV"
ktap_done
