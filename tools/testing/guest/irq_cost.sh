#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What an NVMe completion interrupt costs in the guest, around the NVMe
# handler: kprobes on __handle_irq_event_percpu (the irq core running an
# interrupt's handlers; nested when a VMD vector's handler demultiplexes to
# a child) and on nvme_irq, during fio 4k random read on one drive.  For
# each outermost interrupt that ran nvme_irq: its time, and the time outside
# nvme_irq (the irq core, and for a VMD the demultiplexing handler).
# Rust functions cannot be kprobed (they are not in ftrace's list), so the
# handlers themselves are measured from their C caller.  Times are TCG
# emulation times with the probes' own cost in them: compare, do not quote.
# Usage (bench kernel, machines.BENCH_VMD or BENCH_DIRECT):
#   vmtest.py --flavour bench [--ko <bench vmd_rs.ko>] --machine bench-vmd \
#       -- tools/testing/guest/irq_cost.sh <vmd|vmd_rs|none>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
T=/sys/kernel/tracing

case $DRV in
vmd_rs) ktap_header 3; ktap_check "load vmd_rs" insmod "$KO" ;;
vmd) ktap_header 3; ktap_check "load vmd" modprobe vmd ;;
*) ktap_header 2 ;;
esac
wait_for "[ \$(ls /sys/block | grep -c '^nvme') -ge $total ]" 60
# The first drive behind the remapped VMD (the 201D), or the first one.
d=$(vmd_disks "$(awk '$3 == "201d" { print $2; exit }' "$MANIFEST")" | head -1)
d=${d:-nvme0n1}

mountpoint -q $T || mount -t tracefs none $T
{
	echo "p:hin __handle_irq_event_percpu"
	echo "r:hout __handle_irq_event_percpu"
	echo "p:nin nvme_irq"
	echo "r:nout nvme_irq"
} >$T/kprobe_events
echo 16384 >$T/buffer_size_kb
echo 0 >$T/tracing_on
echo 1 >$T/events/kprobes/enable
summary=""
for qd in 1 32; do
	echo >$T/trace
	fio --name=p --filename="/dev/$d" --ioengine=libaio --direct=1 --rw=randread --bs=4k \
		--iodepth=$qd --time_based --runtime=8 --ramp_time=1 --size=512M \
		--output-format=terse --terse-version=3 >/tmp/fio.out &
	sleep 3
	echo 1 >$T/tracing_on
	sleep 3
	echo 0 >$T/tracing_on
	wait
	iops=$(awk -F';' '{ print $8 }' /tmp/fio.out)
	# Per CPU: hin (hin ... nin nout ... hout) hout; timestamps in s.
	line=$(awk -v qd="$qd" -v iops="$iops" '
	/ (hin|hout|nin|nout):/ {
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^\[[0-9]+\]$/) cpu = $i
			if ($i ~ /^[0-9]+\.[0-9]+:$/) { t = $i; sub(":", "", t) }
			if ($i ~ /^(hin|hout|nin|nout):$/) ev = $i
		}
		if (ev == "hin:") {
			if (!depth[cpu]) { h[cpu] = t; n[cpu] = 0; inner[cpu] = 0 }
			depth[cpu]++
		} else if (ev == "nin:") {
			n0[cpu] = t
		} else if (ev == "nout:" && n0[cpu] != "") {
			inner[cpu] += t - n0[cpu]; n[cpu]++; n0[cpu] = ""
		} else if (ev == "hout:" && depth[cpu] > 0 && --depth[cpu] == 0 && n[cpu] > 0) {
			calls++; tot += t - h[cpu]; own += t - h[cpu] - inner[cpu]
		}
	}
	END {
		if (calls)
			printf "QD%s: %d IOPS, %d interrupts, %.2f us each, %.2f us outside nvme_irq\n",
				qd, iops, calls, 1e6 * tot / calls, 1e6 * own / calls
	}' $T/trace)
	ktap_diag "$DRV on $d: ${line:-no interrupt with nvme_irq traced}"
	summary="$summary$line"
done
echo 0 >$T/events/kprobes/enable
echo >$T/kprobe_events
ktap_result "$(echo "$summary" | grep -q 'QD1:.*QD32:'; echo $?)" \
	"interrupt cost measured at QD1 and QD32 on $d"
ktap_check "fio ran on $d" test -s /tmp/fio.out
ktap_done
