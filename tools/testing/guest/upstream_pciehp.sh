#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The lockdep report every boot with a VMD hot-add gets (vmtest.py's
# KNOWN_UPSTREAM, pci_rescan_remove_lock vs ctrl->reset_lock) comes from
# 7.3's pciehp alone: an NVMe hot-added on a plain q35 root port, no VMD
# in the machine, no VMD driver loaded, gets the same report.  The guest
# shows that lockdep reported the hot-add; the host (find_complaints) that
# the report is the known one, or fails the boot.
# Usage: upstream_pciehp.sh <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"

ktap_header 2
before=$(ls /sys/block | grep -c nvme)
locks=$(debug_locks)
debug_locks >"$OUT/debug_locks.$PART.hotadd"
host_monitor "device_add nvme,id=qhpn,bus=qhp,drive=qhpd,serial=qhp" >/dev/null
wait_for "[ \$(ls /sys/block | grep -c nvme) -gt $before ]" 60
ktap_result $? "NVMe hot-added on a plain q35 root port appears" \
	"$(dmesg | grep -iE 'pciehp|nvme' | tail -5)"
wait_for "[ \"\$(debug_locks)\" = 0 ]" 30
ktap_result "$([ "$locks" = 1 ] && [ "$(debug_locks)" = 0 ]; echo $?)" \
	"lockdep reports the hot-add with no VMD in the machine (debug_locks $locks -> $(debug_locks))" \
	"$(lsmod | grep -E '^vmd' || echo 'no VMD driver loaded')"
ktap_diag "$(dmesg | grep -A30 'possible circular locking dependency' | grep -E 'pciehp|pci_rescan_remove_lock|reset_lock' | head -8)"
ktap_done
