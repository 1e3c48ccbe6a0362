#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What KASAN reported while the kernel booted (wrap.sh keeps that part of
# the log in dmesg.boot), on a machine with no VMD: kasan.py counts the
# boots where the known early-boot report came, the host's complaint check
# that it is exactly that report.  Usage: early_kasan.sh [manifest]
. "$(dirname "$0")/ktap.sh"
ktap_header 1
report=$(grep -A20 "BUG: KASAN" "$OUT/dmesg.boot" | grep -E "BUG: KASAN|handle_edge_irq|identify_cpu")
[ -n "$report" ] && ktap_diag "$report"
ktap_result "$(lsmod | grep -qE '^vmd'; [ $? = 1 ]; echo $?)" \
	"booted with no VMD driver; KASAN at boot: ${report:+reported}${report:-nothing}"
ktap_done
