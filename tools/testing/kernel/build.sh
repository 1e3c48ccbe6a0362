#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Configures and builds one flavour of the test kernel out of tree.
# Usage: build.sh <source dir> <build dir> <debug|bench|kasan> <debian version>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
KSRC=$1
KDIR=$2
FLAVOUR=$3
DEBVER=$4
JOBS=${JOBS:-$(nproc)}

rm -rf "$KDIR"
mkdir -p "$KDIR"
cd "$KSRC"
start=$(date +%s)

# lean.config goes in again here: virtme-ng appends its own options (debug
# info among them) after a custom file.
fragments=("$ROOT/tools/testing/kernel/lean.config" "$ROOT/.config.fragment")
# A flavour other than debug: the debug kernel with its own fragment on top.
if [ -f "$ROOT/tools/testing/kernel/$FLAVOUR.config" ]; then
	fragments+=("$ROOT/tools/testing/kernel/$FLAVOUR.config")
fi

# Base: what `vng --kconfig` gives (x86_64_defconfig plus virtme-ng's
# options), with the lean list applied on top.
virtme-configkernel --defconfig --custom "$ROOT/tools/testing/kernel/lean.config" \
	O="$KDIR" LLVM="$LLVM" >"$KDIR/config.log" 2>&1
# Then the project's fragment, with merge_config.sh as the kernel documents.
scripts/kconfig/merge_config.sh -O "$KDIR" "$KDIR/.config" "${fragments[@]}" \
	>>"$KDIR/config.log" 2>&1

# Every line of every fragment must have taken effect (the last fragment
# naming a symbol wins): merge_config only warns when Kconfig drops a symbol
# (an unmet dependency, a typo).
if ! awk '
	FNR == NR { have[$0] = 1; if ($0 ~ /^CONFIG_/) { split($0, kv, "="); set[kv[1]] = $0 } ; next }
	/^CONFIG_[A-Za-z0-9_]+=/ { split($0, kv, "="); want[kv[1]] = $0; next }
	/^# CONFIG_[A-Za-z0-9_]+ is not set$/ { want[$2] = "off"; next }
	END {
		for (s in want) {
			if (want[s] == "off") { if (s in set) { print "kconfig: " s " requested off, got " set[s]; bad = 1 } }
			else if (!(want[s] in have)) { print "kconfig: " want[s] " requested, got " ((s in set) ? set[s] : "unset"); bad = 1 }
		}
		exit bad
	}' "$KDIR/.config" "${fragments[@]}" >&2; then
	echo "kconfig: the fragment did not take effect (see $KDIR/config.log)" >&2
	exit 1
fi

echo "building Linux $(make -s kernelversion) (Debian linux-source-7.3 $DEBVER), $FLAVOUR flavour"
make O="$KDIR" LLVM="$LLVM" -j"$JOBS" bzImage modules >"$KDIR/build.log" 2>&1 || {
	tail -50 "$KDIR/build.log" >&2
	exit 1
}
# vng looks for the modules of a build dir in .virtme_mods.
make O="$KDIR" LLVM="$LLVM" INSTALL_MOD_PATH="$KDIR/.virtme_mods" \
	INSTALL_MOD_STRIP=1 modules_install >>"$KDIR/build.log" 2>&1 || true
end=$(date +%s)
echo "$DEBVER" >"$KDIR/.debian-version"
echo "kernel built in $((end - start)) s" | tee "$KDIR/.build-time"
touch "$KDIR/.vmd-rs-built"
