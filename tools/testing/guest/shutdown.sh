#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A boot's last part: leaves <vmd|vmd_rs> bound to every VMD the manifest
# expects in bypass mode, so that the poweroff ending the boot runs the
# driver's shutdown, which must turn remapping back on (firmware does not
# on a soft reboot or kexec).  The host checks that in the model's trace of
# VMCONFIG writes (vmtest.py, from $OUT/shutdown.expect).
# Usage: shutdown.sh <vmd|vmd_rs> <manifest>
. "$(dirname "$0")/ktap.sh"
. "$(dirname "$0")/vmd_lib.sh"
DRV=$1
MANIFEST=$2

nbypass=$(awk '$7 == "bypass"' "$MANIFEST" | wc -l)
ktap_header "$((1 + nbypass))"
ktap_check "$DRV loads" load_vmd_driver "$DRV"
while read -r name bdf id nvme bstart shadow mode rest; do
	[ "$mode" = bypass ] || continue
	drv=$(readlink "/sys/bus/pci/devices/$bdf/driver")
	ok=1
	if [ "${drv##*/}" = "$DRV" ]; then
		echo "$name $DRV" >>"$OUT/shutdown.expect"
		ok=0
	fi
	ktap_result "$ok" "$name ($id, $mode): bound, left bound for the poweroff ($DRV)" \
		"driver '${drv##*/}'"
done <"$MANIFEST"
ktap_done
