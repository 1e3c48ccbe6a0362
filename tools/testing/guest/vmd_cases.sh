#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The emulated-VMD cases, for either driver.  Usage:
#   vmd_cases.sh <vmd|vmd_rs> <manifest> [--no-reload] [--hot-remove N]
#                [module parameters...]
# The manifest has one line per VMD:
#   name bdf device-id nvme-count bus-start shadow expected-mode client hotplug
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"

DRV=$1
MANIFEST=$2
shift 2
RELOAD=1
if [ "${1:-}" = --no-reload ]; then
	RELOAD=0
	shift
fi
# Hot-removals of the hot-added NVMe under IO, each followed by a re-add.
HOT_REMOVE=1
if [ "${1:-}" = --hot-remove ]; then
	HOT_REMOVE=$2
	shift 2
fi
PARAMS="$*"
# Enough to see every interrupt path work; TCG makes every MiB count.
IO_SIZE=${IO_SIZE:-16M}

load_driver() {
	if [ "$DRV" = vmd ]; then
		modprobe vmd $PARAMS
	else
		insmod "$KO" $PARAMS
	fi
}

unload_driver() {
	rmmod "$DRV"
}

total_nvme=$(awk '$7 != "refused" { s += $4 } END { print s + 0 }' "$MANIFEST")
nvmds=$(wc -l <"$MANIFEST")
nrefused=$(awk '$7 == "refused"' "$MANIFEST" | wc -l)
# vmd_rs also shows each VMD in debugfs.
per_vmd=6
[ "$DRV" = vmd_rs ] && per_vmd=7

count_disks() {
	local n=0 name bdf rest
	while read -r name bdf rest; do
		n=$((n + $(vmd_disks "$bdf" | wc -l)))
	done <"$MANIFEST"
	echo "$n"
}

# How many PCI devices whose address starts with $1 have base class and
# subclass $2 (0xBBSS).  sysfs, not lspci: lspci reads every device's
# config space, slow under TCG with hundreds of devices.
count_class() {
	local d class n=0
	for d in /sys/bus/pci/devices/"$1"*; do
		[ -e "$d/class" ] || continue
		class=
		read -r class <"$d/class"
		[ "${class:0:6}" = "$2" ] && n=$((n + 1))
	done
	echo "$n"
}

nhot=$(awk '$9 == 1' "$MANIFEST" | wc -l)
nshadow=$(awk '$6 == 1 && $7 != "refused"' "$MANIFEST" | wc -l)
# Under an IOMMU, one more per bound VMD: its children's IOMMU group.
IOMMU=0
[ -n "$(ls /sys/class/iommu 2>/dev/null)" ] && IOMMU=1
ktap_header "$(((nvmds - nrefused) * (per_vmd + IOMMU) + nrefused + 2 + (nshadow > 0) + RELOAD * 2 + nhot * 3))"

ktap_check "load $DRV" load_driver
wait_for "[ \$(count_disks) -ge $total_nvme ]" 120
ktap_check "all $total_nvme NVMe namespaces behind the VMDs appear" \
	test "$(count_disks)" -eq "$total_nvme"

domains=""
h3_done=""
while read -r name bdf id nvme bstart shadow mode client hotplug; do
	tag="$name ($id"
	[ "$bstart" != 0 ] && tag="$tag, bus start $bstart"
	[ "$shadow" = 1 ] && tag="$tag, shadow"
	tag="$tag)"

	drv=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")" 2>/dev/null)
	dom=$(vmd_domain "$bdf")
	if [ "$mode" = refused ]; then
		# An msi_remap= the VMD cannot do: not bound, and says why.
		msg=$(dmesg | grep "$bdf: msi_remap=" | tail -1)
		ktap_result "$([ -z "$drv" ] && [ -z "$dom" ] && [ -n "$msg" ]; echo $?)" \
			"$tag: $PARAMS refused, with a message" "driver '$drv', domain '$dom'" "$msg"
		continue
	fi
	ktap_result "$([ "$drv" = "$DRV" ] && [ -n "$dom" ]; echo $?)" \
		"$tag: bound to $DRV with a domain" "driver '$drv', domain '$dom'"
	domains="$domains $dom"
	if [ "$IOMMU" = 1 ]; then
		# The children's DMA carries the VMD's requester ID: the IOMMU
		# cannot tell them apart, so they share the VMD's group.
		g=$(readlink "/sys/bus/pci/devices/$bdf/iommu_group")
		g=${g##*/} n=0 bad=()
		for d in /sys/bus/pci/devices/"$dom":*; do
			[ -e "$d" ] || continue
			n=$((n + 1))
			dg=$(readlink "$d/iommu_group")
			[ -n "$g" ] && [ "${dg##*/}" = "$g" ] || bad+=("${d##*/}: group '${dg##*/}'")
		done
		ktap_result "$([ "$n" -gt 0 ] && [ ${#bad[@]} = 0 ]; echo $?)" \
			"$tag: every child is in the VMD's IOMMU group ($DRV)" \
			"VMD's group '$g', $n children" "${bad[@]}"
	fi

	# The tree: root ports on the bus start, an NVMe below each.
	bus=$(printf '%02x' "$bstart")
	rps=$(count_class "$dom:$bus:" 0x0604)
	nvmes=$(count_class "$dom:" 0x0108)
	ok=$([ "$rps" -ge "$nvme" ] && [ "$nvmes" -eq "$nvme" ]; echo $?)
	# The domain as lspci shows it, only when it is wrong (lspci is slow).
	tree=""
	[ "$ok" = 0 ] || tree=$(lspci -D | grep "^$dom:")
	ktap_result "$ok" "$tag: $nvme root port(s) on bus $bus and $nvme NVMe in domain $dom" \
		"root ports on $dom:$bus: $rps, NVMe in $dom: $nvmes" "$tree"

	# The BIOS PM quirk of client parts enables ASPM on their links; other
	# parts leave the links as firmware did.  QEMU hardwires LNKCTL's ASPM
	# bits to 0, so what shows the quirk is the kernel's link state.
	aspm=""
	for d in $(vmd_disks "$bdf"); do
		aspm="$aspm $(cat "/sys/bus/pci/devices/$(disk_pci "$d")/link/l0s_aspm" 2>/dev/null || echo none)"
	done
	if [ "$client" = 1 ]; then
		ok=$(echo "$aspm" | grep -qvE '(^| )(0|none)( |$)' && [ -n "$aspm" ]; echo $?)
		what="BIOS PM quirk enabled ASPM L0s on the NVMe links"
	else
		ok=$(echo "$aspm" | grep -qvE '(^| )(1|none)( |$)' && [ -n "$aspm" ]; echo $?)
		what="no PM quirk: ASPM L0s left off"
	fi
	ktap_result "$ok" "$tag: $what" "l0s_aspm of the NVMe links:$aspm"

	# The MSI mode: remapping gives the VMD its own vectors; bypass none.
	vmd_irqs=$(pci_irqs "$bdf")
	nvec=$(echo $vmd_irqs | wc -w)
	disks=$(vmd_disks "$bdf")
	child_irqs=""
	for d in $disks; do child_irqs="$child_irqs $(pci_irqs "$(disk_pci "$d")")"; done
	first_child=$(echo $child_irqs | cut -d' ' -f1)
	chip=$(irq_chip "$first_child")
	if [ "$mode" = remap ]; then
		ok=$([ "$nvec" -gt 0 ] && case $chip in VMD*) true ;; *) false ;; esac; echo $?)
	else
		ok=$([ "$nvec" -eq 0 ] && case $chip in VMD*) false ;; *) true ;; esac; echo $?)
	fi
	ktap_result "$ok" "$tag: MSI $mode mode" \
		"VMD vectors: $nvec, first child IRQ $first_child on chip '$chip'"

	# IO, and where its interrupts arrived.
	vmd_before=$(irq_sum $vmd_irqs)
	first_vec_before=$(irq_sum $(echo $vmd_irqs | cut -d' ' -f1))
	child_before=$(irq_sum $child_irqs)
	fails=0
	for d in $disks; do
		fio_verify "$d" "$IO_SIZE" || fails=$((fails + 1))
	done
	vmd_after=$(irq_sum $vmd_irqs)
	first_vec_after=$(irq_sum $(echo $vmd_irqs | cut -d' ' -f1))
	child_after=$(irq_sum $child_irqs)
	ktap_result "$([ -n "$disks" ] && [ $fails -eq 0 ]; echo $?)" \
		"$tag: fio write+verify $IO_SIZE on $(echo $disks)"
	diag="VMD vectors $vmd_before -> $vmd_after, vector 0 $first_vec_before -> $first_vec_after, children $child_before -> $child_after"
	if [ "$mode" = remap ]; then
		# Demuxed child IRQs are untracked: only the VMD's counts move.
		ok=$([ "$vmd_after" -gt "$vmd_before" ]; echo $?)
		if [ "$client" = 1 ]; then
			# Vector 0 is the VMD's own: children never use it.
			ok=$([ "$ok" = 0 ] && [ "$first_vec_after" -eq "$first_vec_before" ]; echo $?)
			what="child interrupts arrive through VMD vectors other than 0"
		else
			what="child interrupts arrive through the VMD's vectors"
		fi
	else
		ok=$([ "$child_after" -gt "$child_before" ]; echo $?)
		what="child interrupts arrive directly"
	fi
	ktap_result "$ok" "$tag: $what" "$diag"

	if [ "$DRV" = vmd_rs ]; then
		# debugfs: the mode and bus range; in remap mode each vector and the
		# child IRQs on it.  Demuxed child IRQs are untracked: that the one
		# the IO used fired shows in its vector's /proc/interrupts count.
		dbg=/sys/kernel/debug/vmd_rs-$bdf
		info=$(cat "$dbg/info" 2>/dev/null)
		vectors=$(cat "$dbg/vectors" 2>/dev/null)
		ok=$(echo "$info" | grep -q "^mode: $mode" && echo "$info" | grep -q "^buses: $bus-" &&
			echo "$info" | grep -q "^domain: $dom\$"; echo $?)
		extra=""
		if [ "$ok" = 0 ] && [ "$mode" = remap ]; then
			vec_irq=$(echo "$vectors" | awk -v c="$first_child" '/child irqs:/ {
				for (i = NF; $i != "irqs:"; i--) if ($i == c) { sub(",", "", $4); print $4 } }')
			ok=$([ -n "$vec_irq" ] && [ "$(irq_sum $vec_irq)" -gt 0 ]; echo $?)
			# H6: the irq domain is named after the PCI domain (the irq
			# core appends the bus token); vmd.c's are all VMD-MSI--1-9.
			irqdom=$(ls /sys/kernel/debug/irq/domains/ | grep -x "VMD-MSI-$((16#$dom))-[0-9]*")
			[ "$ok" = 0 ] && { [ -n "$irqdom" ] || ok=1; }
			extra="child IRQ $first_child on vector IRQ ${vec_irq:-none} ($(irq_sum $vec_irq) interrupts); irq domain '$irqdom'"
			# H3: unbinding a child's driver uncounts exactly its
			# interrupts (on the first remapping VMD: a rebind costs).
			if [ -z "$h3_done" ]; then
				h3_done=1
				cpci=$(disk_pci "$(echo $disks | cut -d' ' -f1)")
				nirq=$(pci_irqs "$cpci" | wc -l)
				before=$(sed -n 's/.* \([0-9]*\) child irqs:.*/\1/p' "$dbg/vectors" | awk '{ s += $1 } END { print s }')
				echo "$cpci" >/sys/bus/pci/drivers/nvme/unbind
				after=$(sed -n 's/.* \([0-9]*\) child irqs:.*/\1/p' "$dbg/vectors" | awk '{ s += $1 } END { print s }')
				echo "$cpci" >/sys/bus/pci/drivers/nvme/bind
				wait_for "[ \$(vmd_disks $bdf | wc -l) -eq $nvme ]" 30
				[ "$ok" = 0 ] && { [ "$after" -eq $((before - nirq)) ] || ok=1; }
				extra="$extra; child irqs on the vectors $before, without $cpci's $nirq: $after"
			fi
		elif [ "$ok" = 0 ]; then
			ok=$([ ! -e "$dbg/vectors" ]; echo $?)
		fi
		ktap_result "$ok" "$tag: debugfs shows mode, buses and (remap) vectors with their children" \
			"$info" "$vectors" "$extra"
	fi
done <"$MANIFEST"

# Shadow VMDs: the windows carry an offset (the host's MEMBAR addresses).
if [ "$nshadow" -gt 0 ]; then
	shadow_ok=0
	while read -r name bdf id nvme bstart shadow mode rest; do
		[ "$shadow" = 1 ] && [ "$mode" != refused ] || continue
		dom=$(vmd_domain "$bdf")
		dmesg | grep -q "pci_bus $dom:.*root bus resource .*bus address" || shadow_ok=1
	done <"$MANIFEST"
	ktap_result "$shadow_ok" "shadow VMDs ($nshadow) translate their windows (bus address != CPU address)"
fi

# Unload after IO, load again: everything comes back.
if [ "$RELOAD" = 1 ]; then
	ktap_check "unload $DRV after IO" unload_driver
	gone=0
	for dom in $domains; do
		[ -z "$(ls /sys/bus/pci/devices | grep "^$dom:")" ] || gone=1
	done
	load_driver
	wait_for "[ \$(count_disks) -ge $total_nvme ]" 120
	back=$([ "$gone" = 0 ] && [ "$(count_disks)" -eq "$total_nvme" ]; echo $?)
	ktap_result "$back" "load $DRV again: domains went away and all namespaces came back"
fi
# Hotplug last: pciehp of 7.3 trips lockdep on hot-add (a known upstream
# report, pci_rescan_remove_lock vs reset_lock), which turns lockdep off for
# the rest of the boot: the hot-removals after the first hot-add run without
# it (KASAN, slub_debug and kmemleak still see them).
# Hotplug on each VMD with a hotplug port.
# QEMU refuses a request while the slot is busy, and the id of an NVMe
# until it is gone (after the guest powered the slot off): retried.
monitor_retry() {
	local i
	for i in $(seq 30); do
		host_monitor "$1" >/dev/null || return 1
		case $HOST_ANSWER in *Duplicate* | *busy*) sleep 1 ;; *) return 0 ;; esac
	done
	return 1
}
# The host lets lockdep end the boot off only if it was on until here.
[ "$nhot" -gt 0 ] && debug_locks >"$OUT/debug_locks.$PART.hotadd"
# An NVMe into the hotplug port of VMD $hname; sets new to its disk.
hot_add() {
	monitor_retry "device_add nvme,id=${hname}hpn,bus=${hname}hp,drive=${hname}hpd,serial=${hname}hp"
	wait_for "[ \$(vmd_disks $hbdf | wc -l) -gt $before ]" 60
	new=$(comm -13 <(echo "$before_list") <(vmd_disks "$hbdf" | sort) | head -1)
}
while read -r hname hbdf hid _ _ _ hmode _ <&3; do
	before_list=$(vmd_disks "$hbdf" | sort)
	before=$(vmd_disks "$hbdf" | wc -l)
	hot_add
	added=1
	[ -n "$new" ] && fio_verify "$new" 16M && added=0
	ktap_result "$added" "$hname: hot-added NVMe ($new) appears and does IO" \
		"$(dmesg | grep -iE 'pciehp|hotplug' | tail -5)"
	# QMP device_del is an attention-button removal: pciehp waits 5 s,
	# then removes the NVMe with its IO in flight and powers the slot off.
	rc=0 worst=0
	for i in $(seq "$HOT_REMOVE"); do
		[ "$i" -gt 1 ] && hot_add
		if [ -z "$new" ]; then
			ktap_diag "round $i: no NVMe after the hot-add"
			rc=1
			break
		fi
		fio_start "$new"
		io_running "$new" || { ktap_diag "round $i: no IO on $new"; rc=1; fio_end 0; break; }
		start=$(date +%s)
		monitor_retry "device_del ${hname}hpn"
		fio_end 60
		ended=$?
		took=$(($(date +%s) - start))
		[ "$took" -gt "$worst" ] && worst=$took
		if [ "$ended" -ne 0 ] || [ "$FIO_OK" -ne 0 ] ||
			! wait_for "[ \$(vmd_disks $hbdf | wc -l) -eq $before ]" 30; then
			ktap_diag "round $i: fio ended: $([ "$ended" = 0 ] && echo yes || echo no)," \
				"$FIO_OK without error, $(vmd_disks "$hbdf" | wc -l) disks (of $before)"
			rc=1
			break
		fi
	done
	ktap_result "$rc" "teardown: $HOT_REMOVE x hot-remove of a child NVMe under fio randrw and re-add, $hname ($hid, $hmode) ($DRV)" \
		"device_del to the end of fio: at most $worst s"
	hot_add
	added=1
	[ -n "$new" ] && fio_verify "$new" 16M && added=0
	monitor_retry "device_del ${hname}hpn"
	wait_for "[ \$(vmd_disks $hbdf | wc -l) -eq $before ]" 60
	ktap_result "$([ "$added" = 0 ] && [ "$(vmd_disks "$hbdf" | wc -l)" -eq "$before" ]; echo $?)" \
		"$hname: re-added NVMe does IO, and goes away when removed"
done 3< <(awk '$9 == 1' "$MANIFEST")

ktap_done
