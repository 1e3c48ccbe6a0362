#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The second root bus (machines.BUS1): client VMDs (AD0B) whose firmware set
# bus restriction 3.  vmd0 has an NVMe behind each root bus and a hotplug
# port on the second; vmd1 and vmd2 describe the second root bus wrong.
#
# vmd_rs must find both root buses in one domain (the second numbered 80,
# as its ports report it), do IO on both NVMe with their interrupts
# remapped, bring both back after unbind/bind and a reload, and take an
# NVMe hot-added on the second root bus's port.  Where the registers are
# inconsistent it keeps the first root bus and says why in one warning.
# The C driver (Linux 7.3) finds the first root bus only: recorded as its
# outcome.  Results are `<case> (<driver>)` (check.py names the part
# "second root bus": `second root bus: <case> (<driver>)`).
# Usage: bus1.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
BDF=$(awk '$1 == "vmd0" {print $2}' "$MANIFEST")
RS=$([ "$DRV" = vmd_rs ] && echo 1 || echo 0)
ncases=$(awk 'NF > 9' "$MANIFEST" | wc -l)

ktap_header "$((2 + ncases + (RS ? 7 : 0)))"
ktap_check "$DRV loads" load_vmd_driver "$DRV"

# The root bus (e0, 80) the block device $1 is below.
root_bus() {
	local p
	p=$(readlink -f "/sys/block/$1")
	p=${p#*/"$BDF"/pci}
	p=${p%%/*}
	echo "${p#*:}"
}

# "e0:nvme0n1 80:nvme1n1": vmd0's disks by root bus, sorted.
by_root() {
	local d
	for d in $(vmd_disks "$BDF"); do
		echo "$(root_bus "$d"):$d"
	done | sort | tr '\n' ' '
}

# The root bus a "domain" link of vmd0 points at ("" if none).
linked() {
	local l
	l=$(readlink "/sys/bus/pci/devices/$BDF/$1" 2>/dev/null) || return 0
	echo "${l##*:}"
}

# Whether vmd0 shows what the driver should: both root buses and a disk
# behind each (vmd_rs), or root bus e0 only (C).
found() {
	local want
	want=$([ "$RS" = 1 ] && echo "80:nvme e0:nvme" || echo "e0:nvme")
	[ "$(by_root | sed 's/nvme[0-9]*n[0-9]*/nvme/g; s/ $//')" = "$want" ] &&
		[ "$(linked domain)" = e0 ] &&
		[ "$(linked domain1)" = "$([ "$RS" = 1 ] && echo 80)" ]
}

wait_for found 60
if [ "$RS" = 1 ]; then
	ktap_result "$(found; echo $?)" \
		"vmd0 (ad0b, bus range 3): an NVMe behind root bus e0 and one behind root bus 80, one domain ($DRV)" \
		"disks by root bus: $(by_root)" "links: domain $(linked domain), domain1 $(linked domain1)" \
		"$(dmesg | grep -F "$BDF" | tail -8)"
else
	ktap_result "$(found; echo $?)" \
		"vmd0 (ad0b, bus range 3): root bus e0 and its NVMe only, as recorded for Linux 7.3 ($DRV)" \
		"disks by root bus: $(by_root)" "links: domain $(linked domain), domain1 $(linked domain1)"
fi

# The VMD's own vectors: every child interrupt is remapped onto them.
vectors=$(pci_irqs "$BDF")
if [ "$RS" = 1 ]; then
	# fio verify and 20 Identify commands on each root bus's NVMe; its
	# completions raise the VMD's vector counts (a remapped child's own
	# counts stay 0: handle_untracked_irq).
	rc=0
	found || rc=1
	for rd in $(by_root); do
		d=${rd#*:}
		fio_verify "$d" 16M || { ktap_diag "fio verify failed on $rd"; rc=1; }
		before=$(irq_sum $vectors)
		nvme_identify "${d%n*}" 20 || rc=1
		after=$(irq_sum $vectors)
		ktap_diag "$rd: VMD vector interrupts +$((after - before)) for 20 Identify"
		[ $((after - before)) -ge 20 ] || rc=1
	done
	ktap_result "$rc" \
		"vmd0: fio verify on the NVMe of each root bus, their interrupts remapped onto the VMD's vectors ($DRV)"
	info=/sys/kernel/debug/vmd_rs-$BDF/info
	ktap_result "$(grep -q '^root buses: e0 (e2-f0), 80 (f1-ff)$' "$info"; echo $?)" \
		"vmd0: debugfs info shows the root buses and their bus ranges ($DRV)" \
		"$(cat "$info" 2>&1)"
	# membar1, membar2, bus1 membar1, bus1 membar2: "start end" each.
	mapfile -t w < <(sed -n 's/^\(bus1 \)\{0,1\}membar[12]: \(0x[0-9a-f]*\)-\(0x[0-9a-f]*\) .*/\2 \3/p' "$info")
	# shellcheck disable=SC2086 # "start end" pairs, split on purpose
	split_ok() {
		[ ${#w[@]} = 4 ] || return 1
		set -- ${w[0]} ${w[1]} ${w[2]} ${w[3]}
		[ $(($2 + 1)) = $(($5)) ] && [ $(($4 + 1)) = $(($7)) ]
	}
	ktap_result "$(split_ok; echo $?)" \
		"vmd0: each MEMBAR's child window split between the root buses where the offset registers say ($DRV)" \
		"$(cat "$info" 2>&1)"

	drv=/sys/bus/pci/drivers/$DRV
	echo "$BDF" >"$drv/unbind"
	gone=$([ -z "$(vmd_disks "$BDF")" ] && [ -z "$(linked domain1)" ]; echo $?)
	echo "$BDF" >"$drv/bind"
	wait_for found 60
	ktap_result "$([ "$gone" = 0 ] && found; echo $?)" \
		"vmd0: unbind takes both root buses away, bind brings both back ($DRV)" \
		"after bind: $(by_root)"

	rmmod vmd_rs
	gone=$([ ! -e "/sys/bus/pci/devices/$BDF/domain1" ]; echo $?)
	load_vmd_driver "$DRV"
	wait_for found 60
	ktap_result "$([ "$gone" = 0 ] && found; echo $?)" \
		"vmd0: reload brings both root buses back ($DRV)" "after reload: $(by_root)"

	# System sleep (every driver's suspend and resume, the CPUs stay up):
	# the shared vectors come back for both root buses' children.
	echo devices >/sys/power/pm_test
	err=$( (echo freeze >/sys/power/state) 2>&1)
	rc=$?
	echo none >/sys/power/pm_test
	ok=1
	if [ $rc = 0 ] && found; then
		ok=0
		for rd in $(by_root); do fio_verify "${rd#*:}" 8M || ok=1; done
	fi
	ktap_result "$ok" \
		"vmd0: suspend to idle (pm_test=devices) and resume, then IO behind both root buses ($DRV)" \
		"$err" "disks: $(by_root)"
fi

# The VMDs that describe their second root bus wrong: vmd_rs keeps the
# first root bus with one warning; the C driver as recorded.
while IFS='|' read -r head rs c; do
	read -r name bdf id _ <<<"$head"
	case=${head#* * * * * * * * * }
	n=$(vmd_disks "$bdf" | wc -l)
	# One line each time it was bound (vmd_rs reloads above).
	msgs=$(dmesg --level=warn | grep -F "$DRV $bdf:" | grep -c "second root bus left out")
	binds=$(dmesg | grep -F "$DRV $bdf:" | grep -c "Bound to PCI domain")
	if [ "$RS" = 1 ]; then
		ok=$([ "$n" = "${rs#bound:}" ] && [ "$binds" -ge 1 ] && [ "$msgs" = "$binds" ] &&
			[ -z "$(BDF=$bdf linked domain1)" ]; echo $?)
	else
		ok=$([ "bound, $n disk$([ "$n" = 1 ] || echo s)" = "$c" ]; echo $?)
	fi
	ktap_result "$ok" "$name ($id): $case ($DRV)" \
		"$n disks, $msgs warnings in $binds binds" "$(dmesg | grep -F "$bdf" | tail -4)"
done < <(awk 'NF > 9' "$MANIFEST")

# Last, for vmd_rs: a hot-add trips 7.3's known pciehp lockdep report (the
# host lets lockdep end the boot off only if it was on until here).
if [ "$RS" = 1 ]; then
	debug_locks >"$OUT/debug_locks.$PART.hotadd"
	before=$(vmd_disks "$BDF" | wc -l)
	before_list=$(by_root | tr ' ' '\n' | sort)
	host_monitor "device_add nvme,id=vmd0hpn,bus=vmd0hp,drive=vmd0hpd,serial=vmd0hp" >/dev/null
	wait_for "[ \$(vmd_disks $BDF | wc -l) -gt $before ]" 60
	new=$(comm -13 <(echo "$before_list") <(by_root | tr ' ' '\n' | sort) | grep . | head -1)
	added=1
	[ -n "$new" ] && [ "${new%%:*}" = 80 ] && fio_verify "${new#*:}" 16M && added=0
	host_monitor "device_del vmd0hpn" >/dev/null
	wait_for "[ \$(vmd_disks $BDF | wc -l) -eq $before ]" 60
	ktap_result "$([ "$added" = 0 ] && [ "$(vmd_disks "$BDF" | wc -l)" -eq "$before" ]; echo $?)" \
		"vmd0: an NVMe hot-added on a port of root bus 80 does IO and goes away when removed ($DRV)" \
		"new: '$new'; disks: $(by_root)" "$(dmesg | grep -iE 'pciehp|hotplug' | tail -5)"
fi
ktap_done
