#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The same work as cycles.sh with no VMD at all: every NVMe of a machine
# without intel-vmd devices (machines.Direct) unbound from nvme and bound
# again through sysfs, with a verified write on each in between, many
# times.  Under multi-threaded TCG (vmtest.py --tcg multi) it tells whether
# a stall needs a VMD: a guest that stops making progress fails its boot's
# timeout, and the host's post-mortem says where the vCPUs were.
# Usage: nvme_cycles.sh nvme <manifest> [cycles] (the driver first, as for
# the VMD scripts)
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
CYCLES=${3:-50}
NVME=/sys/bus/pci/drivers/$1
bdfs=$(for d in /sys/block/nvme*; do disk_pci "${d##*/}"; done | sort -u)
total=$(echo $bdfs | wc -w)

ktap_header 1
fails=0
for i in $(seq "$CYCLES"); do
	for b in $bdfs; do echo "$b" >"$NVME/unbind"; done
	for b in $bdfs; do echo "$b" >"$NVME/bind"; done
	if ! wait_for "[ \$(ls /sys/block | grep -c nvme) -eq $total ]" 30; then
		ktap_diag "cycle $i: $(ls /sys/block | grep -c nvme) of $total namespaces"
		fails=1
		break
	fi
	for d in $(ls /sys/block | grep nvme); do
		fio_verify "$d" 1M || { ktap_diag "cycle $i: fio on $d failed"; fails=1; break 2; }
	done
	echo "cycle $i done" >/dev/kmsg
done
ktap_result "$fails" "$CYCLES unbind/bind/fio cycles of $total NVMe, no VMD"
ktap_done
