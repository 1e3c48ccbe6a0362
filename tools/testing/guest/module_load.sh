#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vmd_rs loads and unloads cleanly, many times in one boot.
. "$(dirname "$0")/ktap.sh"
KO=${KO:-$REPO/vmd_rs.ko}
CYCLES=${CYCLES:-20}

ktap_header 3

ktap_check "insmod registers the vmd_rs PCI driver" \
	bash -c "insmod '$KO' && test -d /sys/bus/pci/drivers/vmd_rs && test -d /sys/module/vmd_rs"
ktap_check "rmmod unregisters it" \
	bash -c "rmmod vmd_rs && ! test -e /sys/bus/pci/drivers/vmd_rs && ! test -e /sys/module/vmd_rs"

fails=0
for i in $(seq "$CYCLES"); do
	insmod "$KO" || { ktap_diag "insmod failed in cycle $i"; fails=$((fails + 1)); break; }
	rmmod vmd_rs || { ktap_diag "rmmod failed in cycle $i"; fails=$((fails + 1)); break; }
done
ktap_result "$fails" "insmod/rmmod $CYCLES times"
ktap_done
