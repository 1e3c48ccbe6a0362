#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make coverage: copies vmd.o's gcov counts (the sum over every load of vmd
# in this boot: gcov keeps an unloaded module's counts) to $OUT/vmd.gcda.
. "$(dirname "$0")/ktap.sh"
ktap_header 1
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
f=$(find /sys/kernel/debug/gcov -name vmd.gcda 2>/dev/null | head -1)
ktap_check "coverage: vmd.o's gcov counts collected" \
	bash -c "[ -n '$f' ] && cp '$f' '$OUT/vmd.gcda' && [ -s '$OUT/vmd.gcda' ]"
ktap_done
