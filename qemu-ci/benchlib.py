# SPDX-License-Identifier: GPL-2.0
"""The pure parts of `make bench` (qemu-ci/bench.py): the fio rows, the
parsing of what the guest prints, medians, spreads, ratios, the markdown
table and the chart. No QEMU here: tests/run.py checks it on made-up input.

The guest (tests/guest/bench.sh) prints one line per fio job:

    @@BENCH <md5> <round> <backing> <driver> <row> <stat before> <stat after> <I/Os> <terse>

and the same lines again at the end as @@BENCHAGAIN (a long line can lose
bytes on the serial console of a loaded host; the first copy whose md5,
that of the rest of the line and a newline, matches is used), where the
stats are the guest's /proc/stat "cpu" line (all CPUs) as
comma-separated jiffies at the start and end of a window inside fio's
measured time, <I/Os> the I/Os the disk completed in that window (its
/sys/block/<disk>/stat) and <terse> is fio's --terse-version=3 line.
"""

import hashlib
import re
import statistics
import textwrap
from dataclasses import dataclass

# Drivers, in table order: the reference first. "nvme" is the C driver.
DRIVERS = ("nvme", "rsnvme")
DRIVER_NAMES = {"nvme": "C nvme", "rsnvme": "rsnvme"}
# Backings of the controller pairs (qemu-ci/bench.py sets them up).
BACKINGS = ("null", "file")
# /proc/stat counts in USER_HZ, which is 100 on every architecture.
USER_HZ = 100


@dataclass(frozen=True)
class Row:
    """One fio job of the bench, run against each driver every round."""

    name: str
    label: str
    rw: str
    bs: int
    iodepth: int
    per_cpu: bool = False  # one job per vCPU, else one job
    engine: str = "libaio"

    def numjobs(self, cpus):
        return cpus if self.per_cpu else 1

    def guest_line(self, cpus):
        """The row as tests/guest/bench.sh reads it."""
        return f"{self.name} {self.engine} {self.rw} {self.bs} {self.iodepth} {self.numjobs(cpus)}"


ROWS = (
    Row("randread-4k-qd1", "4k randread QD1", "randread", 4096, 1),
    Row("randread-4k-qd32", "4k randread QD32 xCPUS", "randread", 4096, 32, True),
    Row("randwrite-4k-qd32", "4k randwrite QD32 xCPUS", "randwrite", 4096, 32, True),
    Row("randread-512-qd32", "512 B randread QD32 xCPUS", "randread", 512, 32, True),
    Row("seqread-128k-qd8", "128k seqread QD8", "read", 131072, 8),
    Row("seqwrite-128k-qd8", "128k seqwrite QD8", "write", 131072, 8),
    Row("uring-randread-4k-qd32", "4k randread QD32 xCPUS io_uring", "randread", 4096, 32,
        True, "io_uring"),
    # Polled: IORING_SETUP_IOPOLL on each driver's poll queue (poll_queues=1).
    Row("uring-poll-randread-4k-qd32", "4k randread QD32 xCPUS io_uring polled", "randread",
        4096, 32, True, "io_uring-hipri"),
    # NVMe passthrough through io_uring (IORING_OP_URING_CMD) on each
    # driver's generic character device (/dev/ng<N>n1, /dev/rsng<N>n1).
    Row("uring-cmd-randread-4k-qd32", "4k randread QD32 xCPUS io_uring_cmd", "randread", 4096,
        32, True, "io_uring_cmd"),
    # rsnvme rebound with shadow_doorbells=0 for this row (the C driver
    # has no such switch and keeps them): what the shadow doorbells save.
    Row("randread-4k-qd32-noshadow", "4k randread QD32 xCPUS, rsnvme without shadow doorbells",
        "randread", 4096, 32, True, "libaio-noshadow"),
)
ROW_BY_NAME = {r.name: r for r in ROWS}


def label(row, cpus):
    return row.label.replace("CPUS", str(cpus))


@dataclass(frozen=True)
class Sample:
    """What one fio job against one driver measured."""

    iops: float
    kib_s: float  # bandwidth, KiB/s
    p50_us: float  # completion latency percentiles
    p99_us: float
    cpu_us_per_io: float  # busy guest CPU time (all CPUs) per I/O done
    ios: int  # I/Os fio did
    window_ios: int = 0  # I/Os the disk completed in the CPU measuring window


class BenchError(Exception):
    """A job failed or printed something unreadable."""


# Terse v3 (fio 3.x): 5 header fields (version, fio version, name, group,
# error), then 41 fields for reads and 41 for writes: total KiB, KiB/s,
# IOPS, runtime ms, submission latency (4), completion latency (4), 20
# completion latency percentiles "P%=usec", total latency (4), bandwidth
# (5). Checked against fio 3.33's json output.
_DIR_FIELDS = 41
_READ, _WRITE = 5, 5 + _DIR_FIELDS


def _percentile(fields, start, p):
    for f in fields[start + 12:start + 32]:
        key, _, value = f.partition("=")
        if key.endswith("%") and key[:-1] and abs(float(key[:-1]) - p) < 1e-6:
            return float(value)
    raise BenchError(f"no {p}% completion latency percentile in fio's output")


def busy_jiffies(before, after):
    """Busy jiffies between two /proc/stat "cpu" lines (lists of ints:
    user nice system idle iowait irq softirq steal [guest guest_nice]).
    Idle and iowait are not busy; guest time is inside user already."""
    d = [b - a for a, b in zip(before[:8], after[:8])]
    if len(d) < 8 or any(x < 0 for x in d):
        raise BenchError(f"unusable /proc/stat samples {before} -> {after}")
    return sum(d) - d[3] - d[4]


def parse_sample(row, stat0, stat1, window_ios, terse):
    """A Sample from one @@BENCH line's parts (stats comma-separated)."""
    f = terse.strip().split(";")
    if len(f) < _WRITE + _DIR_FIELDS or f[0] != "3":
        raise BenchError(f"not a fio terse v3 line: {terse[:200]!r}")
    if f[4] != "0":
        raise BenchError(f"fio reported error {f[4]}")
    base = _WRITE if row.rw in ("write", "randwrite") else _READ
    kib = int(f[base])
    ios = kib * 1024 // row.bs
    if ios <= 0:
        raise BenchError("fio did no I/O")
    busy = busy_jiffies([int(x) for x in stat0.split(",")], [int(x) for x in stat1.split(",")])
    if int(window_ios) <= 0:
        raise BenchError("no I/O completed in the CPU measuring window")
    return Sample(iops=float(f[base + 2]), kib_s=float(f[base + 1]),
                  p50_us=_percentile(f, base, 50.0), p99_us=_percentile(f, base, 99.0),
                  cpu_us_per_io=busy * (1e6 / USER_HZ) / int(window_ios), ios=ios,
                  window_ios=int(window_ios))


BENCH_LINE = re.compile(r"^@@BENCH(?:AGAIN)? ([0-9a-f]{32}) ((\d+) (\S+) (\S+) (\S+) (\S+) (\S+) "
                        r"(-?\d+) (.*))$")


def parse_console(lines):
    """{(backing, row name, driver): [Sample per round]} and a list of
    errors (one per job that failed or could not be read)."""
    intact, damaged = {}, {}
    for line in lines:
        m = BENCH_LINE.match(line.strip())
        if not m:
            continue
        job = (m.group(3), m.group(4), m.group(5), m.group(6))
        if hashlib.md5((m.group(2) + "\n").encode()).hexdigest() == m.group(1):
            intact.setdefault(job, m.groups()[2:])
        else:
            damaged.setdefault(job, m.group(2))
    results, errors = {}, []
    for job, text in damaged.items():
        if job not in intact:
            errors.append(f"round {job[0]} {job[1]} {job[2]} {job[3]}: every copy damaged in "
                          f"transit: {text[:200]!r}")
    for (rnd, backing, driver, name), fields in intact.items():
        stat0, stat1, window_ios, terse = fields[4:]
        row = ROW_BY_NAME.get(name)
        try:
            if row is None or driver not in DRIVERS:
                raise BenchError("unknown row or driver")
            s = parse_sample(row, stat0, stat1, window_ios, terse)
        except (BenchError, ValueError, IndexError) as e:
            errors.append(f"round {rnd} {backing} {driver} {name}: {e}")
            continue
        results.setdefault((backing, name, driver), []).append(s)
    return results, errors


@dataclass(frozen=True)
class Stat:
    """Median and min-max of one metric over the rounds."""

    median: float
    lo: float
    hi: float

    @classmethod
    def of(cls, values):
        values = list(values)
        return cls(statistics.median(values), min(values), max(values))

    @property
    def spread_pct(self):
        """Half the min-max range, in % of the median."""
        return 50.0 * (self.hi - self.lo) / self.median if self.median else 0.0


METRICS = ("iops", "kib_s", "p50_us", "p99_us", "cpu_us_per_io")


def summarize(results):
    """{(backing, row): {"nvme"|"rsnvme": {metric: Stat}, "ratio": {metric:
    Stat}}} where a ratio's median is median(rsnvme) / median(C) and its
    range is that of the per-round ratios (rsnvme's job over the C
    driver's job of the same round)."""
    out = {}
    for backing in BACKINGS:
        for row in ROWS:
            per = {d: results.get((backing, row.name, d)) for d in DRIVERS}
            if not all(per.values()):
                continue
            entry = {d: {m: Stat.of(getattr(s, m) for s in per[d]) for m in METRICS}
                     for d in DRIVERS}
            entry["ratio"] = {}
            for m in METRICS:
                c = entry["nvme"][m].median
                pairs = [getattr(r, m) / getattr(n, m)
                         for n, r in zip(per["nvme"], per["rsnvme"]) if getattr(n, m)]
                med = entry["rsnvme"][m].median / c if c else float("nan")
                entry["ratio"][m] = Stat(med, min(pairs, default=med), max(pairs, default=med))
            entry["rounds"] = min(len(v) for v in per.values())
            out[(backing, row.name)] = entry
    return out


def _num(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(st):
    return f"{_num(st.median)} ±{st.spread_pct:.0f}%"


def _ratio(st):
    return f"**{st.median:.2f}** ({st.lo:.2f}-{st.hi:.2f})"


BACKING_TITLES = {
    "null": "null-co backing (the driver and the emulated controller, nearly no backing cost)",
    "file": "file backing (raw image files in the host's page cache)",
}


def table(summary, cpus, note=""):
    """The markdown table(s) of summarize()'s result."""
    out = []
    if note:
        out += [note, ""]
    for backing in BACKINGS:
        rows = [r for r in ROWS if (backing, r.name) in summary]
        if not rows:
            continue
        out += [f"### {BACKING_TITLES[backing]}", ""]
        out.append("| job | IOPS C | IOPS rsnvme | IOPS ratio | MiB/s C | MiB/s rsnvme "
                   "| p50 µs C / rsnvme | p99 µs C / rsnvme | p99 ratio "
                   "| CPU µs/IO C | CPU µs/IO rsnvme | CPU/IO ratio |")
        out.append("|---|" + "---:|" * 11)
        for row in rows:
            e = summary[(backing, row.name)]
            c, r, q = e["nvme"], e["rsnvme"], e["ratio"]
            mib = [Stat(s.median / 1024, s.lo / 1024, s.hi / 1024)
                   for s in (c["kib_s"], r["kib_s"])]
            out.append(" | ".join([
                f"| {label(row, cpus)}", _cell(c["iops"]), _cell(r["iops"]), _ratio(q["iops"]),
                _cell(mib[0]), _cell(mib[1]),
                f"{_num(c['p50_us'].median)} / {_num(r['p50_us'].median)}",
                f"{_num(c['p99_us'].median)} / {_num(r['p99_us'].median)}",
                _ratio(q["p99_us"]),
                _cell(c["cpu_us_per_io"]), _cell(r["cpu_us_per_io"]),
                _ratio(q["cpu_us_per_io"]),
            ]) + " |")
        out.append("")
    out.append("Medians over the rounds; ±N% is half the min-max range across rounds; "
               "a ratio is rsnvme's median over the C driver's, with the range of the "
               "per-round ratios in parentheses. IOPS ratio above 1 is better for rsnvme; "
               "p99 and CPU/IO ratios below 1 are. CPU µs/IO: busy guest CPU time "
               "(all vCPUs, /proc/stat) divided by the I/Os the disk completed, over a "
               "window inside the job (after its 1 s ramp, before its end).")
    return "\n".join(out) + "\n"


def chart(summary, cpus, path, title):
    """A bar chart PNG of the ratios (rsnvme / C) per row and backing, with
    the per-round range as error bars. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backings = [b for b in BACKINGS if any(k[0] == b for k in summary)]
    fig, axes = plt.subplots(len(backings), 1, figsize=(12, 4.6 * len(backings)),
                             squeeze=False)
    metrics = (("iops", "IOPS (higher is better)"),
               ("cpu_us_per_io", "CPU per I/O (lower is better)"),
               ("p99_us", "p99 latency (lower is better)"))
    width = 0.27
    for ax, backing in zip(axes[:, 0], backings):
        rows = [r for r in ROWS if (backing, r.name) in summary]
        for i, (m, name) in enumerate(metrics):
            xs = [j + (i - 1) * width for j in range(len(rows))]
            st = [summary[(backing, r.name)]["ratio"][m] for r in rows]
            ax.bar(xs, [s.median for s in st], width, label=name,
                   yerr=[[s.median - s.lo for s in st], [s.hi - s.median for s in st]],
                   capsize=3)
        ax.axhline(1.0, color="black", linewidth=0.8)
        # One noisy round must not flatten the bars: error bars that reach
        # above the axis are cut off there.
        top = max(summary[(backing, r.name)]["ratio"][m].median for r in rows for m, _ in metrics)
        ax.set_ylim(0, max(2.0, 1.3 * top))
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([textwrap.fill(label(r, cpus).replace(",", ""), 14) for r in rows],
                           fontsize=8)
        ax.set_ylabel("rsnvme / C nvme (bars: per-round range)", fontsize=9)
        ax.set_title(BACKING_TITLES[backing], fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
