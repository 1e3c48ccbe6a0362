# SPDX-License-Identifier: GPL-2.0
#
# Guest-side helpers for the VMD tests (sourced after ktap.sh).

# The PCI domain (hex, e.g. 10000) a VMD at $1 created, from its "domain" link.
vmd_domain() {
	local l
	# The link points at the root bus's pci_bus device, ".../pci_bus/10000:00".
	l=$(readlink "/sys/bus/pci/devices/$1/domain" 2>/dev/null) || return 1
	l=${l##*/}
	echo "${l%%:*}"
}

# Block devices (nvmeXnY) of NVMe controllers behind the VMD at $1.
vmd_disks() {
	local b
	for b in /sys/block/nvme*; do
		[ -e "$b" ] || continue
		case $(readlink -f "$b") in
		*"/$1/pci"*) echo "${b##*/}" ;;
		esac
	done
}

# The PCI address of the controller behind block device $1.
disk_pci() {
	local p
	p=$(readlink -f "/sys/block/$1/device/device")
	echo "${p##*/}"
}

# IRQ numbers of a PCI device's MSI/MSI-X vectors, in vector order.  IRQ
# numbers need not be in that order (other devices free and allocate IRQs
# while a device's vectors are set up one by one); a PCI device's MSI domain
# numbers its hwirqs by MSI(-X) index.
pci_irqs() {
	local irq hw
	for irq in $(ls "/sys/bus/pci/devices/$1/msi_irqs" 2>/dev/null); do
		hw=$(sed -n 's/^ *hwirq: *//p' "/sys/kernel/debug/irq/irqs/$irq" 2>/dev/null | head -1)
		echo "$((${hw:-$irq})) $irq"
	done | sort -n | awk '{ print $2 }'
}

# Which of the VMD at $1's vectors each child interrupt is remapped to: one
# line per child device with MSI(-X) interrupts, its address in the domain
# and, for each interrupt in MSI index order, the VMD vector's index ("-"
# where the interrupt does not go through the VMD).  Both drivers give the
# VMD irq domain's hwirq the Linux IRQ of the VMD vector it is remapped to.
vector_map() {
	local dom vecs d line irq hw i v vec
	dom=$(vmd_domain "$1") || return 1
	vecs=$(pci_irqs "$1" | xargs)
	for d in /sys/bus/pci/devices/"$dom":*; do
		[ -d "$d/msi_irqs" ] || continue
		line=${d##*/"$dom":}
		for irq in $(pci_irqs "${d##*/}"); do
			hw=$(awk '/^ *domain:/ { vmd = $2 ~ /^VMD-MSI/ }
				vmd && /^ *hwirq:/ { print $2; exit }' \
				"/sys/kernel/debug/irq/irqs/$irq" 2>/dev/null)
			v=-
			if [ -n "$hw" ]; then
				i=0
				for vec in $vecs; do
					[ "$vec" -eq "$((hw))" ] && v=$i
					i=$((i + 1))
				done
			fi
			line="$line $v"
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
