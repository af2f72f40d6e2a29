#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`: fio throughput of rsnvme next to the C nvme driver.

Both run in the same guest on the same emulated disk, one after the other,
with the same jobs (4 KiB random read/write at queue depth 32 and 1, 128 KiB
sequential read), one job per vCPU. Under TCG the numbers measure the
driver plus a slow emulated CPU, so only the ratio between the drivers
means much; RSNVME_ACCEL=kvm gives real numbers where KVM works.
BENCH_SECONDS sets the run time of each job (default 5), BENCH_CPUS the
vCPUs (default 2).
"""

import os
import re
import sys

import qemu


def main():
    qemu.setup()
    kdir = qemu.kernel()
    qemu.build_module(kdir, faults=False)
    initrd = qemu.build_initramfs(kdir, extra_files=qemu.io_tools())
    seconds = int(os.environ.get("BENCH_SECONDS", "5"))
    cpus = int(os.environ.get("BENCH_CPUS", "2"))
    b = qemu.boot("bench", initrd, kdir, "bench", [qemu.Nvme(serial="RSNVMEBENCH", size_mb=64)],
                  smp=cpus, env={"seconds": seconds}, timeout=120 + 16 * seconds)
    results = {}
    for m in b.lines(r"^@@BENCH (\S+) (\S+) (.*)$"):
        f = m[3].split(";")
        if len(f) < 50 or f[4] != "0":
            print(f"{m[1]} {m[2]}: fio failed: {m[3][:200]}")
            continue
        # Terse v3: fields 7/8 read KiB/s and IOPS, 48/49 write.
        bw = int(f[6]) + int(f[47])
        iops = int(f[7]) + int(f[48])
        results[(m[1], m[2])] = (iops, bw)
    jobs = sorted({j for _, j in results})
    print(f"{'job':22} {'rsnvme IOPS':>12} {'nvme IOPS':>12} {'ratio':>6}   (MiB/s)")
    for job in jobs:
        r = results.get(("rsnvme", job), (0, 0))
        c = results.get(("nvme", job), (0, 0))
        ratio = r[0] / c[0] if c[0] else 0
        print(f"{job:22} {r[0]:12d} {c[0]:12d} {ratio:6.2f}   "
              f"({r[1] / 1024:.1f} vs {c[1] / 1024:.1f})")
    bad = b.bad_lines
    if bad or not b.done or len(results) != 8:
        print("bench FAILED:", *([b.failure] if b.failure else []), *bad[:10],
              f"(log: {b.log})", sep="\n  ")
        return 1
    print(f"({cpus} vCPUs, {seconds} s per job, accel {os.environ.get('RSNVME_ACCEL', 'tcg')}; "
          f"console in {b.log})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
