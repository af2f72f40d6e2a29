#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds rsnvme.ko for a kernel without CONFIG_RUST, such as Debian 12's
# stock 6.12 kernels, from its headers package alone (issue 22).
#
# Such a kernel has no Rust support to link against, so the module carries
# the part of it rsnvme uses:
#  1. a private build tree of the kernel's own source (linux-source-X.Y of
#     the same Debian revision, or RSNVME_STOCK_SRC) configured with the
#     headers' .config plus CONFIG_RUST=y (and what that needs: no
#     MODVERSIONS, no BTF), whose `make prepare` builds the kernel crates
#     (core, compiler_builtins, kernel, ...) and the C helpers with the
#     kernel's own code-generation flags (retpolines, return thunks, IBT,
#     patchable function entries, -mcmodel=kernel, no SSE/red zone);
#  2. rsnvme_core.o built against that tree with --cfg rsnvme_no_pa (no
#     %pA in a kernel without Rust);
#  3. one relocatable object of rsnvme_core and those crates with unused
#     sections dropped (ld --gc-sections from the shim's entry points),
#     every other symbol made local, no debug info;
#  4. the kernel's own module build against KDIR with the C shim and that
#     object: objtool, modpost against the distribution's Module.symvers
#     (modversions CRCs), the kernel's vermagic.
# It stops, naming what is missing, before leaving any module behind.
#
# Usage: tools/stock/build.sh KDIR RUSTC BINDGEN   builds, prints the .ko path
#        tools/stock/build.sh --is-stock KDIR      exit 0 if KDIR lacks CONFIG_RUST
# Environment: RSNVME_STOCK_SRC  the kernel source (a tarball or a tree) to
#              use instead of /usr/src/linux-source-X.Y.tar.xz
#              RSNVME_CACHE      cache root (~/.cache/rsnvme): stock/ below it
#              RSNVME_BUILD      where build/stock-<release>/rsnvme.ko goes
#              RSNVME_FAULT_INJECTION=y  as for the normal build
set -euo pipefail

die() {
	echo "rsnvme (stock kernel build): $*" >&2
	exit 1
}

# conf_value CONF NAME: the value of CONFIG_NAME in the auto.conf CONF.
conf_value() {
	sed -n "s/^CONFIG_$2=\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" "$1"
}

if [ "${1:-}" = --is-stock ]; then
	conf=${2:?usage: $0 --is-stock KDIR}/include/config/auto.conf
	[ -f "$conf" ] && [ "$(conf_value "$conf" RUST)" != y ]
	exit
fi
[ $# -eq 3 ] || die "usage: $0 KDIR RUSTC BINDGEN"
# Nothing of a calling make (dkms passes KERNELRELEASE=...) reaches the
# kernel builds below.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES KERNELRELEASE
kdir=$(cd "$1" && pwd) rustc=$2 bindgen=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${RSNVME_CACHE:-$HOME/.cache/rsnvme}/stock
conf=$kdir/include/config/auto.conf
[ -f "$conf" ] || die "$kdir is not a kernel build tree (no include/config/auto.conf)"
[ "$(conf_value "$conf" RUST)" != y ] || die "$kdir has CONFIG_RUST=y: use the normal build"
rel=$(cat "$kdir/include/config/kernel.release")
kver=$(MAKEFLAGS= make -s --no-print-directory -C "$kdir" kernelversion 2>/dev/null) || die "cannot get the kernel version of $kdir"
vp=$(echo "$kver" | cut -d. -f1-2)
# Debian records its package version (e.g. 6.12.118-1~deb12u1) here.
debver=$(sed -n 's/^#define LINUX_PACKAGE_ID " *Debian \(.*\)"$/\1/p' \
	"$kdir/include/generated/package.h" 2>/dev/null || true)
out=${RSNVME_BUILD:-$top/build}/stock-$rel
rm -f "$out/rsnvme.ko"

# --- What the build needs ----------------------------------------------------
for tool in ld objcopy objdump nm readelf make gcc; do
	command -v "$tool" >/dev/null || die "$tool is missing (apt-get install binutils gcc make)"
done
"$rustc" --version >/dev/null 2>&1 || die "cannot run rustc '$rustc' (pass RUSTC=<path>;" \
	"Debian 12: apt-get install rustc-web rust-web-src)"
"$bindgen" --version >/dev/null 2>&1 || die "cannot run bindgen '$bindgen' (pass BINDGEN=<path>;" \
	"qemu-ci/setup.sh installs bindgen-cli 0.73.2)"
if [ "$(conf_value "$conf" DEBUG_INFO_BTF_MODULES)" = y ] && ! command -v pahole >/dev/null; then
	die "the kernel in $kdir has CONFIG_DEBUG_INFO_BTF_MODULES=y: its module build runs" \
		"pahole, which is missing (apt-get install dwarves)"
fi
[ -f "$kdir/Module.symvers" ] || die "$kdir has no Module.symvers"

# --- The kernel's source, of the same revision -------------------------------
if [ -n "${RSNVME_STOCK_SRC:-}" ]; then
	src_in=$RSNVME_STOCK_SRC
	[ -e "$src_in" ] || die "RSNVME_STOCK_SRC=$src_in does not exist"
	src_id=$(basename "$src_in")-$(stat -c %s-%Y "$src_in")
else
	src_in=/usr/src/linux-source-$vp.tar.xz
	have=$(dpkg-query -W -f='${Version}' "linux-source-$vp" 2>/dev/null || true)
	if [ -z "$have" ] || [ ! -f "$src_in" ]; then
		die "the source of $rel is missing: apt-get install linux-source-$vp${debver:+=$debver}" \
			"(or pass RSNVME_STOCK_SRC=<its source tarball or tree>)"
	fi
	if [ -n "$debver" ] && [ "$have" != "$debver" ]; then
		die "linux-source-$vp is $have but the kernel in $kdir is Debian $debver:" \
			"apt-get install linux-source-$vp=$debver (or pass RSNVME_STOCK_SRC=<its source>)"
	fi
	src_id=linux-source-$vp-$have
fi
mkdir -p "$cache"
if [ -d "$src_in" ]; then
	# A source tree is only read (the build below is O=<private tree>).
	src=$(cd "$src_in" && pwd)
else
	src=$cache/src-$src_id
	if [ ! -f "$src/.extracted" ]; then
		rm -rf "$src" "$src.tmp"
		mkdir -p "$src.tmp"
		echo "rsnvme (stock): extracting $src_in" >&2
		nice -n 19 tar -xf "$src_in" -C "$src.tmp" --strip-components=1
		touch "$src.tmp/.extracted"
		mv "$src.tmp" "$src"
	fi
fi
src_kver=$(MAKEFLAGS= make -s --no-print-directory -C "$src" kernelversion)
[ "$src_kver" = "$kver" ] || die "the source $src_in is Linux $src_kver, the kernel in $kdir is $kver"
# The same version may still be patched differently (Debian's -rt flavour
# has patches of its own): the headers the kernel was built with must be
# the source's. Debian's headers keep them in the -common tree that the
# headers' Makefile includes; a kernel's own build tree links `source`.
hsrc=$kdir
[ -L "$kdir/source" ] && hsrc=$(readlink -f "$kdir/source")
inc=$(sed -n 's|^include \(/.*\)/Makefile$|\1|p' "$kdir/Makefile" | head -n 1)
[ -n "$inc" ] && [ -d "$inc/include" ] && hsrc=$inc
differ=$(for d in include arch/x86/include; do
	[ -d "$hsrc/$d" ] && diff -rq "$hsrc/$d" "$src/$d" 2>/dev/null
done | sed -n "s|^Files $hsrc/\(.*\) and .* differ\$|\1|p" | head -n 10 || true)
[ -z "$differ" ] || die "the source $src_in is not what $rel was built from: headers differ" \
	"($(echo $differ)). A kernel with its own patches (e.g. Debian's -rt flavour) needs" \
	"its own source: pass RSNVME_STOCK_SRC=<it>"

# --- 1. The private Rust-enabled build tree ---------------------------------
# Bump when the way the tree is configured or prepared changes.
recipe=2
key=$( {
	echo "$src_id recipe $recipe"
	cat "$kdir/.config"
	"$rustc" --version
	"$bindgen" --version
	gcc --version | head -n 1
} | sha256sum | cut -c1-16)
tree=$cache/kbuild-$rel-$key
log=$cache/kbuild-$rel-$key.log
kmake() {
	nice -n 19 make -C "$src" O="$tree" RUSTC="$rustc" BINDGEN="$bindgen" "$@"
}
if [ ! -f "$tree/.prepared" ]; then
	echo "rsnvme (stock): building the kernel's Rust support for $rel in $tree (log: $log)" >&2
	rm -rf "$tree"
	mkdir -p "$tree"
	cp "$kdir/.config" "$tree/.config"
	"$src/scripts/config" --file "$tree/.config" -e RUST -d MODVERSIONS \
		-d DEBUG_INFO_BTF -d GCC_PLUGIN_RANDSTRUCT -d RANDSTRUCT
	kmake olddefconfig >"$log" 2>&1 || die "olddefconfig failed, see $log"
	if ! grep -q '^CONFIG_RUST=y' "$tree/.config"; then
		kmake rustavailable >>"$log" 2>&1 || true
		die "CONFIG_RUST=y does not hold on top of $kdir/.config with rustc" \
			"'$("$rustc" --version)' and '$("$bindgen" --version)' (rustc too old, or" \
			"libclang/bindgen missing?); 'make rustavailable' said:" \
			"$(grep '^\*\*\* ' "$log" | sed 's/^\*\*\* //' | tr '\n' ' ')"
	fi
	cp "$kdir/Module.symvers" "$tree/Module.symvers"
	# Function sections for the C helpers and the Rust crates, so that what
	# rsnvme does not use can be dropped (some helpers call functions this
	# kernel does not export; most of core is unused).
	kmake -j2 KCFLAGS="-ffunction-sections -fdata-sections" \
		KRUSTFLAGS="-Zfunction-sections=y" prepare >>"$log" 2>&1 ||
		die "building the kernel's Rust crates failed, see $log"
	touch "$tree/.prepared"
	# Trees of this release made with another config, source or toolchain
	# are stale now (about 130 MB each).
	for old in "$cache/kbuild-$rel-"*; do
		case "$old" in
		"$tree" | "$tree".log | "$tree"-rsnvme) ;;
		*) rm -rf "$old" ;;
		esac
	done
	# So are extracted sources no tree is built from (1.7 GB each).
	for old in "$cache"/src-*; do
		[ -d "$old" ] || continue
		[ "$old" = "$src" ] && continue
		used=
		for t in "$cache"/kbuild-*/source; do
			[ "$(readlink "$t")" = "$old" ] && used=y
		done
		[ -n "$used" ] || rm -rf "$old"
	done
fi

# --- 2. rsnvme_core.o --------------------------------------------------------
mod=$tree-rsnvme
mkdir -p "$mod"
for d in c_shim rust_core include; do
	rm -rf "${mod:?}/$d.new"
	cp -a "$top/$d" "$mod/$d.new"
	rm -rf "${mod:?}/$d.new/target"
	# Keep the build's outputs when the sources did not change.
	if ! diff -rq -x '*.o' -x '*.cmd' -x 'bindings_generated.rs' -x '*.d' -x '*.rmeta' \
		"$mod/$d.new" "$mod/$d" >/dev/null 2>&1; then
		rm -rf "${mod:?}/$d"
		mv "$mod/$d.new" "$mod/$d"
	else
		rm -rf "${mod:?}/$d.new"
	fi
done
cp "$top/Kbuild" "$mod/Kbuild"
kmake -s -j2 M="$mod" KRUSTFLAGS="--cfg rsnvme_no_pa" \
	${RSNVME_FAULT_INJECTION:+RSNVME_FAULT_INJECTION=$RSNVME_FAULT_INJECTION} \
	rust_core/rsnvme_core.o || die "compiling rust_core against $tree failed"

# --- 3. One object: rsnvme_core + the kernel crates it uses -------------------
stage=$(mktemp -d "$cache/stage-XXXXXX")
trap 'rm -rf "$stage"' EXIT
core=$mod/rust_core/rsnvme_core.o
# The shim's entry points: what rsnvme_core defines with a C name.
# rsnvme_kernel_printk (rust_core/sys/print.rs) is for the kernel crate,
# whose calls of _printk with %pA go to it instead.
nm -g --defined-only "$core" | awk '$3 !~ /^_R/ && $3 != "rsnvme_kernel_printk" {print $3}' \
	>"$stage/roots"
[ -s "$stage/roots" ] || die "rsnvme_core.o defines no C entry points"
nm -g --defined-only "$core" | awk '{print $3}' | grep -qx rsnvme_kernel_printk ||
	die "rsnvme_core.o lacks rsnvme_kernel_printk (not built with --cfg rsnvme_no_pa?)"
cp "$tree/rust/kernel.o" "$stage/kernel.o"
objcopy --redefine-sym _printk=rsnvme_kernel_printk "$stage/kernel.o"
objs=("$core" "$stage/kernel.o")
for o in core.o compiler_builtins.o build_error.o ffi.o bindings.o uapi.o; do
	[ -f "$tree/rust/$o" ] && objs+=("$tree/rust/$o")
done
# The helpers' tables that the kernel and objtool read but no code refers
# to (BUG/WARN entries, objtool's reachability notes, lock prefixes,
# exception fixups, alternatives) would be dropped by --gc-sections: each
# gets a symbol to keep it, and with it the helpers it names. __mcount_loc
# names every helper and is left to go: the kept helpers' `call
# __fentry__` stays unpatched (a call to a return) and ftrace does not
# list them.
cp "$tree/rust/helpers/helpers.o" "$stage/helpers.o"
keep=()
for sec in __bug_table .discard.reachable .smp_locks __ex_table .altinstructions; do
	objdump -h "$stage/helpers.o" | awk -v s="$sec" '$2 == s {found = 1} END {exit !found}' ||
		continue
	sym=rsnvme_keep_${#keep[@]}
	objcopy --add-symbol "$sym=$sec:0,global" "$stage/helpers.o"
	keep+=(-u "$sym")
done
objs+=("$stage/helpers.o")
ld -r --gc-sections $(sed 's/^/-u /' "$stage/roots") "${keep[@]}" -o "$stage/linked.o" "${objs[@]}"
objcopy --strip-debug --keep-global-symbols="$stage/roots" "$stage/linked.o" "$stage/blob.o"
# Undefined symbols left from dropped sections (no relocation uses them).
readelf -rW "$stage/blob.o" | awk 'NF >= 5 && $1 ~ /^[0-9a-f]+$/ {print $5}' |
	sed 's/@.*//' | sort -u >"$stage/used"
nm -u "$stage/blob.o" | awk '{print $2}' | sort -u >"$stage/undef"
comm -23 "$stage/undef" "$stage/used" | sed 's/^/--strip-symbol=/' >"$stage/strip"
[ ! -s "$stage/strip" ] || objcopy $(cat "$stage/strip") "$stage/blob.o"
# Everything it still needs must be exported by the kernel (__this_module
# comes from modpost's rsnvme.mod.c).
awk -F'\t' '{print $2}' "$kdir/Module.symvers" | sort -u >"$stage/exported"
nm -u "$stage/blob.o" | awk '{print $2}' | sort -u | grep -vx __this_module |
	comm -23 - "$stage/exported" >"$stage/missing" || true
if [ -s "$stage/missing" ]; then
	die "rsnvme's Rust code needs symbols the kernel $rel does not export:" \
		"$(tr '\n' ' ' <"$stage/missing")"
fi
bad=$(nm -g --defined-only "$stage/blob.o" | awk '{print $3}' | grep -vxF -f "$stage/roots" || true)
[ -z "$bad" ] || die "symbols other than the entry points stayed global: $bad"

# --- 4. The module, by the kernel's own module build -------------------------
final=$stage/module
mkdir -p "$final"
cp -a "$top/c_shim" "$top/include" "$final/"
cp "$here/Kbuild" "$final/Kbuild"
cp "$stage/blob.o" "$final/rsnvme_rust.blob"
make -C "$kdir" M="$final" modules >"$stage/make.log" 2>&1 || {
	cat "$stage/make.log" >&2
	die "the module build against $kdir failed"
}
mkdir -p "$out"
# objtool's warnings on the Rust code (e.g. compiler_builtins' panicking
# stubs it does not know as noreturn) are in there.
cp "$stage/make.log" "$out/make.log"
grep -E '^ +(CC|LD|MODPOST|BTF|COPY)' "$stage/make.log" >&2 || true
cp "$final/rsnvme.ko" "$out/rsnvme.ko.tmp"
mv "$out/rsnvme.ko.tmp" "$out/rsnvme.ko"
echo "rsnvme (stock): $out/rsnvme.ko for $rel ($(stat -c %s "$out/rsnvme.ko") bytes)" >&2
echo "$out/rsnvme.ko"
