#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Where remapped child interrupts are handled.  An NVMe I/O queue's
# interrupt has managed affinity (its queue's CPUs); behind a VMD in remap
# mode it rides one of the VMD's vectors, whose handler runs on that
# vector's effective CPU.  vmd_rs (irq_affinity=on, the default) spreads
# the VMD's vectors over the CPUs, puts each queue's interrupt on a vector
# handled on a CPU of its mask, and shows that CPU as the child's
# effective affinity.  The C driver picks by load alone and shows none:
# how many of its queues land near is recorded.  A child interrupt whose
# affinity may be set (the admin queue's, behind the first remapping VMD)
# moves to another CPU and back under fio verify with vmd_rs; the C driver
# refuses.  Then, with either driver,
# CPU 1 goes offline and online again three times while fio verifies a
# namespace behind the VMD (the vectors on CPU 1 move, its queues' managed
# interrupts shut down and start up again).
# Usage: affinity.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2

# The CPUs of a list such as "0-2,5", one a line.
cpu_list() {
	local r IFS=,
	for r in $1; do
		case $r in
		*-*) seq "${r%-*}" "${r#*-}" ;;
		?*) echo "$r" ;;
		esac
	done
}

# Whether CPU lists $1 and $2 share a CPU.
cpus_meet() {
	[ -n "$(comm -12 <(cpu_list "$1" | sort) <(cpu_list "$2" | sort))" ]
}

# Name, address and device ID of each remapping VMD with NVMe.
remapping() {
	awk '$7 == "remap" && $4 > 0 { print $1, $2, $3 }' "$MANIFEST"
}

ktap_header "$((2 + $(remapping | wc -l) * 3))"
ktap_check "$DRV loads" load_vmd_driver "$DRV"
total_nvme=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total_nvme ]" 60

# Sets TOTAL, NEAR (on a vector handled on one of its CPUs), SHOWN (its
# effective affinity is its vector's CPU) and DETAIL for the NVMe I/O queue
# interrupts behind the VMD whose domain is $1.
queue_irqs() {
	local d irq first mask vcpu eff
	TOTAL=0 NEAR=0 SHOWN=0 DETAIL=""
	for d in /sys/bus/pci/devices/"$1":*; do
		[ "$(cat "$d/class")" = 0x010802 ] || continue
		first=1
		for irq in $(pci_irqs "${d##*/}"); do
			# MSI-X entry 0: the admin queue, meant for every CPU.
			[ "$first" = 1 ] && { first=0; continue; }
			irq_hwirq "$irq" vmd
			[ -n "$HWIRQ" ] || continue
			mask=$(cat "/proc/irq/$irq/smp_affinity_list")
			vcpu=$(cat "/proc/irq/$((HWIRQ))/effective_affinity_list")
			eff=$(cat "/proc/irq/$irq/effective_affinity_list")
			TOTAL=$((TOTAL + 1))
			cpus_meet "$mask" "$vcpu" && NEAR=$((NEAR + 1))
			[ -n "$eff" ] && [ "$eff" = "$vcpu" ] && SHOWN=$((SHOWN + 1))
			DETAIL="$DETAIL ${d##*/} IRQ $irq: CPUs $mask, on vector IRQ $((HWIRQ)) handled on CPU $vcpu, effective affinity '$eff';"
		done
	done
}

# Reads from every CPU on every disk behind VMD $1: each queue's interrupt
# fires, and so a vector set to another CPU has moved there (an MSI moves
# when it next fires).
io_from_each_cpu() {
	local disk cpu
	for disk in $(vmd_disks "$1"); do
		for cpu in $(cpu_list "$(cat /sys/devices/system/cpu/online)"); do
			taskset -c "$cpu" dd if="/dev/$disk" of=/dev/null bs=4k count=32 \
				iflag=direct 2>/dev/null
		done
	done
}

while read -r name bdf id; do
	tag="$name ($id)"
	io_from_each_cpu "$bdf"
	queue_irqs "$(vmd_domain "$bdf")"
	if [ "$DRV" = vmd_rs ]; then
		ktap_result "$([ "$TOTAL" -gt 0 ] && [ "$NEAR" = "$TOTAL" ]; echo $?)" \
			"$tag: every NVMe I/O queue interrupt rides a vector handled on one of its CPUs ($DRV)" \
			"$NEAR of $TOTAL" "$DETAIL"
		ktap_result "$([ "$TOTAL" -gt 0 ] && [ "$SHOWN" = "$TOTAL" ]; echo $?)" \
			"$tag: each one's effective affinity is its vector's CPU ($DRV)" \
			"$SHOWN of $TOTAL"
	else
		ktap_diag "$tag, C driver: $NEAR of $TOTAL NVMe I/O queue interrupts on a vector handled on one of their CPUs:" "$DETAIL"
		ktap_result "$([ "$TOTAL" -gt 0 ]; echo $?)" \
			"$tag: NVMe I/O queue interrupts ride the VMD's vectors ($DRV)" \
			"$TOTAL"
		ktap_result "$([ "$TOTAL" -gt 0 ] && [ "$SHOWN" = 0 ]; echo $?)" \
			"$tag: the C driver shows no effective affinity for them ($DRV)" \
			"$SHOWN of $TOTAL show one"
	fi
done < <(remapping)

# Moves IRQ $1 (the admin queue's of NVMe controller $2) to CPU $3: sets
# MOVED (the write succeeded; the effective affinity is CPU $3; debugfs
# lists it on one vector, whose CPU is $3; of 20 admin commands'
# interrupts after one more, that vector's handler ran at least 20 on CPU
# $3 and none elsewhere) and WHY.  The child's own counts stay 0: a demultiplexed
# interrupt is not counted (handle_untracked_irq).
move_irq() {
	local irq=$1 ctrl=$2 to=$3 before after eff line vec
	MOVED=1 WHY=""
	echo "$to" >"/proc/irq/$irq/smp_affinity_list" 2>/dev/null || {
		WHY="to CPU $to: writing smp_affinity_list failed"
		return
	}
	line=$(grep -h "irqs:.* $irq\( \|$\)" /sys/kernel/debug/vmd_rs-*/vectors)
	vec=$(echo "$line" | sed -n 's/^vector [0-9]*: irq \([0-9]*\),.*/\1/p')
	# x86 moves an MSI when it next fires: a vector unused since it was
	# spread fires once more where it was.
	nvme_identify "$ctrl" 1
	before=$(irq_per_cpu "$vec")
	nvme_identify "$ctrl" 20
	after=$(irq_per_cpu "$vec")
	eff=$(cat "/proc/irq/$irq/effective_affinity_list")
	WHY="to CPU $to: vector IRQ $vec per CPU $before-> $after, effective '$eff', debugfs '$line'"
	[ "$(echo "$line" | wc -l)" = 1 ] && [[ $line == *", cpu $to,"* ]] &&
		[ "$eff" = "$to" ] && awk -v b="$before" -v a="$after" -v to="$to" 'BEGIN {
		n = split(b, x); split(a, y)
		for (i = 1; i <= n; i++)
			if ((i - 1 == to) ? y[i] - x[i] < 20 : y[i] != x[i]) exit 1
	}' && MOVED=0
}

while read -r name bdf id; do
	tag="$name ($id)"
	d=$(for d in /sys/bus/pci/devices/"$(vmd_domain "$bdf")":*; do
		[ "$(cat "$d/class")" = 0x010802 ] && echo "$d"
	done | head -1)
	ctrl=$(ls "$d/nvme")
	irq=$(pci_irqs "${d##*/}" | head -1)
	from=$(cat "/proc/irq/$irq/effective_affinity_list")
	to=$(cpu_list "$(cat /sys/devices/system/cpu/online)" | grep -vx "${from:-0}" | head -1)
	if [ "$DRV" = vmd ]; then
		echo "$to" >"/proc/irq/$irq/smp_affinity_list" 2>/dev/null
		ktap_result "$([ $? != 0 ]; echo $?)" \
			"$tag: the C driver refuses to set a child interrupt's affinity ($DRV)" \
			"$ctrl admin queue IRQ $irq, to CPU $to"
		continue
	fi
	disk=$(vmd_disks "$bdf" | head -1)
	fio_verify "$disk" 64M &
	pid=$!
	ok=0 detail=""
	for i in 1 2 3; do
		for cpu in "$to" "$from"; do
			move_irq "$irq" "$ctrl" "$cpu"
			detail="$detail $WHY;"
			[ "$MOVED" = 0 ] || ok=1
		done
	done
	wait "$pid" || { ok=1; detail="$detail fio verify failed"; }
	ktap_result "$ok" \
		"$tag: a child interrupt moves to another CPU and back 3 times under fio verify, its interrupts arriving on the new CPU ($DRV)" \
		"$ctrl admin queue IRQ $irq:$detail"
done < <(remapping | head -1)

# After every check above: a vector whose CPU went offline stays on the
# CPU it moved to (not managed), so what lands near afterwards is only
# recorded.
while read -r name bdf id; do
	tag="$name ($id)"
	disk=$(vmd_disks "$bdf" | head -1)
	fio_verify "$disk" 64M &
	pid=$!
	cycles=0
	for i in 1 2 3; do
		echo 0 >/sys/devices/system/cpu/cpu1/online && sleep 1 &&
			echo 1 >/sys/devices/system/cpu/cpu1/online && sleep 1 &&
			cycles=$((cycles + 1))
	done
	echo 1 >/sys/devices/system/cpu/cpu1/online
	wait "$pid"
	rc=$?
	io_from_each_cpu "$bdf"
	queue_irqs "$(vmd_domain "$bdf")"
	ktap_result "$([ "$rc" = 0 ] && [ "$cycles" = 3 ]; echo $?)" \
		"$tag: fio verify on $disk while CPU 1 goes offline and online 3 times ($DRV)" \
		"fio exit $rc, $cycles offline/online cycles; afterwards $NEAR of $TOTAL queue interrupts on a vector handled on one of their CPUs"
done < <(remapping)
ktap_done
