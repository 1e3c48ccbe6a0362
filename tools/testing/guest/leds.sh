#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Drive LEDs behind a VMD, as ledmon drives them: x86 gives a VMD's
# children hotplug_user_indicators, so pciehp's sysfs "attention" file of
# a slot behind a VMD reads and writes Slot Control's Attention and Power
# Indicator Control fields raw (bits 1:0 attention, 3:2 power; 1 on,
# 2 blink, 3 off).  On every VMD with a hotplug port: four states written
# and read back, and in the model each write seen as written (QEMU's
# pcie_cap_slot_write_config trace event, which vmtest sends to
# $OUT/qemu*.log for machines with hotplug ports).
# Usage: leds.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
# attention value: power indicator, attention indicator (the trace's words)
STATES="5:on:on 6:on:blink 7:on:off 11:blink:off"

nhp=$(awk '$9 == 1' "$MANIFEST" | wc -l)
ktap_header "$((1 + nhp * 3))"
ktap_check "$DRV loads" load_vmd_driver "$DRV"

while read -r name bdf id nvme bstart shadow mode client hotplug rest; do
	[ "$hotplug" = 1 ] || continue
	tag="$name ($id, $mode)"
	dom=$(vmd_domain "$bdf")
	# The hotplug port is device 1f of the VMD's first bus (machines.py).
	port=$(ls -d /sys/bus/pci/devices/"$dom":*:1f.0 2>/dev/null | head -1)
	slot=""
	if [ -n "$port" ]; then
		sec=$(printf %02x "$(cat "$port/secondary_bus_number")")
		for s in /sys/bus/pci/slots/*; do
			[ "$(cat "$s/address" 2>/dev/null)" = "$dom:$sec:00" ] && slot=$s
		done
	fi
	ktap_result "$([ -n "$slot" ] && [ -w "$slot/attention" ]; echo $?)" \
		"$tag: the hotplug port's slot has an attention file ($DRV)" \
		"port '${port##*/}', slot '$slot'"
	if [ -z "$slot" ]; then
		ktap_result 1 "$tag: four indicator states written and read back through sysfs ($DRV)" "no slot"
		ktap_result 1 "$tag: the model's Slot Control took each state as written ($DRV)" "no slot"
		continue
	fi
	read -r before <"$slot/attention"
	bad=() seen=()
	for st in $STATES; do
		v=${st%%:*}
		echo "$v" >"$slot/attention" || bad+=("write $v failed")
		read -r got <"$slot/attention"
		[ "$got" = "$v" ] || bad+=("wrote $v, read $got")
		seen+=("${st#*:}")
	done
	echo "$before" >"$slot/attention"
	ktap_result "${#bad[@]}" \
		"$tag: four indicator states written and read back through sysfs ($DRV)" \
		"${bad[@]}" "restored to $before"
	# In the model: each write, in order, as the port's new indicator state.
	sleep 1
	trace=$(cat "$OUT"/qemu*.log 2>/dev/null |
		sed -n "s|.*pcie_cap_slot_write_config /machine/peripheral/${name}hp > .*pic: [a-z]*->\([a-z]*\), aic: [a-z]*->\([a-z]*\),.*|\1:\2|p" |
		tr '\n' ' ')
	want="${seen[*]}"
	# The last writes of the port, then the restore: the four must be there
	# in order.
	ok=1
	case " $trace" in *" $want "*) ok=0 ;; esac
	ktap_result "$ok" \
		"$tag: the model's Slot Control took each state as written ($DRV)" \
		"wanted (power:attention) $want" "trace of ${name}hp: $trace"
done <"$MANIFEST"
ktap_done
