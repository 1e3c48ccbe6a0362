#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds a minimal qemu-system-x86_64 from Debian's unpacked QEMU source with
# the emulated Intel VMD (intel_vmd.c) added as hw/pci-host/intel_vmd.c.
# Usage: build.sh <unpacked debian source> <build dir>
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_ORIG=$1
OUT=$2
JOBS=${JOBS:-$(nproc)}

rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)

# A private copy of the source: the VMD model goes in as upstream would have it.
cp -a "$SRC_ORIG" "$OUT/src"
SRC=$OUT/src
cp "$HERE/intel_vmd.c" "$SRC/hw/pci-host/intel_vmd.c"
cat "$HERE/trace-events" >>"$SRC/hw/pci-host/trace-events"
cat >>"$SRC/hw/pci-host/Kconfig" <<'KCONFIG'

config INTEL_VMD
    bool
    depends on PCI_EXPRESS && MSI_NONBROKEN
KCONFIG
# Next to its relatives, before the source set is used.
sed -i "/CONFIG_PCI_EXPRESS_DESIGNWARE/a pci_ss.add(when: 'CONFIG_INTEL_VMD', if_true: files('intel_vmd.c'))" \
	"$SRC/hw/pci-host/meson.build"
cp "$HERE/devices.mak" "$SRC/configs/devices/x86_64-softmmu/vmd-rs.mak"

mkdir -p "$OUT/build"
cd "$OUT/build"
"$SRC/configure" --python="$PYTHON" --target-list=x86_64-softmmu \
	--without-default-features --without-default-devices \
	--with-devices-x86_64=vmd-rs \
	--enable-kvm --enable-tcg --enable-slirp --enable-pixman --enable-virtfs \
	--enable-attr --enable-plugins --disable-docs --disable-tools --disable-guest-agent \
	--disable-install-blobs --disable-download --disable-werror \
	>"$OUT/configure.log" 2>&1 || {
	tail -30 "$OUT/configure.log" >&2
	exit 1
}
ninja -j"$JOBS" qemu-system-x86_64 >"$OUT/build.log" 2>&1 || {
	grep -E "error|Error" "$OUT/build.log" | head -30 >&2
	exit 1
}
# The plugin API this QEMU speaks, for `make bench`'s insn_count.c.
cp "$SRC/include/qemu/qemu-plugin.h" .
rm -rf "$SRC"
end=$(date +%s)
echo "QEMU built in $((end - start)) s" | tee "$OUT/.build-time"
touch "$OUT/.vmd-rs-built"
