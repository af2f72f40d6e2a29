# SPDX-License-Identifier: GPL-2.0
"""Host check of `make bench`'s pure parts (qemu-ci/benchlib.py): the
parsing of the guest's @@BENCH lines, medians, ratios and the table, on
made-up input. No QEMU, well under a second."""

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
    return (f"@@BENCH {rnd} {backing} {driver} {row} {before} {after} 1000 "
            f"{terse(kib, iops, p50, p99, write, error)}")


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
    results, errors = benchlib.parse_console(lines)
    record("bench: @@BENCH lines parsed, a failed fio job reported",
           len(results) == 4 and len(errors) == 1 and "error 5" in errors[0],
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
    text = benchlib.table(summary, 2, "note")
    want = ["| 4k randread QD1 | 1000 ±0% | 900 ±11% | **0.90** (0.80-1.00)",
            "| 4k randwrite QD32 x2 |", "**1.50** (1.50-1.50)", "null-co"]
    record("bench: markdown table", all(w in text for w in want) and "file backing" not in text,
           text)
