#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Failed allocations in a VMD's bind: the N-th slab allocation the binding
# task makes fails (failslab through /proc/thread-self/fail-nth), for
# N = 1, 2, ... up to the PCI core's root bus.  The bind runs in this
# shell's task: sysfs bind probes synchronously, in the writer's task, for a
# device without a NUMA node.  Each step must end in a failed bind that
# leaves nothing behind (leftovers() below) or in a bind that works and
# unbinds; afterwards the VMD binds without a fault and does IO.
# WARNs, oopses and leaks are vmtest's checks over the boot (a boot per
# driver, so that a complaint is that driver's).
#
# The steps stop at the first failure injected inside pci_create_root_bus():
# from there on the allocations are the PCI core's, whose error paths are
# not failure-safe in 7.3 (a failed device_register() of the root bus puts
# the host bridge once too often, a failed device_add() in pci_device_add() WARNs and
# the scan goes on to a NULL dereference), whichever driver called it.
# Usage: faults.sh <vmd|vmd_rs> <manifest> [stride]
# With a stride S, only steps 1, 1 + S, 1 + 2S, ... run (a quick sample;
# make soak runs every step).  S must be odd: every other allocation is
# kmemleak's own (it fails silently), and an even stride can sample only
# those for hundreds of steps.
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
STRIDE=${3:-1}
MAX_STEPS=1000
DRVDIR=/sys/bus/pci/drivers/$DRV
nvmds=$(wc -l <"$MANIFEST")

# Any PCI device in a VMD domain (domain numbers 10000 and up).
domain_devices() {
	local d n=0
	for d in /sys/bus/pci/devices/1[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:*; do
		[ -e "$d" ] && n=$((n + 1))
	done
	echo "$n"
}

: >"$OUT/rootbus.log"
# vmd_rs: one more per VMD (the root bus's failed device_register()).
ktap_header "$((2 + nvmds * $([ "$DRV" = vmd_rs ] && echo 3 || echo 2)))"
if [ "$DRV" = vmd_rs ]; then
	insmod "$KO"
else
	modprobe vmd
fi
ktap_result $? "$DRV loads"
while read -r name bdf rest; do
	echo "$bdf" >"$DRVDIR/unbind"
done <"$MANIFEST"

FS=/sys/kernel/debug/failslab
# GFP_KERNEL allocations too (failslab skips them by default), and the
# stack of each injected failure: it says where the step failed.
echo N >"$FS/ignore-gfp-wait"
echo 2 >"$FS/verbose"
# Those stacks to the kernel log only: the serial console is slow under TCG.
# Each step's log is moved to $OUT/dmesg, which vmtest checks with the rest.
dmesg -n 1

# What a failed bind must not leave behind: the driver bound, devices in a
# VMD domain, the VMD's MSI-X vectors, the device enabled, a VMD irq domain
# or vmd_rs's debugfs directory.  Prints what is left.
leftovers() {
	local bdf=$1 f enable ndev
	[ -e "/sys/bus/pci/devices/$bdf/driver" ] && echo "bound"
	ndev=$(domain_devices)
	[ "$ndev" -eq 0 ] || echo "$ndev devices in VMD domains"
	[ -d "/sys/bus/pci/devices/$bdf/msi_irqs" ] && echo "MSI-X vectors"
	read -r enable <"/sys/bus/pci/devices/$bdf/enable"
	[ "$enable" = 0 ] || echo "enable count $enable"
	for f in /sys/kernel/debug/irq/domains/VMD-MSI*; do
		[ -e "$f" ] && echo "irq domain ${f##*/}"
	done
	[ -e "/sys/kernel/debug/vmd_rs-$bdf" ] && echo "debugfs vmd_rs-$bdf"
	return 0
}

# Binds $bdf with its $1-th slab allocation failing: sets rc (the bind's
# status) and left (fail-nth after it: > 0 if nothing was injected); the
# step's kernel log is in $OUT/step.log.  Needs fds 3 (bind), 4 (fail-nth)
# and 5 (errors) open.
inject() {
	echo "faults: $bdf step $1" >/dev/kmsg
	# For a post mortem if the guest hangs (the log is not on the console).
	echo "$bdf $1" >"$OUT/faults.step"
	# Read back through an fd opened before arming: at offset 0 the read
	# allocates nothing (an open would).
	exec 6</proc/thread-self/fail-nth
	echo "$1" >&4
	echo "$bdf" >&3 2>&5
	rc=$?
	read -r left <&6
	echo 0 >&4
	exec 6<&-
	dmesg -c >"$OUT/step.log"
	cat "$OUT/step.log" >>"$OUT/dmesg"
}

# 7.3's pci_register_host_bridge() puts the host bridge once too often when
# the root bus's device_register() fails (testing.rst): vmd_rs's HostBridge
# must end that step in a clean error.  From step $1 + 1 on, step by step,
# up to that step, or to the scan (past it, the PCI core's own error paths
# are not failure-safe).  Prints what went wrong; sets reached to the step,
# or empty.
root_bus_register() {
	local m try scan=""
	reached=""
	# kmemleak's own allocations (silent steps) may shift which allocation
	# a step fails by one, so a step-by-step run can step over the root
	# bus's: up to three runs.
	for try in 1 2 3; do
		m=$1 scan=""
		while [ -z "$scan" ] && [ "$m" -lt "$(($1 + 200))" ]; do
			m=$((m + 1))
			inject "$m"
			cat "$OUT/step.log" >>"$OUT/rootbus.log"
			[ "${left:-0}" -gt 0 ] && { echo "step $m: the bind needed fewer allocations"; return; }
			if grep -q "kobject_add_internal failed for .*parent: pci_bus)" "$OUT/step.log"; then
				reached=$m
				[ "$rc" -ne 0 ] || echo "step $m: bound despite a failed root bus"
				leftovers "$bdf" | sed "s/^/step $m: left /"
				return
			fi
			grep -qE "pci_scan_child_bus|pci_scan_single_device" "$OUT/step.log" && scan=$m
			if [ "$rc" -eq 0 ]; then
				echo "$bdf" >"$DRVDIR/unbind"
			elif [ -z "$scan" ]; then
				leftovers "$bdf" | sed "s/^/step $m: left /"
			fi
		done
		[ -n "$scan" ] || break
		echo "run $try: the scan began at step $scan first" >>"$OUT/rootbus.log"
	done
	if [ -n "$scan" ]; then
		echo "step $scan: the scan began before the root bus's device_register() failed (3 runs)"
	else
		echo "no failed device_register() of the root bus within 200 steps"
	fi
}

while read -r name bdf id nvme bstart shadow mode rest; do
	tag="$name ($id, $mode)"
	read -r node <"/sys/bus/pci/devices/$bdf/numa_node"
	n=0 steps=0 failed=0 bound=0 probe=0 silent=0 bad=() end="" trail=""
	# A device with a NUMA node probes on a CPU of it, in a kworker.
	[ "$node" = -1 ] || { bad+=("NUMA node $node: the probe would not run in this task"); n=$MAX_STEPS; }
	# Opened once: an open allocates, and would take a step of its own.
	exec 3>"$DRVDIR/bind" 4>/proc/thread-self/fail-nth 5>>"$OUT/faults.err"
	while [ "$n" -lt "$MAX_STEPS" ]; do
		if [ "$n" = 0 ]; then n=1; else n=$((n + STRIDE)); fi
		inject "$n"
		steps=$((steps + 1))
		if [ "${left:-0}" -gt 0 ]; then
			# The bind took fewer than n allocations: nothing was injected.
			[ "$rc" -eq 0 ] || bad+=("step $n: the bind failed with no fault injected")
			end="a bind without a fault"
			break
		fi
		# kmemleak's own allocations fail silently (no stack): nothing tested.
		grep -q "FAULT_INJECTION: forcing a failure" "$OUT/step.log" || silent=$((silent + 1))
		# The injected failure was in the probe, in this task (a probe run
		# by a kworker has no pci_device_probe in its stack).
		grep -q pci_device_probe "$OUT/step.log" && probe=$((probe + 1))
		if [ "$rc" -ne 0 ]; then
			failed=$((failed + 1))
			trail="${trail}e"
			left_behind=$(leftovers "$bdf" | xargs)
			[ -z "$left_behind" ] || bad+=("step $n: the bind failed and left: $left_behind")
		else
			bound=$((bound + 1))
			trail="${trail}b"
			echo "$bdf" >"$DRVDIR/unbind"
			left_behind=$(leftovers "$bdf" | xargs)
			[ -z "$left_behind" ] || bad+=("step $n: bound despite the fault; after unbind: $left_behind")
		fi
		# The PCI core's own allocations from here on (see above).  A
		# sampled run may step over the root bus's few allocations
		# unseen (a silent step): the scan behind it ends it too.
		grep -qE "pci_create_root_bus|pci_register_host_bridge|pci_scan_root_bus_bridge|pci_scan_child_bus|pci_bus_add_devices" "$OUT/step.log" &&
			{ end="the first failure inside the root bus's creation"; cat "$OUT/step.log" >>"$OUT/rootbus.log"; break; }
	done
	if [ "$DRV" = vmd_rs ]; then
		reached=""
		if [ "$end" = "the first failure inside the root bus's creation" ]; then
			# From the step sampled before: the registration's allocations
			# lie between it and the first one inside the root bus's
			# creation.  Not in a subshell: it sets reached.
			root_bus_register "$((n > STRIDE ? n - STRIDE : 0))" >"$OUT/rootbus.wrong"
			wrong=$(cat "$OUT/rootbus.wrong")
		else
			wrong="the steps did not reach the root bus"
		fi
		ktap_result "$([ -n "$reached" ] && [ -z "$wrong" ]; echo $?)" \
			"$tag: the root bus's device_register() fails (7.3 puts the host bridge once too often): a clean error" \
			"$wrong"
		ktap_diag "$tag: the root bus's device_register() failed at step ${reached:-none}"
	fi
	exec 3>&- 4>&- 5>&-
	# Every VMD here binds: its bind reaches the root bus.
	[ "$end" = "the first failure inside the root bus's creation" ] ||
		bad+=("ended at step $n with '${end:-nothing}', not at the root bus")
	[ "$probe" -ge 1 ] || bad+=("no injected failure was inside the probe")
	ktap_result "${#bad[@]}" \
		"$tag: each failed allocation of the bind ($steps) ends in an error or a working bind, nothing left" \
		"${bad[@]}"
	ktap_diag "$tag: $steps steps, up to $end: $failed binds failed, $bound bound despite the fault, $probe inside the probe, $silent silent (kmemleak's own allocation)"
	ktap_diag "$tag: step by step, every $STRIDE (e: the bind failed, b: bound): $trail"

	# Bindable again, and working.
	echo "$bdf" >"$DRVDIR/bind"
	wait_for "[ \$(vmd_disks $bdf | wc -l) -ge $nvme ]" 30
	ok=1
	d=$(vmd_disks "$bdf" | head -1)
	[ -n "$d" ] && fio_verify "$d" 1M && ok=0
	ktap_result "$ok" "$tag: binds without a fault afterwards and does IO" "disk '$d'"
	# The next VMD's steps count what is left in any domain: none of this one.
	echo "$bdf" >"$DRVDIR/unbind"
done <"$MANIFEST"
echo Y >"$FS/ignore-gfp-wait"
dmesg -n 7

rmmod "$DRV"
# What the failed binds leaked, now that the driver is gone.
report=$(kmemleak_scan)
leaks=$(echo "$report" | grep -c "^unreferenced object")
srcu=$(echo "$report" | grep -c "init_srcu_struct")
# 7.3's pci_register_host_bridge() moves the windows off the bridge's list
# before device_add(), and when that fails its error path loses them: the
# window entries leak whoever called pci_create_root_bus().  Known only
# where a step failed exactly there: an injected failure whose stack, down
# to its end, has device_add() called by pci_register_host_bridge() (how
# deep below device_add() the allocation is varies: kernfs, dpm_sysfs_add).
windows=0
if awk '/FAULT_INJECTION: forcing/ { s = 1; d = 0; next }
	s && /device_add\+/ { d = 1 }
	s && d && /pci_register_host_bridge\+/ { found = 1 }
	/<\/TASK>/ { s = 0 }
	END { exit !found }' "$OUT/rootbus.log" 2>/dev/null; then
	windows=$(echo "$report" | awk '/^unreferenced object/ { if (w) n++; w = 0 }
		/resource_list_create_entry/ { w = 1 } END { if (w) n++; print n + 0 }')
fi
if [ "$DRV" = vmd_rs ]; then
	ktap_diag "$windows window entries lost by pci_register_host_bridge()'s error path (upstream)"
	ktap_result "$((leaks - windows))" "kmemleak: nothing else leaked by the failed binds ($DRV)" \
		"$(echo "$report" | head -40)"
else
	# vmd.c's probe error paths after its vectors' setup skip
	# cleanup_srcu_struct() (H2), and more: recorded (it must still leak
	# SRCU structures), then cleared, so that the boot's final scan judges
	# the rest.
	ktap_diag "C: $leaks objects leaked by the failed binds, $srcu from init_srcu_struct(), $windows window entries lost by pci_register_host_bridge()"
	ktap_diag "$(echo "$report" | grep -A14 "^unreferenced object" | head -32)"
	echo clear >/sys/kernel/debug/kmemleak
	ktap_result "$([ "$srcu" -gt 0 ]; echo $?)" \
		"kmemleak: the failed binds leak SRCU structures, as recorded (H2) ($DRV)"
fi
ktap_done
