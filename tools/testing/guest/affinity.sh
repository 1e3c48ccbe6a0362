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
# how many of its queues land near is recorded.  Then, with either driver,
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

nremap=$(awk '$7 == "remap" && $4 > 0' "$MANIFEST" | wc -l)
ktap_header "$((1 + nremap * 3))"
ktap_check "$DRV loads" load_vmd_driver "$DRV"
total_nvme=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total_nvme ]" 60

while read -r name bdf id nvme bstart shadow mode rest; do
	[ "$mode" = remap ] && [ "$nvme" -gt 0 ] || continue
	tag="$name ($id)"
	dom=$(vmd_domain "$bdf")
	total=0 near=0 shown=0 detail=""
	for d in /sys/bus/pci/devices/"$dom":*; do
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
			total=$((total + 1))
			cpus_meet "$mask" "$vcpu" && near=$((near + 1))
			[ -n "$eff" ] && [ "$eff" = "$vcpu" ] && shown=$((shown + 1))
			detail="$detail ${d##*/} IRQ $irq: CPUs $mask, on vector IRQ $((HWIRQ)) handled on CPU $vcpu, effective affinity '$eff';"
		done
	done
	if [ "$DRV" = vmd_rs ]; then
		ktap_result "$([ "$total" -gt 0 ] && [ "$near" = "$total" ]; echo $?)" \
			"affinity: $tag: every NVMe I/O queue interrupt rides a vector handled on one of its CPUs ($DRV)" \
			"$near of $total" "$detail"
		ktap_result "$([ "$total" -gt 0 ] && [ "$shown" = "$total" ]; echo $?)" \
			"affinity: $tag: each one's effective affinity is its vector's CPU ($DRV)" \
			"$shown of $total"
	else
		ktap_result "$([ "$total" -gt 0 ]; echo $?)" \
			"affinity: $tag: NVMe I/O queue interrupts ride the VMD's vectors, $near of $total on a vector handled on one of their CPUs ($DRV)" \
			"$detail"
		ktap_result "$([ "$total" -gt 0 ] && [ "$shown" = 0 ]; echo $?)" \
			"affinity: $tag: the C driver shows no effective affinity for them ($DRV)" \
			"$shown of $total show one"
	fi
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
	ktap_result "$([ "$rc" = 0 ] && [ "$cycles" = 3 ]; echo $?)" \
		"affinity: $tag: fio verify on $disk while CPU 1 goes offline and online 3 times ($DRV)" \
		"fio exit $rc, $cycles offline/online cycles"
done <"$MANIFEST"
ktap_done
