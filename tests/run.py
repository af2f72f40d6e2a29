#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make test`: every rsnvme test, ending with `N passed, N failed`.

Host checks first (cargo unit tests, rustfmt, checkpatch, the generated
header, the C shim's size, the bench's table code), then the kernel and module builds (with clippy,
no warnings allowed), then QEMU boots under several device setups whose
console output is checked line by line.

Usage: tests/run.py [-k SUBSTRING]   (only QEMU scenarios whose name matches)

The kernel is KVER's (qemu-ci/env.sh): 6.12 by default, where a run without
-k ends with Linux 7.3's kernel and module builds, lints and a smoke subset
of the QEMU scenarios (SMOKE_7_3; RSNVME_SMOKE_7_3=0 leaves it out); with
KVER=7.3 (`make test KVER=7.3`) every test runs on 7.3.

Every QEMU run and every wait in the guest is bounded by a time for an idle
host times a slowness factor derived from the host's load average, its
cores and the guest's vCPUs (qemu-ci/qemu.py, slow_factor); RSNVME_SLOW=F
sets the factor. Checks never depend on speed, only the bounds do.
"""

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "qemu-ci"))
sys.path.insert(0, str(ROOT / "tests"))
import qemu  # noqa: E402

passed = 0
failed = 0


def record(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL: {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def finish():
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or not passed else 0)


# --- Host checks --------------------------------------------------------


def host_unit_tests():
    out = subprocess.run(["cargo", "test", "--quiet", "--", "--format=pretty"],
                         cwd=ROOT / "rust_core", stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    cases = re.findall(r"^test (\S+) \.\.\. (ok|FAILED)$", out.stdout, re.M)
    for name, res in cases:
        record(f"host: {name}", res == "ok")
    if out.returncode != 0 or not cases:
        record("host: cargo test", False, out.stdout[-3000:])


# The share of rust_core's lines (test modules left out) in which the
# compiler refuses `unsafe` (tests/unsafe_share.py): the crate root denies
# `unsafe_code` and only items marked `#[allow(unsafe_code)]` may hold it.
# It may grow, never fall below this. The share by file (files without any
# allowed item) has its own floor.
SAFE_SHARE_FLOOR = 80.0
SAFE_FILE_SHARE_FLOOR = 70.0


def safe_share():
    import unsafe_share
    by_item, by_file, files = unsafe_share.shares(ROOT / "rust_core")
    d, t = by_item["without tests"]
    share = 100 * d / t
    record(f"layout: unsafe refused by the compiler in {share:.1f}% of rust_core lines "
           f"(at least {SAFE_SHARE_FLOOR}%)", share >= SAFE_SHARE_FLOOR,
           "tests/unsafe_share.py lists the files")
    d, t = by_file["without tests"]
    share = 100 * d / t
    record(f"layout: {share:.1f}% of rust_core lines in files without an unsafe item "
           f"(at least {SAFE_FILE_SHARE_FLOOR}%)", share >= SAFE_FILE_SHARE_FLOOR,
           "tests/unsafe_share.py lists the files")
    root = (ROOT / "rust_core" / "rsnvme_core.rs").read_text().splitlines()
    record("layout: the crate root has #![deny(unsafe_code)]", unsafe_share.ROOT_DENY in root)
    # The counting itself, on made-up lines: an allowed method with a
    # signature over several lines, an allowed static whose closing
    # brackets are indented, a safe method and a safe static after them.
    sample = """impl X {
    /// Docs.
    #[allow(unsafe_code)]
    fn a(
        x: u32,
    ) -> u32 {
        unsafe { f(x, "}") }
    }

    fn b() {}
}

// SAFETY: Zeroes.
#[allow(unsafe_code)]
static K: S<u8> =
    S(unsafe {
            z()
        });
static L: u8 = 0;""".splitlines()
    want = [1, 2, 3, 4, 5, 6, 7] + [12, 13, 14, 15, 16, 17]
    got = [i for i, m in enumerate(unsafe_share.allowed_lines(sample)) if m]
    record("layout: unsafe_share counts exactly the lines of allowed items (made-up input)",
           got == want, f"got lines {got}, want {want}")
    logic = [f for f, (_, allowed) in files.items()
             if allowed and not f.startswith("sys/") and f != "ffi.rs"]
    record("layout: only sys/ and ffi.rs may hold unsafe code", not logic, ", ".join(logic))


def shim_guard():
    shim = ROOT / "c_shim" / "rsnvme_shim.c"
    lines = [l for l in shim.read_text().splitlines() if l.strip()]
    record("shim: at most 50 non-blank lines", len(lines) <= 50, f"{len(lines)} lines")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", shim.read_text(), flags=re.S)
    logic = [l for l in code.splitlines()
             if re.search(r"\b(if|for|while|switch|goto|do)\b|\?", l)]
    record("shim: no control flow", not logic, "; ".join(logic))
    for hook in ("my_rust_probe", "my_rust_remove", "my_rust_shutdown", "my_rust_suspend",
                 "my_rust_resume", "my_rust_dev_groups"):
        record(f"shim: forwards to {hook}", re.search(rf"\b{hook}\b", code) is not None)
    record("shim: includes the generated header",
           '#include "my_pci_rust_bindings.h"' in code)


def header_fresh():
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "h.h"
        res = subprocess.run(["cbindgen", "-q", "--config", "cbindgen.toml", "--crate",
                              "rsnvme_core", "--output", str(out)],
                             cwd=ROOT / "rust_core", stderr=subprocess.PIPE, text=True)
        if not record("header: cbindgen runs", res.returncode == 0, res.stderr):
            return
        want = out.read_text()
    have = (ROOT / "include" / "my_pci_rust_bindings.h").read_text()
    diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True)))
    record("header: include/my_pci_rust_bindings.h is up to date (make header)",
           have == want, diff)


def rustfmt():
    res = subprocess.run(["/usr/bin/rustfmt", "--check", "--edition", "2021",
                          "rust_core/rsnvme_core.rs"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    record("lint: rustfmt --check", res.returncode == 0, res.stdout[-3000:])


def checkpatch(ksrc, tag=""):
    res = subprocess.run(["perl", str(ksrc / "scripts" / "checkpatch.pl"), "--strict",
                          "--no-tree", "--show-types", "-f", "c_shim/rsnvme_shim.c"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    clean = "total: 0 errors, 0 warnings, 0 checks" in res.stdout
    record(f"{tag}lint: checkpatch.pl --strict c_shim/rsnvme_shim.c", clean, res.stdout[-3000:])


# --- QEMU scenarios -------------------------------------------------------

# CAP fields as QEMU 7.2 emulates them (hw/nvme/ctrl.c, nvme_init_ctrl).
QEMU_CAP = {"MQES": 2048, "CQR": 1, "TO": 7500, "DSTRD": 0, "MPSMIN": 4096,
            "MPSMAX": 65536, "CSS": 0xC1}
CAP_LINE = (r"rsnvme (\S+): CAP (0x[0-9a-f]+): MQES (\d+) CQR (\d) TO (\d+) ms "
            r"DSTRD (\d+) MPSMIN (\d+) MPSMAX (\d+) CSS (0x[0-9a-f]+) CMBS (\d)")
CAP_FIELDS = ("MQES", "CQR", "TO", "DSTRD", "MPSMIN", "MPSMAX", "CSS", "CMBS")


def decode_cap(cap):
    """Independent decoding of a raw CAP value, for cross-checking."""
    return {"MQES": (cap & 0xFFFF) + 1, "CQR": (cap >> 16) & 1,
            "TO": ((cap >> 24) & 0xFF) * 500, "DSTRD": (cap >> 32) & 0xF,
            "MPSMIN": 1 << (12 + ((cap >> 48) & 0xF)),
            "MPSMAX": 1 << (12 + ((cap >> 52) & 0xF)),
            "CSS": (cap >> 37) & 0xFF, "CMBS": (cap >> 57) & 1}


def check_boot(tag, b):
    """Generic checks of one boot: it finished, printed no kernel warnings,
    and every guest-side check passed."""
    record(f"{tag}: guest ran to completion ({b.seconds:.1f} s)",
           b.done and not b.timed_out, b.failure)
    bad = b.bad_lines
    record(f"{tag}: no kernel warnings on the console", not bad, "\n".join(bad[:20]))
    for name, ok, detail in b.results:
        record(f"{tag}: guest: {name}", ok, detail)
    if not b.results:
        record(f"{tag}: guest reported results", False, f"see {b.log}")


def qemu_version():
    """QEMU's version string, which its nvme device reports as firmware."""
    out = subprocess.run(["qemu-system-x86_64", "--version"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    return re.search(r"version (\S+)", out)[1]


def check_probe(tag, b, devices, cycles):
    """The driver's decoded register lines against QEMU's configuration and
    the raw registers the guest read through /dev/mem."""
    n = len(devices)
    m = b.lines(r"^@@NVME_DEVICES (\d+)$")
    record(f"{tag}: guest sees {n} NVMe controllers", bool(m) and int(m[0][1]) == n,
           m[0][0] if m else "no @@NVME_DEVICES line")
    raw = {m[1]: (int(m[3], 16) << 32 | int(m[2], 16), int(m[4], 16))
           for m in b.lines(r"^@@RAW (\S+) CAP_LO=(0x[0-9A-Fa-f]+) CAP_HI=(0x[0-9A-Fa-f]+) "
                            r"VS=(0x[0-9A-Fa-f]+)$")}
    caps = b.lines(CAP_LINE)
    per_dev = {}
    for c in caps:
        per_dev.setdefault(c[1], []).append(c)
    record(f"{tag}: CAP logged once per probe ({(1 + cycles) * n} probes)",
           len(caps) == (1 + cycles) * n and len(per_dev) == n,
           f"{len(caps)} CAP lines for {sorted(per_dev)}")
    for bdf, dev in zip(sorted(raw), devices):
        lines = per_dev.get(bdf, [])
        if not record(f"{tag}: {bdf} probed", bool(lines)):
            continue
        c = lines[0]
        logged = dict(zip(CAP_FIELDS, (int(x, 0) for x in c.groups()[2:])))
        raw_cap, raw_vs = raw[bdf]
        record(f"{tag}: {bdf} logged CAP equals raw register",
               int(c[2], 16) == raw_cap, f"{c[2]} vs {raw_cap:#x}")
        record(f"{tag}: {bdf} CAP decoding matches independent decode",
               logged == decode_cap(raw_cap), f"{logged} vs {decode_cap(raw_cap)}")
        want = dict(QEMU_CAP, CMBS=1 if dev.params.get("cmb_size_mb") else 0)
        record(f"{tag}: {bdf} CAP matches QEMU configuration", logged == want,
               f"{logged} vs {want}")
        vs = b.lines(rf"rsnvme {re.escape(bdf)}: VS (0x[0-9a-f]+): NVMe (\d+)\.(\d+)\.(\d+)$")
        record(f"{tag}: {bdf} VS is NVMe 1.4.0 and equals raw register",
               bool(vs) and vs[0].groups()[1:] == ("1", "4", "0")
               and int(vs[0][1], 16) == raw_vs,
               vs[0][0] if vs else "no VS line")
        unb = b.lines(rf"rsnvme {re.escape(bdf)}: unbinding$")
        down = b.lines(rf"rsnvme {re.escape(bdf)}: controller shut down, CSTS \S+ RDY \d CFS 0 SHST 2$")
        record(f"{tag}: {bdf} shut down cleanly (SHST complete) after every probe",
               len(unb) == 1 + cycles and len(down) == 1 + cycles,
               f"{len(unb)} unbind and {len(down)} shutdown-complete lines")
    if n == 0:
        record(f"{tag}: no rsnvme device lines without NVMe hardware",
               not b.lines(r"rsnvme [0-9a-f]{4}:"))
    check_leaks(tag, b)


def check_leaks(tag, b):
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")
    dma = b.lines(r"^@@DMA_ALLOCATIONS (\S+)$")
    record(f"{tag}: no DMA allocations left after unload (DMA-API debug)",
           bool(dma) and dma[0][1] == "0", dma[0][0] if dma else "no DMA report")


SUMMARY = (r"rsnvme (\S+): model \"(.*)\" serial \"(.*)\" firmware \"(.*)\": (\d+) I/O queue "
           r"pairs granted, (\d+) used, (\d+) namespaces, max transfer (\d+) bytes "
           r"\(0: no limit\), (MSI-X|MSI|INTx) x(\d+)(?:, (\d+) polled)?(, shadow doorbells)?$")


def usable_namespaces(dev):
    """(nsid, blocks, lba size) of the namespaces rsnvme gives a disk."""
    return [ns for ns in dev.expected_namespaces()
            if ns[2] <= 4096 and not (dev.namespaces and
                                      dev.namespaces[ns[0] - 1].params.get("ms"))]


def check_identify(tag, b, devices, smp):
    """The controller summary, namespace lines and sysfs attributes against
    what QEMU was configured with."""
    fw = qemu_version()
    summaries = {m[1]: m for m in b.lines(SUMMARY)}
    for bdf, dev in zip(sorted(summaries), devices):
        m = summaries[bdf]
        p = dev.params
        queues = min(smp, int(p.get("max_ioqpairs", 64)))
        # One vector for the admin queue and one per I/O queue, as far as
        # QEMU's MSI-X table (msix_qsize entries) allows; with a single
        # vector, one I/O queue shares it.
        vectors = min(int(p.get("msix_qsize", 65)), queues + 1)
        used = min(queues, vectors - 1) if vectors > 1 else 1
        mdts = int(p.get("mdts", 7))
        usable = usable_namespaces(dev)
        got = (m[2], m[3], m[4], int(m[5]), int(m[6]), int(m[7]), int(m[8]), m[9],
               int(m[10]), m[11], m[12])
        # QEMU offers Doorbell Buffer Config: the I/O queues use it.
        want = ("QEMU NVMe Ctrl", dev.serial, fw, queues, used, len(usable),
                (1 << mdts) * 4096 if mdts else 0, "MSI-X", vectors, None,
                ", shadow doorbells" if used else None)
        record(f"{tag}: {bdf} identify summary matches QEMU configuration", got == want,
               f"got {got}, want {want}")
        ns_lines = [(int(x[1]), int(x[2]), int(x[3])) for x in
                    b.lines(rf"rsnvme {re.escape(bdf)}: namespace (\d+): (\d+) blocks of "
                            r"(\d+) bytes")]
        record(f"{tag}: {bdf} namespaces (nsid, blocks, LBA size) match",
               ns_lines[:len(usable)] == usable, f"got {ns_lines}, want {usable}")
        blocks = sorted((int(x[1]), int(x[2]), int(x[3]), x[4], x[5].strip(), x[6].strip())
                        for x in b.lines(r"^@@BLOCK rsnvme\d+n(\d+) size=(\d+) lbs=(\d+) "
                                         r"rotational=(\d) model=(.*) serial=(.*)$"))
        if len(devices) == 1:
            want_blocks = sorted((nsid, blocks_ * lbs // 512, lbs, "0", "QEMU NVMe Ctrl", dev.serial)
                                 for nsid, blocks_, lbs in usable)
            record(f"{tag}: {bdf} block devices (sectors, LBA, non-rotational, model, serial)",
                   blocks == want_blocks, f"got {blocks}, want {want_blocks}")
        sysfs = dict((x[1], x[2]) for x in
                     b.lines(rf"^@@SYSFS {re.escape(bdf)} (\w+)=(.*)$"))
        want_sysfs = {"model": "QEMU NVMe Ctrl", "serial": dev.serial,
                      "firmware_rev": fw, "queue_count": str(queues)}
        record(f"{tag}: {bdf} sysfs model/serial/firmware_rev/queue_count",
               sysfs == want_sysfs, f"got {sysfs}, want {want_sysfs}")
        for nsid, _, lbs in dev.expected_namespaces():
            if (nsid, lbs) in [(u[0], u[2]) for u in usable]:
                continue
            skipped = b.lines(rf"rsnvme {re.escape(bdf)}: namespace {nsid} skipped: ")
            record(f"{tag}: {bdf} unusable namespace {nsid} skipped with a warning",
                   bool(skipped))
        if not usable:
            record(f"{tag}: {bdf} warns about having no usable namespaces",
                   bool(b.lines(rf"rsnvme {re.escape(bdf)}: no usable namespaces")))
    record(f"{tag}: one summary per controller", len(summaries) == len(devices),
           f"{len(summaries)} summaries")


FAULTS = {
    1: (r"cannot allocate interrupt vectors: ENOSPC \(injected\)", -28, None),
    2: (r"cannot allocate the admin queue: ENOMEM \(injected\)", -12, None),
    3: (r"timed out after 7500 ms waiting for CSTS\.RDY", -110, (7.5, 9.5)),
    4: (r"Identify Controller timed out after 5000 ms; resetting the controller", -110,
        (5.0, 7.0)),
    7: (r"failing probe with the I/O queues created: ENOMEM \(injected\)", -12, None),
}
# fault=5 (insmod ... io_timeout=3): probe succeeds; the partition scan's
# read on an I/O queue goes unannounced, times out, is aborted, times out
# again, the controller is reset and the read is retried.
FAULT5_TIMEOUT = 3.0


def check_faults(tag, b):
    """Each injected probe failure is reported, fails probe with its errno,
    and (for timeouts) takes as long as the bound it hits: never less, and
    not much more. Guest time is host time, so on a loaded host a starved
    vCPU notices an expired bound late: the slack beyond each bound (given
    for an idle host) grows with the run's slowness factor. Then the
    recovery faults, 5 and 6 (tests/recovery_tests.py has the lines)."""
    stamp = r"^\[\s*(\d+\.\d+)\] "
    slack = max(1.0, b.slow)
    for f, (msg, errno, bounds) in FAULTS.items():
        part = fault_part(b, f)
        record(f"{tag}: fault={f} reported", re.search(msg, part) is not None,
               f"no /{msg}/ between the markers")
        record(f"{tag}: fault={f} fails probe with {errno}",
               re.search(rf"probe with driver rsnvme failed with error {errno}", part)
               is not None)
        if f == 7:
            record(f"{tag}: fault=7 unwind shuts the controller down (SHST complete) before "
                   "the I/O queues are freed",
                   re.search(r"controller shut down, CSTS \S+ RDY \d CFS 0 SHST 2", part)
                   is not None)
        if bounds:
            times = [float(t) for t in re.findall(stamp + r"rsnvme .*: CSTS ", part, re.M)]
            fail = re.search(stamp + r"rsnvme .*probe with driver rsnvme failed", part, re.M)
            took = float(fail[1]) - times[-1] if fail and times else -1
            low, high = bounds[0], bounds[0] + (bounds[1] - bounds[0]) * slack
            record(f"{tag}: fault={f} gives up after {took:.2f} s, within "
                   f"({low}, {high:.1f}) s", low <= took <= high)
    check_fault5(tag, b, slack)
    check_fault6(tag, b)
    check_leaks(tag, b)


def fault_part(b, f):
    """The console between the guest's @@FAULT f start and end markers."""
    start = b.console.find(f"@@FAULT {f} start")
    end = b.console.find(f"@@FAULT {f} end")
    return b.console[start:end] if 0 <= start < end else ""


def fault_boot(b, f):
    """The part of a boot for fault f, as a Boot, and its controller."""
    part = qemu.Boot(b.name, fault_part(b, f), b.seconds, False, b.log)
    bdf = part.lines(r"rsnvme (\S+): CSTS ")
    return part, bdf[0][1] if bdf else "none"


def check_fault5(tag, b, slack):
    """fault=5: timeout, abort, timeout after abort, reset, all on I/O queue
    1, each timeout a full io_timeout after what it times, then the
    recovery line counts the reset and no failed request."""
    import recovery_tests as rt
    part, bdf = fault_boot(b, 5)
    stamp = rt.stamp
    probe = part.lines(rf"rsnvme {re.escape(bdf)}: CSTS ")
    steps = [("times out", rt.TIMEOUT_LINE), ("is aborted", rt.ABORTING),
             ("times out after the abort", rt.AFTER_ABORT),
             ("resets the controller for the I/O timeout",
              r"resetting the controller: I/O timeout$"),
             ("reset done", rt.RESET_DONE)]
    found = []
    for what, pattern in steps:
        got = rt.rs(part, bdf, pattern)
        record(f"{tag}: fault=5 I/O {what}", bool(got), f"no /{pattern}/ between the markers")
        found.append(got[0] if got else None)
    t = [stamp(m) if m else -1.0 for m in found]
    record(f"{tag}: fault=5 steps logged in that order",
           all(x >= 0 for x in t) and t == sorted(t), f"time stamps {t}")
    queues = [m[1] for m in found[:2] if m]
    # Which I/O queue depends on the CPU the read is issued on (Linux 7.3's
    # scheduler has put it on the second).
    record(f"{tag}: fault=5 the stalled command is on an I/O queue, the same for its "
           "timeout and abort",
           len(queues) == 2 and queues[0] == queues[1] and queues[0] != "0",
           f"queues {queues}")
    most = FAULT5_TIMEOUT + 10.0 * slack
    first = t[0] - stamp(probe[0]) if probe and found[0] else -1
    record(f"{tag}: fault=5 I/O times out {first:.1f} s after probe began (io_timeout "
           f"{FAULT5_TIMEOUT:.0f} s, at most {most:.0f} s)", FAULT5_TIMEOUT <= first <= most)
    second = t[2] - t[1] if found[1] and found[2] else -1
    record(f"{tag}: fault=5 the aborted command times out {second:.1f} s after the abort "
           f"(io_timeout {FAULT5_TIMEOUT:.0f} s, at most {most:.0f} s)",
           FAULT5_TIMEOUT - 0.05 <= second <= most)
    requeued = int(found[4][2]) if found[4] else 0
    record(f"{tag}: fault=5 the reset requeued the stalled read ({requeued} requests)",
           requeued >= 1)
    failed = rt.rs(part, bdf, rt.RESET_FAILED)
    record(f"{tag}: fault=5 no failed reset", not failed, failed[0][0] if failed else "")
    rt.check_recovery_lines(record, f"{tag}: fault=5", part, bdf, least_resets=1, failed=0)


def check_fault6(tag, b):
    """fault=6: the reset through sysfs is logged, fails, and the
    controller is declared dead; no reset completes."""
    import recovery_tests as rt
    part, bdf = fault_boot(b, 6)
    asked = rt.rs(part, bdf, r"resetting the controller: requested through sysfs$")
    dead = rt.rs(part, bdf, rt.RESET_FAILED)
    done = rt.rs(part, bdf, rt.RESET_DONE)
    record(f"{tag}: fault=6 sysfs reset logged", len(asked) == 1, f"{len(asked)} lines")
    record(f"{tag}: fault=6 reset failed: controller is dead",
           len(dead) == 1 and bool(asked) and rt.stamp(asked[0]) <= rt.stamp(dead[0]),
           f"{len(dead)} 'reset failed' lines")
    record(f"{tag}: fault=6 no reset done", not done, done[0][0] if done else "")
    rt.check_recovery_lines(record, f"{tag}: fault=6", part, bdf, least_resets=0,
                            failed=None)


# faults-stuck (tests/guest/faults-stuck.sh): fault=N with flag 0x100, the
# controller ignoring CC.EN=0, for each probe step; 11 also without it.
STUCK_CASES = ("0x101", "0x102", "0x103", "0x104", "0x107", "0x10b", "0x0b")
STUCK_TRACE = ("pci_cfg_read", "pci_cfg_write", "pci_nvme_mmio_start_success",
               "pci_nvme_mmio_stopped", "pci_nvme_mmio_shutdown_set", "pci_nvme_admin_cmd",
               "pci_nvme_mmio_doorbell_sq", "pci_nvme_err_addr_read", "pci_nvme_pci_reset")
STUCK_MESSAGES = {
    **{f: msg for f, (msg, _, _) in FAULTS.items()},
    11: r"failing the I/O queue step with \d+ queues created: ENOMEM \(injected\)",
}
STUCK_ERRNO = {1: -28, 2: -12, 3: -110, 4: -110, 7: -12, 11: -12}
FREED_LIVE = r"freed while the controller may still write it"


def check_stuck(tag, b):
    """Each failed probe on a controller that ignores CC.EN=0: the failure
    it was given, the controller left running (no CC.EN=0 reached QEMU)
    but bus mastering off after it was last enabled, nothing fetched from
    the freed admin queue when the guest rang its doorbell afterwards, no
    ring freed while the controller could write it (the driver's
    FreeCheck), and nothing left allocated."""
    import pm_tests
    record(f"{tag}: the controller has a PCI reset method (FLR between cases)",
           bool(b.lines(r"^@@RESET_METHOD (?!none)\S")),
           "; ".join(m[0] for m in b.lines(r"^@@RESET_METHOD")))
    lines = b.trace.splitlines()
    marks = [i for i, l in enumerate(lines) if re.search(r"\bpci_cfg_read nvme .*@0xfc\b", l)]
    # Three marks per case: its start, the guest's doorbell write, its end.
    record(f"{tag}: three trace marks per case ({3 * len(STUCK_CASES)})",
           len(marks) == 3 * len(STUCK_CASES), f"{len(marks)} marks")
    for k, f in enumerate(STUCK_CASES):
        n, flagged = int(f, 16) & 0xFF, int(f, 16) & 0x100 != 0
        start, end = b.console.find(f"@@STUCK {f} start"), b.console.find(f"@@STUCK {f} end")
        part = b.console[start:end] if 0 <= start < end else ""
        what = f"fault={f} ({'CC.EN=0 ignored' if flagged else 'plain'})"
        record(f"{tag}: {what}: {STUCK_MESSAGES[n]!r} reported",
               re.search(STUCK_MESSAGES[n], part) is not None, "not between the markers")
        record(f"{tag}: {what}: probe fails with {STUCK_ERRNO[n]}",
               re.search(rf"probe with driver rsnvme failed with error {STUCK_ERRNO[n]}\b", part)
               is not None)
        if flagged:
            record(f"{tag}: {what}: the flag is taken ('ignoring CC.EN=0 (injected)')",
                   "taking the controller as ignoring CC.EN=0 (injected)" in part)
        if n in (4, 11):
            record(f"{tag}: {what}: a disable was tried and " +
                   ("skipped ('CC.EN=0 not written')" if flagged else "written"),
                   ("CC.EN=0 not written (injected)" in part) == flagged)
        if 3 * k + 2 >= len(marks):
            continue
        probe = lines[marks[3 * k]:marks[3 * k + 1]]
        ring = lines[marks[3 * k + 1]:marks[3 * k + 2]]
        started = [i for i, l in enumerate(probe)
                   if re.search(r"\bpci_nvme_mmio_start_success\b", l)]
        stopped = [i for i, l in enumerate(probe) if re.search(r"\bpci_nvme_mmio_stopped\b", l)]
        writes = [(i, int(m[1], 16)) for i, m in
                  ((i, re.search(pm_tests.COMMAND_WRITE, l)) for i, l in enumerate(probe)) if m]
        fetched = [l for l in ring if re.search(r"\bpci_nvme_admin_cmd\b", l)]
        if n not in (4, 7, 11):
            record(f"{tag}: {what}: the controller was never enabled, and fetched nothing "
                   "when the guest rang its doorbell", not started and not fetched,
                   (probe[started[0]] if started else "") + (fetched[0] if fetched else ""))
            continue
        if not record(f"{tag}: {what}: QEMU saw the controller enabled", bool(started)):
            continue
        if flagged:
            record(f"{tag}: {what}: no CC.EN=0 reached QEMU: the controller kept running",
                   not stopped, probe[stopped[0]] if stopped else "")
        off = [i for i, v in writes if i > started[-1] and not v & pm_tests.BUS_MASTER]
        record(f"{tag}: {what}: bus mastering turned off after the controller was last "
               "enabled (QEMU: command register written without Bus Master Enable)",
               bool(off), "; ".join(probe[i] for i, _ in writes) or "no command writes")
        rang = [l for l in ring if re.search(r"\bpci_nvme_mmio_doorbell_sq sqid 0 new_tail 1\b", l)]
        if flagged or n != 11:
            record(f"{tag}: {what}: the guest's admin doorbell write after the failed probe "
                   "reached the still enabled controller, which fetched nothing from the "
                   "freed admin queue", bool(rang) and not fetched,
                   fetched[0] if fetched else "no doorbell write of sqid 0 in the trace")
        else:
            record(f"{tag}: {what}: nothing fetched from the freed admin queue when the "
                   "guest rang its doorbell", not fetched, fetched[0] if fetched else "")
    freed = b.lines(FREED_LIVE)
    record(f"{tag}: no queue freed while the controller could still write it (FreeCheck)",
           not freed, "\n".join(m.string for m in freed[:5]))
    check_leaks(tag, b)


Q = qemu.Nvme
NS = qemu.Ns
SCENARIOS = [
    # name, devices, load/unload cycles, vCPUs
    ("probe-one", [Q(serial="RSNVMEONE")], 20, 2),
    ("ioq1-serial", [Q(serial="RSN-TEST-42", params={"max_ioqpairs": 1})], 20, 2),
    ("ioq4", [Q(serial="RSNVMEQ4", params={"max_ioqpairs": 4})], 20, 4),
    ("msix1", [Q(serial="RSNVMEMSIX1", params={"msix_qsize": 1})], 20, 2),
    ("mdts0", [Q(serial="RSNVMEMDTS0", params={"mdts": 0})], 20, 1),
    ("mdts3", [Q(serial="RSNVMEMDTS3", params={"mdts": 3})], 20, 1),
    ("ns2", [Q(serial="RSNVMENS2", namespaces=[NS(32), NS(48, 4096)])], 20, 2),
    ("ns3", [Q(serial="RSNVMENS3",
               namespaces=[NS(16, 4096), NS(24), NS(8, 4096)])], 20, 2),
    ("ns-bad", [Q(serial="RSNVMEBAD",
                  namespaces=[NS(16, 8192), NS(16, 512, {"ms": 8}), NS(16)])], 20, 1),
    ("ns0", [Q(serial="RSNVMENONS", namespaces=[])], 20, 1),
    ("probe-cmb", [Q(serial="RSNVMECMB", params={"cmb_size_mb": 1})], 20, 1),
    ("probe-two", [Q(serial="RSNVMEA"), Q(serial="RSNVMEB")], 20, 2),
    ("probe-none", [], 20, 1),
]


def build_modules(kdir, tag=""):
    """The production module (no fault injection), then the one the guest
    tests load, which has the `fault` parameter: both lint clean. Returns
    False when a build failed."""
    for faults, what in ((False, "rsnvme.ko"), (True, "rsnvme.ko with fault injection")):
        try:
            out = qemu.build_module(kdir, clippy=True, clean=True, faults=faults)
        except RuntimeError as e:
            record(f"{tag}build: {what}", False, str(e))
            return False
        warnings = [l for l in out.splitlines() if re.search(r"warning|error", l, re.I)]
        record(f"{tag}build: {what} with CLIPPY=1, no warnings", not warnings,
               "\n".join(warnings[:40]))
    return True


def probe_scenario(initrd, kdir, name, devices, cycles, smp, tag=""):
    """One of SCENARIOS: load/unload cycles, then the probe checks."""
    disks = sum(len(usable_namespaces(dev)) for dev in devices)
    b = qemu.boot(name, initrd, kdir, "probe", devices, smp=smp,
                  env={"cycles": cycles, "disks": disks})
    check_boot(tag + name, b)
    check_probe(tag + name, b, devices, cycles)
    if devices:
        check_identify(tag + name, b, devices, smp)


def ksrc():
    """The source tree of KVER's kernel (qemu-ci/env.sh)."""
    return Path(subprocess.run(
        ["bash", "-c", f". {ROOT}/qemu-ci/env.sh && echo $KSRC"],
        stdout=subprocess.PIPE, text=True, check=True).stdout.strip())


# What `make test` (on 6.12) runs on Linux 7.3 as well: one probe scenario,
# I/O verification, controller resets under I/O and nvme-cli passthrough,
# each on 2 vCPUs. With the 7.3 kernel cached this adds about 5 minutes
# (measured on a busy 2-core host); a cold cache adds the 7.3 source fetch
# and kernel build (about 14 minutes on 2 cores).
SMOKE_7_3 = {"probe": "probe-one", "io": ("io-verify", "io-hugedio"), "rec": "rec-reset",
             "mgmt": "mgmt-cli"}


def smoke_7_3():
    """Linux 7.3: the kernel, checkpatch of its tree, both module builds
    under clippy, and the SMOKE_7_3 scenarios; every line tagged "7.3 "."""
    tag = "7.3 "
    os.environ["KVER"] = "7.3"
    os.environ["RSNVME_IO_CPUS"] = "2"
    # Its initramfs and console logs apart from 6.12's.
    qemu.BUILD = qemu.BUILD / "linux-7.3"
    try:
        qemu.setup()
        kdir = qemu.kernel()
    except subprocess.CalledProcessError as e:
        record(f"{tag}build: Linux 7.3 guest kernel", False, str(e))
        return
    record(f"{tag}build: Linux 7.3 guest kernel ({kdir.name})", True)
    checkpatch(ksrc(), tag)
    if not build_modules(kdir, tag):
        return
    initrd = qemu.build_initramfs(kdir)
    for name, devices, cycles, smp in SCENARIOS:
        if name == SMOKE_7_3["probe"]:
            probe_scenario(initrd, kdir, name, devices, cycles, smp, tag)

    def rec(name, ok, detail=""):
        return record(tag + name, ok, detail)

    def boot_check(name, b):
        check_boot(tag + name, b)

    import io_tests
    import recovery_tests
    import mgmt_tests
    io_tests.run_all(kdir, rec, boot_check, SMOKE_7_3["io"])
    recovery_tests.run_all(kdir, rec, boot_check, SMOKE_7_3["rec"])
    mgmt_tests.run_all(kdir, rec, boot_check, SMOKE_7_3["mgmt"])
    return kdir


def make(*args, env=None):
    """Runs the top-level make as a user would (`make ARGS...` in the
    tree); returns (exit status, output)."""
    res = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, **(env or {})))
    return res.returncode, res.stdout


def vermagic(ko):
    """The kernel release in a module's vermagic (modinfo)."""
    out = subprocess.run(["modinfo", "-F", "vermagic", str(ko)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    return out.split()[0] if out.split() else out.strip()


def kernel_switch(kdir612, kdir73):
    """Issue 26: one checkout builds for 6.12, 7.3, 6.12 (as KDIR=) and
    6.12 again, in that order and without `make clean`, and each build is
    for the kernel it names: the module's vermagic is that kernel's, and a
    kernel built for before reuses its own objects (nothing is compiled
    again). Then `make qemu` on 6.12, on 7.3 and on 6.12 again each boot
    their kernel with the module just built and use its disk."""
    tag = "kernel switch"
    rel = {k: (Path(d) / "include/config/kernel.release").read_text().strip()
           for k, d in (("6.12", kdir612), ("7.3", kdir73))}
    env612 = {"KVER": "6.12"}
    env73 = {"KVER": "7.3"}
    steps = [("make", (), env612, "6.12"), ("make KVER=7.3", (), env73, "7.3"),
             (f"make KDIR=<6.12 kernel>", (f"KDIR={kdir612}",), env612, "6.12"),
             ("make", (), env612, "6.12")]
    for i, (what, args, env, kver) in enumerate(steps):
        rc, out = make(*args, env=env)
        if not record(f"{tag}: step {i + 1}, `{what}` builds", rc == 0, out[-3000:]):
            return
        got = vermagic(ROOT / "rsnvme.ko")
        record(f"{tag}: step {i + 1}, rsnvme.ko is for Linux {rel[kver]} (vermagic {got})",
               got == rel[kver])
        if i >= 2:
            compiled = [l for l in out.splitlines() if re.search(r"^\s*(RUSTC|CC|BINDGEN) ", l)]
            record(f"{tag}: step {i + 1}, `{what}` reused this kernel's objects (nothing "
                   f"compiled again)", not compiled, "\n".join(compiled[:10]))
    for i, (what, env, kver) in enumerate((("make qemu", env612, "6.12"),
                                           ("make KVER=7.3 qemu", env73, "7.3"),
                                           ("make qemu", env612, "6.12"))):
        rc, out = make("qemu", env=env)
        booted = re.search(r"^== Linux (\S+)$", out, re.M)
        record(f"{tag}: `{what}` ({i + 1} of 3) runs its demo", rc == 0 and
               "read back: identical" in out and "file survived remount: identical" in out,
               out[-3000:])
        record(f"{tag}: `{what}` ({i + 1} of 3) booted Linux {rel[kver]}",
               bool(booted) and booted[1] == rel[kver], booted[0] if booted else "no version")
        klog = [re.sub(r"^\[\s*\d+\.\d+\] ", "", l) for l in out.splitlines()
                if re.match(r"^\[\s*\d+\.\d+\] ", l)]
        found = [l for l in klog if re.match(r"rsnvme 0000:\S+: namespace 1: ", l)]
        record(f"{tag}: `{what}` ({i + 1} of 3) rsnvme bound and found its namespace",
               len(found) == 1, f"{len(found)} lines")
        twice = sorted({l for l in klog if klog.count(l) > 1})
        record(f"{tag}: `{what}` ({i + 1} of 3) shows each kernel log line once",
               bool(klog) and not twice, "; ".join(twice[:5]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="", help="only QEMU scenarios containing this")
    args = ap.parse_args()

    try:
        qemu.setup()
    except subprocess.CalledProcessError as e:
        record("setup: toolchain installed", False, str(e))
        finish()

    host_unit_tests()
    shim_guard()
    safe_share()
    header_fresh()
    rustfmt()
    # `make bench`'s table code on made-up input (the bench itself is not
    # part of `make test`).
    import bench_check
    bench_check.check(record)
    bench_check.check_profile(record)
    checkpatch(ksrc())

    try:
        kdir = qemu.kernel()
    except subprocess.CalledProcessError as e:
        record("build: guest kernel", False, str(e))
        finish()
    if not build_modules(kdir):
        finish()
    initrd = qemu.build_initramfs(kdir)

    for name, devices, cycles, smp in SCENARIOS:
        if args.k in name:
            probe_scenario(initrd, kdir, name, devices, cycles, smp)
    if args.k in "faults":
        b = qemu.boot("faults", initrd, kdir, "faults", [Q(serial="RSNVMEFAULT")])
        check_boot("faults", b)
        check_faults("faults", b)
    if args.k in "faults-stuck":
        b = qemu.boot("faults-stuck", initrd, kdir, "faults-stuck", [Q(serial="RSNVMESTUCK")],
                      timeout=300, trace=STUCK_TRACE)
        check_boot("faults-stuck", b)
        check_stuck("faults-stuck", b)
    # Block I/O data integrity against io_tests.IO_DRIVER (tests/io_tests.py).
    import io_tests
    io_tests.run_all(kdir, record, check_boot, args.k)
    # Error recovery under fio, against the same driver (tests/recovery_tests.py).
    import recovery_tests
    recovery_tests.run_all(kdir, record, check_boot, args.k)
    # Shutdown, suspend and resume, against the same driver (tests/pm_tests.py).
    import pm_tests
    pm_tests.run_all(kdir, record, check_boot, args.k)
    # nvme-cli against rsnvme and the C driver in one guest (tests/mgmt_tests.py).
    import mgmt_tests
    mgmt_tests.run_all(kdir, record, check_boot, args.k)
    # make install, modprobe, DKMS and the hand-over helper (tests/install_tests.py);
    # last, as its make install rebuilds the tree's rsnvme.ko without clippy.
    import install_tests
    install_tests.run_all(kdir, record, check_boot, args.k)
    # Debian 12's stock 6.12 kernels without CONFIG_RUST: build from their
    # headers, audit, DKMS, the .deb, and a boot of the stock kernel
    # (tests/stock_tests.py); after install_tests, as its builds replace
    # the tree's rsnvme.ko too.
    import stock_tests
    stock_tests.run_all(kdir, record, check_boot, args.k)
    # Linux 7.3's build, lints and smoke subset (after the rest, as its
    # module builds replace the tree's rsnvme.ko).
    if os.environ.get("KVER", "6.12") == "6.12" and not args.k \
            and os.environ.get("RSNVME_SMOKE_7_3", "1") != "0":
        kdir73 = smoke_7_3()
        if kdir73:
            kernel_switch(kdir, kdir73)
    elif args.k and args.k in "kernel-switch":
        os.environ["KVER"] = "7.3"
        kdir73 = qemu.kernel()
        os.environ["KVER"] = "6.12"
        kernel_switch(kdir, kdir73)
    finish()


if __name__ == "__main__":
    main()
