#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs everything rsnvme needs to build and test: Debian packages for the
# Rust-enabled kernel toolchain and the QEMU guest, and bindgen-cli from
# crates.io at a pinned version. Idempotent and quick when all is present.
#
# Usage: qemu-ci/setup.sh           (prints nothing but problems when up to date;
#                                   KVER=7.3 also fetches Linux 7.3, fetch-7.3.sh)
#        qemu-ci/setup.sh --bench   only what `make bench` adds: matplotlib for
#                                   its chart (not needed by anything else)
#        qemu-ci/setup.sh --profile only what `make profile` adds: perf
set -euo pipefail

. "$(dirname "$0")/env.sh"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

case "${1:-}" in
--bench | --profile)
	pkg=python3-matplotlib why="the bench chart"
	[ "$1" = --bench ] || pkg=linux-perf why="perf in the profiling guest"
	dpkg-query -W -f='${Status}\n' $pkg 2>/dev/null |
		grep -q '^install ok installed$' && exit 0
	echo "setup: installing $pkg (for $why)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
		--no-install-recommends $pkg >/dev/null
	exit 0
	;;
esac

packages=(
	rustc-web rust-web-src rust-web-clippy rustfmt-web cbindgen-web
	linux-source-6.12
	clang libclang-dev lld llvm
	make gcc flex bison bc libelf-dev libssl-dev cpio xz-utils kmod
	busybox-static qemu-system-x86 fio python3 util-linux e2fsprogs nvme-cli libc6-dev
	dkms
	# pahole: the module build of a stock Debian kernel (BTF) runs it
	dwarves
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
	# The kernel source version is only known once its package is in.
	. "$(dirname "$0")/env.sh"
fi

bindgen=$RSNVME_CACHE/bindgen-$BINDGEN_VERSION/bin/bindgen
if [ ! -x "$bindgen" ]; then
	echo "setup: installing bindgen-cli $BINDGEN_VERSION into $RSNVME_CACHE"
	mkdir -p "$RSNVME_CACHE"
	# bindgen is a host tool: any recent cargo builds it.
	cargo install --quiet --locked "bindgen-cli@$BINDGEN_VERSION" \
		--root "$RSNVME_CACHE/bindgen-$BINDGEN_VERSION"
fi

# Linux 7.3's source and the libclang its bindgen needs, fetched privately.
if [ "$KVER" = 7.3 ]; then
	exec "$(dirname "$0")/fetch-7.3.sh"
fi

# The kernel source, unpacked once per Debian package version.
if [ ! -f "$KSRC/.unpacked" ]; then
	echo "setup: unpacking linux-source $KSRC_VERSION"
	rm -rf "$KSRC" "$KSRC.tmp"
	mkdir -p "$KSRC.tmp"
	tar -C "$KSRC.tmp" -xf /usr/src/linux-source-6.12.tar.xz
	mv "$KSRC.tmp/linux-source-6.12" "$KSRC"
	rmdir "$KSRC.tmp"
	touch "$KSRC/.unpacked"
fi
