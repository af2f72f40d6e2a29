#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Generates Rust bindings for the kernel C functions in bindings_helper.h that
# kernel::bindings lacks, with the clang flags the kernel itself gave bindgen
# (recorded in rust/bindings/.bindings_generated.rs.cmd of the build tree).
# The functions come with the full types they use (kernel::bindings has
# `struct pci_dev` only as an opaque declaration), so every C call the driver
# makes goes through one consistent set of generated types.
#
# Kbuild runs it with the kernel build directory (objtree), which the flags
# are relative to:
#   gen_bindings.sh BINDGEN HEADER OUTPUT OBJTREE
# (6.12 runs external module builds in objtree, 6.13 and later in the
# module's directory: the script changes to OBJTREE itself.)
set -eu
bindgen=$1
header=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
out=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
cd "$4"

cmd=rust/bindings/.bindings_generated.rs.cmd
[ -f "$cmd" ] || { echo "gen_bindings: $cmd missing: is this a Rust-enabled kernel build?" >&2; exit 1; }
# The clang part of the recorded command, without its dependency-file and
# object-name flags, which belong to the kernel's own target.
clang_flags=$(sed -n '1s/^savedcmd_[^ ]* := .* -- \(.*\) *; sed .*/\1/p' "$cmd" |
	sed -e 's/-Wp,-MMD,[^ ]*//' -e "s/-DKBUILD_[A-Z]*='[^']*'//g" \
	    -e 's/-DKBUILD_[A-Z_]*=[^ ]*//g' -e 's/-D__KBUILD_MODNAME=[^ ]*//')
[ -n "$clang_flags" ] || { echo "gen_bindings: no clang flags found in $cmd" >&2; exit 1; }

list() { sed -n "s/^ *$1(\([A-Za-z0-9_.*]*\)).*/\1/p" "$header" | paste -sd'|'; }
functions=$(list RSNVME_FN)
types=$(list RSNVME_TYPE)
vars=$(list RSNVME_VAR)

# shellcheck disable=SC2086 # the flags are meant to split into words
"$bindgen" "$header" \
	--use-core --ctypes-prefix kernel::ffi --no-doc-comments --no-layout-tests \
	--with-derive-default --no-debug '.*' \
	--opaque-type xregs_state --opaque-type desc_struct \
	--opaque-type arch_lbr_state --opaque-type local_apic \
	--opaque-type alt_instr --opaque-type x86_msi_data \
	--opaque-type x86_msi_addr_lo --opaque-type spinlock \
	--allowlist-function "$functions" --allowlist-type "$types" \
	--allowlist-var "$vars" \
	-o "$out.tmp" -- $clang_flags -DMODULE
mv "$out.tmp" "$out"
