#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Error recovery scenarios (issue 8): QEMU boots running
tests/guest/rec-*.sh against one driver, while fio writes and verifies:

  rec-reset    the controller reset through sysfs 20 times;
  rec-pcicmd   the PCI command register's memory space and bus master bits
               cleared, then restored;
  rec-timeout  the block layer's fail_io_timeout makes completions look
               lost, so requests time out, are aborted, then the
               controller is reset;
  rec-blkdebug QEMU's blkdebug fails reads and writes of two blocks and
               the first flush: medium errors after the retries;
  rec-hotplug  QMP device_del of the controller, behind a PCIe root port,
               then device_add of a new one into the port;
  rec-stress   (4 vCPUs) reset, then unbind racing a reset (rsnvme; the
               C driver oopses under lockdep there), 10 times.

Both drivers must pass what the guest checks (fio's verify, patterns,
bounded waits) and what QEMU's trace shows the emulated controller saw
(it was enabled again after each reset, received Abort commands). With
rsnvme, its console lines are checked too: each recovery step is logged,
and the `recovery:` line at unbind counts them. The driver under test is
io_tests.IO_DRIVER (RSNVME_IO_DRIVER). The fault=5 and fault=6 points of
rsnvme's test build are checked by the faults scenario of tests/run.py.

tests/run.py calls run_all() after the I/O scenarios. Alone:

    tests/recovery_tests.py [-k NAME] [--driver c|rust]

(uses the cached kernel and the rsnvme.ko already built; builds nothing).
"""

import dataclasses
import math
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "qemu-ci"))
sys.path.insert(0, str(ROOT / "tests"))
import io_tests  # noqa: E402
import qemu  # noqa: E402

Q = qemu.Nvme
NS = qemu.Ns

# What the emulated controller saw (qemu.boot(trace=...)): each time it was
# enabled (probe and every reset), every admin command, every time it set
# CSTS.CFS because a DMA failed; and config space reads, for the guest's
# marks (trace_mark in tests/guest/lib.sh).
TRACE = ("pci_nvme_mmio_start_success", "pci_nvme_admin_cmd", "pci_nvme_err_cfs",
         "pci_cfg_read")
MARK = r"\bpci_cfg_read nvme .*@0xfc\b"
RESETS = 20       # rec-reset
ROUNDS = 10       # rec-stress
FIRE = 3          # rec-timeout: completions fail_io_timeout hides
TIMEOUT = 3       # rec-pcicmd, rec-timeout: I/O timeout (s, idle host)


def after_mark(b, pattern):
    """How many of QEMU's trace events match `pattern` after the guest's
    first mark (None without a mark): the firmware's own use of the
    controller before Linux runs is not counted."""
    lines = b.trace.splitlines()
    marks = [i for i, l in enumerate(lines) if re.search(MARK, l)]
    if not marks:
        return None
    return sum(1 for l in lines[marks[0]:] if re.search(pattern, l))


def enables(b):
    return after_mark(b, r"\bpci_nvme_mmio_start_success\b")


def aborts(b):
    return after_mark(b, r"\bpci_nvme_admin_cmd .*'NVME_ADM_CMD_ABORT'")


def cfs(b):
    return after_mark(b, r"\bpci_nvme_err_cfs\b")


# --- rsnvme's console lines (each prefixed "rsnvme <BDF>: ") --------------

RESETTING = r"resetting the controller: (.+)$"
RESET_DONE = r"reset done: (\d+) I/O queues, (\d+) requests requeued$"
RESET_FAILED = r"reset failed: controller is dead, failing its I/O$"
TIMEOUT_LINE = (r"I/O timeout: queue (\d+) command id (0x[0-9a-f]+), (\d+) bytes at sector "
                r"(\d+)$")
POLLED = r"I/O timeout: completion found by polling \(missed interrupt\)$"
ABORTING = r"I/O timeout: aborting queue (\d+) command id (0x[0-9a-f]+)$"
AFTER_ABORT = r"I/O timeout after abort: resetting the controller$"
RECOVERY = r"recovery: (\d+) resets, (\d+) requests retried, (\d+) requests failed$"
STAMP = r"^\[\s*(\d+\.\d+)\] "


def rs(b, bdf, pattern):
    """rsnvme's console lines for controller `bdf` that match `pattern`."""
    return b.lines(rf"rsnvme {re.escape(bdf)}: {pattern}")


def stamp(m):
    """The console time stamp of a matched line (-1 if it has none)."""
    t = re.search(STAMP, m.string)
    return float(t[1]) if t else -1.0


def queues_used(b, bdf):
    """I/O queues rsnvme said it uses at probe (the summary line)."""
    import run
    m = [x for x in b.lines(run.SUMMARY) if x[1] == bdf]
    return int(m[0][6]) if m else None


def check_resets(rec, tag, b, bdf, reason=None, count=None, least=1):
    """rsnvme logged its resets: `count` (exactly, or at least `least`)
    `resetting the controller:` lines (all for `reason` if given), each
    followed by a `reset done:` line that recreated as many I/O queues as
    probe made, and no failed reset."""
    lines = rs(b, bdf, RESETTING)
    reasons = [m[1] for m in lines]
    done = rs(b, bdf, RESET_DONE)
    n = len(lines)
    if count is not None:
        rec(f"{tag}: rsnvme: {count} 'resetting the controller' lines", n == count,
            f"{n}: {reasons[:8]}")
    else:
        rec(f"{tag}: rsnvme: at least {least} 'resetting the controller' lines", n >= least,
            f"{n}: {reasons[:8]}")
    if reason is not None:
        other = [r for r in reasons if r != reason]
        rec(f"{tag}: rsnvme: every reset {reason}", not other, f"other reasons: {other[:8]}")
    rec(f"{tag}: rsnvme: a 'reset done' line for every reset", len(done) == n and n > 0,
        f"{n} resetting and {len(done)} reset done lines")
    used = queues_used(b, bdf)
    counts = sorted({int(m[1]) for m in done})
    rec(f"{tag}: rsnvme: every reset recreated the {used} I/O queues of probe",
        bool(done) and counts == [used], f"I/O queues after resets: {counts}")
    failed = rs(b, bdf, RESET_FAILED)
    rec(f"{tag}: rsnvme: no failed reset", not failed, failed[0][0] if failed else "")


def check_recovery_lines(rec, tag, b, bdf, least_resets=0, failed=0):
    """Each `unbinding` line of rsnvme is followed by its `recovery:` line
    (the next line for that controller); their counts add up to at least
    `least_resets` resets, and to `failed` failed requests unless None."""
    mine = [l for l in b.console.splitlines() if f"rsnvme {bdf}: " in l]
    unbinds = [i for i, l in enumerate(mine) if l.endswith(": unbinding")]
    follow = [re.search(RECOVERY, mine[i + 1]) if i + 1 < len(mine) else None
              for i in unbinds]
    rec(f"{tag}: rsnvme: a 'recovery:' line right after each of the {len(unbinds)} "
        "'unbinding' lines", bool(unbinds) and all(follow),
        "; ".join(mine[i + 1] if i + 1 < len(mine) else "(no next line)"
                  for i, m in zip(unbinds, follow) if not m) or "no unbinding line")
    got = [tuple(int(x) for x in m.groups()) for m in follow if m]
    resets = sum(g[0] for g in got)
    lost = sum(g[2] for g in got)
    rec(f"{tag}: rsnvme: the recovery lines count at least {least_resets} resets",
        bool(got) and resets >= least_resets, f"counts (resets, retried, failed): {got}")
    if failed is not None:
        rec(f"{tag}: rsnvme: the recovery lines count {failed} failed requests",
            bool(got) and lost == failed, f"counts (resets, retried, failed): {got}")


def check_timeout_steps(rec, tag, b, bdf, timeout, least=1):
    """rsnvme's timeout handler went through each step for `least`
    requests at least: the timeout, an Abort, the abort timing out a full
    I/O timeout later, the reset; and in that order."""
    steps = [("'I/O timeout: queue' lines", TIMEOUT_LINE, least),
             ("'aborting' lines", ABORTING, 1),
             ("'timeout after abort' lines", AFTER_ABORT, 1),
             ("'resetting the controller: I/O timeout' lines",
              r"resetting the controller: I/O timeout$", 1),
             ("'reset done' lines", RESET_DONE, 1)]
    first = []
    for what, pattern, n in steps:
        got = rs(b, bdf, pattern)
        rec(f"{tag}: rsnvme: at least {n} {what}", len(got) >= n, f"{len(got)}")
        first.append(stamp(got[0]) if got else -1.0)
    rec(f"{tag}: rsnvme: timeout, abort, timeout after abort, reset, reset done in "
        "that order", all(0 <= a <= c for a, c in zip(first, first[1:])),
        f"first time stamps {first}")
    # The request an abort was sent for waits a whole timeout again.
    waited = first[2] - first[1]
    rec(f"{tag}: rsnvme: the abort timed out a full I/O timeout ({timeout} s) after it "
        f"was sent ({waited:.1f} s)", first[1] >= 0 and waited >= timeout - 0.05)


# --- A known report of the C driver ----------------------------------------

# Linux 6.12.117 models a queue freeze as a lock (lockdep) held by the task
# that started it. The C driver's timeout handler starts freezing the
# namespaces' queues (nvme_dev_disable -> nvme_start_freeze) in the block
# layer's timeout work, and its reset work ends the freeze: lockdep reports
# "BUG: workqueue leaked atomic, lock or RCU" for the timeout work, holding
# only q_usage_counter "locks" taken in nvme_start_freeze. It is the C
# driver's (the kernel has blk_freeze_queue_start_non_owner for a freeze
# that another task ends); a run of the C driver tolerates exactly that
# report, nothing else; rsnvme gets no such leniency. Its suspend
# (nvme_dev_disable, in the PM core's async work) starts the same freeze,
# which its resume ends in another async work: the same report for
# async_run_entry_fn, then lockdep's follow-ups of that "held" freeze: a
# circular dependency between it and the async workqueue, and the release
# in the resume's work ("lock=N->0", lockdep by then turned off). Those are
# tolerated only after such a report, and only while every lock they name
# is the freeze's.
LEAK_BUG = re.compile(r"BUG: workqueue leaked atomic, lock or RCU: kworker/\S+$")
LEAK_WORK = re.compile(r"preempt=0x00000000 lock=0->(\d+) RCU=0->0 "
                       r"workfn=(blk_mq_timeout_work|async_run_entry_fn)$")
LEAK_RELEASE = re.compile(r"preempt=0x00000000 lock=\d+->0 RCU=0->0 workfn=async_run_entry_fn$")
LEAK_HELD = re.compile(r"^\[[\s\d.]+\]  #\d+: \S+ \(&q->q_usage_counter\((io|queue)\)(#\d+)?\)"
                       r"\S*, at: nvme_start_freeze\+")
REPORT_LINE = re.compile(r"^\[[\s\d.]+\] (\s*(\? )?[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+( \[\w+\])?|"
                         r"\s*</?TASK>|Call Trace:|Workqueue: kblockd blk_mq_timeout_work|"
                         r"Workqueue: async async_run_entry_fn|INFO: lockdep is turned off\.|"
                         r"CPU: \d+ UID: \d+ PID: \d+ Comm: kworker/.*|"
                         r"Hardware name: .*|\d+ locks held by kworker/\S+:)\s*$")


def report_end(lines, start):
    """The index of the first `</TASK>` line from `start` on (within 200
    lines), or None."""
    return next((k for k in range(start, min(len(lines), start + 200))
                 if re.search(r"\]\s+</TASK>\s*$", lines[k])), None)


def freeze_followup(lines, i):
    """A lockdep follow-up of the C driver's "held" freeze starting at
    lines[i] (see above), as (index of its last line, the lines other CPUs
    printed inside it), or None: a circular dependency report whose task
    holds only nvme_start_freeze's locks, or the release of those locks in
    an async work."""
    if re.search(r"\] WARNING: possible circular locking dependency detected$", lines[i]):
        try:
            hold = next(k for k in range(i, min(len(lines), i + 20))
                        if lines[k].endswith("but task is already holding lock:"))
            count = next(k for k in range(hold, min(len(lines), hold + 200))
                         if re.search(r"\] \d+ locks? held by kworker/\S+:$", lines[k]))
        except StopIteration:
            return None
        n = int(re.search(r"\] (\d+) locks? held", lines[count])[1])
        held = lines[count + 1:count + 1 + n]
        end = report_end(lines, count + 1 + n)
        inside = lines[i + 1:end] if end is not None else []
        # Another report printed meanwhile keeps the whole block.
        others = [line for line in inside if qemu.BAD_CONSOLE.search(line)
                  and not re.search(r"\] Call Trace:$", line)]
        if (end is not None and n > 0 and all(LEAK_HELD.search(h) for h in held)
                and hold + 1 < len(lines)
                and re.search(r"\(&q->q_usage_counter\((io|queue)\)(#\d+)?\)\S*, at: "
                              r"nvme_start_freeze\+", lines[hold + 1]) and not others):
            return end, []
        return None
    if LEAK_BUG.search(lines[i]) and i + 1 < len(lines) and LEAK_RELEASE.search(lines[i + 1]):
        end = report_end(lines, i + 2)
        if end is not None:
            return end, [line for line in lines[i + 2:end + 1] if not REPORT_LINE.search(line)]
    return None


def without_known_c_reports(console):
    """The console without the C driver's freeze report described above
    (and, after one, its follow-ups); and how many were removed. A report
    that differs in any way stays."""
    lines = console.split("\n")
    out, i, found = [], 0, 0
    while i < len(lines):
        followup = freeze_followup(lines, i) if found else None
        if followup is not None:
            # The "=====" line and the blank line lockdep prints first.
            while out and re.search(r"\]\s*=*\s*$", out[-1]):
                out.pop()
            out += followup[1]
            i = followup[0] + 1
            continue
        if LEAK_BUG.search(lines[i]) and i + 2 < len(lines):
            work = LEAK_WORK.search(lines[i + 1])
            held = int(work[1]) if work else 0
            locks = lines[i + 3:i + 3 + held]
            if (work and re.search(rf"\] {held} locks held by kworker/", lines[i + 2])
                    and held > 0 and all(LEAK_HELD.search(l) for l in locks)):
                j = i + 3 + held
                end = next((k for k in range(j, min(len(lines), j + 60))
                            if re.search(r"\]\s+</TASK>\s*$", lines[k])), None)
                if end is not None:
                    # Only the report's own lines go; anything else printed
                    # meanwhile stays to be checked.
                    out += [l for l in lines[j:end + 1] if not REPORT_LINE.search(l)]
                    found += 1
                    i = end + 1
                    continue
        out.append(lines[i])
        i += 1
    return "\n".join(out), found


def rec_check_boot(driver, check_boot, record):
    """check_boot, but for the C driver without its known freeze report."""
    def check(tag, b):
        if driver == "c":
            console, found = without_known_c_reports(b.console)
            if found:
                print(f"{tag}: tolerated {found} known C driver report(s): 'workqueue "
                      "leaked lock' for nvme_start_freeze (timeout or suspend work)", flush=True)
                b = dataclasses.replace(b, console=console)
        check_boot(tag, b)
    return check


# --- A known report of pciehp ----------------------------------------------

# When PCIe native hotplug removes a device, Linux 6.12.117's pciehp
# interrupt thread holds its slot's reset_lock and takes
# pci_rescan_remove_lock (pciehp_ist -> pciehp_unconfigure_device), then,
# still holding pci_rescan_remove_lock, drops reset_lock around the
# device's removal and takes it back: lockdep reports a "possible circular
# locking dependency" between the two, with the C driver as with rsnvme.
# The report is pciehp's; the hot-unplug scenario (and only it) tolerates
# exactly that report, once: lockdep reports only its first finding and
# stops checking for the rest of the boot. The report must have each line
# below, in this order, naming these two locks and no other, taken where
# pciehp takes them, by pciehp's interrupt thread; anything else, or one
# line more, and it stays on the console and fails the run. Lines that
# another CPU printed in the middle of it stay as well, to be checked.
_RESET = r"&ctrl->reset_lock"
_RESCAN = r"pci_rescan_remove_lock"
_UNCONF = "pciehp_unconfigure_device"
_CLASS = r"\{[^}]*\}-\{\d+:\d+\}"  # lockdep's usage and wait-type marks
_TAINT = r"(?:Not tainted|Tainted:)(?: .*)?"
# A held or wanted lock: its address, class and where it was taken.
_RESET_AT = rf"[0-9a-f]+ \({_RESET}\){_CLASS}, at: {_UNCONF}\+0x[0-9a-f]+/0x[0-9a-f]+"
_RESCAN_AT = rf"[0-9a-f]+ \({_RESCAN}\){_CLASS}, at: {_UNCONF}\+0x[0-9a-f]+/0x[0-9a-f]+"
FRAME = re.compile(r" +(\? )?([\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+( \[\w+\])?")
# (line, count): count 1, "?" (0 or 1), or "frames" (stack frames, at least
# one). A group in a line is the task's name: the same in every line.
PCIEHP_REPORT = [
    (r"=+", 1),
    (r"WARNING: possible circular locking dependency detected", 1),
    (rf"\S+ #\d+ {_TAINT}", 1),
    (r"-+", 1),
    (r"(irq/\d+-pciehp)/\d+ is trying to acquire lock:", 1),
    (_RESET_AT, 1),
    (r"but task is already holding lock:", 1),
    (_RESCAN_AT, 1),
    (r"which lock already depends on the new lock\.", 1),
    (r"the existing dependency chain \(in reverse order\) is:", 1),
    (rf"-> #1 \({_RESCAN}\){_CLASS}:", 1),
    (None, "frames"),
    (rf"-> #0 \({_RESET}\){_CLASS}:", 1),
    (None, "frames"),
    (r"other info that might help us debug this:", 1),
    (r" Possible unsafe locking scenario:", 1),
    (r" +CPU0 +CPU1", 1),
    (r" +---- +----", 1),
    (rf" +lock\({_RESCAN}\);", 1),
    (rf" +lock\({_RESET}\);", 1),
    (rf" +lock\({_RESCAN}\);", 1),
    (rf" +rlock\({_RESET}\);", 1),
    (r" \*\*\* DEADLOCK \*\*\*", 1),
    # 6.12 says "1 lock held by T:", 7.3 "locks held by T: 1, last CPU#N:".
    (r"1 lock held by (irq/\d+-pciehp)/\d+:|"
     r"locks held by (irq/\d+-pciehp)/\d+: 1, last CPU#\d+:", 1),
    (rf" #0: {_RESCAN_AT}", 1),
    (r"stack backtrace:", 1),
    (rf"CPU: \d+ UID: \d+ PID: \d+ Comm: (irq/\d+-pciehp) {_TAINT}", 1),
    # 7.3 spells out the taint flags.
    (r"Tainted: \[[A-Z]\]=\w+(?:, \[[A-Z]\]=\w+)*", "?"),
    (r"Hardware name: .*", "?"),
    (r"Call Trace:", 1),
    (r" <TASK>", 1),
    (None, "frames"),
    (r" </TASK>", 1),
]
# Frames each stack of the report must hold (leaving out the unreliable
# "? " ones): the two links of the chain, then the backtrace.
PCIEHP_FRAMES = [{"pciehp_ist"}, {"pciehp_ist", _UNCONF, "down_read_nested"},
                 {"pciehp_ist", "pciehp_disable_slot", _UNCONF, "down_read_nested"}]
PCIEHP_WHAT = ("pciehp's lockdep report 'possible circular locking dependency' "
               "(pci_rescan_remove_lock vs &ctrl->reset_lock in "
               "pciehp_unconfigure_device)")
STAMPED = re.compile(r"^\[\s*\d+\.\d+\] ?(.*?)\s*$")


def kernel_text(line):
    """A console line without its time stamp and trailing blanks; None for
    a line without a time stamp (not the kernel's)."""
    m = STAMPED.match(line)
    return m[1] if m else None


def _pciehp_line(text):
    """Whether a kernel line may belong to the pciehp report."""
    return text == "" or bool(FRAME.fullmatch(text)) or any(
        pattern and re.fullmatch(pattern, text) for pattern, _ in PCIEHP_REPORT)


def _is_pciehp_report(texts):
    """Whether `texts` (the non-blank lines of a report) are pciehp's."""
    stacks, tasks, i = [], set(), 0
    for pattern, count in PCIEHP_REPORT:
        if count == "frames":
            frames = []
            while i < len(texts) and FRAME.fullmatch(texts[i]):
                m = FRAME.fullmatch(texts[i])
                if not m[1]:
                    frames.append(m[2])
                i += 1
            if not frames:
                return False
            stacks.append(set(frames))
            continue
        m = re.fullmatch(pattern, texts[i]) if i < len(texts) else None
        if m is None:
            if count == "?":
                continue
            return False
        tasks.update(g for g in m.groups() if g)
        i += 1
    return (i == len(texts) and len(tasks) == 1 and
            all(want <= got for want, got in zip(PCIEHP_FRAMES, stacks)))


def without_pciehp_report(console):
    """The console without pciehp's lockdep report described above, and
    how many were removed: at most one. A report that differs in any way
    stays."""
    lines = console.split("\n")
    texts = [kernel_text(l) for l in lines]
    for i, text in enumerate(texts):
        if i == 0 or text != "WARNING: possible circular locking dependency detected":
            continue
        end = next((k for k in range(i, min(len(lines), i + 150)) if texts[k] == " </TASK>"),
                   None)
        if end is None:
            continue
        mine = [k for k in range(i - 1, end + 1)
                if texts[k] is not None and _pciehp_line(texts[k])]
        if _is_pciehp_report([texts[k] for k in mine if texts[k]]):
            drop = set(mine)
            return "\n".join(l for k, l in enumerate(lines) if k not in drop), 1
    return console, 0


# --- Scenarios -------------------------------------------------------------

def controller(b):
    """The controller's PCI address, from the guest's @@DISK lines."""
    bdfs = {d.get("bdf") for d in io_tests.disks(b).values()}
    return bdfs.pop() if len(bdfs) == 1 else None


def guest_timeout(b):
    m = b.lines(r"I/O timeout set to (\d+) s$")
    return int(m[0][1]) if m else TIMEOUT


def rec_reset(ctx, tag="rec-reset"):
    devices = [Q(serial="RSNVMERST", namespaces=[NS(32), NS(32, 4096)])]
    b = ctx.boot(tag, "rec-reset", devices, {"seed": ctx.seed, "resets": RESETS},
                 timeout=300, trace=TRACE + io_tests.SHADOW_TRACE)
    io_tests.check_disks(ctx, tag, b, devices)
    # Each reset clears the controller's shadow doorbells: they are given
    # again before the queues are used.
    io_tests.check_shadow_doorbells(ctx, tag, b, want_enables=1 + RESETS)
    ok = b.lines(r"^@@RESETS ok=(\d+) of (\d+)$")
    ctx.record(f"{tag}: host: {RESETS} resets done under fio",
               bool(ok) and ok[0][1] == str(RESETS), ok[0][0] if ok else "no @@RESETS line")
    n = enables(b)
    ctx.record(f"{tag}: host: QEMU's controller enabled {1 + RESETS} times (probe and each "
               f"reset)", n == 1 + RESETS, f"{n} times")
    bdf = controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        check_resets(ctx.record, tag, b, bdf, reason="requested through sysfs", count=RESETS)
        check_recovery_lines(ctx.record, tag, b, bdf, least_resets=RESETS, failed=0)


def rec_pcicmd(ctx, tag="rec-pcicmd"):
    devices = [Q(serial="RSNVMEPCI", namespaces=[NS(32), NS(32, 4096)])]
    b = ctx.boot(tag, "rec-pcicmd", devices, {"seed": ctx.seed, "timeout": TIMEOUT},
                 single_thread=True,
                 timeout=240, trace=TRACE)
    io_tests.check_disks(ctx, tag, b, devices)
    hold = b.lines(r"^@@HOLD (.*)$")
    print(f"{tag}: {hold[0][1] if hold else 'no @@HOLD line'}; QEMU set CSTS.CFS "
          f"{cfs(b)} times", flush=True)
    n = enables(b)
    ctx.record(f"{tag}: host: QEMU's controller enabled again after the fault (reset)",
               n is not None and n >= 2, f"enabled {n} times")
    bdf = controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        check_resets(ctx.record, tag, b, bdf)
        check_recovery_lines(ctx.record, tag, b, bdf, least_resets=1, failed=0)


# rec-blkdebug: the 4 KiB blocks whose reads and writes the backing store
# fails, and the rules (QEMU's blkdebug: raw format emits read_aio and
# write_aio for each request; flush_to_disk precedes a flush).
BAD_READ = 3 << 20
BAD_WRITE = 5 << 20
BLKDEBUG_RULES = f"""[inject-error]
event = "read_aio"
errno = "5"
sector = "{BAD_READ // 512}"

[inject-error]
event = "write_aio"
errno = "5"
sector = "{BAD_WRITE // 512}"

[inject-error]
event = "flush_to_disk"
errno = "5"
once = "on"
"""
# rsnvme's default max_retries: each failed command is sent this many times
# more before its error is returned.
MAX_RETRIES = 5


def rec_blkdebug(ctx, tag="rec-blkdebug"):
    import tempfile
    with tempfile.TemporaryDirectory(prefix="rsnvme-blkdebug-") as tmp:
        rules = Path(tmp) / "rules.conf"
        rules.write_text(BLKDEBUG_RULES)
        devices = [Q(serial="RSNVMEBLKD", size_mb=16, blkdebug=str(rules))]
        b = ctx.boot(tag, "rec-blkdebug", devices,
                     {"seed": ctx.seed, "bad_read": BAD_READ, "bad_write": BAD_WRITE},
                     timeout=180)
    io_tests.check_disks(ctx, tag, b, devices)
    for op, at in (("READ", BAD_READ), ("WRITE", BAD_WRITE)):
        errs = b.lines(rf"critical medium error, dev \S+, sector {at // 512} op 0x\d:\({op}\)")
        ctx.record(f"{tag}: the block layer reports the {op.lower()} medium error at sector "
                   f"{at // 512}", len(errs) == 1, f"{len(errs)} lines")
    bdf = controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        # The bad read and write each sent 1 + MAX_RETRIES times, the flush
        # twice; nothing reset.
        got = [tuple(int(x) for x in m.groups()) for m in rs(b, bdf, RECOVERY)]
        want = (0, 2 * MAX_RETRIES + 1, 2)
        ctx.record(f"{tag}: rsnvme: the recovery line counts {want[1]} retries and {want[2]} "
                   "failed requests, no reset", got == [want], f"got {got}")


# rec-hotplug: the QEMU ids of the PCIe root port, of the controller
# behind it that is unplugged and of the one then plugged into the port.
HP_PORT, HP_OLD, HP_NEW = "rp0", "nvme0", "nvme9"
HP_SERIALS = ("RSNVMEHP1", "RSNVMEHP2")


def rec_hotplug(ctx, tag="rec-hotplug"):
    """device_del of the controller (behind a PCIe root port, q35) while fio
    runs; once QEMU has let it go (event DEVICE_DELETED), device_add of a
    new one into the same port."""
    import tempfile
    slow = qemu.slow_factor(ctx.cpus)
    # The guest asks for the new controller once the old one is gone from
    # its PCI bus; pciehp powers the slot off (QEMU deletes the device
    # then) a second or so after that. A new device before that finds the
    # slot still taken ("Card not present" in the guest).
    deleted_bound = 30 * math.ceil(slow)
    host = {"replies": [], "deleted": None, "waited": None}

    def on_line(line, qmp):
        if qmp is None:
            return
        if line.startswith("@@UNPLUG"):
            host["replies"].append(("device_del", qmp.command("device_del", id=HP_OLD)))
        elif line.startswith("@@PLUG"):
            t0 = time.monotonic()
            host["deleted"] = qmp.wait_event("DEVICE_DELETED", deleted_bound, device=HP_OLD)
            host["waited"] = time.monotonic() - t0
            if host["deleted"] is None:
                return
            host["replies"].append(("blockdev-add", qmp.command(
                "blockdev-add", **{"node-name": "hp1", "driver": "raw",
                                   "file": {"driver": "file", "filename": str(spare)}})))
            host["replies"].append(("device_add", qmp.command(
                "device_add", driver="nvme", id=HP_NEW, serial=HP_SERIALS[1], drive="hp1",
                bus=HP_PORT)))

    with tempfile.TemporaryDirectory(prefix="rsnvme-hotplug-") as work:
        spare = Path(work) / "spare.img"
        with open(spare, "wb") as f:
            f.truncate(32 << 20)
        devices = [Q(serial=HP_SERIALS[0], size_mb=32, bus=HP_PORT)]
        # Native PCIe hotplug (pciehp) instead of q35's ACPI hotplug.
        extra = ["-device", f"pcie-root-port,id={HP_PORT},chassis=1,slot=1",
                 "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
        b = ctx.boot(tag, "rec-hotplug", devices, {"seed": ctx.seed}, workdir=work,
                     timeout=240, slow=slow, machine="q35", extra_args=extra,
                     on_line=on_line, tolerate=[(PCIEHP_WHAT, without_pciehp_report)])
    waited = f"{host['waited']:.1f} s" if host["waited"] is not None else "never asked"
    ctx.record(f"{tag}: host: QEMU deleted {HP_OLD} (event DEVICE_DELETED) within "
               f"{deleted_bound} s of the guest asking for a new controller ({waited})",
               host["deleted"] is not None)
    for what, reply in host["replies"]:
        ctx.record(f"{tag}: host: QMP {what} accepted", "return" in reply, str(reply))
    sent = [w for w, _ in host["replies"]]
    ctx.record(f"{tag}: host: QMP device_del, then blockdev-add and device_add sent",
               sent == ["device_del", "blockdev-add", "device_add"], str(sent))
    # Each fio job wrote and verified until the disk went away, then got an
    # error: ENOSPC or EIO for a write, or EILSEQ, a verify error, for a
    # read that found the disk's end (the guest checks that fio found no
    # bad data while the disk was there).
    jobs = io_tests.fio_jobs(b, "hotplug")
    ctx.record(f"{tag}: fio reported its {ctx.cpus} jobs, each having written and read, "
               "then failed once its disk went away",
               len(jobs) == ctx.cpus and all(e != 0 and r > 0 and w > 0
                                             for e, r, w in jobs.values()), str(jobs))
    verify = b.lines(r"^@@FIO_VERIFY hotplug (.*)$")
    print(f"{tag}: fio's complaints about data: {verify[0][1] if verify else 'not reported'}",
          flush=True)
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    ctx.record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
               leak[0][0] if leak else "no kmemleak report")
    dma = b.lines(r"^@@DMA_ALLOCATIONS (\S+)$")
    ctx.record(f"{tag}: no DMA allocations left (DMA-API debug)",
               bool(dma) and dma[0][1] == "0", dma[0][0] if dma else "no DMA report")
    state = [m[0] for m in b.lines(r"^@@LOCKDEP .*$")]
    print(f"{tag}: {'; '.join(state) or 'no @@LOCKDEP lines'}", flush=True)
    if ctx.driver == "rust":
        import run
        serials = [m[3] for m in b.lines(run.SUMMARY)]
        ctx.record(f"{tag}: rsnvme: probed the controller, then the new one "
                   f"({', '.join(HP_SERIALS)})", serials == list(HP_SERIALS), str(serials))
        unb = b.lines(r"rsnvme \S+: unbinding$")
        ctx.record(f"{tag}: rsnvme: the removed and the added controller were unbound",
                   len(unb) == 2, f"{len(unb)} unbinding lines")
        # pciehp removes a device that is still there (the attention
        # button, not a surprise removal): the driver shuts it down.
        down = b.lines(r"rsnvme \S+: controller shut down, CSTS \S+ RDY \d CFS 0 SHST 2$")
        ctx.record(f"{tag}: rsnvme: both controllers shut down cleanly (SHST complete)",
                   len(down) == 2, f"{len(down)} shutdown-complete lines")


def rec_timeout(ctx, tag="rec-timeout"):
    devices = [Q(serial="RSNVMETMO", namespaces=[NS(32), NS(32, 4096)])]
    b = ctx.boot(tag, "rec-timeout", devices,
                 {"seed": ctx.seed, "timeout": TIMEOUT, "fire": FIRE}, timeout=240,
                 trace=TRACE)
    io_tests.check_disks(ctx, tag, b, devices)
    # should_fail() tests and counts down `times` without a lock: completions
    # on two vCPUs at once may both get through, so the count is a floor.
    fired = len(b.lines(r"FAULT_INJECTION: forcing a failure"))
    ctx.record(f"{tag}: host: fail_io_timeout hid at least {FIRE} completions (console: "
               f"{fired})", fired >= FIRE, f"{fired} 'FAULT_INJECTION' lines")
    n, a = enables(b), aborts(b)
    ctx.record(f"{tag}: host: QEMU's controller received an Abort command",
               a is not None and a >= 1, f"{a} Abort commands")
    ctx.record(f"{tag}: host: QEMU's controller enabled again after the timeouts (reset)",
               n is not None and n >= 2, f"enabled {n} times")
    bdf = controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        check_timeout_steps(ctx.record, tag, b, bdf, guest_timeout(b),
                            least=max(fired, FIRE))
        check_resets(ctx.record, tag, b, bdf)
        check_recovery_lines(ctx.record, tag, b, bdf, least_resets=1, failed=0)


def rec_stress(ctx, tag="rec-stress"):
    devices = [Q(serial="RSNVMESTR", namespaces=[NS(32), NS(32, 4096)])]
    b = ctx.boot(tag, "rec-stress", devices, {"seed": ctx.seed, "rounds": ROUNDS},
                 timeout=360, trace=TRACE)
    io_tests.check_disks(ctx, tag, b, devices)
    races = b.lines(r"^@@RACE round \d+ (reset rc=\d+|skipped)")
    print(f"{tag}: resets racing the unbind: " + ", ".join(m[1] for m in races), flush=True)
    what = "unbind" if ctx.driver == "c" else "unbind racing a reset"
    ctx.record(f"{tag}: host: {ROUNDS} rounds of reset and {what}",
               len(races) == ROUNDS, f"{len(races)} @@RACE lines")
    n = enables(b)
    # A probe per round and the first one, a reset per round; a reset that
    # won its race against the unbind enables the controller once more.
    want = 1 + 2 * ROUNDS
    ctx.record(f"{tag}: host: QEMU's controller enabled at least {want} times (each probe "
               f"and reset)", n is not None and n >= want, f"{n} times")
    took = [(float(m[2]), m[1]) for m in b.lines(r"^@@TOOK (\S+) ([\d.]+) s$")]
    print(f"{tag}: slowest steps: {sorted(took, reverse=True)[:3]}", flush=True)
    bdf = controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        check_resets(ctx.record, tag, b, bdf, least=ROUNDS)
        check_recovery_lines(ctx.record, tag, b, bdf, least_resets=ROUNDS, failed=None)


# name, function, vCPU counts it runs on (None: every one of io_tests.io_cpus())
SCENARIOS = [
    ("rec-reset", rec_reset, None),
    ("rec-pcicmd", rec_pcicmd, None),
    ("rec-timeout", rec_timeout, None),
    ("rec-blkdebug", rec_blkdebug, None),
    ("rec-hotplug", rec_hotplug, None),
    ("rec-stress", rec_stress, (4,)),
]


# --- Self-test of the rsnvme line checks ------------------------------------

def selftest():
    """The rsnvme console checks against made-up consoles: (name, ok)
    pairs proving they pass what the interface says and catch what it
    forbids, while no rsnvme logs these lines yet."""
    bdf = "0000:00:04.0"
    p = f"rsnvme {bdf}: "

    def console(lines):
        text = "\n".join(f"[{t:12.6f}] {p}{l}" for t, l in lines)
        return qemu.Boot("selftest", text + "\n", 0.0, False, Path("/dev/null"))

    summary = ('model "QEMU NVMe Ctrl" serial "X" firmware "7.2": 2 I/O queue pairs '
               'granted, 2 used, 2 namespaces, max transfer 524288 bytes (0: no limit), '
               'MSI-X x3')

    def run_check(fn, *args, **kw):
        out = []
        fn(lambda name, ok, detail="": out.append(ok) or ok, "t", *args, **kw)
        return all(out)

    good = [(1.0, summary)]
    for i in range(3):
        good += [(2.0 + i, "resetting the controller: requested through sysfs"),
                 (2.5 + i, "reset done: 2 I/O queues, 5 requests requeued")]
    good += [(9.0, "unbinding"), (9.1, "recovery: 3 resets, 5 requests retried, "
                                       "0 requests failed")]
    b = console(good)
    out = [("passes three sysfs resets",
            run_check(check_resets, b, bdf, reason="requested through sysfs", count=3)),
           ("passes the recovery line", run_check(check_recovery_lines, b, bdf, 3, 0))]
    b = console(good[:-2] + [good[-2], (9.05, "controller shut down, CSTS 0x9"), good[-1]])
    out.append(("finds a recovery line that does not follow 'unbinding'",
                not run_check(check_recovery_lines, b, bdf, 3, 0)))
    out.append(("finds too few resets", not run_check(check_resets, console(good), bdf,
                                                      count=4)))
    b = console(good[:3] + [(2.6, "reset done: 1 I/O queues, 0 requests requeued")] +
                good[4:])
    out.append(("finds a reset with fewer I/O queues",
                not run_check(check_resets, b, bdf, count=3)))
    b = console(good[:-1] + [(9.1, "recovery: 3 resets, 5 requests retried, "
                                   "1 requests failed")])
    out.append(("finds a failed request", not run_check(check_recovery_lines, b, bdf, 3, 0)))
    b = console(good + [(9.5, "reset failed: controller is dead, failing its I/O")])
    out.append(("finds a failed reset", not run_check(check_resets, b, bdf, count=3)))
    steps = [(1.0, summary),
             (4.0, "I/O timeout: queue 1 command id 0x1011, 4096 bytes at sector 2048"),
             (4.0, "I/O timeout: aborting queue 1 command id 0x1011"),
             (7.0, "I/O timeout after abort: resetting the controller"),
             (7.0, "resetting the controller: I/O timeout"),
             (7.2, "reset done: 2 I/O queues, 1 requests requeued")]
    out.append(("passes timeout, abort, timeout after abort, reset",
                run_check(check_timeout_steps, console(steps), bdf, 3)))
    early = steps[:3] + [(5.0, steps[3][1])] + steps[4:]
    out.append(("finds an abort not given a full timeout",
                not run_check(check_timeout_steps, console(early), bdf, 3)))
    out.append(("finds a missing abort",
                not run_check(check_timeout_steps, console(steps[:2] + steps[3:]), bdf, 3)))
    report = ["[   19.5] BUG: workqueue leaked atomic, lock or RCU: kworker/0:1H[33]",
              "[   19.5]      preempt=0x00000000 lock=0->2 RCU=0->0 workfn=blk_mq_timeout_work",
              "[   19.5] 2 locks held by kworker/0:1H/33:",
              "[   19.5]  #0: ffff88 (&q->q_usage_counter(io)){++++}-{0:0}, at: "
              "nvme_start_freeze+0x3b/0x52 [nvme_core]",
              "[   19.5]  #1: ffff88 (&q->q_usage_counter(queue)#2){+.+.}-{0:0}, at: "
              "nvme_start_freeze+0x3b/0x52 [nvme_core]",
              "[   19.5] CPU: 0 UID: 0 PID: 33 Comm: kworker/0:1H Not tainted 6.12.117 #1 ",
              "[   19.5] Workqueue: kblockd blk_mq_timeout_work",
              "[   19.5] Call Trace:", "[   19.5]  <TASK>", "[   19.5]  dump_stack_lvl+0x7f/0x8c",
              "[   19.5]  ? kthread_park+0x58/0x58", "[   19.5]  </TASK>"]

    def bad_after(lines):
        text, _ = without_known_c_reports("\n".join(["@@BOOTED"] + lines + ["@@DONE"]))
        return qemu.Boot("selftest", text, 0.0, False, Path("/dev/null")).bad_lines

    out.append(("tolerates the C driver's freeze report", not bad_after(report)))
    other = report[:4] + [report[4].replace("nvme_start_freeze", "rsnvme_reset")] + report[5:]
    out.append(("keeps a leaked-lock report with another lock", bool(bad_after(other))))
    mixed = report[:9] + ["[   19.5] WARNING: CPU: 1 PID: 7 at x.c:1 f+0x1/0x2"] + report[9:]
    out.append(("keeps a warning printed inside the report", bool(bad_after(mixed))))
    held = report[3:5]
    circular = ["[   19.6] ======================================================",
                "[   19.6] WARNING: possible circular locking dependency detected",
                "[   19.6] kworker/u8:3/61 is trying to acquire lock:",
                "[   19.6] ffff88 ((wq_completion)async){+.+.}-{0:0}, at: "
                "process_scheduled_works+0x191/0x3cd",
                "[   19.6] but task is already holding lock:",
                held[0].replace(" #0: ", "", 1),
                "[   19.6] -> #1 (&disk->open_mutex){+.+.}-{3:3}:",
                "[   19.6]  *** DEADLOCK ***",
                "[   19.6] 2 locks held by kworker/u8:3/61:"] + held + [
                "[   19.6] stack backtrace:", "[   19.6] Call Trace:", "[   19.6]  <TASK>",
                "[   19.6]  dump_stack_lvl+0x7f/0x8c", "[   19.6]  </TASK>"]
    release = ["[   19.7] BUG: workqueue leaked atomic, lock or RCU: kworker/u8:3[61]",
               "[   19.7]      preempt=0x00000000 lock=2->0 RCU=0->0 workfn=async_run_entry_fn",
               "[   19.7] INFO: lockdep is turned off.",
               "[   19.7] ACPI: PM: Preparing to enter system sleep state S3",
               "[   19.7] Workqueue: async async_run_entry_fn", "[   19.7] Call Trace:",
               "[   19.7]  <TASK>", "[   19.7]  dump_stack_lvl+0x7f/0x8c", "[   19.7]  </TASK>"]
    out.append(("tolerates the freeze's circular dependency and release after its report",
                not bad_after(report + circular + release)))
    out.append(("keeps the follow-ups without the report before them",
                bool(bad_after(circular)) and bool(bad_after(release))))
    foreign = [line.replace("nvme_start_freeze", "rsnvme_suspend") for line in circular]
    out.append(("keeps a circular dependency with other locks held",
                bool(bad_after(report + foreign))))
    out += pciehp_selftest()
    return out


# pciehp's report as this kernel printed it (2 vCPUs, C driver), and as
# Linux 7.3.4 did (1 vCPU, rsnvme).
PCIEHP_SAMPLE = ROOT / "tests" / "data" / "pciehp-lockdep-6.12.117.log"
PCIEHP_SAMPLE_7_3 = ROOT / "tests" / "data" / "pciehp-lockdep-7.3.4.log"


def pciehp_selftest():
    """(name, ok) pairs: without_pciehp_report takes pciehp's report out,
    and nothing else."""
    report = PCIEHP_SAMPLE.read_text().rstrip("\n").split("\n")

    def bad_after(lines, tolerated=1):
        text = "\n".join(["@@BOOTED"] + lines + ["@@DONE"])
        text, found = without_pciehp_report(text)
        b = qemu.Boot("selftest", text, 0.0, False, Path("/dev/null"))
        return b.bad_lines if found == tolerated else [f"tolerated {found} reports"]

    def edit(old, new, which=None):
        """The report with `old` replaced by `new` in every line, or only in
        line number `which`."""
        return [l.replace(old, new) if which in (None, i) else l
                for i, l in enumerate(report)]

    at = next(i for i, l in enumerate(report) if "pciehp_disable_slot" in l and "]  p" in l)
    other_cpu = "[   11.540000] rsnvme 0000:01:00.0: unbinding"
    warn = "[   11.540000] WARNING: CPU: 0 PID: 7 at x.c:1 f+0x1/0x2"
    held = next(i for i, l in enumerate(report) if " #0: " in l)
    two_held = edit("1 lock held", "2 locks held")
    report_7_3 = PCIEHP_SAMPLE_7_3.read_text().rstrip("\n").split("\n")
    return [
        ("tolerates pciehp's lockdep report", not bad_after(report)),
        ("tolerates pciehp's lockdep report as 7.3 prints it", not bad_after(report_7_3)),
        ("keeps 7.3's report with another lock held",
         bool(bad_after([l.replace("held by irq/24-pciehp/28: 1,", "held by irq/24-pciehp/28: 2,")
                         for l in report_7_3], 0))),
        ("tolerates it with another CPU's line inside, which stays",
         not bad_after(report[:9] + [other_cpu] + report[9:]) and
         other_cpu in without_pciehp_report("\n".join(report[:9] + [other_cpu] +
                                                      report[9:]))[0]),
        ("keeps a warning printed inside pciehp's report",
         bool(bad_after(report[:40] + [warn] + report[40:]))),
        ("keeps a circular dependency with another lock",
         bool(bad_after(edit("&ctrl->reset_lock", "&rq->queue_lock"), 0))),
        ("keeps a circular dependency of another task",
         bool(bad_after(edit("irq/24-pciehp", "kworker/0:1"), 0))),
        ("keeps one taken elsewhere",
         bool(bad_after(edit("at: pciehp_unconfigure_device", "at: rsnvme_remove"), 0))),
        ("keeps one with another lock held",
         bool(bad_after(two_held[:held + 1] + [two_held[held].replace(" #0: ", " #1: ")] +
                        two_held[held + 1:], 0))),
        ("keeps one whose backtrace is not pciehp's removal",
         bool(bad_after(edit("pciehp_disable_slot", "rsnvme_probe", at), 0))),
        ("keeps a second report", bool(bad_after(report + report))),
    ]


def run_scenarios(label, scenarios, kdir, record, check_boot, only="", driver=None,
                  selftests=()):
    """Runs the (name, function, vCPU counts) `scenarios` whose name contains
    `only`, on every vCPU count of io_tests.io_cpus() they allow, against
    `driver`; records `selftests` ((name, ok) pairs) first. `label` prefixes
    the summary lines. Returns the QEMU seconds per scenario run."""
    todo = [s for s in scenarios if only in s[0]]
    if not todo:
        return {}
    for name, ok in selftests:
        record(f"{label}: line checks {name}", ok)
    driver = driver or io_tests.IO_DRIVER
    seed = io_tests.io_seed()
    print(f"{label}: driver {driver}, seed {seed}", flush=True)
    initrd = io_tests.io_initramfs(kdir)
    times, slow = {}, {}
    for cpus in io_tests.io_cpus():
        ctx = io_tests.Ctx(kdir, initrd, record, rec_check_boot(driver, check_boot, record),
                           driver, seed, cpus)
        for name, fn, only_cpus in todo:
            if only_cpus is None or cpus in only_cpus:
                fn(ctx, tag=f"{name}-{cpus}cpu")
        times.update(ctx.times)
        slow.update(ctx.slow)
    print(f"{label}: QEMU seconds per scenario (slow factor): " +
          ", ".join(f"{n} {s:.1f} ({slow[n]:.1f})" for n, s in times.items()) +
          f"; total {sum(times.values()):.1f}", flush=True)
    return times


def run_all(kdir, record, check_boot, only="", driver=None):
    """Runs the recovery scenarios whose name contains `only`."""
    selftests = selftest() if any(only in s[0] for s in SCENARIOS) else ()
    return run_scenarios("rec", SCENARIOS, kdir, record, check_boot, only, driver, selftests)


def main(doc=__doc__, run=None):
    """The command line of a scenario file: -k NAME, --driver c|rust."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("-k", default="", help="only scenarios containing this")
    ap.add_argument("--driver", choices=("c", "rust"), default=io_tests.IO_DRIVER)
    args = ap.parse_args()
    import run as harness
    (run or run_all)(qemu.kernel(), harness.record, harness.check_boot, args.k, args.driver)
    harness.finish()


if __name__ == "__main__":
    main()
