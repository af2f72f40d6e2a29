#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetches what a Linux 7.3 guest kernel needs beyond the 6.12 toolchain,
# into $RSNVME_CACHE, without touching the machine's apt configuration or
# installed packages:
#
# - Debian's linux-source-7.3 (trixie-backports): apt-get with a private
#   sources.list and private state and cache directories downloads the
#   package, `dpkg-deb -x` unpacks it and its tarball is unpacked to
#   $RSNVME_CACHE/src-<package version>. The version is recorded in
#   $RSNVME_CACHE/linux-source-7.3.version (qemu-ci/env.sh reads it).
# - libclang 19 for bindgen: 7.3's scripts/min-tool-version.sh asks for
#   LLVM (libclang) 17.0.1, bookworm's default libclang-dev is 14. The
#   libllvm19, libclang1-19 and libclang-common-19-dev packages from the
#   machine's own apt sources are downloaded and unpacked to
#   $RSNVME_CACHE/libclang-19/, and a bindgen wrapper there points the
#   pinned bindgen at them. Installing them would make every bindgen on
#   the machine pick libclang 19 (it takes the newest it finds), the 6.12
#   builds included; unpacked privately, only 7.3 builds see them.
#
# Quick and silent when everything is there already. Run by qemu-ci/setup.sh
# when KVER=7.3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
KVER=7.3
. "$here/env.sh"

pkg=linux-source-7.3
suite=trixie-backports
mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# --- linux-source-7.3 ------------------------------------------------------
if [ "$KSRC_VERSION" = none ] || [ ! -f "$KSRC/.unpacked" ]; then
	apt=$RSNVME_CACHE/apt-$suite
	mkdir -p "$apt/etc/sources.list.d" "$apt/etc/preferences.d" \
		"$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
	# Bookworm's archive keyring holds the trixie keys as well.
	echo "deb [signed-by=$keyring] $mirror $suite main" >"$apt/etc/sources.list"
	touch "$apt/state/status"
	aptopts=(
		-o "Dir::Etc::SourceList=$apt/etc/sources.list"
		-o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
		-o "Dir::Etc::Preferences=$apt/etc/preferences"
		-o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d"
		-o "Dir::State=$apt/state"
		-o "Dir::State::status=$apt/state/status"
		-o "Dir::Cache=$apt/cache"
		-o "APT::Sandbox::User=root"
	)
	echo "setup: fetching $pkg from $suite (private apt configuration in $apt)"
	apt-get "${aptopts[@]}" -qq update
	version=$(apt-cache "${aptopts[@]}" show --no-all-versions "$pkg" |
		sed -n 's/^Version: //p')
	[ -n "$version" ] || {
		echo "setup: $pkg not found in $suite" >&2
		exit 1
	}
	rm -f "$apt/debs/"*.deb
	(cd "$apt/debs" && apt-get "${aptopts[@]}" -qq download "$pkg")
	src=$RSNVME_CACHE/src-$version
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp/deb"
	dpkg-deb -x "$apt/debs/"*.deb "$src.tmp/deb"
	echo "setup: unpacking $pkg $version"
	tar -C "$src.tmp" -xf "$src.tmp/deb/usr/src/$pkg.tar.xz"
	mv "$src.tmp/$pkg" "$src"
	rm -rf "$src.tmp" "$apt/debs/"*.deb
	touch "$src/.unpacked"
	echo "$version" >"$RSNVME_CACHE/$pkg.version"
	. "$here/env.sh"
fi

# --- libclang 19 and the bindgen wrapper that uses it ------------------------
clang=$RSNVME_CACHE/libclang-19
if [ ! -x "$clang/bindgen" ]; then
	echo "setup: fetching libclang 19 for bindgen (unpacked in $clang, not installed)"
	rm -rf "$clang" "$clang.tmp"
	mkdir -p "$clang.tmp/debs"
	debs=(libllvm19 libclang1-19 libclang-common-19-dev)
	(cd "$clang.tmp/debs" && apt-get -qq download "${debs[@]}") 2>/dev/null || {
		# A fresh machine may not have read its package lists yet.
		sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo apt-get update -qq
		(cd "$clang.tmp/debs" && apt-get -qq download "${debs[@]}")
	}
	for deb in "$clang.tmp/debs/"*.deb; do
		dpkg-deb -x "$deb" "$clang.tmp/root"
	done
	dpkg-deb -f "$clang.tmp/debs/"libclang1-19_*.deb Version >"$clang.tmp/version"
	rm -rf "$clang.tmp/debs"
	# bindgen loads libclang with dlopen; libclang's libLLVM comes from
	# LD_LIBRARY_PATH, which holds nothing but these two libraries' directory.
	cat >"$clang.tmp/bindgen" <<-EOF
		#!/bin/sh
		# bindgen $BINDGEN_VERSION with Debian's libclang 19 (qemu-ci/fetch-7.3.sh).
		LIBCLANG_PATH=$clang/root/usr/lib/llvm-19/lib
		LD_LIBRARY_PATH=$clang/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
		export LIBCLANG_PATH LD_LIBRARY_PATH
		exec $RSNVME_CACHE/bindgen-$BINDGEN_VERSION/bin/bindgen "\$@"
	EOF
	chmod +x "$clang.tmp/bindgen"
	mv "$clang.tmp" "$clang"
fi
