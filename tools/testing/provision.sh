#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs and builds everything the README's commands need, idempotently:
# Debian packages (bookworm only), rust-src, bindgen, virtme-ng, the Linux 7.3
# source from trixie-backports (downloaded, never installed) and the test
# kernel.  Big builds are cached outside the repo, keyed by their inputs.
#
# Usage: provision.sh [all|packages|tools|kernel|qemu]
#        provision.sh print-kdir [debug|bench]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${VMD_RS_CACHE:-$HOME/.cache/vmd-rs}
LLVM_SUFFIX=-19
BINDGEN_VERSION=0.73.2
VNG_VERSION=1.42
mkdir -p "$CACHE"

log() { printf '[provision] %s\n' "$*" >&2; }

# Every build step sees the same toolchain.
export PATH="$CACHE/tools/bin:$CACHE/venv/bin:$HOME/.cargo/bin:$PATH"
export LLVM=$LLVM_SUFFIX

APT_PACKAGES=(
	clang-19 lld-19 llvm-19 libclang-19-dev
	flex bison bc libelf-dev libssl-dev cpio kmod pahole dwarves
	python3-venv udev fio pciutils xz-utils dpkg-dev rsync
	busybox-static zstd file
	# QEMU build and run time
	libglib2.0-dev libpixman-1-dev libslirp-dev ninja-build libfdt-dev
	zlib1g-dev pkg-config libattr1-dev libcap-ng-dev seabios ipxe-qemu
)

packages() {
	local missing=()
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing Debian packages: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# A first install on a fresh image has been seen to fail once in
		# dpkg's configure step; finishing the configuration and retrying
		# once is enough.
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ dpkg --configure -a; apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
	fi
	# udev must run for vng to get the guest's exit code back.
	if ! pgrep -x systemd-udevd >/dev/null 2>&1; then
		/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 || true
	fi
}

# The Debian archive the system installs bookworm from (a local mirror or
# its proxy included: apt's own configuration still applies to the private
# source list below).
debian_archive() {
	local uri
	uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' |
		awk '$2 == "bookworm" && $3 == "main" {print $1; exit}')
	if [ -z "$uri" ]; then
		echo "provision: no apt source for Debian bookworm main found (apt-get indextargets);" \
			"add one to /etc/apt/sources.list(.d) or run apt-get update" >&2
		exit 1
	fi
	echo "${uri%/}"
}

# apt with a private source list and state: reaches a foreign suite for
# downloads only, so the system's sources never see trixie.
foreign_apt() {
	local dir=$CACHE/apt archive
	archive=$(debian_archive) || exit 1
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/etc/preferences.d"
	: >"$dir/etc/preferences"
	cat >"$dir/sources.list" <<-SRC
	deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $archive trixie-backports main
	deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $archive trixie main
	SRC
	apt-get -o Dir::Etc::SourceList="$dir/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::Etc::Preferences="$dir/etc/preferences" \
		-o Dir::Etc::PreferencesParts="$dir/etc/preferences.d" \
		-o Dir::State::Lists="$dir/lists" \
		-o Dir::Cache="$dir/cache" \
		-o APT::Sandbox::User=root "$@"
}

foreign_apt_update() {
	local stamp=$CACHE/apt/updated
	# Refresh the private lists at most once a day.
	if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
		log "refreshing private apt lists (trixie-backports, trixie deb-src)"
		foreign_apt update -qq
		touch "$stamp"
	fi
}

tools() {
	rustup component list --installed 2>/dev/null | grep -q '^rust-src' ||
		rustup component add rust-src
	if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
		log "installing bindgen-cli $BINDGEN_VERSION"
		cargo install --locked --root "$CACHE/tools" "bindgen-cli@$BINDGEN_VERSION"
	fi
	if ! vng --version 2>/dev/null | grep -q "$VNG_VERSION"; then
		log "installing virtme-ng $VNG_VERSION"
		/usr/bin/python3 -m venv "$CACHE/venv"
		"$CACHE/venv/bin/pip" install -q "virtme-ng==$VNG_VERSION"
	fi
	# QEMU 10.x needs meson >= 1.5; bookworm has 1.0.
	"$CACHE/venv/bin/python3" -c 'import mesonbuild' 2>/dev/null ||
		"$CACHE/venv/bin/pip" install -q "meson>=1.5,<1.9"
}

# Unpacks the newest linux-source-7.3 into $CACHE/src/linux-<version>.
kernel_source() {
	foreign_apt_update
	local ver
	ver=$(foreign_apt_cache policy linux-source-7.3 | awk '/Candidate:/ {print $2}')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || {
		log "linux-source-7.3 not offered by trixie-backports"
		exit 1
	}
	# '~' and '+' in a path upset make and some kernel scripts.
	KSRC=$CACHE/src/linux-$(echo "$ver" | tr '~+' '__')
	KVER_DEB=$ver
	if [ ! -f "$KSRC/.unpacked" ]; then
		log "downloading linux-source-7.3 $ver"
		local tmp=$CACHE/src/tmp
		rm -rf "$tmp" "$KSRC"
		mkdir -p "$tmp"
		(cd "$tmp" && foreign_apt download "linux-source-7.3=$ver")
		dpkg-deb -x "$tmp"/linux-source-7.3_*.deb "$tmp/x"
		mkdir -p "$KSRC"
		tar -xf "$tmp"/x/usr/src/linux-source-7.3.tar.xz -C "$KSRC" --strip-components=1
		rm -rf "$tmp"
		touch "$KSRC/.unpacked"
	fi
}

foreign_apt_cache() {
	local dir=$CACHE/apt
	apt-cache -o Dir::Etc::SourceList="$dir/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::Etc::Preferences="$dir/etc/preferences" \
		-o Dir::Etc::PreferencesParts="$dir/etc/preferences.d" \
		-o Dir::State::Lists="$dir/lists" \
		-o Dir::Cache="$dir/cache" "$@"
}

# The kernel flavour: "debug" (the test kernel), "bench" (no debug options),
# "kasan" (debug plus KASAN) or "coverage" (debug plus gcov on vmd.o); each
# but debug has kernel/<flavour>.config.
kernel_inputs() {
	local flavour=$1
	{
		echo "flavour=$flavour"
		echo "source=$KVER_DEB"
		rustc --version
		"clang$LLVM_SUFFIX" --version | head -1
		bindgen --version
		# Contents only: the key must not depend on where the clone is.
		cat "$ROOT/tools/testing/kernel/lean.config" "$ROOT/.config.fragment" \
			"$ROOT/tools/testing/kernel/build.sh"
		if [ -f "$ROOT/tools/testing/kernel/$flavour.config" ]; then
			cat "$ROOT/tools/testing/kernel/$flavour.config"
		fi
	} | sha256sum | cut -c1-16
}

kernel() {
	local flavour=${1:-debug}
	kernel_source
	local key
	key=$(kernel_inputs "$flavour")
	KDIR=$CACHE/kernel/$flavour-$key
	if [ ! -f "$KDIR/.vmd-rs-built" ]; then
		log "building the $flavour test kernel ($KVER_DEB) in $KDIR"
		local profile=()
		# Only vmd.o gets gcov's counters (kernel/coverage.config).
		[ "$flavour" != coverage ] || profile=('GCOV_PROFILE_vmd.o=y')
		env "${profile[@]}" "$ROOT/tools/testing/kernel/build.sh" "$KSRC" "$KDIR" \
			"$flavour" "$KVER_DEB"
	fi
	ln -sfn "$KDIR" "$CACHE/kernel/$flavour"
	# Older builds of this flavour are gigabytes of dead weight.
	find "$CACHE/kernel" -maxdepth 1 -name "$flavour-*" ! -name "$flavour-$key" -exec rm -rf {} +
}

# QEMU with the emulated VMD, from trixie's source package.
qemu() {
	foreign_apt_update
	local ver dir key
	ver=$(foreign_apt_cache showsrc qemu | awk '/^Version:/ {print $2}' | sort -V | tail -1)
	[ -n "$ver" ] || { log "no qemu source offered by trixie"; exit 1; }
	dir=$CACHE/qemu/src-$(echo "$ver" | tr '~+:' '___')
	if [ ! -f "$dir/.unpacked" ]; then
		log "downloading qemu source $ver"
		rm -rf "$dir" "$CACHE/qemu/dl"
		mkdir -p "$CACHE/qemu/dl"
		(cd "$CACHE/qemu/dl" && foreign_apt source --download-only "qemu=$ver" >/dev/null)
		dpkg-source --no-check -x "$CACHE"/qemu/dl/qemu_*.dsc "$dir" >/dev/null
		rm -rf "$CACHE/qemu/dl"
		touch "$dir/.unpacked"
	fi
	key=$({
		echo "$ver"
		cat "$ROOT/tools/testing/qemu/intel_vmd.c" "$ROOT/tools/testing/qemu/devices.mak" \
			"$ROOT/tools/testing/qemu/trace-events" \
			"$ROOT/tools/testing/qemu/build.sh"
	} | sha256sum | cut -c1-16)
	if [ ! -f "$CACHE/qemu/build-$key/.vmd-rs-built" ]; then
		log "building QEMU $ver with the emulated VMD"
		PYTHON=$CACHE/venv/bin/python3 "$ROOT/tools/testing/qemu/build.sh" "$dir" \
			"$CACHE/qemu/build-$key"
	fi
	ln -sfn "build-$key/build" "$CACHE/qemu/current"
	# Older builds are dead weight.
	find "$CACHE/qemu" -maxdepth 1 -name 'build-*' ! -name "build-$key" -exec rm -rf {} +
	# Option ROMs for -kernel boot (linuxboot_dma.bin, ...) from bookworm's
	# qemu-system-data, unpacked, not installed.
	if [ ! -f "$CACHE/qemu/firmware/.unpacked" ]; then
		rm -rf "$CACHE/qemu/firmware" "$CACHE/qemu/fw-dl"
		mkdir -p "$CACHE/qemu/fw-dl"
		(cd "$CACHE/qemu/fw-dl" && apt-get download qemu-system-data >/dev/null)
		dpkg-deb -x "$CACHE"/qemu/fw-dl/qemu-system-data_*.deb "$CACHE/qemu/fw-dl/x"
		mv "$CACHE/qemu/fw-dl/x/usr/share/qemu" "$CACHE/qemu/firmware"
		rm -rf "$CACHE/qemu/fw-dl"
		touch "$CACHE/qemu/firmware/.unpacked"
	fi
}

print_kdir() {
	local flavour=${1:-debug}
	readlink -f "$CACHE/kernel/$flavour"
}

case ${1:-all} in
all)
	packages
	tools
	qemu
	kernel debug
	;;
qemu) packages; tools; qemu ;;
packages) packages ;;
tools) tools ;;
kernel) packages; tools; kernel "${2:-debug}" ;;
bench)
	# make bench: QEMU, the bench kernel, and matplotlib for its chart.
	packages
	tools
	qemu
	kernel bench
	"$CACHE/venv/bin/python3" -c 'import matplotlib' 2>/dev/null ||
		"$CACHE/venv/bin/pip" install -q "matplotlib>=3.7,<4"
	;;
kasan) packages; tools; qemu; kernel debug; kernel kasan ;;
coverage)
	# make coverage: the coverage kernel, and lcov (bookworm's) for the report.
	packages
	tools
	qemu
	kernel coverage
	command -v genhtml >/dev/null ||
		apt-get install -y -qq --no-install-recommends lcov >/dev/null
	;;
print-kdir) print_kdir "${2:-debug}" ;;
*)
	echo "usage: $0 [all|packages|tools|kernel [debug|bench|kasan|coverage]|bench|kasan|coverage|print-kdir]" >&2
	exit 2
	;;
esac
