# SPDX-License-Identifier: GPL-2.0
# Shared settings for the qemu-ci scripts; sourced, not run.
#
# KVER picks the guest kernel: 6.12 (the default, Debian's linux-source-6.12
# package) or 7.3 (Debian's linux-source-7.3 from trixie-backports, fetched
# by qemu-ci/fetch-7.3.sh without installing it).

# Build output lives outside the repository so that fresh clones reuse it.
: "${RSNVME_CACHE:=$HOME/.cache/rsnvme}"
: "${KVER:=6.12}"
BINDGEN_VERSION=0.73.2
BINDGEN="$RSNVME_CACHE/bindgen-$BINDGEN_VERSION/bin/bindgen"
# Debian's rustc-web ships the library source the kernel build needs; the
# rustup toolchain that may come first on PATH does not.
RUSTC=/usr/bin/rustc
CLIPPY_DRIVER=/usr/bin/clippy-driver
RUSTFMT=/usr/bin/rustfmt
case "$KVER" in
6.12)
	KSRC_VERSION=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo none)
	;;
7.3)
	KSRC_VERSION=$(cat "$RSNVME_CACHE/linux-source-7.3.version" 2>/dev/null || echo none)
	# 7.3 needs libclang >= 17: the same bindgen, run with libclang 19.
	BINDGEN="$RSNVME_CACHE/libclang-19/bindgen"
	;;
*)
	echo "qemu-ci: KVER=$KVER: the guest kernel is 6.12 or 7.3" >&2
	return 2 2>/dev/null || exit 2
	;;
esac
KSRC="$RSNVME_CACHE/src-$KSRC_VERSION"
export RSNVME_CACHE KVER BINDGEN RUSTC CLIPPY_DRIVER RUSTFMT
