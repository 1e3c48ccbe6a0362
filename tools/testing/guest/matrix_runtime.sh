#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The hostile-hardware cases that start while a driver is bound, on the
# machine's first VMD (a healthy 201D, remapping): a vector flooded with
# MSIs no child sent, a child MSI to a vector the VMD does not have, MSIs
# through an unbind, and the VMD's surprise removal under IO, then unload.
# Each case is one result, `<case> (<driver>)`.  vmd_rs must come through
# every one; the C driver's outcome is recorded (the C: lines) and must
# stay what it was.  The C driver's kernel does not survive MSIs through an
# unbind (H1): `unbind-flood` runs that case alone (in a boot of its own,
# check.py), `no-unbind-flood` the others.
# Usage: matrix_runtime.sh <vmd|vmd_rs> <manifest> [all|unbind-flood|no-unbind-flood]
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2
CASES=${3:-all}
read -r name bdf _ <"$MANIFEST"
FLOOD=100000

load() {
	if [ "$DRV" = vmd_rs ]; then
		insmod "$KO"
	else
		modprobe vmd
	fi
}

case $CASES in
all) ktap_header 5 ;;
unbind-flood) ktap_header 2 ;;
no-unbind-flood) ktap_header 4 ;;
esac
load && wait_for "[ -n \"\$(vmd_disks $bdf)\" ]" 60
disk=$(vmd_disks "$bdf" | head -1)
ktap_result "$([ -n "$disk" ]; echo $?)" "$name bound with a disk ($DRV)"

if [ "$CASES" != unbind-flood ]; then
	# A flood on the last vector, which no child uses: the handler finds no
	# child, the IRQ core must not give up on the vector, IO goes on.
	vecs=$(pci_irqs "$bdf")
	last=$(echo $vecs | wc -w)
	last=$((last - 1))
	irq=$(echo $vecs | cut -d' ' -f$((last + 1)))
	before=$(irq_sum "$irq")
	host_monitor "qom-set $name flood-interval 10" >/dev/null
	host_monitor "qom-set $name flood-vector $last" >/dev/null
	host_monitor "qom-set $name flood-count $FLOOD" >/dev/null
	for i in $(seq 120); do
		host_monitor "qom-get $name flood-count" >/dev/null
		[ "$HOST_ANSWER" = 0 ] && break
		sleep 1
	done
	after=$(irq_sum "$irq")
	fio_verify "$disk" 4M
	io=$?
	spurious=$(dmesg | grep -E "nobody cared|Disabling IRQ #")
	ok=$([ "$after" -gt "$before" ] && [ $io = 0 ] && [ -z "$spurious" ]; echo $?)
	ktap_result "$ok" "flood of $FLOOD MSIs on a vector without children ($DRV)" \
		"vector $last (IRQ $irq): $before -> $after interrupts; fio rc $io" "$spurious"

	# A child MSI to a vector the VMD does not have: the VMD drops it.
	host_monitor "qom-set $name inject-msi 200" >/dev/null
	fio_verify "$disk" 4M
	ktap_result $? "child MSI to a vector the VMD does not have ($DRV)"
fi

if [ "$CASES" != no-unbind-flood ]; then
	# MSIs on vector 0 while the VMD is unbound and bound again, 5 times:
	# the demux runs until the vectors are freed, also after remove has
	# torn down what it reads (vmd.c frees its SRCU structures in remove,
	# and its devm-managed vector IRQs only after remove returns: H1).
	host_monitor "qom-set $name flood-interval 20" >/dev/null
	host_monitor "qom-set $name flood-vector 0" >/dev/null
	host_monitor "qom-set $name flood-count 4000000" >/dev/null
	rc=0 worst=0
	for i in 1 2 3 4 5; do
		start=$(date +%s)
		echo "$bdf" >"/sys/bus/pci/drivers/$DRV/unbind" || { ktap_diag "round $i: unbind failed"; rc=1; }
		secs=$(($(date +%s) - start))
		[ "$secs" -gt "$worst" ] && worst=$secs
		echo "$bdf" >"/sys/bus/pci/drivers/$DRV/bind"
		wait_for "[ -n \"\$(vmd_disks $bdf)\" ]" 60 || { ktap_diag "round $i: no disk after the bind"; rc=1; break; }
	done
	host_monitor "qom-set $name flood-count 0" >/dev/null
	disk=$(vmd_disks "$bdf" | head -1)
	[ -n "$disk" ] && fio_verify "$disk" 4M || rc=1
	ktap_result "$rc" "MSI flood on vector 0 through 5 unbinds and binds ($DRV)" \
		"slowest unbind $worst s, disk after the last bind: '${disk:-none}'"
fi

if [ "$CASES" != unbind-flood ]; then
	# Surprise removal under IO: the VMD and everything behind it reads
	# all-ones from now on.  IO fails (fast: NVMe sees its controller gone),
	# unload must finish and leave nothing behind.
	echo 5 >/sys/module/nvme_core/parameters/io_timeout 2>/dev/null
	fio --name=gone --filename="/dev/$disk" --rw=randrw --bs=4k --size=64M --time_based \
		--runtime=20 --ioengine=libaio --direct=1 --iodepth=16 >/tmp/fio.gone 2>&1 &
	fio_pid=$!
	sleep 3
	host_monitor "qom-set $name removed on" >/dev/null
	wait $fio_pid
	fio_rc=$?
	start=$(date +%s)
	timeout 120 rmmod "$DRV"
	rm_rc=$?
	secs=$(($(date +%s) - start))
	left=$(vmd_domain "$bdf")
	host_monitor "qom-set $name removed off" >/dev/null
	if [ "$DRV" = vmd_rs ]; then
		ok=$([ $rm_rc = 0 ] && [ -z "$left" ]; echo $?)
		ktap_result "$ok" "surprise removal under IO, then unload ($DRV)" \
			"fio rc $fio_rc, rmmod rc $rm_rc after $secs s, domain left: '$left'" \
			"$(dmesg | grep -iE 'vmd|nvme' | tail -8)"
	else
		got="rmmod rc $rm_rc, domain $([ -z "$left" ] && echo gone || echo left)"
		ktap_diag "C: $got (surprise removal)"
		[ "$got" = "rmmod rc 0, domain gone" ]
		ktap_result $? "surprise removal under IO, then unload ($DRV)" "$got, after $secs s"
fi
fi
ktap_done
