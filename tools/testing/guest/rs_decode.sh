#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vmd_rs reads every emulated VMD as the C driver does: the same bus range,
# guest/bare-metal view and MSI mode, and binds it.
# Usage: rs_decode.sh <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
MANIFEST=$1
nvmds=$(wc -l <"$MANIFEST")

ktap_header "$((nvmds * 3 + 2))"
ktap_check "insmod vmd_rs" insmod "$KO"
declare -A rs
while read -r name bdf id nvme bstart shadow mode client hotplug; do
	rs[$name]=$(dmesg | grep "vmd_rs $bdf: VMD $id:" | tail -1)
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
done <"$MANIFEST"
ktap_done
