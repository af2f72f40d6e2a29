# SPDX-License-Identifier: GPL-2.0
"""The pure parts of `make profile` (qemu-ci/bench.py --profile): where the
guest's CPU time goes per I/O, for each driver, from perf's samples.

In profile mode the guest (tests/guest/bench.sh) samples every vCPU with
`perf record -a -e cpu-clock` through each job's measuring window and prints
what `perf report` made of it, a line per command, object and function:

    @@PROF <round> <backing> <driver> <row> <period>|<comm>|<object>|<[k] function>

where <period> is the CPU time, in ns, its samples stand for: a cpu-clock
sample carries the time since the CPU's previous one, which is what counts
when the kernel's timers cannot fire as often as asked (no high-resolution
timers: one sample per tick). The window's I/O count comes from the job's
@@BENCH line (benchlib), so a function's cost per I/O is its time over the
I/Os the disk completed in the window. Idle time and perf itself are left
out of the totals. No QEMU here: tests/run.py checks it on made-up input.
"""

import re
import shutil
import subprocess
from collections import Counter

IRQ_LINE = re.compile(r"^@@PROFIRQ (\d+) (\S+) (\S+) (\S+) (\d+)$")
PROF_LINE = re.compile(r"^@@PROF (\d+) (\S+) (\S+) (\S+) \s*(\d+)\s*\|([^|]*)\|([^|]*)\|(.*)$")

# Where a sample is charged, in table order. Each driver's own module(s)
# are "driver"; the rest is named by what the kernel function does.
CATEGORIES = (
    ("driver", "the driver's own code (nvme + nvme_core, or rsnvme)"),
    ("block", "block layer: blk-mq, bios, tags, stats"),
    ("dma", "DMA mapping and scatterlists"),
    ("mem", "memset/memcpy, allocation"),
    ("lock", "spinlocks"),
    ("irq", "interrupt entry and exit, softirq"),
    ("submit", "system calls, libaio and io_uring"),
    ("sched", "scheduler, wakeups, timers, RCU"),
    ("kernel", "other kernel functions"),
    ("user", "fio and its libraries (user space)"),
)
_KERNEL_RULES = (
    ("lock", r"^(_raw_|queued_|native_queued|__raw_|do_raw_)"),
    ("dma", r"^(dma_|__dma|sg_|__sg|sgl_|swiotlb|iommu|debug_dma|__blk_rq_map_sg|blk_rq_map_sg)"),
    ("mem", r"^(mem(set|cpy|move)|__mem(set|cpy|move)|kmem_cache|__kmem|kmalloc|__kmalloc|"
            r"kfree|mempool|slab|__slab|___slab|alloc_pages|__alloc|free_|__free|"
            r"clear_page|copy_page)"),
    ("irq", r"(irq|apic|msi|sysvec|interrupt|softirq|^handle_edge|^common_interrupt)"),
    ("block", r"^(blk|__blk|bio|__bio|submit_bio|bdev|blkdev|__blkdev|part_|sbitmap|__sbitmap|"
              r"bvec|rq_|__rq|elv|disk_|update_io_ticks|bd_|iov_iter_bvec|"
              r"__submit_bio|lockless_|bio_)"),
    ("submit", r"^(io_|__io_|aio|__x64_sys|do_syscall|entry_|syscall|x64_sys|__do_sys|"
               r"do_io|lookup_ioctx|fget|fput|__fget|fdget|rw_verify|iov_|import_|__import|"
               r"_copy|copy_|rep_movs|clear_user|__get_user|__put_user|read_events|"
               r"user_|__x86_indirect|__x86_return|srso|retbleed|security_|"
               r"bpf_lsm|exit_to_user|ksys_|vfs_)"),
    ("sched", r"(sched|wake|ttwu|enqueue|dequeue|^pick_|hrtimer|tick|timer|update_curr|"
              r"finish_task|context_switch|__switch_to|psi_|cpuacct|^rcu|__rcu|"
              r"ktime|clockevents|lapic_next|read_tsc|native_sched_clock|"
              r"set_next|put_prev|prepare_to_wait|finish_wait|__wait|try_to_block)"),
)
_IDLE = re.compile(r"(idle|safe_halt|mwait|halt$|do_idle)")
_DRIVER_DSOS = {"nvme": ("[nvme]", "[nvme_core]"), "rsnvme": ("[rsnvme]",)}


def category(driver, comm, dso, sym):
    """The category of one (command, object, function), "idle" for a CPU
    with nothing to do and "perf" for the profiler's own work."""
    name = sym[4:] if sym[:4] in ("[k] ", "[.] ") else sym
    if comm == "perf" or "perf" in dso:
        return "perf"
    if dso in _DRIVER_DSOS.get(driver, ()):
        return "driver"
    if sym.startswith("[.] ") or not dso.startswith("["):
        return "user"
    if comm.startswith("swapper") and _IDLE.search(name):
        return "idle"
    for cat, rule in _KERNEL_RULES:
        if re.search(rule, name):
            return cat
    return "kernel"


def parse(lines):
    """{(backing, row, driver): Counter{(category, function): ns}}, summed
    over the rounds; the interrupts are under (category "irqs", "")."""
    out = {}
    for line in lines:
        m = IRQ_LINE.match(line.strip())
        if m:
            _, backing, driver, row, n = m.groups()
            out.setdefault((backing, row, driver), Counter())[("irqs", "")] += int(n)
            continue
        m = PROF_LINE.match(line.strip())
        if not m:
            continue
        _, backing, driver, row, n, comm, dso, sym = m.groups()
        comm, dso, sym = comm.strip(), dso.strip(), sym.strip()
        name = sym[4:] if sym[:4] in ("[k] ", "[.] ") else sym
        out.setdefault((backing, row, driver), Counter())[
            (category(driver, comm, dso, sym), name)] += int(n)
    return out


def demangle(names):
    """{name: readable name}: Rust v0 symbols through binutils' c++filt
    (which reads them since 2.36), crate hashes dropped; others as they are."""
    rust = sorted(n for n in names if n.startswith("_R"))
    table = {n: n for n in names}
    if rust and shutil.which("c++filt"):
        out = subprocess.run(["c++filt"], input="\n".join(rust) + "\n", text=True,
                             stdout=subprocess.PIPE, check=False).stdout.splitlines()
        if len(out) == len(rust):
            for n, d in zip(rust, out):
                table[n] = re.sub(r"\[[0-9a-f]+\]", "", d)
    return table


def per_io(ns, window_ios):
    """µs of CPU per I/O."""
    return ns / 1e3 / window_ios if window_ios > 0 else 0.0


def _fmt(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def table(profile, window_ios, row_labels, drivers=("nvme", "rsnvme"), top=12):
    """Markdown: per (backing, row), CPU µs per I/O by category for both
    drivers, then each driver's most expensive functions.
    window_ios: {(backing, row, driver): I/Os completed in the windows}."""
    out = []
    order = list(row_labels)

    def place(key):
        return (key[0] != "null", order.index(key[1]) if key[1] in order else len(order))

    keys = sorted({(b, r) for b, r, _ in profile}, key=place)
    for backing, row in keys:
        cnt = {d: profile.get((backing, row, d), Counter()) for d in drivers}
        ios = {d: window_ios.get((backing, row, d), 0) for d in drivers}
        if not all(cnt.values()) or not all(ios.values()):
            continue
        out += [f"### {row_labels.get(row, row)}, {backing} backing", ""]
        out.append("| where | " + " | ".join(f"{d} µs/IO" for d in drivers) + " | difference |")
        out.append("|---|" + "---:|" * (len(drivers) + 1))
        cats = {d: Counter() for d in drivers}
        for d in drivers:
            for (cat, _), n in cnt[d].items():
                cats[d][cat] += n
        totals = {d: 0.0 for d in drivers}
        for cat, title in CATEGORIES:
            v = [per_io(cats[d][cat], ios[d]) for d in drivers]
            for d, x in zip(drivers, v):
                totals[d] += x
            out.append(f"| {title} | " + " | ".join(_fmt(x) for x in v)
                       + f" | {v[-1] - v[0]:+.1f} |")
        t = [totals[d] for d in drivers]
        out.append("| **busy CPU per I/O** (idle and perf left out) | "
                   + " | ".join(f"**{_fmt(x)}**" for x in t) + f" | **{t[-1] - t[0]:+.1f}** |")
        q = [cats[d]["irqs"] / ios[d] for d in drivers]
        out.append("| the controller's interrupts per I/O | " + " | ".join(f"{x:.2f}" for x in q)
                   + f" | {q[-1] - q[0]:+.2f} |")
        out.append("")
        names = demangle({name for d in drivers for (_, name) in cnt[d]})
        for d in drivers:
            fn = Counter()
            for (cat, name), n in cnt[d].items():
                if cat not in ("idle", "perf", "irqs"):
                    fn[(cat, names.get(name, name))] += n
            out.append(f"{d}'s {top} most expensive functions: " + "; ".join(
                f"`{name}` ({cat}) {_fmt(per_io(n, ios[d]))}"
                for (cat, name), n in fn.most_common(top)) + ".")
            out.append("")
    return "\n".join(out) + "\n"
