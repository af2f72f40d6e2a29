#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds rsnvme-dkms_<version>_all.deb: rsnvme's source under
# /usr/src/rsnvme-<version>/ for dkms (dkms.conf), which builds it for
# every kernel with a build tree, Rust-enabled or a stock Debian 6.12
# (tools/stock/). Installing the package adds it to dkms and builds it for
# the running kernel; a failed build only warns (it says what is missing).
#
# Usage: tools/dkms-deb.sh [OUTDIR]   (default build/); prints the .deb path
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${RSNVME_BUILD:-$top/build}}
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
[ -n "$version" ] || { echo "dkms-deb: no PACKAGE_VERSION in dkms.conf" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "dkms-deb: dpkg-deb is missing" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
src=$stage/usr/src/rsnvme-$version
mkdir -p "$src" "$stage/DEBIAN"
# What a module build reads, nothing it writes (build outputs, caches).
for f in Makefile Kbuild dkms.conf README.md c_shim include rust_core tools; do
	cp -a "$top/$f" "$src/"
done
find "$src" \( -name '*.o' -o -name '*.ko' -o -name '*.cmd' -o -name '.*.cmd' -o -name '*.mod' \
	-o -name '*.mod.c' -o -name '*.d' -o -name '*.rmeta' -o -name 'bindings_generated.rs' \
	-o -name 'Cargo.lock' -o -name '*.long-type-*.txt' \) -delete
rm -rf "$src/rust_core/target"
find "$src" -type d -exec chmod 755 {} + && find "$src" -type f -exec chmod go-w {} +

cat >"$stage/DEBIAN/control" <<EOF
Package: rsnvme-dkms
Version: $version
Architecture: all
Maintainer: rsnvme developers <rsnvme@localhost>
Section: kernel
Priority: optional
Depends: dkms, make, gcc, rustc-web, rust-web-src, libclang-dev
Recommends: linux-source-6.12, dwarves
Installed-Size: $(du -sk "$stage/usr" | cut -f1)
Description: NVMe PCI block driver with its logic in Rust (DKMS source)
 rsnvme drives NVMe controllers like the kernel's nvme driver, with the
 device logic in Rust behind a small C shim. dkms builds it for each
 kernel that has a build tree: one built with CONFIG_RUST=y, or a stock
 Debian 12 6.12 kernel, for which the module carries the kernel's Rust
 support itself (it then needs linux-source-6.12 of that kernel's
 revision and dwarves).
 .
 The build needs bindgen 0.65.1 or later, newer than Debian 12's
 (cargo install --locked bindgen-cli); dkms uses the BINDGEN of its
 environment, else the bindgen on PATH.
EOF

cat >"$stage/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
	dkms status -m rsnvme -v $version | grep -q . || dkms add -m rsnvme -v $version
	k=\$(uname -r)
	if [ -e "/lib/modules/\$k/build" ]; then
		dkms install -m rsnvme -v $version -k "\$k" ||
			echo "rsnvme-dkms: building for \$k failed; see /var/lib/dkms/rsnvme/$version/build/make.log" >&2
	fi
fi
exit 0
EOF
cat >"$stage/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] || [ "\$1" = upgrade ]; then
	dkms remove -m rsnvme -v $version --all || true
fi
exit 0
EOF
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm"

mkdir -p "$out"
deb=$out/rsnvme-dkms_${version}_all.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >&2
echo "$deb"
