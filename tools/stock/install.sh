#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make install` for a kernel without CONFIG_RUST: builds rsnvme.ko with
# tools/stock/build.sh, installs it as
# $INSTALL_MOD_PATH/lib/modules/<release>/extra/rsnvme.ko and runs depmod
# there, as the kernel's modules_install does for the normal build.
#
# Usage: tools/stock/install.sh KDIR RUSTC BINDGEN [INSTALL_MOD_PATH]
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 KDIR RUSTC BINDGEN [INSTALL_MOD_PATH]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=${4:-}
ko=$("$here/build.sh" "$1" "$2" "$3" | tail -n 1)
rel=$(cat "$1/include/config/kernel.release")
dest=$root/lib/modules/$rel/extra/rsnvme.ko
echo "  INSTALL $dest"
install -D -m 644 "$ko" "$dest"
echo "  DEPMOD  $root/lib/modules/$rel"
depmod -a ${root:+-b "$root"} "$rel"
