#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the Rust-enabled 6.12 guest kernel out of tree, into a cache
# directory keyed by kernel version, config fragment, rustc and bindgen, so
# that a second run (or a fresh clone) reuses it. Prints the build directory.
#
# Usage: qemu-ci/build-kernel.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

key=$( {
	echo "$KSRC_VERSION"
	cat "$here/kernel.config"
	"$RUSTC" --version
	"$BINDGEN" --version
} | sha256sum | cut -c1-16)
kdir="$RSNVME_CACHE/kbuild-$key"

if [ -f "$kdir/.built" ]; then
	echo "$kdir"
	exit 0
fi

log="$RSNVME_CACHE/kbuild-$key.log"
echo "build-kernel: building Linux $KSRC_VERSION into $kdir (log: $log)" >&2
mkdir -p "$kdir"
kmake() {
	make -C "$KSRC" O="$kdir" ARCH=x86_64 RUSTC="$RUSTC" BINDGEN="$BINDGEN" "$@"
}
{
	kmake tinyconfig
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$kdir" \
		"$kdir/.config" "$here/kernel.config"
	kmake olddefconfig
} >"$log" 2>&1

# Refuse a config that silently lost what the tests depend on.
bad=0
while read -r line; do
	case "$line" in
	CONFIG_*=y | CONFIG_*=m)
		grep -qx "$line" "$kdir/.config" || {
			echo "build-kernel: $line did not survive olddefconfig" >&2
			bad=1
		}
		;;
	esac
done <"$here/kernel.config"
[ "$bad" -eq 0 ] || exit 1

if ! kmake -j"$(($(nproc) + 1))" bzImage modules >>"$log" 2>&1; then
	tail -40 "$log" >&2
	echo "build-kernel: kernel build failed, see $log" >&2
	exit 1
fi
touch "$kdir/.built"
echo "$kdir"
