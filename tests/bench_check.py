# SPDX-License-Identifier: GPL-2.0
"""Host check of `make bench`'s pure parts (qemu-ci/benchlib.py): the
parsing of the guest's @@BENCH lines, medians, ratios and the table, on
made-up input. No QEMU, well under a second."""

import hashlib

import benchlib


def terse(kib, iops, p50, p99, write=False, error=0):
    """A fio --terse-version=3 line with these read (or write) figures."""
    def direction(on):
        pct = [f"{p:f}%={v}" for p, v in ((1, 1), (50, p50), (99, p99))] + ["0%=0"] * 17
        if not on:
            return ["0"] * 12 + [f"{p:f}%=0" for p in (1, 50, 99)] + ["0%=0"] * 17 + ["0"] * 9
        return [str(kib), str(kib // 3), str(iops), "3000"] + ["1"] * 8 + pct + ["1"] * 9

    f = ["3", "fio-3.33", "job", "0", str(error)] + direction(not write) + direction(write)
    return ";".join(f + ["1.0%", "2.0%", "100", "0", "30"])


def line(rnd, backing, driver, row, busy, kib, iops, p50, p99, write=False, error=0):
    # /proc/stat: user nice system idle iowait irq softirq steal guest guest_nice.
    before = "100,0,100,1000,5,1,1,0,0,0"
    after = f"{100 + busy},0,100,{1000 + 300},{5 + 7},1,1,0,0,0"
    # 1000 I/Os in the window.
    rest = (f"{rnd} {backing} {driver} {row} {before} {after} 1000 "
            f"{terse(kib, iops, p50, p99, write, error)}")
    return f"@@BENCH {hashlib.md5((rest + chr(10)).encode()).hexdigest()} {rest}"


def damage(bench_line, again=False):
    """The line as a lossy console delivers it: bytes gone from its end
    (or, with again, its intact resend at the end of the bench)."""
    return bench_line.replace("@@BENCH ", "@@BENCHAGAIN ") if again else bench_line[:-40]


def check(record):
    rows = ("randread-4k-qd1", "randwrite-4k-qd32")
    lines = ["noise", "@@BENCHCFG rounds=3"]
    # C: 1000 IOPS in every round; rsnvme 800, 900, 1000 -> median 900.
    for rnd, rs in enumerate((800, 900, 1000)):
        for row in rows:
            w = row.startswith("randwrite")
            lines.append(line(rnd, "null", "nvme", row, 30, 4000, 1000, 100, 200, w))
            lines.append(line(rnd, "null", "rsnvme", row, 60, 4000, rs, 110, 300, w))
    lines.append(line(0, "file", "rsnvme", "randread-4k-qd1", 1, 4, 1, 1, 1, error=5))
    # Round 1's C randread line lost bytes and came again intact at the
    # end; a file-backed line lost bytes in both copies.
    lines[6] = damage(lines[6])
    lines.append(damage(line(1, "null", "nvme", rows[0], 30, 4000, 1000, 100, 200), True))
    lost = line(2, "file", "nvme", rows[0], 1, 4, 1, 1, 1)
    lines += [damage(lost), damage(damage(lost, True))]
    results, errors = benchlib.parse_console(lines)
    record("bench: @@BENCH lines parsed, a damaged line taken from its resend, "
           "a failed fio job and a line damaged twice reported",
           len(results) == 4 and len(errors) == 2 and "every copy damaged" in errors[0]
           and "error 5" in errors[1]
           and len(results[("null", "randread-4k-qd1", "nvme")]) == 3,
           f"{len(results)} results, errors {errors}")
    s = results[("null", "randwrite-4k-qd32", "nvme")][0]
    # 4000 KiB of 4 KiB writes = 1000 I/Os; 30 busy jiffies = 300 ms for
    # the 1000 I/Os of the window.
    record("bench: write figures, I/O count and CPU per I/O from terse + /proc/stat",
           (s.iops, s.p50_us, s.p99_us, s.ios, s.cpu_us_per_io) == (1000, 100, 200, 1000, 300.0),
           repr(s))
    summary = benchlib.summarize(results)
    e = summary[("null", "randread-4k-qd1")]
    q = e["ratio"]["iops"]
    record("bench: medians, per-round ratio range",
           e["rsnvme"]["iops"].median == 900 and abs(q.median - 0.9) < 1e-9
           and (q.lo, q.hi) == (0.8, 1.0) and e["ratio"]["cpu_us_per_io"].median == 2.0
           and e["rounds"] == 3 and ("file", "randread-4k-qd1") not in summary,
           repr(e))
    row = benchlib.ROW_BY_NAME.get("uring-cmd-randread-4k-qd32")
    record("bench: the io_uring_cmd row (generic character devices) reaches the guest with "
           "its engine and one job per vCPU",
           row is not None and row.guest_line(2) == "uring-cmd-randread-4k-qd32 io_uring_cmd "
           "randread 4096 32 2", repr(row))
    text = benchlib.table(summary, 2, "note")
    want = ["| 4k randread QD1 | 1000 ±0% | 900 ±11% | **0.90** (0.80-1.00)",
            "| 4k randwrite QD32 x2 |", "**1.50** (1.50-1.50)", "null-co"]
    record("bench: markdown table", all(w in text for w in want) and "file backing" not in text,
           text)


def check_profile(record):
    """`make profile`'s attribution (qemu-ci/proflib.py) on made-up perf lines."""
    import proflib

    k, u = "[kernel.kallsyms]", "libc.so.6"
    lines = [
        # round backing driver row ns|comm|object|function
        "@@PROF 0 null nvme randread-4k-qd32 100000|fio|[nvme]|[k] nvme_queue_rq",
        "@@PROF 0 null nvme randread-4k-qd32 50000|fio|[nvme_core]|[k] nvme_setup_cmd",
        f"@@PROF 0 null nvme randread-4k-qd32 200000|fio|{k}|[k] blk_mq_submit_bio",
        f"@@PROF 0 null nvme randread-4k-qd32 5000000|swapper/0|{k}|[k] pv_native_safe_halt",
        f"@@PROF 0 null nvme randread-4k-qd32 70000|perf|{k}|[k] memset",
        f"@@PROF 1 null nvme randread-4k-qd32 100000|swapper/1|{k}|[k] __blk_rq_map_sg",
        "@@PROF 0 null rsnvme randread-4k-qd32 300000|fio|[rsnvme]|[k] "
        "_RNvMs0_NtCsbDqzXfLQacH_11rsnvme_core5queueNtB5_9QueuePair8complete",
        f"@@PROF 0 null rsnvme randread-4k-qd32 40000|fio|{k}|[k] _raw_spin_lock_irqsave",
        f"@@PROF 0 null rsnvme randread-4k-qd32 60000|fio|{u}|[.] io_submit",
        f"@@PROF 0 null rsnvme randread-4k-qd32 25000|kworker/0:1H|{k}|[k] "
        "__sysvec_apic_timer_interrupt",
        "@@PROFIRQ 0 null nvme randread-4k-qd32 1",
        "@@PROFIRQ 1 null nvme randread-4k-qd32 1",
        "@@PROFIRQ 0 null rsnvme randread-4k-qd32 3",
    ]
    prof = proflib.parse(lines)
    c = prof[("null", "randread-4k-qd32", "nvme")]
    r = prof[("null", "randread-4k-qd32", "rsnvme")]
    record("profile: samples charged to driver, block, DMA, idle, perf, user, lock, irq",
           c[("driver", "nvme_queue_rq")] == 100000 and c[("driver", "nvme_setup_cmd")] == 50000
           and c[("block", "blk_mq_submit_bio")] == 200000
           and c[("idle", "pv_native_safe_halt")] == 5000000
           and c[("perf", "memset")] == 70000 and c[("dma", "__blk_rq_map_sg")] == 100000
           and r[("user", "io_submit")] == 60000 and r[("lock", "_raw_spin_lock_irqsave")] == 40000
           and r[("irq", "__sysvec_apic_timer_interrupt")] == 25000,
           repr(prof))
    # One I/O per driver in the windows: 100000 ns is 100 µs per I/O.
    ios = {("null", "randread-4k-qd32", d): 1 for d in ("nvme", "rsnvme")}
    text = proflib.table(prof, ios, {"randread-4k-qd32": "4k randread QD32 x2"})
    want = ["### 4k randread QD32 x2, null backing",
            "| the driver's own code (nvme + nvme_core, or rsnvme) | 150 | 300 | +150.0 |",
            "| DMA mapping and scatterlists | 100 | 0.0 | -100.0 |",
            "| **busy CPU per I/O** (idle and perf left out) | **450** | **425** | **-25.0** |",
            "`<rsnvme_core::queue::QueuePair>::complete` (driver) 300",
            "| the controller's interrupts per I/O | 2.00 | 3.00 | +1.00 |"]
    record("profile: µs per I/O by category, totals without idle and perf, Rust names demangled",
           all(w in text for w in want), text)
