#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What a load and unload leaves behind of the VMDs' host bridges.  7.3's
# pci_remove_root_bus() only device_del()s a host bridge: the reference
# pci_create_root_bus() returned it with is its caller's to put, and vmd.c
# never puts it, so the bridge, its name and its windows leak on every
# unbind (vmtest.KNOWN_LEAKS lets those reports through in boots where the
# C driver ran; this case shows them with the C driver alone).  vmd_rs
# puts it: none may leak.
# Usage: host_bridge_leak.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
nvmds=$(wc -l <"$MANIFEST")

ktap_header 1
if [ "$DRV" = vmd_rs ]; then insmod "$KO"; else modprobe vmd; fi
bound=$(ls -d /sys/bus/pci/drivers/"$DRV"/0000:* 2>/dev/null | wc -l)
rmmod "$DRV"
report=$(kmemleak_scan)
# Host bridges: the objects pci_create_root_bus() itself allocated.
bridges=$(echo "$report" | awk '/^unreferenced object/ { n++ }
	/^ +pci_create_root_bus\+/ && !(n in seen) { seen[n]; b++ }
	/^ +(pci_register_host_bridge|resource_list_create_entry)/ { seen[n] }
	END { print b + 0 }')
if [ "$DRV" = vmd_rs ]; then
	ktap_result "$bridges" "no host bridge leaked after load and unload of $bound VMDs ($DRV)" \
		"$(echo "$report" | head -40)"
else
	ktap_diag "C: $bridges host bridges leaked by $bound of $nvmds VMDs bound and unbound"
	# Recorded, then cleared: the boot's final scan judges the rest.
	echo clear >/sys/kernel/debug/kmemleak
	ktap_result "$([ "$bridges" -gt 0 ]; echo $?)" \
		"the host bridges leak after load and unload, as recorded ($DRV)"
fi
ktap_done
