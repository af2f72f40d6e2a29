#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Prints the directory an rsnvme build for one kernel writes its output to,
# after making it a mirror of the module's sources (symbolic links to the
# files of the source tree).
#
# Kbuild writes an external module's objects, its generated bindings and
# the .ko next to the sources it is given (M=). Built in the source tree,
# what one kernel's build leaves there (rust_core/sys/bindings_generated.rs
# above all, whose rule only looks at timestamps) is taken for another's.
# So each kernel, and each variant of the module (fault injection or not),
# gets its own tree of links under build/modules/:
#
#   build/modules/<kernel release>-<hash of the kernel directory>[-faults]/
#
# and Kbuild runs there. Switching kernels reuses each one's objects;
# sources added to or removed from the tree are linked or unlinked here
# on every call.
#
# Usage: tools/module-tree.sh KDIR [faults]
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 KDIR [faults]" >&2
	exit 2
fi
top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$(cd "$1" && pwd -P)
release=$(cat "$kdir/include/config/kernel.release" 2>/dev/null) || {
	echo "rsnvme: $1 is not a configured kernel build tree" \
		"(no include/config/kernel.release)" >&2
	exit 1
}
key=$(printf '%s' "$kdir" | sha256sum | cut -c1-8)
out=$top/build/modules/$release-$key
[ "${2:-}" != faults ] || out=$out-faults
mkdir -p "$out"

# The module's sources: what Kbuild, the compilers and bindgen read.
cd "$top"
find Kbuild c_shim include rust_core -name target -prune -o -type f \
	\( -name Kbuild -o -name '*.c' -o -name '*.h' -o -name '*.rs' \
	-o -name '*.sh' \) -print |
	grep -v '/bindings_generated\.rs$' |
	while read -r f; do
		[ -L "$out/$f" ] && continue
		mkdir -p "$out/$(dirname "$f")"
		ln -s "$top/$f" "$out/$f"
	done
# Links to sources that no longer exist.
find "$out" -type l ! -exec test -e {} \; -delete
echo "$out"
