#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The WARN that a failed allocation in any driver's request_irq() can give
# (vmtest.py's KNOWN_UPSTREAM, remove_proc_entry from unregister_irq_proc)
# comes from 7.3's kernel/irq/proc.c alone: register_irq_proc() ignores a
# failed proc_create_*() of a /proc/irq/<n>/ file, and unregister_irq_proc()
# removes every file regardless.  Shown with no VMD in the machine and no
# VMD driver: pcieport binds a plain q35 root port with the second
# proc_dir_entry allocation of the binding task failed (the first is
# /proc/irq/<n>/ itself, the second its smp_affinity), and its unbind WARNs.
# failslab's cache filter counts only that cache's allocations; it needs
# slab_nomerge (a merged cache refuses the filter).
# Usage: upstream_irq_proc.sh <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
PORT=0000:00:1c.0
DRVDIR=/sys/bus/pci/drivers/pcieport
FS=/sys/kernel/debug/failslab
SLAB=/sys/kernel/slab/proc_dir_entry/failslab

ktap_header 3
dmesg -c >>"$OUT/dmesg"
echo "$PORT" >"$DRVDIR/unbind"
echo N >"$FS/ignore-gfp-wait"
echo Y >"$FS/cache-filter"
echo 2 >"$FS/verbose"
echo 1 >"$SLAB"
# Opened before arming: an open allocates.
exec 3>"$DRVDIR/bind" 4>/proc/thread-self/fail-nth
echo 2 >&4
echo "$PORT" >&3
rc=$?
echo 0 >&4
exec 3>&- 4>&-
echo 0 >"$SLAB"
echo N >"$FS/cache-filter"
echo Y >"$FS/ignore-gfp-wait"
dmesg -c >"$OUT/step.log"
cat "$OUT/step.log" >>"$OUT/dmesg"
irq=$(ls "/sys/bus/pci/devices/$PORT/msi_irqs" | head -1)
missing=$(for f in smp_affinity smp_affinity_list effective_affinity spurious; do
	[ -e "/proc/irq/$irq/$f" ] || echo "$f"
done | xargs)
ktap_result "$([ "$rc" = 0 ] && grep -q register_irq_proc "$OUT/step.log" && [ -n "$missing" ]
	echo $?)" "pcieport binds with a failed allocation in register_irq_proc(), no VMD (irq $irq lacks: ${missing:-nothing})" \
	"bind rc $rc" "$(grep -A12 'FAULT_INJECTION: forcing' "$OUT/step.log" | head -20)"

echo "$PORT" >"$DRVDIR/unbind"
dmesg -c >"$OUT/step.log"
cat "$OUT/step.log" >>"$OUT/dmesg"
ktap_result "$(grep -q 'remove_proc_entry' "$OUT/step.log" &&
	grep -q unregister_irq_proc "$OUT/step.log"; echo $?)" \
	"its unbind WARNs in remove_proc_entry() from unregister_irq_proc()" \
	"$(grep -B2 -A14 'cut here' "$OUT/step.log" | head -24)"
# pciehp's case (the next part) needs the port bound.
echo "$PORT" >"$DRVDIR/bind"
ktap_result "$([ -e "/sys/bus/pci/devices/$PORT/driver" ]; echo $?)" "pcieport binds the port again"
ktap_done
