#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`, guest side: load vmd_rs and show what it found.
. "$(dirname "$0")/ktap.sh"
KO=${KO:-$REPO/vmd_rs.ko}

echo "== kernel: $(uname -r) ($(uname -v))"
ktap_header 1
ktap_check "insmod vmd_rs" insmod "$KO"
echo "== lsmod"
lsmod | grep -E '^(Module|vmd)'
echo "== VMD devices (Intel, class 0104) in this machine"
vmds=$(lspci -D -d 8086::0104 2>/dev/null)
if [ -z "$vmds" ]; then
	echo "none: this machine has no VMD, so vmd_rs is loaded and bound to nothing"
else
	echo "$vmds"
fi
echo "== bound to vmd_rs"
bound=$(ls /sys/bus/pci/drivers/vmd_rs 2>/dev/null | grep -E '^[0-9a-f]{4}:')
echo "${bound:-nothing}"
echo "== PCI domains"
ls /sys/bus/pci/devices | cut -d: -f1 | sort -u
echo "== vmd_rs kernel messages"
dmesg | grep -i vmd || echo "(none)"
ktap_done
