#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Checks, before a module build, that KDIR is a Rust-enabled kernel build
# tree and that RUSTC and BINDGEN are the very versions that kernel was
# built with. A Rust module compiled by another rustc does not load the
# kernel crate's metadata ("found crate `core` compiled by an incompatible
# version of rustc"), so say what is wrong before the build does.
#
# Usage: tools/check-toolchain.sh KDIR RUSTC BINDGEN
# Exit status 0 when they match, 1 (with a message on stderr) otherwise.
set -eu

if [ $# -ne 3 ]; then
	echo "usage: $0 KDIR RUSTC BINDGEN" >&2
	exit 2
fi
kdir=$1 rustc=$2 bindgen=$3
conf=$kdir/include/config/auto.conf

die() {
	echo "rsnvme: $*" >&2
	exit 1
}

[ -f "$conf" ] || die "$kdir is not a configured kernel build tree (no include/config/auto.conf);" \
	"pass KDIR=<the kernel's build tree>, e.g. /lib/modules/<version>/build"

# conf_value NAME: the value of CONFIG_NAME in auto.conf, without quotes.
conf_value() {
	sed -n "s/^CONFIG_$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" "$conf"
}

[ "$(conf_value RUST)" = y ] || die "the kernel in $kdir is built without CONFIG_RUST=y;" \
	"rsnvme needs a Rust-enabled kernel (see README.md, 'Installing')"

# What an out-of-tree Rust module build reads from the kernel's build tree
# besides what every module build does: the kernel crates' metadata, the
# proc-macro library, the target spec and cfgs, and (for rsnvme's own
# bindgen run) the flags the kernel gave bindgen. Distribution header
# packages, and those of the kernel's own `make bindeb-pkg`, leave out rust/.
missing=
for f in rust/libcore.rmeta rust/libcompiler_builtins.rmeta rust/libkernel.rmeta \
	rust/libbindings.rmeta rust/libuapi.rmeta rust/libmacros.so scripts/target.json \
	include/generated/rustc_cfg rust/bindings/.bindings_generated.rs.cmd; do
	[ -e "$kdir/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] || die "the kernel build tree $kdir lacks the Rust files an out-of-tree" \
	"Rust module is built against:$missing. Header packages leave them out: use the" \
	"kernel's full build directory (see README.md, 'Installing')"

# tool_matches WHAT TOOL CONFIG: TOOL --version is what the kernel recorded
# in CONFIG_<CONFIG>_VERSION_TEXT (Linux 6.11 and later record both).
tool_matches() {
	want=$(conf_value "$3_VERSION_TEXT")
	if [ -z "$want" ]; then
		echo "rsnvme: note: $kdir does not record the $1 version it was built with" \
			"(CONFIG_$3_VERSION_TEXT); not checked" >&2
		return 0
	fi
	if ! got=$("$2" --version 2>/dev/null); then
		die "cannot run $1 '$2'; the kernel in $kdir was built with '$want'." \
			"Pass $3=<path to it>"
	fi
	got=$(echo "$got" | head -n 1)
	[ "$got" = "$want" ] && return 0
	die "$1 mismatch: '$2 --version' says '$got', but the kernel in $kdir was built" \
		"with '$want' (CONFIG_$3_VERSION_TEXT). A module must be built with the" \
		"same $1; pass $3=<path to that $1>"
}

tool_matches rustc "$rustc" RUSTC
tool_matches bindgen "$bindgen" BINDGEN
