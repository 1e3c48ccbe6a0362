# SPDX-License-Identifier: GPL-2.0
#
# Guest-side helpers for the VMD tests (sourced after ktap.sh).

# Loads VMD driver $1: vmd_rs from $KO, or vmd; the rest are its parameters.
load_vmd_driver() {
	local drv=$1
	shift
	if [ "$drv" = vmd_rs ]; then
		insmod "$KO" "$@"
	else
		modprobe vmd "$@"
	fi
}

# The PCI domain (hex, e.g. 10000) a VMD at $1 created, from its "domain" link.
vmd_domain() {
	local l
	# The link points at the root bus's pci_bus device, ".../pci_bus/10000:00".
	l=$(readlink "/sys/bus/pci/devices/$1/domain" 2>/dev/null) || return 1
	l=${l##*/}
	echo "${l%%:*}"
}

# Whether lockdep is still checking (1) or turned itself off after a
# report (0): /proc/lockdep_stats' debug_locks.
debug_locks() {
	local k v
	while read -r k v; do
		[ "$k" = "debug_locks:" ] && { echo "$v"; return 0; }
	done </proc/lockdep_stats
	echo "none"
}

# A kmemleak scan that reports every leak it can: 7.3's scan greys an
# object whose contents changed since the previous scan (its checksum), and
# every object's first scan counts as a change, so one scan reports no
# object it had not scanned before: a leak since the last scan needs a
# second (kmemleak_plant.sh shows both).  Objects younger than 5 s are not
# reported.  Prints the report; fails if the scan was refused (kmemleak off).
kmemleak_scan() {
	local f=/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >"$f" && echo scan >"$f" && cat "$f"
}

# Block devices (nvmeXnY) of NVMe controllers behind the VMD at $1.
vmd_disks() {
	local p
	# One readlink for all: a fork costs under TCG.
	for p in $(readlink -f /sys/block/nvme* 2>/dev/null); do
		case $p in
		*"/$1/pci"*) echo "${p##*/}" ;;
		esac
	done
}

# The PCI address of the controller behind block device $1.
disk_pci() {
	local p
	p=$(readlink -f "/sys/block/$1/device/device")
	echo "${p##*/}"
}

# Sets HWIRQ to the first hwirq a debugfs irq file (/sys/kernel/debug/irq/
# irqs/N) lists, or, with $2 = vmd, to the hwirq in the VMD's MSI domain
# ("" if none).  Bash builtins only, no $(...): under TCG every fork costs,
# and this runs per interrupt.
irq_hwirq() {
	local k v rest in_vmd=1
	HWIRQ=
	[ "${2:-}" = vmd ] && in_vmd=0
	while read -r k v rest; do
		case $k in
		domain:)
			[ "${2:-}" = vmd ] || continue
			case $v in VMD-MSI*) in_vmd=1 ;; *) in_vmd=0 ;; esac
			;;
		hwirq:)
			[ "$in_vmd" = 1 ] && { HWIRQ=$v; return 0; }
			;;
		esac
	done 2>/dev/null <"/sys/kernel/debug/irq/irqs/$1"
}

# IRQ numbers of a PCI device's MSI/MSI-X vectors, in vector order.  IRQ
# numbers need not be in that order (other devices free and allocate IRQs
# while a device's vectors are set up one by one); a PCI device's MSI domain
# numbers its hwirqs by MSI(-X) index.
pci_irqs() {
	local f irq
	local -a by_hw=()
	for f in "/sys/bus/pci/devices/$1/msi_irqs"/*; do
		[ -e "$f" ] || continue
		irq=${f##*/}
		irq_hwirq "$irq"
		by_hw[$((${HWIRQ:-$irq}))]=$irq
	done
	# An indexed array lists its elements in index order.
	[ ${#by_hw[@]} -gt 0 ] && printf '%s\n' "${by_hw[@]}"
	return 0
}

# Which of the VMD at $1's vectors each child interrupt is remapped to: one
# line per child device with MSI(-X) interrupts, its address in the domain
# and, for each interrupt in MSI index order, the VMD vector's index ("-"
# where the interrupt does not go through the VMD).  Both drivers give the
# VMD irq domain's hwirq the Linux IRQ of the VMD vector it is remapped to.
vector_map() {
	local dom d line irq i=0
	local -A index=()
	dom=$(vmd_domain "$1") || return 1
	for irq in $(pci_irqs "$1"); do
		index[$irq]=$i
		i=$((i + 1))
	done
	for d in /sys/bus/pci/devices/"$dom":*; do
		[ -d "$d/msi_irqs" ] || continue
		line=${d##*/"$dom":}
		for irq in $(pci_irqs "${d##*/}"); do
			irq_hwirq "$irq" vmd
			[ -n "$HWIRQ" ] && HWIRQ=$((HWIRQ))
			line="$line ${index[${HWIRQ:-x}]:--}"
		done
		echo "$line"
	done
}

# Sum of the interrupt counts of the IRQs given as arguments.
irq_sum() {
	local want=" $* "
	awk -v want="$want" '
		{ n = $1; sub(":", "", n) }
		index(want, " " n " ") {
			for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i
		}
		END { print s + 0 }' /proc/interrupts
}

# The chip name /proc/interrupts shows for IRQ $1.
irq_chip() {
	awk -v n="$1:" '$1 == n {
		for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++);
		print $i }' /proc/interrupts
}

# Per-CPU interrupt counts of IRQ $1, space-separated.
irq_per_cpu() {
	awk -v n="$1:" '$1 == n {
		for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) printf "%s ", $i }' /proc/interrupts
}

# Sends $2 Identify Controller admin commands to NVMe controller /dev/$1
# (nvme-cli is not installed: the ioctl of linux/nvme_ioctl.h).
nvme_identify() {
	python3 - "/dev/$1" "$2" <<'PY'
import ctypes, fcntl, os, struct, sys
NVME_IOCTL_ADMIN_CMD = 0xC0484E41  # _IOWR('N', 0x41, 72-byte nvme_admin_cmd)
buf = ctypes.create_string_buffer(4096)
fd = os.open(sys.argv[1], os.O_RDONLY)
for _ in range(int(sys.argv[2])):
    # Identify (opcode 6), 4 KiB of data, CNS 1: the controller.
    cmd = bytearray(struct.pack("=BBHIIIQQII6III", 6, 0, 0, 0, 0, 0, 0,
                                ctypes.addressof(buf), 0, 4096, 1, 0, 0, 0, 0, 0, 0, 0))
    fcntl.ioctl(fd, NVME_IOCTL_ADMIN_CMD, cmd)
PY
}

# fio write + crc32c verify on /dev/$1, $2 bytes.
fio_verify() {
	fio --name=verify --filename="/dev/$1" --rw=write --bs=64k --size="$2" \
		--ioengine=libaio --direct=1 --iodepth=8 --verify=crc32c \
		--do_verify=1 --verify_fatal=1 --output-format=terse \
		--minimal >/tmp/fio.$1 2>&1
	local rc=$?
	[ $rc -eq 0 ] || sed "s/^/# /" /tmp/fio.$1
	return $rc
}

# Waits up to $2 seconds for command $1 (a string) to succeed.
wait_for() {
	local i
	for i in $(seq "$(($2 * 2))"); do
		eval "$1" && return 0
		sleep 0.5
	done
	return 1
}

# fio randrw on each of the disks $@ in the background, long enough to
# outlast any unbind or removal; FIO_PIDS are the jobs.
fio_start() {
	local d
	FIO_PIDS=
	for d in "$@"; do
		fio --name=load --filename="/dev/$d" --rw=randrw --bs=4k --size=64M \
			--ioengine=libaio --direct=1 --iodepth=16 --time_based --runtime=120 \
			--output-format=terse </dev/null >/dev/null 2>&1 &
		FIO_PIDS="$FIO_PIDS $!"
	done
}

# Reads plus writes completed on disk $1 (/proc/diskstats).
disk_ios() {
	local maj min dev rd rest
	while read -r maj min dev rd _ _ _ wr rest; do
		[ "$dev" = "$1" ] && { echo $((rd + wr)); return 0; }
	done </proc/diskstats
	echo 0
}

# Waits up to 60 s until each of the disks $@ has completed 100 IOs more:
# fio takes seconds to start under TCG, and an unbind before its first IO
# tests open racing removal, not teardown under load.
io_running() {
	local d base
	for d in "$@"; do
		base=$(disk_ios "$d")
		wait_for "[ \$(disk_ios $d) -gt $((base + 100)) ]" 60 || return 1
	done
}

# Waits up to $1 s for the fio jobs to end.  Returns 1 if one is still
# running (then kills them) and sets FIO_OK to how many ended without error.
fio_end() {
	local p left
	FIO_OK=0
	wait_for "left=0; for p in \$FIO_PIDS; do kill -0 \$p 2>/dev/null && left=1; done; [ \$left = 0 ]" "$1"
	left=$?
	for p in $FIO_PIDS; do
		if [ "$left" -ne 0 ]; then kill -9 "$p" 2>/dev/null; fi
		wait "$p" && FIO_OK=$((FIO_OK + 1))
	done
	return "$left"
}

# Asks the host to run a QEMU monitor (HMP) command; waits for it, prints
# the answer and keeps it in HOST_ANSWER.  Requests are numbered: call it
# in the script's own shell, not in a $(...) subshell.
HOST_REQ=0
HOST_ANSWER=
host_monitor() {
	local tag
	HOST_REQ=$((HOST_REQ + 1))
	# The part of the boot (wrap.sh) keeps the names of scripts apart.
	tag=${PART:-0}-$HOST_REQ
	echo "$*" >"$OUT/.req-$tag.tmp"
	mv "$OUT/.req-$tag.tmp" "$OUT/req-$tag"
	wait_for "test -e '$OUT/done-$tag'" 60 || return 1
	HOST_ANSWER=$(tr -d '\r' <"$OUT/done-$tag")
	echo "$HOST_ANSWER"
}
