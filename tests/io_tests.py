#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Block I/O data-integrity scenarios: QEMU boots running
tests/guest/io-*.sh against one driver, and the host-side checks of what
they printed and of the image files QEMU leaves behind.

tests/run.py calls run_all() after its own scenarios. The driver under test
is IO_DRIVER: "c" (the kernel's nvme driver, the reference these tests
were validated on) or "rust" (rsnvme); RSNVME_IO_DRIVER overrides it.
A scenario can also be run alone:

    tests/io_tests.py [-k NAME] [--driver c|rust]

(uses the cached kernel and the rsnvme.ko already built; builds nothing).
The pattern seeds are random per run (printed; RSNVME_IO_SEED fixes them).
Timeouts scale with the host's load (RSNVME_SLOW=F fixes the factor; see
tests/run.py).
Images of failed scenarios are kept under build/io-images/<scenario>/.
"""

import collections
import dataclasses
import hashlib
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "qemu-ci"))
sys.path.insert(0, str(ROOT / "tests"))
import image_check  # noqa: E402
import qemu  # noqa: E402

IO_DRIVER = os.environ.get("RSNVME_IO_DRIVER", "rust")

MIB = 1 << 20
Q = qemu.Nvme
NS = qemu.Ns
FIO_PHASES = ("qd1", "qd8", "qd64", "qd64-large")
EILSEQ = 84  # what fio reports for a failed verify


class Ctx:
    """What every scenario needs: the boot inputs and the result sinks."""

    def __init__(self, kdir, initrd, record, check_boot, driver, seed, cpus=2):
        self.kdir, self.initrd = kdir, initrd
        self.record, self.check_boot = record, check_boot
        self.driver, self.seed = driver, seed
        self.cpus = cpus
        self.times = {}
        self.slow = {}

    def boot(self, name, test, devices, env, smp=None, workdir=None, timeout=180,
             slow=None, trace=(), single_thread=False, tolerate=(), **qemu_args):
        """Boots tests/guest/<test>.sh as `name` (log build/logs/<name>.log);
        `timeout` is for an idle host (qemu.boot scales it by `slow`);
        `trace`: QEMU trace events to record (qemu.boot); `single_thread`:
        all vCPUs on one host thread (qemu.boot); `qemu_args` go to
        qemu.boot as they are (machine, extra_args, on_line).
        `tolerate` names kernel reports that are not the driver's and that
        this boot is known to print, as (what, remove) pairs: remove(console)
        returns the console without the report's own lines, and how many
        reports it took out. The console checks (no WARNING, BUG, lockdep
        report...) then see the console without them, and a test line says
        which were tolerated; everything else still fails the run. Only a
        scenario that cannot avoid such a report passes it; the returned
        Boot keeps the whole console."""
        env = dict(env, driver=self.driver)
        smp = smp or self.cpus
        # fio at queue depth 64 with 1 MiB blocks, one job per vCPU and disk,
        # needs about 512 MiB of buffers on 4 vCPUs, beside an 84 MB
        # initramfs.
        b = qemu.boot(name, self.initrd, self.kdir, test, devices, smp=smp, env=env,
                      workdir=workdir, timeout=timeout, mem=1536, slow=slow, trace=trace,
                      single_thread=single_thread, **qemu_args)
        self.times[name] = b.seconds
        self.slow[name] = b.slow
        checked = b
        for what, remove in tolerate:
            console, found = remove(checked.console)
            if found:
                checked = dataclasses.replace(checked, console=console)
                self.record(f"{name}: known report tolerated ({found}x): {what}", True)
            else:
                print(f"{name}: known report not seen: {what}", flush=True)
        self.check_boot(name, checked)
        done = b.lines(r"^@@DONE \S+ rc=(\d+)$")
        self.record(f"{name}: guest script ran to its end, exit status 0",
                    bool(b.lines(r"^@@IO_END$")) and bool(done) and done[0][1] == "0",
                    f"@@DONE line: {done[0][0] if done else None}")
        return b


# --- Shared checks ---------------------------------------------------------

def disks(b):
    """{disk name: {nsid, lbs, bytes, ...}} from the guest's @@DISK lines
    (the first line per disk: disks are listed again after reloads)."""
    out = {}
    for m in b.lines(r"^@@DISK (\S+) (.*)$"):
        if m[1] not in out:
            out[m[1]] = dict(kv.split("=", 1) for kv in m[2].split())
    return out


def check_disks(ctx, tag, b, devices):
    """The driver's disks match the namespaces QEMU was given."""
    want = sorted((nsid, lbs, blocks * lbs) for dev in devices
                  for nsid, blocks, lbs in dev.expected_namespaces())
    got = sorted((int(d["nsid"]), int(d["lbs"]), int(d["bytes"])) for d in disks(b).values())
    ctx.record(f"{tag}: disks (nsid, LBA size, bytes) match the namespaces", got == want,
               f"got {got}, want {want}")
    return {int(d["nsid"]): name for name, d in disks(b).items()}


def sums(b):
    """{name: md5} from the guest's @@SUM lines."""
    return {m[1]: m[2] for m in b.lines(r"^@@SUM (.+) ([0-9a-f]{32})$")}


def check_sum(ctx, tag, b, name, want):
    got = sums(b).get(name)
    ctx.record(f"{tag}: host: '{name}' read back the expected bytes (md5)", got == want,
               f"guest md5 {got}, expected {want}")


def check_mibs(ctx, tag, b, label, data):
    """The guest's per-MiB md5s of a disk against the expected content."""
    got = {int(m[1]): m[2] for m in b.lines(rf"^@@MIB {re.escape(label)} (\d+) ([0-9a-f]{{32}})$")}
    want = dict(enumerate(image_check.mib_md5s(data)))
    bad = sorted(i for i in want if got.get(i) != want[i])
    ctx.record(f"{tag}: host: {label} every MiB read through the driver as expected",
               not bad, f"MiB {bad[:16]} differ ({len(got)} of {len(want)} reported)")


def check_image(ctx, tag, label, path, layout):
    problems = image_check.check_image(path, layout)
    ctx.record(f"{tag}: host: {label} image file holds what was written, byte for byte",
               not problems, "; ".join(problems[:4]))
    return not problems


def fio_jobs(b, phase):
    """{job: (err, read KiB, write KiB)} from the guest's @@FIO lines."""
    return {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in
            b.lines(rf"^@@FIO {re.escape(phase)} (\S+) err=(-?\d+) read_kib=(\d+) "
                    r"write_kib=(\d+)$")}


def phase_seconds(b, name):
    m = b.lines(rf"^@@TIME fio {re.escape(name)} ([\d.]+) ([\d.]+)$")
    return float(m[0][2]) - float(m[0][1]) if m else -1.0


# QEMU's controller offers Doorbell Buffer Config; both drivers use it.
SHADOW_TRACE = ("pci_nvme_mmio_start_success", "pci_nvme_dbbuf_config",
                "pci_nvme_mmio_doorbell_sq", "pci_nvme_shadow_doorbell_sq")


def shadow_enables(trace):
    """Per controller enable in QEMU's `trace` (SHADOW_TRACE events) that
    served I/O queues: whether Doorbell Buffer Config came before the first
    I/O queue doorbell, and how many I/O queue tails QEMU read from the
    shadow buffer. Enables without I/O (the firmware's) are left out."""
    out, seg = [], None
    for line in trace.splitlines():
        if re.search(r"\bpci_nvme_mmio_start_success\b", line):
            if seg and seg["io"]:
                out.append((seg["configured"], seg["shadow"]))
            seg = {"configured": False, "io": False, "shadow": 0}
        elif seg is None:
            continue
        elif re.search(r"\bpci_nvme_dbbuf_config\b", line):
            seg["configured"] = seg["configured"] or not seg["io"]
        elif m := re.search(r"\bpci_nvme_(mmio|shadow)_doorbell_sq sqid (\d+)", line):
            if int(m.group(2)) > 0:
                seg["io"] = True
                seg["shadow"] += m.group(1) == "shadow"
    if seg and seg["io"]:
        out.append((seg["configured"], seg["shadow"]))
    return out


def check_shadow_doorbells(ctx, tag, b, want_enables=1):
    """The controller was given shadow doorbells after each enable that
    served I/O (`want_enables` at least), before its I/O queues were rung,
    and then read their tails from the shadow buffer."""
    segs = shadow_enables(b.trace)
    ctx.record(f"{tag}: QEMU trace: shadow doorbells configured before I/O after each of "
               f"{len(segs)} enables, tails read from them "
               f"({sum(s for _, s in segs)} times)",
               len(segs) >= want_enables and all(c and s > 0 for c, s in segs),
               f"(configured first, shadow reads) per enable: {segs}")


# --- Scenarios -------------------------------------------------------------

def io_verify(ctx, tag="io-verify"):
    """fio crc32c write+verify over two namespaces (512 and 4096-byte LBAs)."""
    smp = ctx.cpus
    devices = [Q(serial="RSNVMEIOV", namespaces=[NS(32), NS(32, 4096)])]
    b = ctx.boot(tag, "io-verify", devices, {"disks": 2, "seed": ctx.seed}, smp=smp,
                 trace=SHADOW_TRACE)
    by_nsid = check_disks(ctx, tag, b, devices)
    check_shadow_doorbells(ctx, tag, b)
    sizes = {name: int(d["bytes"]) for name, d in disks(b).items()}
    for phase in FIO_PHASES:
        jobs = fio_jobs(b, phase)
        want = {}
        for name in by_nsid.values():
            region = sizes[name] // smp // MIB * MIB
            for c in range(smp):
                want[f"{name}-cpu{c}-{region // 1024}"] = (0, region // 1024, region // 1024)
        ctx.record(f"{tag}: host: fio {phase}: {len(want)} jobs wrote and verified their "
                   f"whole slice without error ({phase_seconds(b, phase):.1f} s)",
                   jobs == want and bool(want), f"got {jobs}, want {want}")
    selftest = fio_jobs(b, "selftest")
    ctx.record(f"{tag}: host: fio reported the planted corruption as a verify error "
               f"(EILSEQ)", [v[0] for v in selftest.values()] == [EILSEQ],
               f"selftest jobs {selftest}")


POLL_TRACE = ("pci_nvme_create_cq", "pci_nvme_io_cmd")
POLL_PHASES = ("iopoll-qd1", "iopoll-qd16", "iopoll-reset", "hipri-sync")


def io_poll(ctx, tag="io-poll"):
    """Polled I/O (`poll_queues=1`): io_uring IOPOLL and pvsync2 hipri
    write and verify a whole disk; QEMU's trace shows the polled queue was
    created without interrupts and served reads and writes."""
    smp = ctx.cpus
    devices = [Q(serial="RSNVMEPOLL", namespaces=[NS(32)])]
    b = ctx.boot(tag, "io-poll", devices, {"seed": ctx.seed, "params": "poll_queues=1"},
                 smp=smp, trace=POLL_TRACE)
    by_nsid = check_disks(ctx, tag, b, devices)
    name = by_nsid.get(1)
    if ctx.driver == "rust":
        polled = [m[1] for m in b.lines(r"rsnvme \S+: model .* x\d+, (\d+) polled(, shadow "
                                         r"doorbells)?$")]
        ctx.record(f"{tag}: the summary line says 1 polled queue pair", polled == ["1"],
                   f"polled counts {polled}")
    else:
        # The C driver: "<n>/0/1 default/read/poll queues".
        polled = [m[1] for m in b.lines(r"nvme nvme\d+: \d+/\d+/(\d+) default/read/poll queues")]
        # Printed again after the reset.
        ctx.record(f"{tag}: the C driver says 1 poll queue",
                   bool(polled) and set(polled) == {"1"},
                   f"poll counts {polled}")
    poll = b.lines(r"^@@POLL io_poll=(\S+) io_poll_delay=(\S+)$")
    hybrid = b.lines(r"^@@POLL hybrid-write=(\S+) io_poll_delay=(\S+)$")
    ctx.record(f"{tag}: the disk's queue polls (io_poll 1, classic: io_poll_delay -1)",
               [(m[1], m[2]) for m in poll] == [("1", "-1")], f"got {[m[0] for m in poll]}")
    ctx.record(f"{tag}: a hybrid-polling request (io_poll_delay 0) is taken, classic stays",
               [(m[1], m[2]) for m in hybrid] == [("ok", "-1")], f"got {[m[0] for m in hybrid]}")
    cqs, creates = {}, []
    for m in b.events(r"\bpci_nvme_create_cq .*cqid=(\d+), .*ien=(\d+)"):
        cqs[int(m[1])] = int(m[2])
        creates.append((int(m[1]), int(m[2])))
    no_irq = sorted(q for q, ien in cqs.items() if q > 0 and ien == 0)
    ctx.record(f"{tag}: QEMU trace: exactly one I/O completion queue created without "
               f"interrupts, the last one", no_irq == [max(cqs, default=0)] and len(no_irq) == 1,
               f"completion queues (id: ien) {cqs}")
    again = [c for c in creates if no_irq and c[0] == no_irq[0]]
    ctx.record(f"{tag}: QEMU trace: the reset created the polled queue again, without "
               f"interrupts", again == [(no_irq[0], 0)] * 2 if no_irq else False,
               f"creations of queue {no_irq[:1]}: {again}")
    ops = {}
    for m in b.events(r"\bpci_nvme_io_cmd .* sqid (\d+) opc 0x([0-9a-f]+)"):
        if no_irq and int(m[1]) == no_irq[0]:
            ops[m[2]] = ops.get(m[2], 0) + 1
    ctx.record(f"{tag}: QEMU trace: the polled queue served writes and reads "
               f"({ops.get('1', 0)} writes, {ops.get('2', 0)} reads)",
               ops.get("1", 0) > 0 and ops.get("2", 0) > 0, f"opcodes {ops}")
    timeouts = [l for l in b.console.splitlines() if "I/O timeout" in l]
    ctx.record(f"{tag}: no I/O timed out (a polled request nobody reaps would)", not timeouts,
               "; ".join(timeouts[:3]))
    size = int(disks(b).get(name, {}).get("bytes", 0)) if name else 0
    region = size // smp // MIB * MIB
    want = {f"{name}-cpu{c}-{region // 1024}": (0, region // 1024, region // 1024)
            for c in range(smp)} if name else {}
    for phase in POLL_PHASES:
        jobs = fio_jobs(b, phase)
        ctx.record(f"{tag}: host: fio {phase}: {len(want)} jobs wrote and verified their "
                   f"whole slice without error ({phase_seconds(b, phase):.1f} s)",
                   jobs == want and bool(want), f"got {jobs}, want {want}")


def io_pattern(ctx, tag="io-pattern"):
    """Host-written pattern read by the guest; guest-written pattern
    checked in the images."""
    rseed, wseed = ctx.seed, ctx.seed + 1000
    devices = [Q(serial="RSNVMEPAT", namespaces=[NS(16), NS(16, 4096)])]
    nss = [(nsid, blocks * lbs) for nsid, blocks, lbs in devices[0].expected_namespaces()]
    work = tempfile.mkdtemp(prefix="rsnvme-io-")
    before, after, pre, post = {}, {}, [], []
    for nsid, size in nss:
        before[nsid] = [(0, size, rseed + nsid)]
        after[nsid] = [(0, 4 * MIB, rseed + nsid), (4 * MIB, 8 * MIB, wseed + nsid),
                       (12 * MIB, size - 12 * MIB, rseed + nsid)]
        data = image_check.expected(before[nsid], size)
        Path(work, f"nvme0n{nsid}.img").write_bytes(data)
        pre.append(image_check.md5(data))
        post.append(image_check.md5(image_check.pattern(wseed + nsid, 4 * MIB, 8 * MIB)))
    env = {"disks": len(nss), "rseed": rseed, "wseed": wseed, "pre": ",".join(pre),
           "post": ",".join(post)}
    b = ctx.boot(tag, "io-pattern", devices, env, workdir=work)
    check_disks(ctx, tag, b, devices)
    ok = True
    for (nsid, size), p, q in zip(nss, pre, post):
        check_sum(ctx, tag, b, f"read host pattern ns{nsid} (1 MiB reads)", p)
        check_sum(ctx, tag, b, f"read back guest pattern ns{nsid}", q)
        final = image_check.expected(after[nsid], size)
        check_mibs(ctx, tag, b, f"ns{nsid}", final)
        ok &= check_image(ctx, tag, f"ns{nsid}", Path(work, f"nvme0n{nsid}.img"), after[nsid])
    keep(work, tag, ok)


# The discard batch of io-discard.sh (tests/guest/discard-batch.c): COUNT
# small discards in [8, 12) MiB submitted at once; the k-th submitted
# discards range j = 7 * k mod COUNT, bytes [BASE + j * 12 KiB, + 4 KiB
# << (j % 2)). 300 is more than one request's 256 ranges (QEMU 7.2 sets no
# DMRL), so blk-mq merges them into a request of 256 and one of 44.
BATCH, BATCH_BASE, BATCH_STEP, BATCH_SMALL = 300, 8 * MIB, 12 << 10, 4 << 10
BATCH_REQUESTS = [256, 44]


def batch_ranges():
    """The batch's byte ranges (start, length) in the order submitted."""
    out = []
    for k in range(BATCH):
        j = 7 * k % BATCH
        out.append((BATCH_BASE + j * BATCH_STEP, BATCH_SMALL << (j % 2)))
    return out


def discard_layout(size, lbs, seed):
    """What io-discard.sh leaves on a namespace."""
    z = 6 * MIB + 3 * lbs
    out = [(0, MIB, seed), (MIB, 2 * MIB, None), (3 * MIB, MIB, seed),
           (4 * MIB, 2 * MIB, None), (6 * MIB, 3 * lbs, seed), (z, 5 * lbs, None),
           (z + 5 * lbs, 8 * MIB - z - 5 * lbs, seed)]
    at = 8 * MIB
    for start, length in sorted(batch_ranges()):
        out += [(at, start - at, seed), (start, length, None)]
        at = start + length
    return out + [(at, 12 * MIB - at, seed), (12 * MIB, size - 12 * MIB, None)]


# QEMU 7.2's Dataset Management limits (hw/nvme/ctrl.c): Identify
# Controller for the NVM command set reports only DMRSL, the blocks of
# its largest request (BDRV_REQUEST_MAX_BYTES, 2 GiB - 512) in the largest
# LBA size of the controller's namespaces; DMRL, DMSL and WZSL are 0.
QEMU_MAX_REQUEST = (1 << 31) - 512


def expected_queue_limits(driver, lbs, lbas):
    """/sys/block/<disk>/queue values for a namespace of `lbs`-byte blocks
    on a QEMU 7.2 controller whose namespaces have the LBA sizes `lbas`:
    DMRSL as the discard limit (in bytes of this namespace), 256 ranges (no
    DMRL: the command's own limit, one page of ranges), physical block and
    I/O sizes of one block (QEMU reports neither NPWG, NOWS nor AWUPF).
    Write Zeroes: rsnvme allows what one command names (65536 blocks, as
    WZSL sets no limit), the C driver the controller's MDTS (QEMU's 512 KiB,
    "cautious" in nvme_init_non_mdts_limits), so it is checked per driver.
    Discard granularity: QEMU reports NPDG = NPDA = its drive's
    discard_granularity (default the larger of the block and 4 KiB) with
    NSFEAT's OPTPERF bit; rsnvme takes it, as 7.3's C driver does
    (nvme_config_discard), while 6.12's C driver uses the block."""
    dmrsl = QEMU_MAX_REQUEST // max(lbas)
    npdg = max(lbs, 4096)
    c_npdg = os.environ.get("KVER", "6.12") != "6.12"
    return {"logical_block_size": lbs, "physical_block_size": lbs, "minimum_io_size": lbs,
            "optimal_io_size": 0,
            "discard_granularity": npdg if driver == "rust" or c_npdg else lbs,
            "discard_max_hw_bytes": dmrsl * lbs, "max_discard_segments": 256,
            "write_zeroes_max_bytes": 65536 * lbs if driver == "rust" else 512 * 1024}


def io_discard(ctx, tag="io-discard"):
    """blkdiscard and blkdiscard -z, seen through the driver, in QEMU's
    trace and in the images; queue limits from the controller."""
    devices = [Q(serial="RSNVMEDSM", namespaces=[NS(16), NS(16, 4096)],
                 drive_opts={"discard": "unmap"})]
    nss = devices[0].expected_namespaces()
    layouts = {nsid: discard_layout(blocks * lbs, lbs, ctx.seed + nsid)
               for nsid, blocks, lbs in nss}
    datas = {nsid: image_check.expected(layouts[nsid], blocks * lbs)
             for nsid, blocks, lbs in nss}
    want = [image_check.md5(datas[nsid]) for nsid, _, _ in nss]
    work = tempfile.mkdtemp(prefix="rsnvme-io-")
    # The batch's [8, 12) MiB holds the pattern before the guest starts
    # (writing it there would take the guest seconds under TCG).
    for nsid, _, _ in nss:
        with open(Path(work, f"nvme0n{nsid}.img"), "wb") as f:
            f.seek(BATCH_BASE)
            f.write(image_check.pattern(ctx.seed + nsid, BATCH_BASE, 4 * MIB))
    env = {"disks": len(nss), "seed": ctx.seed, "want": ",".join(want)}
    b = ctx.boot(tag, "io-discard", devices, env, workdir=work,
                 trace=("pci_nvme_dsm", "pci_nvme_dsm_deallocate",
                        "pci_nvme_dsm_single_range_limit_exceeded"))
    check_disks(ctx, tag, b, devices)
    for name, d in disks(b).items():
        ctx.record(f"{tag}: {name} offers write zeroes (write_zeroes_max_bytes > 0), so "
                   f"BLKZEROOUT reaches the driver as REQ_OP_WRITE_ZEROES",
                   int(d.get("write_zeroes_max", 0)) > 0, str(d))
    lims = {(int(m[1]), m[2]): int(m[3]) for m in b.lines(r"^@@QLIM (\d+) (\w+)=(\d+)$")}
    lbas = [lbs for _, _, lbs in nss]
    for nsid, _, lbs in nss:
        exp = expected_queue_limits(ctx.driver, lbs, lbas)
        bad = [f"{a}: got {lims.get((nsid, a))}, want {v}" for a, v in exp.items()
               if lims.get((nsid, a)) != v]
        ctx.record(f"{tag}: ns{nsid} queue limits as QEMU 7.2 reports them (discard "
                   f"{exp['discard_max_hw_bytes']} bytes from DMRSL, 256 ranges, physical "
                   f"block {lbs}, write zeroes {exp['write_zeroes_max_bytes']})", not bad,
                   "; ".join(bad))
    check_discard_commands(ctx, tag, b, nss)
    ok = True
    for (nsid, _, _), w in zip(nss, want):
        check_sum(ctx, tag, b, f"ns{nsid} whole disk as expected", w)
        check_mibs(ctx, tag, b, f"ns{nsid}", datas[nsid])
        img = Path(work, f"nvme0n{nsid}.img")
        ok &= check_image(ctx, tag, f"ns{nsid}", img, layouts[nsid])
        hole = image_check.is_hole(img, MIB, 2 * MIB)
        ctx.record(f"{tag}: host: ns{nsid} discarded range is a hole in the image "
                   f"(the discard reached QEMU)", hole)
        ok &= hole
        full = [r for r in batch_ranges() if not image_check.is_hole(img, *r)]
        ctx.record(f"{tag}: host: ns{nsid} each of the {BATCH} ranges of the discard batch "
                   f"is a hole in the image (the blocks between them keep the pattern: "
                   f"image checked byte for byte above)", not full,
                   f"{len(full)} ranges hold data, first (byte offset, length) {full[:4]}")
        ok &= not full
    keep(work, tag, ok)


def check_discard_commands(ctx, tag, b, nss):
    """What reached QEMU from io-discard.sh's discards (QEMU 7.2 traces
    `pci_nvme_dsm` with the number of ranges, NR + 1, and
    `pci_nvme_dsm_deallocate` per range, in the order of the command's
    range list): per namespace one command of one range for the blkdiscard
    of [1, 3) MiB and the batch as commands of 256 and 44 ranges; every
    range deallocated is one the guest discarded, as often as it did (the
    batch once per round the guest ran), none missing, none invented; and
    the ranges of each merged command arrive in the order the discards
    were submitted, as blk-mq chains a merged request's bios."""
    dsm = [int(m[1]) for m in b.events(r"pci_nvme_dsm nr (\d+) attr")]
    dealloc = [(int(m[1]), int(m[2])) for m in
               b.events(r"pci_nvme_dsm_deallocate slba (\d+) nlb (\d+)")]
    rounds = {}
    for m in b.lines(r"^@@DISCARD_ROUND ns(\d+) (\d+) requests=(\d+) merged=(\d+) secs="):
        rounds.setdefault(int(m[1]), []).append((int(m[3]), int(m[4])))
    single, batch, want = {}, {}, collections.Counter()
    for nsid, _, lbs in nss:
        single[nsid] = (MIB // lbs, 2 * MIB // lbs)
        batch[nsid] = [(start // lbs, length // lbs) for start, length in batch_ranges()]
        want[single[nsid]] += 1
        for _ in rounds.get(nsid, []):
            want.update(batch[nsid])
    merged = {nsid: bool(r) and r[-1] == (len(BATCH_REQUESTS), BATCH - len(BATCH_REQUESTS))
              for nsid, r in ((n, rounds.get(n)) for n, _, _ in nss)}
    ctx.record(f"{tag}: guest: each namespace's batch of {BATCH} discards was merged by "
               f"blk-mq into {len(BATCH_REQUESTS)} requests (rounds run: "
               f"{ {n: len(r) for n, r in rounds.items()} })",
               all(merged.values()), f"(requests, bios merged) per round: {rounds}")
    # The namespaces' ranges in LBAs must differ, or a deallocated range
    # could not be told apart.
    every = [r for nsid in single for r in [single[nsid]] + batch[nsid]]
    distinct = len(set(every)) == len(every)
    multi = sorted((n for n in dsm if n > 1), reverse=True)
    ctx.record(f"{tag}: host: QEMU got multi-range Dataset Management commands: {len(multi)} "
               f"of {multi[:8]} ranges", bool(multi), f"ranges per command {dsm[:16]}")
    shape = collections.Counter([1] * len(nss) + BATCH_REQUESTS * len(nss))
    ctx.record(f"{tag}: host: per namespace QEMU got one Dataset Management command of one "
               f"range per blkdiscard ([1, 3) MiB) and the batch as commands of "
               f"{' and '.join(map(str, BATCH_REQUESTS))} ranges",
               not shape - collections.Counter(dsm),
               f"missing {dict(shape - collections.Counter(dsm))}; ranges per command "
               f"{sorted(dsm, reverse=True)[:16]}")
    got = collections.Counter(dealloc)
    ctx.record(f"{tag}: host: every range QEMU deallocated is one the guest discarded, as "
               f"often as it did ({sum(want.values())} ranges, {len(dsm)} commands whose "
               f"range counts add up to them)",
               distinct and got == want and sum(dsm) == len(dealloc),
               f"ranges distinct per namespace {distinct}; missing "
               f"{list((want - got).items())[:6]}; not discarded "
               f"{list((got - want).items())[:6]}; ranges per command add up to {sum(dsm)}, "
               f"deallocated {len(dealloc)}")
    # The order within each merged command: the batch's deallocations of
    # one namespace, split into the requests blk-mq made, each in the
    # order submitted (two commands may be in QEMU at once, interleaved).
    if all(len(rounds.get(n, [])) == 1 for n, _, _ in nss):
        bad = []
        for nsid in single:
            at = 0
            for size in BATCH_REQUESTS:
                part = batch[nsid][at:at + size]
                seen = [r for r in dealloc if r in set(part)]
                if seen != part:
                    bad.append(f"ns{nsid} ranges {at}..{at + size - 1}")
                at += size
        ctx.record(f"{tag}: host: the ranges of each merged command reached QEMU in the "
                   f"order the discards were submitted", not bad, f"out of order: {bad}")
    else:
        print(f"{tag}: range order not checked: a batch ran more than once", flush=True)
    over = b.events(r"pci_nvme_dsm_single_range_limit_exceeded.*")
    ctx.record(f"{tag}: host: no range exceeded QEMU's DMRSL", not over,
               "; ".join(m[0] for m in over[:3]))


def io_fs(ctx, tag="io-fs"):
    """ext2 with files checked by sha256 in the guest, then on the host
    with e2fsck and debugfs."""
    devices = [Q(serial="RSNVMEFS", size_mb=32)]
    work = tempfile.mkdtemp(prefix="rsnvme-io-")
    b = ctx.boot(tag, "io-fs", devices, {}, workdir=work)
    check_disks(ctx, tag, b, devices)
    img = Path(work, "nvme0.img")
    fsums = {m[2]: m[1] for m in b.lines(r"^@@FSUM ([0-9a-f]{64})  \./(\S+)$")}
    ok = len(fsums) == 30
    ctx.record(f"{tag}: guest listed 30 files with their sha256", ok, f"{len(fsums)} files")
    fsck = subprocess.run(["e2fsck", "-fn", str(img)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    ctx.record(f"{tag}: host: e2fsck -fn finds the filesystem clean", fsck.returncode == 0,
               fsck.stdout[-2000:])
    ok &= fsck.returncode == 0
    out = Path(work, "rdump")
    out.mkdir()
    dump = subprocess.run(["debugfs", "-R", f"rdump / {out}", str(img)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
           for p in out.rglob("*") if p.is_file()}
    bad = sorted(k for k in set(got) | set(fsums) if got.get(k) != fsums.get(k))
    ctx.record(f"{tag}: host: every file extracted with debugfs has the guest's sha256",
               bool(fsums) and not bad, f"differ: {bad[:10]}; debugfs: {dump.stdout[-500:]}")
    ok &= not bad
    keep(work, tag, ok)


def io_teardown(ctx, tag="io-teardown"):
    """Unbind and rmmod while fio writes; data from before intact."""
    smp = ctx.cpus
    # What must end within a bound (unbind, fio after it, rmmod) gets 30 s
    # on an idle host, times the guest's slow factor.
    slow = qemu.slow_factor(smp)
    bound = 30 * math.ceil(slow)
    devices = [Q(serial="RSNVMETDN", size_mb=32)]
    work = tempfile.mkdtemp(prefix="rsnvme-io-")
    b = ctx.boot(tag, "io-teardown", devices, {"seed": ctx.seed, "bound": bound}, smp=smp,
                 workdir=work, slow=slow)
    check_disks(ctx, tag, b, devices)
    m = b.lines(r"^@@TIME unbind ([\d.]+) ([\d.]+)$")
    took = float(m[0][2]) - float(m[0][1]) if m else -1
    ctx.record(f"{tag}: host: unbind under load returned in {took:.1f} s (< {bound} s)",
               0 <= took < bound)
    for rnd in ("unbind", "rmmod"):
        jobs = fio_jobs(b, rnd)
        ctx.record(f"{tag}: host: fio reported every job ({rnd} round)",
                   len(jobs) == smp, str(jobs))
        rd = b.lines(rf"^@@READER {rnd} good=(\d+) short=(\d+) bad=(\d+)$")
        ctx.record(f"{tag}: host: reads racing the {rnd} teardown got the pattern, a prefix "
                   "or an error, never other data",
                   bool(rd) and rd[0][3] == "0" and int(rd[0][1]) > 0,
                   rd[0][0] if rd else "no @@READER line")
    r = b.lines(r"^@@RMMOD_UNDER_LOAD rc=(\d+): ?(.*)$")
    outcome = ("refused (module in use)" if r and r[0][1] != "0" else "tore the controller "
               "down, fio got errors") if r else "not reported"
    ctx.record(f"{tag}: rmmod under load: {outcome}", bool(r), "no @@RMMOD_UNDER_LOAD line")
    layout = [(0, 2 * MIB, ctx.seed + 1)]
    problems = [p for p in image_check.check_image(Path(work, "nvme0.img"), layout)
                if p.startswith("bytes [0, ")]  # fio wrote the rest
    ctx.record(f"{tag}: host: the pattern written before the teardowns is intact in the "
               "image", not problems, "; ".join(problems))
    keep(work, tag, not problems)


# io-hugedio's ranges (byte offset, length): O_DIRECT transfers of 1 to 4
# MiB, each one pwrite() and one pread() from huge-page buffers.
HUGEDIO_RANGES = [(0, 1 * MIB), (1 * MIB, 2 * MIB), (3 * MIB, 3 * MIB), (6 * MIB, 4 * MIB)]


def io_hugedio(ctx, tag="io-hugedio"):
    """O_DIRECT I/O of 1 to 4 MiB from huge pages: scatterlist segments of
    up to a whole request, which the device's DMA parameters must allow
    (DMA-API debug reports a longer segment as a console line the boot
    fails on); data compared in the guest and in the image."""
    devices = [Q(serial="RSNVMEHUGE", size_mb=16)]
    work = tempfile.mkdtemp(prefix="rsnvme-io-")
    # One word on the kernel command line.
    ranges = ",".join(f"{off},{length}" for off, length in HUGEDIO_RANGES)
    b = ctx.boot(tag, "io-hugedio", devices, {"seed": ctx.seed, "ranges": ranges},
                 workdir=work)
    check_disks(ctx, tag, b, devices)
    got = {(int(m[1]), int(m[2])): (m[3], m[4], m[5]) for m in
           b.lines(r"^@@HUGEDIO (\d+) (\d+) write=(-?\d+) read=(-?\d+) same=(\d)$")}
    for off, length in HUGEDIO_RANGES:
        ctx.record(f"{tag}: guest: {length // MIB} MiB at {off // MIB} MiB written and read "
                   f"back with one O_DIRECT call each from huge pages, identical",
                   got.get((off, length)) == ("0", "0", "1"),
                   f"(write errno, read errno, same): {got.get((off, length))}")
    dma = b.lines(r"DMA-API: .*")
    ctx.record(f"{tag}: no DMA-API report on the console (segments within the device's "
               f"DMA limits)", not [m for m in dma if "preallocated" not in m[0]
                                    and "debugging enabled" not in m[0]],
               "; ".join(m[0] for m in dma[:3]))
    layout = [(off, length, ctx.seed) for off, length in HUGEDIO_RANGES]
    ok = check_image(ctx, tag, "ns1", Path(work, "nvme0.img"), layout)
    keep(work, tag, ok)


SCENARIOS = [
    ("io-verify", io_verify),
    ("io-hugedio", io_hugedio),
    ("io-pattern", io_pattern),
    ("io-discard", io_discard),
    ("io-fs", io_fs),
    ("io-teardown", io_teardown),
    ("io-poll", io_poll),
]


def keep(work, tag, ok):
    """Removes a scenario's images, or keeps them under build/ on failure."""
    dest = qemu.BUILD / "io-images" / tag
    shutil.rmtree(dest, ignore_errors=True)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(work, dest)
        print(f"io: images of {tag} kept in {dest}", flush=True)


def io_seed():
    """The pattern seed of this run: random, or RSNVME_IO_SEED."""
    return int(os.environ.get("RSNVME_IO_SEED", random.randint(1000000, 8000000)))


def io_cpus():
    """vCPU counts every scenario runs on: 1, 2 and 4 (RSNVME_IO_CPUS="2"
    for fewer)."""
    return [int(c) for c in os.environ.get("RSNVME_IO_CPUS", "1 2 4").split()]


def io_initramfs(kdir):
    """The initramfs with fio: a copy of its own, as build_initramfs always
    writes build/initramfs.cpio."""
    initrd = qemu.BUILD / "io-initramfs.cpio"
    extra = qemu.io_tools() + [qemu.guest_program("discard-batch"),
                               qemu.guest_program("hugedio")]
    shutil.copy2(qemu.build_initramfs(kdir, extra_files=extra), initrd)
    return initrd


def run_all(kdir, record, check_boot, only="", driver=None):
    """Runs the I/O scenarios whose name contains `only` (a string), or
    those named in `only` (a tuple)."""
    todo = [(n, f) for n, f in SCENARIOS
            if (n in only if isinstance(only, tuple) else only in n)]
    if not todo:
        return {}
    for name, ok in image_check.selftest():
        record(f"io: image checker {name}", ok)
    driver = driver or IO_DRIVER
    seed = io_seed()
    print(f"io: driver {driver}, seed {seed}", flush=True)
    initrd = io_initramfs(kdir)
    times, slow = {}, {}
    for cpus in io_cpus():
        ctx = Ctx(kdir, initrd, record, check_boot, driver, seed, cpus)
        for name, fn in todo:
            fn(ctx, tag=f"{name}-{cpus}cpu")
        times.update(ctx.times)
        slow.update(ctx.slow)
    print("io: QEMU seconds per scenario (slow factor): " +
          ", ".join(f"{n} {s:.1f} ({slow[n]:.1f})" for n, s in times.items()) +
          f"; total {sum(times.values()):.1f}", flush=True)
    return times


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", default="", help="only scenarios containing this")
    ap.add_argument("--driver", choices=("c", "rust"), default=IO_DRIVER)
    args = ap.parse_args()
    import run
    run_all(qemu.kernel(), run.record, run.check_boot, args.k, args.driver)
    run.finish()


if __name__ == "__main__":
    main()
