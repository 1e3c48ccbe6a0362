#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the guest: the test scripts of a plan, one after another, then
# collects what the host checks for kernel complaints (dmesg, a kmemleak
# scan).  Usage:
#   wrap.sh <out dir> <plan>
# The plan has one shell-quoted command line per part (script and args).
# Part i's KTAP goes to ktap.<i>.  Between parts the VMD drivers are
# unloaded (KTAP in ktap.<i>.after) and the kernel log is set aside, so that
# each part meets the machine as after a boot, but for what the parts
# before it did to the devices.
OUT=$1
PLAN=$2
export OUT
export REPO=${REPO:-$(pwd)}
# The module as it was when the run started (the host may rebuild it).
export KO=$OUT/vmd_rs.ko
[ -e "$KO" ] || KO=$REPO/vmd_rs.ko
. "$(dirname "$0")/vmd_lib.sh"

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
# Boot-time leaks are not the tests': reported now (the log keeps them) and
# cleared, so that the final scan reports only what came after.
if [ -w /sys/kernel/debug/kmemleak ]; then
	kmemleak_scan >"$OUT/kmemleak.boot"
	echo clear >/sys/kernel/debug/kmemleak
fi
dmesg -c >"$OUT/dmesg.boot" 2>/dev/null || true

# Unloads whichever VMD driver a part left loaded.
unload_vmd() {
	local m
	for m in vmd_rs vmd; do
		[ -e "/sys/module/$m/initstate" ] || continue
		rmmod "$m" || return 1
	done
}

mapfile -t parts <"$PLAN"
rc=0
: >"$OUT/dmesg"
for i in "${!parts[@]}"; do
	if [ "$i" -gt 0 ]; then
		unload_vmd
		r=$?
		{
			echo "KTAP version 1"
			echo "1..1"
			if [ $r -eq 0 ]; then
				echo "ok 1 VMD drivers unload before the next part"
			else
				lsmod | sed 's/^/# /'
				echo "not ok 1 VMD drivers unload before the next part"
			fi
		} >"$OUT/ktap.$((i - 1)).after"
		dmesg -c >>"$OUT/dmesg"
	fi
	export PART=$i
	eval "bash ${parts[$i]}" </dev/null 2>&1 | tee "$OUT/ktap.$i"
	r=${PIPESTATUS[0]}
	[ "$r" -eq 0 ] || rc=$r
	# Lockdep must still be checking after each part (vmtest.py).
	debug_locks >"$OUT/debug_locks.$i"
done

# A clean scan counts only from a kmemleak that is on (vmtest.py): it turns
# itself off on an internal error, and the file then refuses the scan.
if [ -w /sys/kernel/debug/kmemleak ]; then
	if kmemleak_scan >"$OUT/kmemleak"; then
		echo on >"$OUT/kmemleak.state"
	else
		echo "the scan failed" >"$OUT/kmemleak.state"
	fi
else
	echo "no /sys/kernel/debug/kmemleak" >"$OUT/kmemleak.state"
fi
dmesg >>"$OUT/dmesg"
echo "$rc" >"$OUT/rc"
exit "$rc"
