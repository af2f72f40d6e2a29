#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`: rsnvme next to the C nvme driver, in one guest, at once.

One guest with two pairs of identical emulated NVMe controllers: one pair
backed by QEMU's null-co (nearly free I/O: what is measured is the driver
and the emulated controller), one by raw image files. In each pair the C
driver is bound to one controller and rsnvme to the other (driver_override),
both at the same time. Every fio row (qemu-ci/benchlib.py) runs against each
driver in turn, the order alternating every round, on the bench kernel:
the guest config without lock, memory and DMA debugging
(qemu-ci/kernel.bench.config). Prints medians, spreads and rsnvme/C ratios
as a markdown table, writes it to <build>/bench.md and a bar chart to
<build>/bench.png (matplotlib), and fails if any job failed or the kernel
complained.

`bench.py --from-log LOG` makes the table and chart again from a bench
console log (build/logs/bench.log) without running anything.
BENCH_DOCS=1 also copies them to docs/bench.{md,png} and the table into
README.md (between its "bench table" markers), for a commit.

`bench.py --profile` (`make profile`) runs the same guest with perf sampling
every vCPU through each job's measuring window and prints, per row, where
each driver's CPU time per I/O goes (qemu-ci/proflib.py), into
<build>/profile.md (and docs/profile.md with BENCH_DOCS=1). Its defaults:
2 rounds of 6 s, the null-co pair, the four rows with the largest CPU/IO
gap; perf samples each vCPU once per kernel tick (CONFIG_HZ).

Environment: BENCH_ROUNDS (default 5), BENCH_SECONDS per job (default 3),
BENCH_CPUS vCPUs (default 2), BENCH_ROWS (comma-separated row names, default
all), BENCH_BACKINGS (default "null,file"), RSNVME_ACCEL=kvm where KVM
works. Under TCG the guest's CPU is emulated, so only ratios mean anything.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import benchlib
import proflib
import qemu

# PCI slots of the controllers: per backing, the C driver's and rsnvme's.
SLOTS = {"null": (4, 5), "file": (6, 7)}
SIZE_MB = 1024


def controllers(backings):
    """The -device nvme controllers and the guest's view of them."""
    devices, env = [], {}
    for backing in backings:
        bdfs = []
        for drv, slot in zip(benchlib.DRIVERS, SLOTS[backing]):
            serial = f"BENCH{backing.upper()}{drv.upper()}"[:20]
            params = {"addr": hex(slot)}
            if backing == "null":
                devices.append(qemu.Nvme(serial=serial, params=params,
                                         drive=f"driver=null-co,size={SIZE_MB}M,read-zeroes=on"))
            else:
                devices.append(qemu.Nvme(serial=serial, params=params, size_mb=SIZE_MB))
            bdfs.append(f"0000:00:{slot:02x}.0")
        env[backing] = ",".join(bdfs)
    return devices, env


def have_matplotlib(python=sys.executable):
    return subprocess.run([python, "-c", "import matplotlib"], stderr=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL).returncode == 0


def ensure_matplotlib():
    """True if this interpreter can import matplotlib, installing Debian's
    python3-matplotlib (qemu-ci/setup.sh --bench) if needed. Debian's
    package serves Debian's /usr/bin/python3: when another python3 comes
    first on PATH (pyenv, a venv), the bench re-runs itself under that one."""
    if have_matplotlib():
        return True
    subprocess.run([str(qemu.ROOT / "qemu-ci" / "setup.sh"), "--bench"])
    if have_matplotlib():
        return True
    debian = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(debian) \
            and os.path.exists(debian) and have_matplotlib(debian):
        print(f"bench: running under {debian}, which has Debian's matplotlib", flush=True)
        os.execv(debian, [debian, os.path.abspath(__file__)] + sys.argv[1:])
    return False


README_MARKS = ("<!-- bench table: qemu-ci/bench.py with BENCH_DOCS=1 writes it -->",
               "<!-- end of bench table -->")


def update_docs(text, png):
    """docs/bench.md, docs/bench.png and the README's copy of the table."""
    docs = qemu.ROOT / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "bench.md").write_text("# `make bench`: rsnvme next to the C nvme driver\n\n"
                                   "![rsnvme / C nvme ratios](bench.png)\n\n" + text)
    if png.exists():
        shutil.copy2(png, docs / "bench.png")
    readme = qemu.ROOT / "README.md"
    s = readme.read_text()
    a, b = s.find(README_MARKS[0]), s.find(README_MARKS[1])
    if a < 0 or b < a:
        print("bench: README.md has no bench table markers; not updated")
        return
    readme.write_text(s[:a + len(README_MARKS[0])] + "\n" + text + s[b:])
    print(f"bench: updated {docs / 'bench.md'}, {docs / 'bench.png'} and README.md")


def report(console, rounds, cpus, accel, have_chart, when=None, name="bench"):
    """Table and chart from a bench console, written to <build>/<name>.md
    and .png (a profile run's go to profile-bench.*, leaving the last
    bench's alone); returns (text, summary, results, errors, skipped)."""
    lines = console.splitlines()
    results, errors = benchlib.parse_console(lines)
    summary = benchlib.summarize(results)
    skipped = [l.split(" ", 1)[1] for l in lines if l.startswith("@@BENCHSKIP ")]
    cfg = next((l for l in lines if l.startswith("@@BENCHCFG ")), "")
    note = (f"Measured by `make bench`: one guest ({cpus} vCPUs, QEMU {accel}), "
            f"both drivers bound at once, {rounds} rounds of {seconds_of(cfg)} s per job "
            f"alternating C/rsnvme, bench kernel without debug options "
            f"({cfg.split('kernel=')[-1] if cfg else '?'}), "
            f"{time.strftime('%Y-%m-%d', time.localtime(when))}.")
    text = benchlib.table(summary, cpus, note)
    if skipped:
        text += "\nSkipped: " + "; ".join(skipped) + "\n"
    qemu.BUILD.mkdir(parents=True, exist_ok=True)
    (qemu.BUILD / f"{name}.md").write_text(text)
    print(text)
    png = qemu.BUILD / f"{name}.png"
    if not summary:
        pass
    elif have_chart:
        benchlib.chart(summary, cpus, png,
                       f"rsnvme / C nvme, medians of {rounds} rounds ({cpus} vCPUs, {accel})")
        print(f"chart: {png}")
    else:
        print("bench: matplotlib is missing and could not be installed "
              "(apt-get install python3-matplotlib): no chart, only the table")
    return text, summary, results, errors, skipped


def seconds_of(cfg):
    m = re.search(r"seconds=(\d+)", cfg)
    return m.group(1) if m else "?"


def from_log(path):
    console = Path(path).read_text(errors="replace")
    cfg = re.search(r"^@@BENCHCFG rounds=(\d+) seconds=\d+ cpus=(\d+)", console, re.M)
    if not cfg:
        print(f"bench: no @@BENCHCFG line in {path}")
        return 1
    text, _, _, errors, _ = report(console, int(cfg.group(1)), int(cfg.group(2)),
                                   os.environ.get("RSNVME_ACCEL", "tcg"), ensure_matplotlib(),
                                   when=Path(path).stat().st_mtime)
    if errors:
        print("bench: unreadable jobs:", *errors, sep="\n  ")
        return 1
    if os.environ.get("BENCH_DOCS") == "1":
        update_docs(text, qemu.BUILD / "bench.png")
    return 0


# `make profile`'s rows: where the CPU per I/O differs most.
PROFILE_ROWS = "randread-4k-qd32,randread-512-qd32,randwrite-4k-qd32,seqread-128k-qd8"


def tick_hz(kdir):
    """The kernel's CONFIG_HZ: without high-resolution timers perf's
    cpu-clock fires once per tick at most, so that is the rate to ask for
    (each sample then stands for the time it claims)."""
    m = re.search(r"^CONFIG_HZ=(\d+)$", (Path(kdir) / ".config").read_text(), re.M)
    return int(m.group(1)) if m else 250


def profile_report(console, rounds, seconds, hz):
    """The per-category and per-function table of a profile console."""
    lines = console.splitlines()
    results, _ = benchlib.parse_console(lines)
    window_ios = {k: sum(s.window_ios for s in v) for k, v in results.items()}
    labels = {r.name: benchlib.label(r, int(os.environ.get("BENCH_CPUS", "2")))
              for r in benchlib.ROWS}
    note = (f"Measured by `make profile` ({time.strftime('%Y-%m-%d')}): the `make bench` "
            f"guest, perf sampling every vCPU at each {hz} Hz tick (cpu-clock) through each "
            f"job's measuring window, {rounds} rounds of {seconds} s per job, samples summed over "
            "the rounds. µs/IO: the CPU time a category's samples stand for, over the "
            "I/Os the disk completed in the windows. Under TCG this is emulated time: "
            "compare the drivers, not the absolute figures. The guest has no PMU, so perf "
            "samples from a timer interrupt: time with interrupts off (the drivers' "
            "interrupt handlers, completions, `spin_lock_irqsave` sections) is charged to "
            "the instruction where interrupts came back on, mostly right after the "
            "doorbell write in the submission function.\n\n")
    text = note + proflib.table(proflib.parse(lines), window_ios, labels)
    notes = [l for l in lines if l.startswith("@@PROFNOTE ")]
    if notes:
        text += "\nperf said: " + "; ".join(notes[:5]) + "\n"
    return text


def main():
    if sys.argv[1:2] == ["--from-log"] and len(sys.argv) == 3:
        return from_log(sys.argv[2])
    if sys.argv[1:3] == ["--profile", "--from-log"] and len(sys.argv) == 4:
        console = Path(sys.argv[3]).read_text(errors="replace")
        print(profile_report(console, int(os.environ.get("BENCH_ROUNDS", "2")),
                             int(os.environ.get("BENCH_SECONDS", "6")),
                             tick_hz(qemu.kernel("bench"))))
        return 0
    profile = sys.argv[1:] == ["--profile"]
    if sys.argv[1:] and not profile:
        print("usage: bench.py [--profile] [--from-log LOG]")
        return 2
    rounds = int(os.environ.get("BENCH_ROUNDS", "2" if profile else "5"))
    seconds = int(os.environ.get("BENCH_SECONDS", "6" if profile else "3"))
    cpus = int(os.environ.get("BENCH_CPUS", "2"))
    names = [n for n in os.environ.get("BENCH_ROWS", PROFILE_ROWS if profile else "").split(",")
             if n]
    unknown = [n for n in names if n not in benchlib.ROW_BY_NAME]
    if unknown:
        print(f"bench: unknown rows {unknown}; known: {list(benchlib.ROW_BY_NAME)}")
        return 2
    rows = [r for r in benchlib.ROWS if not names or r.name in names]
    backings = [b for b in os.environ.get("BENCH_BACKINGS", "null" if profile else "null,file")
                .split(",") if b]
    if not backings or any(b not in benchlib.BACKINGS for b in backings):
        print(f"bench: BENCH_BACKINGS must name some of {benchlib.BACKINGS}")
        return 2
    accel = os.environ.get("RSNVME_ACCEL", "tcg")

    t0 = time.monotonic()
    qemu.setup()
    have_chart = ensure_matplotlib()
    kdir = qemu.kernel("bench")
    hz = tick_hz(kdir)
    t_kernel = time.monotonic() - t0
    # Its own copy of the sources, so the tree's rsnvme.ko (the test
    # build, against the test kernel) stays as it is.
    src = qemu.stage_module_source(qemu.BUILD / "bench-module")
    qemu.build_module(kdir, faults=False, src=src)
    rows_file = qemu.BUILD / "bench-rows.txt"
    rows_file.write_text("".join(r.guest_line(cpus) + "\n" for r in rows))
    tools = qemu.IO_TOOLS
    if profile:
        subprocess.run([str(qemu.ROOT / "qemu-ci" / "setup.sh"), "--profile"], check=True)
        tools += ("/usr/bin/perf",)
    initrd = qemu.build_initramfs(
        kdir, extra_files=qemu.io_tools(tools) + [(rows_file, "tests/bench-rows.txt")],
        module=src / "rsnvme.ko", name="bench-initramfs")
    devices, env = controllers(backings)
    jobs = rounds * len(rows) * len(backings) * len(benchlib.DRIVERS)
    print(f"bench: {jobs} fio jobs of {seconds} s ({rounds} rounds, {len(rows)} rows, "
          f"backings {','.join(backings)}), {cpus} vCPUs, accel {accel}", flush=True)
    t1 = time.monotonic()
    extra_env = {"profile_period": 10**9 // hz} if profile else {}
    # perf report reads the kernel's symbols per job: slow under TCG.
    b = qemu.boot("profile" if profile else "bench", initrd, kdir, "bench", devices, smp=cpus,
                  mem=1024, env={**env, "rounds": rounds, "seconds": seconds, **extra_env},
                  timeout=180 + jobs * (seconds + (60 if profile else 8)))
    t_bench = time.monotonic() - t1

    out = "profile-bench" if profile else "bench"
    text, summary, results, errors, skipped = report(b.console, rounds, cpus, accel, have_chart,
                                                     name=out)

    missing = [f"{b_} {r.name}" for b_ in backings for r in rows
               if (b_, r.name) not in summary and not any(s.startswith(r.name) for s in skipped)]
    short = [f"{k[0]} {k[1]} {k[2]}: {len(v)} of {rounds} rounds"
             for k, v in results.items() if len(v) != rounds]
    fails = [f"{n}: {d}" for n, ok, d in b.results if not ok]
    problems = errors + fails + [f"no result for {m}" for m in missing] + short + b.bad_lines
    if b.failure:
        problems.insert(0, b.failure)
    print(f"(bench kernel ready after {t_kernel:.0f} s; the guest ran {t_bench:.0f} s; "
          f"table in {qemu.BUILD / (out + '.md')}; console in {b.log})")
    if profile:
        ptext = profile_report(b.console, rounds, seconds, hz)
        (qemu.BUILD / "profile.md").write_text(ptext)
        print(ptext)
        print(f"profile: {qemu.BUILD / 'profile.md'}")
    if problems:
        print("bench FAILED:", *problems[:20], sep="\n  ")
        return 1
    if os.environ.get("BENCH_DOCS") == "1" and profile:
        docs = qemu.ROOT / "docs"
        docs.mkdir(exist_ok=True)
        (docs / "profile.md").write_text("# `make profile`: where the CPU per I/O goes\n\n"
                                         + ptext)
    elif os.environ.get("BENCH_DOCS") == "1":
        update_docs(text, qemu.BUILD / "bench.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
