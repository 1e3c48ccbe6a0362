#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`, guest side: one configuration's measurements, as JSON files
# in $OUT for the host to read.  Usage:
#   bench.sh <none|vmd|vmd_rs> <manifest> <fio seconds> [insn_io]
# none: NVMe on the root complex.  vmd, vmd_rs: every VMD of the manifest,
# in the mode the driver picks; vmd_rs then once more with msi_remap=on.
# With insn_io (QEMU runs the insn_count plugin): instruction counts
# instead of timings (insn_io.c).
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
RUNTIME=${3:-5}
INSN_IO=${4:-}
total=$(awk '{ s += $4 } END { print s }' "$MANIFEST")

nvme_count() {
	ls /sys/block | grep -c '^nvme'
}

now_ns() {
	date +%s%N
}

# Loads the driver; prints how long until every namespace exists (ns).
load() {
	local t0
	t0=$(now_ns)
	if [ "$DRV" = vmd_rs ]; then
		insmod "$KO" "$@" || return 1
	else
		modprobe vmd "$@" || return 1
	fi
	while [ "$(nvme_count)" -lt "$total" ]; do
		[ $(($(now_ns) - t0)) -gt 60000000000 ] && return 1
		sleep 0.01
	done
	echo $(($(now_ns) - t0))
}

# IOPS each workload gives about (2 vCPUs, direct): a fixed number of I/Os
# lasts about $RUNTIME s.
declare -A RATE=([1-qd1]=5000 [1-qd32]=45000 [4-qd1]=10000 [4-qd32]=50000)

# fio 4k random read, workload $1 (<disks>-qd<N>), on the disks given: one
# job per CPU, pinned, job i on disk i (one disk: all on it), a fixed number
# of I/Os in all.  $2 names the output: fio-$2.json and, for the host to
# count interrupts per CPU, irq-$2: /proc/interrupts before and after, then
# the NVMe I/O queue interrupts of the disks' controllers (MSI-X entries
# after the admin queue's), each with the CPUs that submit to it and the
# interrupt whose counts say where it was handled (a remapped one's VMD
# vector: the demultiplexed interrupts are not counted).
run_fio() {
	local wl=$1 name=$2
	shift 2
	local disks=("$@") args=() cpu ncpu d
	ncpu=$(nproc)
	if [ -n "$INSN_IO" ]; then
		count_io "$wl" "$name" "$((RATE[$wl] * RUNTIME / ncpu))" "${disks[@]/#//dev/}"
		return $?
	fi
	for cpu in $(seq 0 $((ncpu - 1))); do
		args+=(--name="j$cpu" --filename="/dev/${disks[$((cpu % ${#disks[@]}))]}"
			--cpus_allowed="$cpu")
	done
	cat /proc/interrupts >"$OUT/irq-$name"
	fio --ioengine=libaio --direct=1 --rw=randread --bs=4k --iodepth="${wl#*-qd}" \
		--number_ios=$((RATE[$wl] * RUNTIME / ncpu)) --size=512M \
		--group_reporting --output-format=json "${args[@]}" >"$OUT/fio-$name.json"
	{
		echo "-- after"
		cat /proc/interrupts
		echo "-- queues"
		for d in "${disks[@]}"; do
			pci_irqs "$(basename "$(readlink -f "/sys/block/$d/device/device")")" |
				tail -n +2
		done | sort -un | while read -r irq; do
			irq_hwirq "$irq" vmd
			echo "$irq $(cat "/proc/irq/$irq/smp_affinity_list") $((${HWIRQ:-$irq}))"
		done
	} >>"$OUT/irq-$name"
}

# Mark numbers for insn_io, and what they mark ($OUT/marks: the first of
# the two, the name, the I/Os between them), for the host.
MARKS=0

# The instruction counts of workload $1 ($3 I/Os per CPU, disks $4...)
# under the name $2: five runs of insn_io, for the host to take the median
# (now and then something else runs in a window).  A shorter run before
# them, not counted, pays for what a first run leaves behind.
count_io() {
	local wl=$1 name=$2 ios=$3 total k
	shift 3
	total=$((ios * $(nproc)))
	"$INSN_IO" 4294967294 $((ios / 10)) "${wl#*-qd}" "$@" || return 1
	for k in 1 2 3 4 5; do
		MARKS=$((MARKS + 2))
		"$INSN_IO" "$MARKS" "$ios" "${wl#*-qd}" "$@" || return 1
		echo "$MARKS $name $total" >>"$OUT/marks"
	done
}

# Reads every config space below the host bridge(s) of the disks $2...
# $1 times; prints reads per second.
cfg_reads() {
	local n=$1 t0 t1 devs=() d p
	shift
	for d in "$@"; do
		p=$(readlink -f "/sys/block/$d/device/device")
		# The NVMe and the port above it.
		devs+=("$p/config" "$(dirname "$p")/config")
	done
	t0=$(now_ns)
	for _ in $(seq "$n"); do
		cat "${devs[@]}" >/dev/null
	done
	t1=$(now_ns)
	echo $((n * ${#devs[@]} * 1000000000 / (t1 - t0)))
}

# All measurements of one mode on the disks given; $1 names it.
measure() {
	local mode=$1 probe=$2
	shift 2
	local first=$1
	# Not while udev still reads the disks a driver has just brought.
	udevadm settle --timeout=60
	run_fio 1-qd1 "$mode-1-qd1" "$first" &&
		run_fio 1-qd32 "$mode-1-qd32" "$first" &&
		run_fio 4-qd1 "$mode-4-qd1" "$@" &&
		run_fio 4-qd32 "$mode-4-qd32" "$@" || return 1
	[ -n "$INSN_IO" ] && return
	echo "{\"mode\": \"$mode\", \"probe_ns\": ${probe:-null}," \
		"\"cfg_reads_per_s\": $(cfg_reads 200 "$@")}" >"$OUT/misc-$mode.json"
}

# The disks behind a VMD (or all of them without one), four at most.
disks_of() {
	if [ "$1" = - ]; then
		ls /sys/block | grep '^nvme' | head -4
	else
		vmd_disks "$1" | head -4
	fi
}

ktap_header 1
fails=0
if [ "$DRV" = none ]; then
	measure direct "" $(disks_of -) || fails=1
else
	probe=$(load) || fails=1
	while read -r name bdf id nvme bstart shadow mode rest; do
		measure "$mode-$id" "$probe" $(disks_of "$bdf") || fails=1
	done <"$MANIFEST"
	if [ "$DRV" = vmd_rs ]; then
		rmmod vmd_rs
		probe=$(load msi_remap=on) || fails=1
		while read -r name bdf id nvme bstart shadow mode rest; do
			[ "$mode" = bypass ] || continue
			measure "remap-$id" "$probe" $(disks_of "$bdf") || fails=1
		done <"$MANIFEST"
	fi
fi
ktap_result "$fails" "bench $DRV"
ktap_done
