# SPDX-License-Identifier: GPL-2.0
# Shared settings for the qemu-ci scripts; sourced, not run.

# Build output lives outside the repository so that fresh clones reuse it.
: "${RSNVME_CACHE:=$HOME/.cache/rsnvme}"
BINDGEN_VERSION=0.73.2
BINDGEN="$RSNVME_CACHE/bindgen-$BINDGEN_VERSION/bin/bindgen"
# Debian's rustc-web ships the library source the kernel build needs; the
# rustup toolchain that may come first on PATH does not.
RUSTC=/usr/bin/rustc
CLIPPY_DRIVER=/usr/bin/clippy-driver
RUSTFMT=/usr/bin/rustfmt
KSRC_VERSION=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo none)
KSRC="$RSNVME_CACHE/src-$KSRC_VERSION"
export RSNVME_CACHE BINDGEN RUSTC CLIPPY_DRIVER RUSTFMT
