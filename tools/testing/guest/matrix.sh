#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The hostile-hardware matrix: every VMD of the machine misbehaves in its
# own way (machines.HOSTILE); one driver is loaded, meets all of them and is
# unloaded.  Each case is one result, `<case> (<driver>)` (check.py names
# the part "matrix": `matrix: <case> (<driver>)`).
#
# vmd_rs must refuse the VMD with exactly one error line that says why, or
# bind and do IO on what it can (the manifest says which).  The C driver's
# outcome is recorded, not required: its result passes while the driver
# does what was recorded, so that a change in either driver shows.
# Usage: matrix.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
ncases=$(wc -l <"$MANIFEST")

# The driver core says why a probe failed only at debug level.
DYNDBG=/sys/kernel/debug/dynamic_debug/control
[ -w "$DYNDBG" ] && echo 'file drivers/base/dd.c +p' >"$DYNDBG"

# The probe's error, from the driver core: "-19", or "" if not logged.
probe_error() {
	dmesg | sed -n "s/.*$1: probe with driver $DRV \(rejects match\|failed with error\) \(-[0-9]*\).*/\2/p" |
		tail -1
}

# What the driver made of the VMD at $1: "bound, N disk(s)", or "refused
# <error> with a message" / "... without a message" (an error-level line of
# the driver's about the VMD).
outcome() {
	local bdf=$1 drv n err msgs
	drv=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")" 2>/dev/null)
	if [ "$drv" = "$DRV" ] && [ -n "$(vmd_domain "$bdf")" ]; then
		n=$(vmd_disks "$bdf" | wc -l)
		echo "bound, $n disk$([ "$n" = 1 ] || echo s)"
		return
	fi
	err=$(probe_error "$bdf")
	msgs=$(error_lines "$bdf" | wc -l)
	echo "refused${err:+ $err} $([ "$msgs" -gt 0 ] && echo with || echo without) a message"
}

# The driver's error-level lines about the VMD at $1 (not the driver
# core's line with the probe's error).
error_lines() {
	dmesg --level=emerg,alert,crit,err | grep -F "$DRV $1:" | grep -v ": probe with driver $DRV " |
		sed 's/^\[[^]]*\] *//'
}

ktap_header "$((ncases + 2))"
if [ "$DRV" = vmd_rs ]; then
	insmod "$KO"
else
	modprobe vmd
fi
ktap_result $? "$DRV loads"

# Every bound VMD's namespaces, as many as the cases expect.
want=0
while read -r _ _ _ _ _ _ _ _ _ rest; do
	IFS='|' read -r _ rs _ <<<"$rest"
	case $rs in bound:*) want=$((want + ${rs#bound:})) ;; esac
done <"$MANIFEST"
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $want ]" 60
# Late probe failures (an NVMe that cannot be placed) settle too.
sleep 2

while read -r name bdf id nvme bstart shadow mode client hotplug rest; do
	IFS='|' read -r case rs c <<<"$rest"
	got=$(outcome "$bdf")
	errs=$(error_lines "$bdf")
	diag=("outcome: $got" "error lines:" "$errs")
	if [ "$DRV" = vmd_rs ]; then
		ok=1
		case $rs in
		refused:*)
			# Not bound, and one error line that says why.
			[ "${got%% *}" = refused ] && [ "$(echo "$errs" | grep -c .)" = 1 ] &&
				echo "$errs" | grep -qE "${rs#refused:}" && ok=0
			diag+=("expected: refused, one error line matching '${rs#refused:}'")
			;;
		bound:*)
			n=${rs#bound:}
			if [ "$got" = "bound, $n disk$([ "$n" = 1 ] || echo s)" ]; then
				ok=0
				for d in $(vmd_disks "$bdf"); do
					fio_verify "$d" 4M || { ok=1; diag+=("fio on $d failed"); }
				done
			fi
			diag+=("expected: bound, $n NVMe namespace(s) doing IO")
			;;
		esac
	else
		ktap_diag "C: $got ($case)"
		[ "$got" = "$c" ]
		ok=$?
		diag+=("recorded: $c")
	fi
	ktap_result "$ok" "$case ($DRV)" "${diag[@]}"
done <"$MANIFEST"

rmmod "$DRV"
ktap_result $? "$DRV unloads"
ktap_done
