#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vmd_rs reads every emulated VMD as the C driver does: the same bus range,
# guest/bare-metal view and MSI mode, and binds it; the domain it builds is
# the C driver's: the same devices (IDs, class), BARs and bridge windows,
# and the same child interrupts on the same VMD vectors.
# Usage: rs_decode.sh <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
MANIFEST=$1
nvmds=$(wc -l <"$MANIFEST")

# A domain, without its number: each device's address, IDs and class, and
# its resources (BARs, bridge windows) as sysfs lists them.  Builtins only:
# a fork costs under TCG.
domain_dump() {
	local d vendor device class start end flags
	for d in /sys/bus/pci/devices/"$1":*; do
		[ -e "$d" ] || continue
		vendor= device= class=
		read -r vendor <"$d/vendor"
		read -r device <"$d/device"
		read -r class <"$d/class"
		echo "${d##*/$1:} $vendor $device $class"
		while read -r start end flags; do
			[ "$start$end" = 0x00000000000000000x0000000000000000 ] ||
				echo "  $start $end $flags"
		done <"$d/resource"
	done
}

ktap_header "$((nvmds * 5 + 2))"
# irq_affinity=off: the C driver's vector choice, to compare with
# (affinity.sh tests the other).
ktap_check "insmod vmd_rs irq_affinity=off" insmod "$KO" irq_affinity=off
total_nvme=$(awk '{ s += $4 } END { print s }' "$MANIFEST")
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total_nvme ]" 60
declare -A rs rs_tree rs_vectors
while read -r name bdf id nvme bstart shadow mode client hotplug; do
	rs[$name]=$(dmesg | grep "vmd_rs $bdf: VMD $id:" | tail -1)
	rs_tree[$name]=$(domain_dump "$(vmd_domain "$bdf")")
	rs_vectors[$name]=$(vector_map "$bdf")
	drv=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")" 2>/dev/null)
	[ "$drv" = vmd_rs ]
	ktap_result $? "$name ($id): vmd_rs reads it and binds ($mode)" "${rs[$name]}" "driver: '$drv'"
done <"$MANIFEST"
ktap_check "rmmod vmd_rs" rmmod vmd_rs

# The C driver on the same hardware, for comparison.  Domain numbers are
# handed out again: only what is logged from here on is the C driver's.
echo "rs_decode: C driver from here" >/dev/kmsg
modprobe vmd
wait_for "[ \$(ls /sys/bus/pci/drivers/vmd | grep -c '^0000:') -ge $nvmds ]" 60
wait_for "[ \$(ls /sys/block | grep -c nvme) -ge $total_nvme ]" 60
while read -r name bdf id nvme bstart shadow mode client hotplug; do
	line=${rs[$name]}
	dom=$(vmd_domain "$bdf")
	c_bus=$(dmesg | sed -n '/rs_decode: C driver from here/,$p' | grep -o "pci_bus $dom:..: root bus resource \[bus [0-9a-f]*-[0-9a-f]*\]" |
		head -1 | sed 's/.*bus \([0-9a-f]*-[0-9a-f]*\)\]/\1/')
	rs_bus=$(echo "$line" | sed -n 's/.*buses \([0-9a-f]*-[0-9a-f]*\),.*/\1/p')
	ktap_result "$([ -n "$c_bus" ] && [ "$c_bus" = "$rs_bus" ]; echo $?)" \
		"$name ($id): same bus range as the C driver ($c_bus)" "vmd_rs: '$rs_bus', C: '$c_bus'"
	want_view=$([ "$shadow" = 1 ] && echo guest || echo "bare metal")
	echo "$line" | grep -q "($want_view), MSI $mode"
	ktap_result $? "$name ($id): $want_view view, MSI $mode, as the C driver uses" "$line"
	c_tree=$(domain_dump "$dom")
	[ -n "$c_tree" ] && [ "$c_tree" = "${rs_tree[$name]}" ]
	ktap_result $? "$name ($id): the same devices, BARs and bridge windows as with the C driver" \
		"$(diff <(echo "${rs_tree[$name]}") <(echo "$c_tree") | head -20)"
	# Per child device, the VMD vector of each of its interrupts: the
	# shared vector for ports, the least-loaded ones for NVMe queues.
	c_vectors=$(vector_map "$bdf")
	ktap_diag "$name, C driver: each child device, then the VMD vector of each of its MSIs:" "$c_vectors"
	[ -n "$c_vectors" ] && [ "$c_vectors" = "${rs_vectors[$name]}" ]
	ktap_result $? "$name ($id): child interrupts on the same VMD vectors as with the C driver" \
		"vmd_rs:" "${rs_vectors[$name]}" "C:" "$c_vectors"
done <"$MANIFEST"
ktap_done
