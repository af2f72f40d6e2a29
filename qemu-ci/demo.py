#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make qemu`: builds everything, boots QEMU with an emulated NVMe
controller, binds rsnvme and shows what it reports.

QEMU_SHELL=1 gives an interactive busybox shell in the guest instead
(quit QEMU with Ctrl-A X); RSNVME_ACCEL=kvm uses KVM on hosts where it works.
"""

import os
import sys

import qemu


def main():
    qemu.setup()
    kdir = qemu.kernel()
    qemu.build_module(kdir, faults=False)
    initrd = qemu.build_initramfs(kdir)
    devices = [qemu.Nvme(serial="RSNVMEDEMO", size_mb=64)]
    if os.environ.get("QEMU_SHELL"):
        qemu.boot("shell", initrd, kdir, "shell", devices, interactive=True)
        return 0
    b = qemu.boot("demo", initrd, kdir, "demo", devices)
    start = b.console.find("@@BOOTED")
    print(b.console[start:] if start >= 0 else b.console)
    print(f"(booted and ran in {b.seconds:.1f} s; full console in {b.log})")
    bad = b.bad_lines
    if bad or not b.done:
        print("demo FAILED:", *([b.failure] if b.failure else []), *bad[:10], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
