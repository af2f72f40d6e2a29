#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the Rust-enabled guest kernel (Linux 6.12, or 7.3 with KVER=7.3)
# out of tree, into a cache directory keyed by variant, kernel version,
# config fragments, rustc and bindgen (and for 7.3 bindgen's libclang), so
# that a second run (or a fresh clone) reuses it. Prints the build directory.
#
# Usage: [KVER=6.12|7.3] qemu-ci/build-kernel.sh [test|bench]
#   test  (default) the test kernel: tinyconfig + kernel.config, with lock,
#         memory and DMA debugging and fault injection
#   bench the `make bench` kernel: the same + kernel.bench.config, which
#         turns the debugging off (options it sets override kernel.config)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

variant=test
for arg in "$@"; do
	case "$arg" in
	test | bench) variant=$arg ;;
	-*) ;;
	*)
		echo "build-kernel: unknown variant $arg (test or bench)" >&2
		exit 2
		;;
	esac
done
fragments=("$here/kernel.config")
# 7.3's own settings come before the variant's, so bench overrides both.
[ "$KVER" = 6.12 ] || fragments+=("$here/kernel.$KVER.config")
[ "$variant" = test ] || fragments+=("$here/kernel.$variant.config")

key=$( {
	echo "$KSRC_VERSION"
	# The test kernel's key is what it was before variants existed, so
	# that its cached build stays valid.
	[ "$variant" = test ] || echo "variant $variant"
	cat "${fragments[@]}"
	"$RUSTC" --version
	"$BINDGEN" --version
	# bindgen --version does not name its libclang; 6.12 uses the system's.
	[ "$KVER" = 6.12 ] || cat "$RSNVME_CACHE/libclang-19/version"
} | sha256sum | cut -c1-16)
name=kbuild
[ "$KVER" = 6.12 ] || name=$name-$KVER
[ "$variant" = test ] || name=$name-$variant
kdir="$RSNVME_CACHE/$name-$key"

if [ -f "$kdir/.built" ]; then
	echo "$kdir"
	exit 0
fi

# KASAN with Rust needs a kernel built by clang (init/Kconfig: RUST depends
# on !KASAN || CC_IS_CLANG): LLVM=1 when the last fragment to set
# CONFIG_KASAN asks for it. Module builds follow the kernel's compiler
# (the Makefile reads CONFIG_CC_IS_CLANG).
llvm=()
kasan=$(grep -hE '^(CONFIG_KASAN=|# CONFIG_KASAN is not set)' "${fragments[@]}" | tail -n1)
[ "$kasan" != CONFIG_KASAN=y ] || llvm=(LLVM=1)

log="$RSNVME_CACHE/$name-$key.log"
echo "build-kernel: building the $variant variant of Linux $KSRC_VERSION into $kdir (log: $log)" >&2
mkdir -p "$kdir"
kmake() {
	make -C "$KSRC" O="$kdir" ARCH=x86_64 "${llvm[@]}" RUSTC="$RUSTC" BINDGEN="$BINDGEN" "$@"
}
{
	kmake tinyconfig
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$kdir" \
		"$kdir/.config" "${fragments[@]}"
	kmake olddefconfig
} >"$log" 2>&1

# Refuse a config that silently lost what the tests depend on, or (bench)
# kept what the fragments turn off. A later fragment's setting of an option
# replaces an earlier one's.
bad=0
declare -A want=()
while read -r line; do
	case "$line" in
	CONFIG_*=*) sym=${line%%=*} ;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }
		sym=${sym%% *}
		;;
	*) continue ;;
	esac
	want[$sym]=$line
done < <(cat "${fragments[@]}")
for sym in "${!want[@]}"; do
	line=${want[$sym]}
	case "$line" in
	CONFIG_*=y | CONFIG_*=m) grep -qx "$line" "$kdir/.config" ;;
	"# CONFIG_"*) ! grep -q "^$sym=" "$kdir/.config" ;;
	*) true ;;
	esac || {
		echo "build-kernel: '$line' did not survive olddefconfig" >&2
		bad=1
	}
done
[ "$bad" -eq 0 ] || exit 1

if ! kmake -j"$(($(nproc) + 1))" bzImage modules >>"$log" 2>&1; then
	tail -40 "$log" >&2
	echo "build-kernel: kernel build failed, see $log" >&2
	exit 1
fi
touch "$kdir/.built"
echo "$kdir"
