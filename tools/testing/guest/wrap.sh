#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the guest: the test script, then collects what the host checks
# for kernel complaints (dmesg, a kmemleak scan).  Usage:
#   wrap.sh <out dir> <test script> [args...]
OUT=$1
shift
export OUT
export REPO=${REPO:-$(pwd)}
# The module as it was when the run started (the host may rebuild it).
export KO=$OUT/vmd_rs.ko
[ -e "$KO" ] || KO=$REPO/vmd_rs.ko

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
# Boot-time kmemleak reports are not ours: start from a clean slate.
[ -w /sys/kernel/debug/kmemleak ] && echo clear >/sys/kernel/debug/kmemleak
dmesg -c >"$OUT/dmesg.boot" 2>/dev/null || true

bash "$@" 2>&1 | tee "$OUT/ktap"
rc=${PIPESTATUS[0]}

if [ -w /sys/kernel/debug/kmemleak ]; then
	# kmemleak reports only objects older than 5 s.
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >"$OUT/kmemleak"
fi
dmesg >"$OUT/dmesg"
echo "$rc" >"$OUT/rc"
exit "$rc"
