#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vmd_rs loads and unloads cleanly, many times in one boot, and its KUnit
# suites (run by KUnit on every load) pass.
. "$(dirname "$0")/ktap.sh"
CYCLES=${CYCLES:-20}
SUITES="vmd_rs_parts vmd_rs_layout kernel_ext_raw_spinlock kernel_ext_pci_host kernel_ext_srcu_list"

ktap_header "$((3 + $(echo $SUITES | wc -w)))"

dmesg -C
ktap_check "insmod registers the vmd_rs PCI driver" \
	bash -c "insmod '$KO' && test -d /sys/bus/pci/drivers/vmd_rs && test -d /sys/module/vmd_rs"
for s in $SUITES; do
	line=$(dmesg | grep -E "\] (not )?ok [0-9]+ $s\$")
	case $line in
	*"] ok "*) ktap_result 0 "KUnit: $s" ;;
	*) ktap_result 1 "KUnit: $s" "${line:-suite did not run}" \
		"$(dmesg | grep -A2 -E "not ok|# $s" | head -20)" ;;
	esac
done
ktap_check "rmmod unregisters it" \
	bash -c "rmmod vmd_rs && ! test -e /sys/bus/pci/drivers/vmd_rs && ! test -e /sys/module/vmd_rs"

fails=0
for i in $(seq "$CYCLES"); do
	insmod "$KO" || { ktap_diag "insmod failed in cycle $i"; fails=$((fails + 1)); break; }
	rmmod vmd_rs || { ktap_diag "rmmod failed in cycle $i"; fails=$((fails + 1)); break; }
done
ktap_result "$fails" "insmod/rmmod $CYCLES times"
ktap_done
