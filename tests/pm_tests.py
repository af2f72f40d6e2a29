#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Shutdown, suspend and resume scenarios (issue 10): QEMU boots running
tests/guest/pm-*.sh against one driver:

  pm-sleep   10 system sleep cycles (pm_test devices and platform in turn)
             while fio writes and verifies two namespaces; with rsnvme's
             test build also a resume that fails (fault=6);
  pm-s3      real suspend-to-RAM (ACPI S3) cycles under fio, each woken by
             the host over QMP (system_wakeup);
  pm-reboot  a pattern written, then `reboot -f`: the driver's shutdown
             must flush and shut the controller down, then turn bus
             mastering off; the host checks the image files;
  pm-reboot-stuck  the same with one write still in flight at the reboot
             (its completion hidden by fail_io_timeout): the shutdown must
             still flush, delete the queues and shut the controller down
             (CC.SHN) before it takes the request back, and turn bus
             mastering off.

Both drivers must pass what the guest checks (fio's verify, patterns,
bounded waits) and what QEMU's trace shows the emulated controller saw.
With rsnvme its console lines are checked too: one suspend and one resume
line per cycle, the shutdown line with CSTS.SHST complete.

tests/run.py calls run_all() after the recovery scenarios. Alone:

    tests/pm_tests.py [-k NAME] [--driver c|rust]

(uses the cached kernel and the rsnvme.ko already built; builds nothing).
"""

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "qemu-ci"))
sys.path.insert(0, str(ROOT / "tests"))
import io_tests  # noqa: E402
import qemu  # noqa: E402
import recovery_tests as rt  # noqa: E402

Q = qemu.Nvme
NS = qemu.Ns

CYCLES = 10      # pm-sleep
S3_CYCLES = 3    # pm-s3
TRACE = ("pci_nvme_mmio_start_success", "pci_nvme_mmio_shutdown_set", "pci_nvme_flush_ns",
         "pci_cfg_read")
# pm-reboot also records config space writes (the command register's Bus
# Master Enable), I/O queue deletions and CC.EN cleared.
REBOOT_TRACE = TRACE + ("pci_cfg_write", "pci_nvme_del_sq", "pci_nvme_mmio_stopped")
STUCK_TIMEOUT = 3  # pm-reboot-stuck: the driver's I/O timeout (s, idle host)
# A write of the controller's PCI command register (config offset 4).
COMMAND_WRITE = r"\bpci_cfg_write nvme \S+ @0x4 <- (0x[0-9a-f]+)$"
BUS_MASTER = 0x4

# rsnvme's console lines (each prefixed "rsnvme <BDF>: ").
QUIET = (r"(suspend|shutdown): (write cache flushed|no volatile write cache), (\d+) I/O "
         r"queues deleted, controller shut down \(CSTS (0x[0-9a-f]+): RDY (\d) CFS (\d) "
         r"SHST (\d)\)$")
RESUMING = r"resuming the controller$"
RESUME_DONE = r"resume done: (\d+) I/O queues, (\d+) requests requeued$"
RESUME_FAILED = r"resume failed: controller is dead, failing its I/O$"
STILL_IN_FLIGHT = (r"shutdown: (\d+) requests still in flight after (\d+) ms: shutting the "
                   r"controller down$")
TAKEN_BACK = r"shutdown: (\d+) requests taken back$"


def shutdowns(b):
    """QEMU's shutdown notifications (CC.SHN) after the guest's first mark."""
    return rt.after_mark(b, r"\bpci_nvme_mmio_shutdown_set\b")


def last_mark(b):
    """QEMU's trace lines after the guest's last mark (all without one)."""
    lines = b.trace.splitlines()
    marks = [i for i, line in enumerate(lines) if re.search(rt.MARK, line)]
    return lines[marks[-1]:] if marks else lines


def check_master_off(rec, tag, b):
    """The guest's last write of the controller's PCI command register
    turned Bus Master Enable off, after the controller was told to shut
    down (CC.SHN): no DMA from it across a kexec, whatever state it is in."""
    lines = b.trace.splitlines()
    shn = [i for i, line in enumerate(lines) if re.search(r"\bpci_nvme_mmio_shutdown_set\b", line)]
    writes = [(i, int(m[1], 16)) for i, m in
              ((i, re.search(COMMAND_WRITE, line)) for i, line in enumerate(lines)) if m]
    last = writes[-1] if writes else None
    rec(f"{tag}: host: bus mastering turned off after the shutdown (QEMU's trace: the last "
        "command register write clears Bus Master Enable, after CC.SHN)",
        bool(shn) and last is not None and last[0] > shn[-1] and not last[1] & BUS_MASTER,
        f"last command register write {lines[last[0]] if last else None!r}, "
        f"last CC.SHN at trace line {shn[-1] if shn else None}, that write at "
        f"{last[0] if last else None}")


def check_quiet(rec, tag, b, bdf, what, count):
    """rsnvme logged `count` `what:` lines, each with the write cache
    flushed, every I/O queue of probe deleted and CSTS.SHST 2 (complete)."""
    lines = [m for m in rt.rs(b, bdf, QUIET) if m[1] == what]
    rec(f"{tag}: rsnvme: {count} '{what}:' lines", len(lines) == count,
        f"{len(lines)}: {[m[0] for m in lines[:2]]}")
    used = rt.queues_used(b, bdf)
    bad = [m[0] for m in lines
           if m[2] != "write cache flushed" or int(m[3]) != used or m[7] != "2"
           or m[6] != "0"]
    rec(f"{tag}: rsnvme: each '{what}' flushed, deleted the {used} I/O queues and "
        "completed the shutdown (SHST 2)", bool(lines) and not bad, "; ".join(bad[:2]))


def check_resumes(rec, tag, b, bdf, count):
    """`count` resumes, each logged as begun and done with every I/O queue
    of probe, none failed; suspend and resume lines alternate."""
    begun = rt.rs(b, bdf, RESUMING)
    done = rt.rs(b, bdf, RESUME_DONE)
    used = rt.queues_used(b, bdf)
    rec(f"{tag}: rsnvme: {count} 'resuming' and 'resume done' lines",
        len(begun) == count and len(done) == count, f"{len(begun)} and {len(done)}")
    rec(f"{tag}: rsnvme: every resume brought back the {used} I/O queues of probe",
        bool(done) and {int(m[1]) for m in done} == {used},
        f"{sorted({int(m[1]) for m in done})}")
    failed = rt.rs(b, bdf, RESUME_FAILED)
    rec(f"{tag}: rsnvme: no failed resume", not failed, failed[0][0] if failed else "")
    mine = [line for line in b.console.splitlines() if f"rsnvme {bdf}: " in line]
    order = "".join("s" if re.search(r": suspend: ", line) else "r"
                    for line in mine if re.search(rf": suspend: |{RESUME_DONE}", line))
    rec(f"{tag}: rsnvme: suspend and resume lines alternate", order == "sr" * count,
        order)


def pm_sleep(ctx, tag="pm-sleep"):
    devices = [Q(serial="RSNVMESLP", namespaces=[NS(32), NS(32, 4096)])]
    b = ctx.boot(tag, "pm-sleep", devices, {"seed": ctx.seed, "cycles": CYCLES},
                 timeout=300, trace=TRACE)
    io_tests.check_disks(ctx, tag, b, devices)
    states = b.lines(r"^@@PM (.*)$")
    print(f"{tag}: {states[0][1] if states else 'no @@PM line'}", flush=True)
    ok = b.lines(r"^@@SLEEPS ok=(\d+) of (\d+)$")
    ctx.record(f"{tag}: host: {CYCLES} sleep cycles under fio returned 0",
               bool(ok) and ok[0][1] == str(CYCLES), ok[0][0] if ok else "no @@SLEEPS line")
    n = rt.enables(b)
    dead = 1 if ctx.driver == "rust" else 0
    # Probe, each resume; with rsnvme then the fault=6 probe (its resume
    # never enables).
    want = 1 + CYCLES + dead
    ctx.record(f"{tag}: host: QEMU's controller enabled {want} times (probes and resumes)",
               n == want, f"{n} times")
    n = shutdowns(b)
    ctx.record(f"{tag}: host: QEMU's controller told to shut down at least {CYCLES} times",
               n is not None and n >= CYCLES, f"{n} times")
    bdf = rt.controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        before = b.console.split("@@FAULT 6 start")[0]
        first = qemu.Boot(b.name, before, b.seconds, b.timed_out, b.log)
        check_quiet(ctx.record, tag, first, bdf, "suspend", CYCLES)
        check_resumes(ctx.record, tag, first, bdf, CYCLES)
        rt.check_recovery_lines(ctx.record, tag, first, bdf, least_resets=0, failed=0)
        after = qemu.Boot(b.name, b.console.split("@@FAULT 6 start")[-1], b.seconds,
                          b.timed_out, b.log)
        failed = rt.rs(after, bdf, RESUME_FAILED)
        ctx.record(f"{tag}: rsnvme: fault=6: the resume failed and said the controller is "
                   "dead", len(failed) == 1, f"{len(failed)} lines")


def s3_waker(record, tag):
    """An on_line for qemu.boot: on each @@SUSPEND line, waits (bounded)
    until QEMU reports the guest suspended, then wakes it over QMP."""
    woken = []

    def on_line(line, qmp):
        if not line.startswith("@@SUSPEND") or qmp is None:
            return
        deadline = time.monotonic() + 60 * qemu.slow_factor(2)
        status = None
        while time.monotonic() < deadline:
            status = qmp.command("query-status").get("return", {}).get("status")
            if status == "suspended":
                break
            time.sleep(0.2)
        reply = qmp.command("system_wakeup")
        woken.append((line, status, "return" in reply))
    return on_line, woken


def pm_s3(ctx, tag="pm-s3"):
    devices = [Q(serial="RSNVMES3", namespaces=[NS(32), NS(32, 4096)])]
    on_line, woken = s3_waker(ctx.record, tag)
    b = ctx.boot(tag, "pm-s3", devices, {"seed": ctx.seed, "cycles": S3_CYCLES},
                 timeout=300, trace=TRACE, on_line=on_line)
    io_tests.check_disks(ctx, tag, b, devices)
    ctx.record(f"{tag}: host: the guest was suspended, then woken over QMP, "
               f"{S3_CYCLES} times",
               len(woken) == S3_CYCLES and all(s == "suspended" and ok for _, s, ok in woken),
               str(woken))
    ok = b.lines(r"^@@S3S ok=(\d+) of (\d+)$")
    ctx.record(f"{tag}: host: {S3_CYCLES} suspend-to-RAM cycles under fio returned 0",
               bool(ok) and ok[0][1] == str(S3_CYCLES), ok[0][0] if ok else "no @@S3S line")
    n = rt.enables(b)
    ctx.record(f"{tag}: host: QEMU's controller enabled {1 + S3_CYCLES} times (probe and "
               "each resume)", n == 1 + S3_CYCLES, f"{n} times")
    bdf = rt.controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        check_quiet(ctx.record, tag, b, bdf, "suspend", S3_CYCLES)
        check_resumes(ctx.record, tag, b, bdf, S3_CYCLES)
        rt.check_recovery_lines(ctx.record, tag, b, bdf, least_resets=0, failed=0)


def reboot_boot(ctx, tag, serial, env, timeout):
    """Boots tests/guest/pm-reboot.sh (with `env`) on one controller of two
    namespaces and checks what every reboot scenario must show: the disks,
    the reboot after the script, and the pattern in each image."""
    devices = [Q(serial=serial, namespaces=[NS(16), NS(16, 4096)])]
    with tempfile.TemporaryDirectory(prefix=f"rsnvme-{tag}-") as work:
        b = ctx.boot(tag, "pm-reboot", devices, env, workdir=work, timeout=timeout,
                     trace=REBOOT_TRACE)
        nsids = io_tests.check_disks(ctx, tag, b, devices)
        after = b.console.split("\n@@DONE ")[-1]
        ctx.record(f"{tag}: the guest rebooted after its script (kernel: 'reboot: "
                   "Restarting system')", "reboot: Restarting system" in after
                   and b.returncode == 0, f"QEMU exit status {b.returncode}")
        for nsid in sorted(nsids):
            image = Path(work) / f"nvme0n{nsid}.img"
            io_tests.check_image(ctx, tag, f"ns{nsid}", image,
                                 [(0, 4 << 20, ctx.seed + nsid)])
    return b


def pm_reboot(ctx, tag="pm-reboot"):
    b = reboot_boot(ctx, tag, "RSNVMERBT", {"seed": ctx.seed}, 120)
    n = shutdowns(b)
    ctx.record(f"{tag}: host: QEMU's controller was told to shut down", n is not None and n >= 1,
               f"{n} times")
    bdf = rt.controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        flushes = rt.after_mark(b, r"\bpci_nvme_flush_ns\b")
        ctx.record(f"{tag}: host: QEMU's controller was asked to flush both namespaces",
                   flushes is not None and flushes >= 2, f"{flushes} flushes")
        check_quiet(ctx.record, tag, b, bdf, "shutdown", 1)
    check_master_off(ctx.record, tag, b)


def pm_reboot_stuck(ctx, tag="pm-reboot-stuck"):
    b = reboot_boot(ctx, tag, "RSNVMESTK", {"seed": ctx.seed, "stuck": STUCK_TIMEOUT}, 180)
    # From the guest's last mark, with the write in flight, on: the shutdown.
    shutdown = last_mark(b)

    def at(pattern):
        return [i for i, line in enumerate(shutdown) if re.search(pattern, line)]
    shn = at(r"\bpci_nvme_mmio_shutdown_set\b")
    ctx.record(f"{tag}: host: QEMU's controller was told to shut down (CC.SHN) with the "
               "write in flight", len(shn) >= 1, f"{len(shn)} times")
    deleted = at(r"\bpci_nvme_del_sq\b")
    ctx.record(f"{tag}: host: the I/O queues were deleted before CC.SHN",
               bool(deleted) and bool(shn) and max(deleted) < shn[0],
               f"Delete I/O SQ at trace lines {deleted}, CC.SHN at {shn[:1]}")
    stopped = at(r"\bpci_nvme_mmio_stopped\b")
    ctx.record(f"{tag}: host: the controller was not disabled (CC.EN=0) before CC.SHN",
               bool(shn) and all(i > shn[0] for i in stopped),
               f"CC.EN cleared at trace lines {stopped}, CC.SHN at {shn[:1]}")
    check_master_off(ctx.record, tag, b)
    bdf = rt.controller(b)
    if ctx.driver == "rust" and ctx.record(f"{tag}: host: one controller", bdf is not None):
        flushes = at(r"\bpci_nvme_flush_ns\b")
        ctx.record(f"{tag}: host: QEMU's controller was asked to flush both namespaces "
                   "with the write in flight", len(flushes) >= 2, f"{len(flushes)} flushes")
        used = rt.queues_used(b, bdf)
        ctx.record(f"{tag}: host: all {used} I/O queues deleted", len(deleted) == used,
                   f"{len(deleted)} Delete I/O SQ commands")
        waited = rt.rs(b, bdf, STILL_IN_FLIGHT)
        ctx.record(f"{tag}: rsnvme: the shutdown found the write still in flight",
                   len(waited) == 1 and waited[0][1] == "1",
                   waited[0][0] if waited else "no line")
        check_quiet(ctx.record, tag, b, bdf, "shutdown", 1)
        back = rt.rs(b, bdf, TAKEN_BACK)
        ctx.record(f"{tag}: rsnvme: the write was taken back after the shutdown",
                   len(back) == 1 and back[0][1] == "1", back[0][0] if back else "no line")


# name, function, vCPU counts it runs on (None: every one of io_tests.io_cpus())
SCENARIOS = [
    ("pm-sleep", pm_sleep, None),
    ("pm-s3", pm_s3, (2,)),
    ("pm-reboot", pm_reboot, (2,)),
    ("pm-reboot-stuck", pm_reboot_stuck, (2,)),
]


def run_all(kdir, record, check_boot, only="", driver=None):
    """Runs the shutdown/suspend/resume scenarios whose name contains `only`."""
    return rt.run_scenarios("pm", SCENARIOS, kdir, record, check_boot, only, driver)


if __name__ == "__main__":
    rt.main(__doc__, run_all)
