#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`, guest side: load vmd_rs, show what it made of the VMD(s),
# do a short IO check.  Usage: show.sh <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
MANIFEST=${1:-/dev/null}

echo "== kernel: $(uname -r) ($(uname -v))"
ktap_header 2
ktap_check "insmod vmd_rs" insmod "$KO"
wait_for "[ -n \"\$(ls /sys/block | grep nvme)\" ]" 30
echo "== lsmod"
lsmod | grep -E '^(Module|vmd)'
vmds=$(lspci -D -d 8086::0104 2>/dev/null | cut -d' ' -f1)
[ -n "$vmds" ] || echo "no VMD in this machine: vmd_rs is loaded and bound to nothing"
io=0
for bdf in $vmds; do
	drv=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")" 2>/dev/null)
	echo "== VMD $bdf ($(lspci -s "$bdf" -n | awk '{print $3}')): driver ${drv:-none}"
	dmesg | grep "vmd_rs $bdf:" | sed 's/^\[[^]]*\] /   /'
	dom=$(vmd_domain "$bdf") || { echo "   no domain"; continue; }
	echo "-- domain $dom"
	lspci -D | grep "^$dom:" | sed 's/^/   /'
	nvec=$(pci_irqs "$bdf" | wc -w)
	if [ "$nvec" -gt 0 ]; then
		echo "-- MSI remapped: $nvec VMD vectors"
	else
		echo "-- MSI bypass: no VMD vectors; the children's own:"
	fi
	for d in $(vmd_disks "$bdf"); do
		p=$(disk_pci "$d")
		echo "   $d at $p: IRQs $(pci_irqs "$p" | tr '\n' ' ')($(irq_chip "$(pci_irqs "$p" | head -1)"))"
		if fio_verify "$d" 16M; then
			echo "   $d: fio write+verify 16M ok"
		else
			echo "   $d: fio write+verify FAILED"
			io=1
		fi
	done
	dbg=/sys/kernel/debug/vmd_rs-$bdf
	if [ -d "$dbg" ]; then
		echo "-- debugfs $dbg/info"
		sed 's/^/   /' "$dbg/info"
		if [ -e "$dbg/vectors" ]; then
			echo "-- debugfs $dbg/vectors (those with children)"
			grep -v ' 0 child irqs' "$dbg/vectors" | sed 's/^/   /'
		fi
	fi
done
ktap_result "$io" "short IO check on every NVMe behind a VMD"
ktap_done
