#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""nvme-cli against rsnvme (issue 11): QEMU boots tests/guest/mgmt-cli.sh
with two identical controllers (but for their serial numbers), one bound
to the C driver and one to rsnvme, and Debian's nvme-cli in the guest.
The host checks what nvme-cli printed against QEMU's configuration and
the C driver's output against rsnvme's (the fields that legitimately
differ are excluded by name, each with its reason), the controller sysfs
attributes, what bad passthrough input returned
(tests/guest/passthru-bad.c, built static here), the NVM subsystem reset
(refused by both drivers, as QEMU 7.2 leaves CAP.NSSRS clear; with
fault=8 rsnvme's reset path under fio, QEMU's trace showing each NSSR
write), the reset, fio's verify afterwards, an ioctl on a file open
across an unbind and the controller number after a rebind.

tests/run.py calls run_all(). Alone:

    tests/mgmt_tests.py [-k NAME]

(uses the cached kernel and the rsnvme.ko already built; builds nothing
else but the static helper).
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "qemu-ci"))
sys.path.insert(0, str(ROOT / "tests"))
import qemu  # noqa: E402

NVME_CLI = "/usr/sbin/nvme"
C_SERIAL, RS_SERIAL = "RSNVMECDRV", "RSNVMERUST"
SIZE_MB = 64
# PCI slots of the two controllers: the C driver's, rsnvme's.
C_SLOT, RS_SLOT = 4, 5

# Fields that differ between the two controllers or between two reads,
# by design; everything else nvme-cli prints must be equal.
ID_CTRL_DIFFER = {
    "sn": "the serial numbers differ by configuration",
    "subnqn": "QEMU builds the subsystem NQN from the serial number",
}
SMART_DIFFER = {
    "data_units_read": "I/O counters: the drivers do different I/O",
    "data_units_written": "I/O counters",
    "host_read_commands": "I/O counters",
    "host_write_commands": "I/O counters",
    "controller_busy_time": "I/O counters",
    "num_err_log_entries": "counts the failed commands each driver sent",
}

# What each bad passthrough case must return on rsnvme: (ret, errno name);
# ret "status" is a positive NVMe status.
PT_EXPECT = {
    "good-identify": ("0", "0"),
    "good-identify64": ("0", "0"),
    "null-argument": ("-1", "EFAULT"),
    "unmapped-argument": ("-1", "EFAULT"),
    "unmapped-read-buffer": ("-1", "EFAULT"),
    "low-read-buffer": ("-1", "EFAULT"),
    "unmapped-write-buffer": ("-1", "EFAULT"),
    "metadata": ("-1", "EINVAL"),
    "flags": ("-1", "EINVAL"),
    "bidirectional": ("-1", "EINVAL"),
    "data-without-direction": ("-1", "EINVAL"),
    "huge-length": ("-1", "EINVAL"),
    "max-length": ("-1", "EINVAL"),
    "short-length": ("0", "0"),
    "unknown-opcode": ("status", "0"),
    "unknown-ioctl": ("-1", "ENOTTY"),
    "subsys-reset": ("-1", "ENOTTY"),
    "delete-io-queue": ("-1", "EINVAL"),
    "abort": ("-1", "EINVAL"),
    "io-cmd-no-namespace": ("-1", "EINVAL"),
    "io-read": ("0", "0"),
    "io-read64": ("0", "0"),
    "io-read-bad-namespace": ("-1", "EINVAL"),
    "io-read-unmapped-buffer": ("-1", "EFAULT"),
    "unprivileged-io-read": ("-1", "EACCES"),
    "unprivileged-identify": ("0", "0"),
    "unprivileged-get-log": ("-1", "EACCES"),
    "unprivileged-get-features": ("-1", "EACCES"),
    "unprivileged-reset": ("-1", "EACCES"),
    "unprivileged-subsys-reset": ("-1", "EACCES"),
    "held-identify": ("-1", "ENODEV"),
}
# Cases where the C driver must give the same answer (others it answers
# in its own way, e.g. it sends data for opcodes whose bits say none, and
# lets a process without CAP_SYS_ADMIN read through the controller
# device, which rsnvme does not; it has no NVME_IOCTL_IO64_CMD there).
# (A write from an unmapped buffer gets EACCES from the C driver.)
PT_SAME_AS_C = ("good-identify", "good-identify64", "null-argument", "unmapped-argument",
                "unmapped-read-buffer", "low-read-buffer", "flags",
                "short-length", "unknown-opcode", "unknown-ioctl", "unprivileged-identify",
                "io-cmd-no-namespace", "io-read", "io-read-bad-namespace",
                "io-read-unmapped-buffer",
                "unprivileged-get-log", "unprivileged-get-features", "unprivileged-reset",
                "subsys-reset", "unprivileged-subsys-reset")

# QEMU's trace of what the controllers saw: an NVM Subsystem Reset written
# to NSSR (traced as unsupported, since QEMU 7.2 has none, and only for
# the value "NVMe"), a write to clear CSTS.NSSRO (which a driver must not
# do on a controller without it) and each controller enable.
NSSR_EVENT = "pci_nvme_ub_mmiowr_ssreset_unsupported"
NSSRO_EVENT = "pci_nvme_ub_mmiowr_ssreset_w1c_unsupported"
ENABLE_EVENT = "pci_nvme_mmio_start_success"
TRACE = (NSSR_EVENT, NSSRO_EVENT, ENABLE_EVENT)


def initramfs(kdir):
    """The initramfs with fio, nvme-cli (and their libraries) and the helper."""
    extra = (qemu.io_tools(qemu.IO_TOOLS + (NVME_CLI,))
             + [qemu.guest_program("passthru-bad"), qemu.guest_program("ptstall")])
    initrd = qemu.BUILD / "mgmt-initramfs.cpio"
    shutil.copy2(qemu.build_initramfs(kdir, extra_files=extra), initrd)
    return initrd


def cli(b):
    """{(driver, what): (rc, parsed JSON or text)} from the @@NVME lines."""
    out = {}
    for m in b.lines(r"^@@NVME (c|rs) (\S+) rc=(\d+) ?(.*)$"):
        text = m[4].strip()
        try:
            value = json.loads(text) if text else None
        except ValueError:
            value = text
        out[(m[1], m[2])] = (int(m[3]), value)
    return out


def unwrap(v):
    """fw-log's JSON is keyed by the device name: its one value."""
    if isinstance(v, dict) and len(v) == 1 and re.fullmatch(r"(rs)?nvme\d+", next(iter(v))):
        return next(iter(v.values()))
    return v


def diff(a, b, skip):
    """Keys of two dicts whose values differ, without those in `skip`."""
    a, b = unwrap(a), unwrap(b)
    if not isinstance(a, dict) or not isinstance(b, dict):
        return ["(not both JSON objects)"]
    return sorted(k for k in set(a) | set(b) if k not in skip and a.get(k) != b.get(k))


def check_cli(record, tag, b):
    got = cli(b)
    for what in ("id-ctrl", "id-ns", "smart-log", "error-log", "fw-log", "get-feature-7"):
        for drv in ("c", "rs"):
            rc, _ = got.get((drv, what), (None, None))
            record(f"{tag}: nvme {what} on {'/dev/nvme0' if drv == 'c' else '/dev/rsnvme0'} "
                   f"succeeds", rc == 0, f"rc {rc}; {b.lines(rf'^@@NVMEERR {drv} {what} .*')}")
    c, rs = got.get(("c", "id-ctrl"), (0, {}))[1], got.get(("rs", "id-ctrl"), (0, {}))[1]
    c, rs = c if isinstance(c, dict) else {}, rs if isinstance(rs, dict) else {}
    version = qemu_version()
    record(f"{tag}: id-ctrl on rsnvme: sn {RS_SERIAL}, mn QEMU NVMe Ctrl, fr {version}",
           (rs.get("sn", "").strip(), rs.get("mn", "").strip(), rs.get("fr", "").strip())
           == (RS_SERIAL, "QEMU NVMe Ctrl", version),
           f"sn {rs.get('sn')!r} mn {rs.get('mn')!r} fr {rs.get('fr')!r}")
    human = {m[1]: m[2].strip() for m in b.lines(r"^@@HUMAN id-ctrl: (sn|mn|fr)\s*:\s*(.*)$")}
    record(f"{tag}: nvme id-ctrl /dev/rsnvme0 as a person reads it (README): sn {RS_SERIAL}, "
           f"mn QEMU NVMe Ctrl, fr {version}",
           human == {"sn": RS_SERIAL, "mn": "QEMU NVMe Ctrl", "fr": version}, str(human))
    record(f"{tag}: id-ctrl on the C driver: sn {C_SERIAL}", c.get("sn", "").strip() == C_SERIAL,
           f"sn {c.get('sn')!r}")
    d = diff(c, rs, ID_CTRL_DIFFER)
    record(f"{tag}: id-ctrl: rsnvme and the C driver agree on {len(c)} fields "
           f"(but {', '.join(ID_CTRL_DIFFER)})", bool(c) and not d,
           "; ".join(f"{k}: C {c.get(k)!r} rsnvme {rs.get(k)!r}" for k in d[:10]))
    blocks = SIZE_MB * 1024 * 1024 // 512
    for what, skip in (("id-ns", {}), ("smart-log", SMART_DIFFER), ("error-log", {}),
                       ("fw-log", {}), ("get-feature-7", {})):
        c, rs = got.get(("c", what), (0, None))[1], got.get(("rs", what), (0, None))[1]
        if isinstance(c, dict):
            d = diff(c, rs, skip)
            record(f"{tag}: {what}: rsnvme and the C driver agree"
                   + (f" (but {', '.join(skip)})" if skip else ""), not d,
                   "; ".join(f"{k}: C {c.get(k)!r} rsnvme {(rs or {}).get(k)!r}" for k in d[:10]))
        else:
            record(f"{tag}: {what}: rsnvme and the C driver agree", c is not None and c == rs,
                   f"C {c!r} rsnvme {rs!r}")
    rs_ns = got.get(("rs", "id-ns"), (0, {}))[1] or {}
    record(f"{tag}: id-ns on rsnvme: nsze {blocks}",
           isinstance(rs_ns, dict) and rs_ns.get("nsze") == blocks, f"nsze {rs_ns.get('nsze')!r}")
    feat = got.get(("rs", "get-feature-7"), (0, ""))[1]
    record(f"{tag}: get-feature -f 7 on rsnvme names the Number of Queues",
           isinstance(feat, str) and "Number of Queues" in feat, f"{feat!r}")
    for what in ("id-ctrl-after-reset", "id-ctrl-after-rebind"):
        rc, v = got.get(("rs", what), (None, None))
        record(f"{tag}: nvme {what} on rsnvme: sn {RS_SERIAL}",
               rc == 0 and isinstance(v, dict) and v.get("sn", "").strip() == RS_SERIAL,
               f"rc {rc}")

    pt = {(m[1], m[2]): (int(m[3]), m[4]) for m in
          b.lines(r"^@@PASSTHRU (c|rs) (\S+) rc=(\d+) ?(.*)$")}
    ident = {m[1]: m for m in b.lines(r"^@@PASSTHRU (c|rs) identify rc=(\d+) bytes=(\d+) sn=(\S*)")}
    for drv, serial in (("c", C_SERIAL), ("rs", RS_SERIAL)):
        m = ident.get(drv)
        record(f"{tag}: admin-passthru Identify on {drv}: 4096 bytes, sn {serial}",
               bool(m) and (m[2], m[3], m[4]) == ("0", "4096", serial), m[0] if m else "no line")
    for what, want in (("zero", "0"), ("odd", "0"), ("huge", "nonzero"),
                       ("unknown-opcode", "nonzero")):
        rs, c = pt.get(("rs", what)), pt.get(("c", what))
        ok = rs is not None and ((rs[0] == 0) == (want == "0"))
        record(f"{tag}: admin-passthru {what} on rsnvme: exit status {want}", ok, f"{rs}")
        record(f"{tag}: admin-passthru {what}: rsnvme's exit status is the C driver's",
               rs is not None and c is not None and rs[0] == c[0], f"rsnvme {rs} C {c}")

    res = {(m[1], m[2]): (m[3], m[4]) for m in
           b.lines(r"^@@PT (c|rs) (\S+) ret=(-?\d+) errno=([A-Z0-9]+)")}
    for case, (ret, err) in PT_EXPECT.items():
        r = res.get(("rs", case))
        ok = r is not None and r[1] == err and (
            int(r[0]) > 0 if ret == "status" else r[0] == ret)
        record(f"{tag}: passthrough {case} on rsnvme returns "
               f"{'an NVMe status' if ret == 'status' else err}", ok, f"got {r}")
    for case in PT_SAME_AS_C:
        r, c = res.get(("rs", case)), res.get(("c", case))
        record(f"{tag}: passthrough {case}: rsnvme answers as the C driver",
               r is not None and r == c, f"rsnvme {r} C {c}")
    for drv in ("c", "rs"):
        io = {m[1]: m for m in b.lines(rf"^@@IOPT {drv} (write|read) rc=(\d+) want=(\w+) "
                                       r"(?:disk|got)=(\w+)$")}
        for what, how in (("write", "written by io-passthru, read from the disk"),
                          ("read", "written to the disk, read by io-passthru")):
            m = io.get(what)
            record(f"{tag}: io-passthru on {drv}: 8-16 KiB pattern {how}",
                   bool(m) and m[2] == "0" and m[3] == m[4], m[0] if m else "no line")
    m = b.lines(r"^@@PT rs good-identify-data sn=(\S+)")
    record(f"{tag}: passthrough Identify data read back: sn {RS_SERIAL}",
           bool(m) and m[0][1] == RS_SERIAL, m[0][0] if m else "no line")


def check_sysfs(record, tag, b):
    attrs = {(m[1], m[2]): m[3] for m in b.lines(r"^@@SYSFS (c|rs) (\w+)=(.*)$")}
    want = {"model": "QEMU NVMe Ctrl".ljust(40), "serial": RS_SERIAL.ljust(20),
            "firmware_rev": qemu_version().ljust(8),
            "transport": "pcie", "address": f"0000:00:{RS_SLOT:02x}.0", "state": "live"}
    for a, v in want.items():
        got = attrs.get(("rs", a))
        record(f"{tag}: sysfs {a} of rsnvme0 is {v!r}", got == v, f"got {got!r}")
    # sqsize is the I/O queue depth - 1: rsnvme's queues have 256 entries
    # (io.rs MAX_IO_DEPTH), the C driver's 1024.
    got = attrs.get(("rs", "sqsize"))
    record(f"{tag}: sysfs sqsize of rsnvme0 is 255", got == "255", f"got {got!r}")
    for a in ("model", "firmware_rev", "transport", "state", "cntlid", "queue_count"):
        c, rs = attrs.get(("c", a)), attrs.get(("rs", a))
        record(f"{tag}: sysfs {a}: rsnvme's is the C driver's", c is not None and c == rs,
               f"C {c!r} rsnvme {rs!r}")
    nqn = attrs.get(("rs", "subsysnqn"), "")
    record(f"{tag}: sysfs subsysnqn of rsnvme0 names its serial", nqn.endswith(RS_SERIAL),
           f"got {nqn!r}")


def check_subsystem_reset(record, tag, b):
    """NVME_IOCTL_SUBSYS_RESET: refused on QEMU 7.2's controllers as the C
    driver refuses it, nothing written; with fault=8 the reset path."""
    raw = {m[1]: (int(m[3], 16) << 32 | int(m[2], 16), int(m[4], 16))
           for m in b.lines(r"^@@RAW (\S+) CAP_LO=(0x[0-9A-Fa-f]+) CAP_HI=(0x[0-9A-Fa-f]+) "
                            r"VS=(0x[0-9A-Fa-f]+)$")}
    bdfs = [f"0000:00:{slot:02x}.0" for slot in (C_SLOT, RS_SLOT)]
    record(f"{tag}: QEMU {qemu_version()} leaves CAP.NSSRS (bit 36) clear on both "
           "controllers (NVMe 1.1 or later, so only CAP says no)",
           all(b in raw and not (raw[b][0] >> 36) & 1 and raw[b][1] >= 0x10100
               for b in bdfs),
           "; ".join(f"{b}: CAP {raw[b][0]:#x} VS {raw[b][1]:#x}" if b in raw else f"{b}: no line"
                     for b in bdfs))
    got = cli(b)
    errs = {m[1]: m[2].strip() for m in b.lines(r"^@@NVMEERR (c|rs) subsystem-reset (.*)$")}
    (crc, _), (rrc, _) = (got.get(("c", "subsystem-reset"), (None, None)),
                          got.get(("rs", "subsystem-reset"), (None, None)))
    same = errs.get("c", "").replace("/dev/nvme0", "DEV") == \
        errs.get("rs", "").replace("/dev/rsnvme0", "DEV")
    record(f"{tag}: nvme subsystem-reset /dev/rsnvme0 fails as on the C driver's "
           f"/dev/nvme0 (exit status {crc}, {errs.get('c')!r})",
           rrc is not None and rrc != 0 and rrc == crc and same and "c" in errs,
           f"rsnvme rc {rrc} {errs.get('rs')!r}; C rc {crc} {errs.get('c')!r}")
    log = [l for l in b.console.splitlines() if f"rsnvme 0000:00:{RS_SLOT:02x}.0:" in l]
    injected = next((i for i, l in enumerate(log) if "taking CAP.NSSRS as set" in l), None)
    record(f"{tag}: fault=8 logged once: taking CAP.NSSRS as set",
           injected is not None and sum("taking CAP.NSSRS as set" in l for l in log) == 1,
           f"line {injected}")
    before = log[:injected] if injected is not None else log
    after = log[injected:] if injected is not None else []
    record(f"{tag}: without CAP.NSSRS rsnvme logs no subsystem reset",
           not any("subsystem reset" in l for l in before),
           "\n".join(l for l in before if "subsystem reset" in l))
    asked = [l for l in after if l.endswith("NVM subsystem reset requested through ioctl")]
    resets = [l for l in after if l.endswith("resetting the controller: NVM subsystem reset")]
    done = [l for l in after if re.search(r": reset done: \d+ I/O queues", l)]
    record(f"{tag}: fault=8: nvme subsystem-reset and the raw ioctl each log the request, "
           "the reset and 'reset done' (2 each)",
           (len(asked), len(resets), len(done)) == (2, 2, 2),
           f"{len(asked)} requests, {len(resets)} resets, {len(done)} done")
    rc = got.get(("rs", "subsystem-reset-injected"), (None, None))[0]
    record(f"{tag}: fault=8: nvme subsystem-reset /dev/rsnvme0 exits 0", rc == 0,
           f"rc {rc}; {b.lines(r'^@@NVMEERR rs subsystem-reset-injected .*')}")
    pt = b.lines(r"^@@PT rs subsys-reset-alone ret=(-?\d+) errno=(\S+)")
    record(f"{tag}: fault=8: NVME_IOCTL_SUBSYS_RESET returns 0",
           bool(pt) and pt[0].groups() == ("0", "0"), pt[0][0] if pt else "no line")
    # The trace: NSSR written exactly by the two injected resets (so never
    # while CAP.NSSRS counted), each followed by a controller enable;
    # CSTS.NSSRO never written.
    events = b.events(rf"({NSSR_EVENT}|{NSSRO_EVENT}|{ENABLE_EVENT})\b")
    names = [m[1] for m in events]
    nssr = [i for i, n in enumerate(names) if n == NSSR_EVENT]
    enabled_after = all(ENABLE_EVENT in names[i + 1:(nssr + [len(names)])[k + 1]]
                        for k, i in enumerate(nssr))
    record(f"{tag}: QEMU's trace: NSSR written with \"NVMe\" twice (the fault=8 resets "
           "alone), each followed by the controller enabled again",
           len(nssr) == 2 and enabled_after,
           f"{len(nssr)} NSSR writes; events: {' '.join(names[-12:])}")
    record(f"{tag}: QEMU's trace: CSTS.NSSRO never written (neither controller has it)",
           NSSRO_EVENT not in names and ENABLE_EVENT in names,
           f"{names.count(NSSRO_EVENT)} writes; {names.count(ENABLE_EVENT)} enables traced")


def check_rest(record, tag, b):
    resets = b.lines(rf"rsnvme 0000:00:{RS_SLOT:02x}\.0: resetting the controller: "
                     r"requested through ioctl$")
    # Counted before fault=8, whose subsystem resets log their own.
    lines = b.console.splitlines()
    cut = next((i for i, l in enumerate(lines) if "taking CAP.NSSRS as set" in l), len(lines))
    done = [l for l in lines[:cut]
            if re.search(rf"rsnvme 0000:00:{RS_SLOT:02x}\.0: reset done: (\d+) I/O queues", l)]
    record(f"{tag}: nvme reset: rsnvme logs one ioctl reset and 'reset done'",
           len(resets) == 1 and len(done) == 1, f"{len(resets)} resets, {len(done)} done")
    rc = b.lines(r"^@@NVME rs reset rc=(\d+)")
    record(f"{tag}: nvme reset /dev/rsnvme0 exits 0", bool(rc) and rc[0][1] == "0",
           rc[0][0] if rc else "no line")
    fio = b.lines(r"^@@FIO after \S+ err=(\d+) read_kib=(\d+) write_kib=(\d+)")
    record(f"{tag}: fio verify after the bad passthrough: 16 MiB written and read back",
           bool(fio) and fio[0].groups() == ("0", "16384", "16384"),
           fio[0][0] if fio else "no @@FIO line")
    m = b.lines(r"^@@REBIND disks=(.*)$")
    record(f"{tag}: rebound controller gets its number back: disk rsnvme0n1",
           bool(m) and m[0][1].split() == ["rsnvme0n1"], m[0][0] if m else "no line")
    node = b.lines(r"^@@NODE rs-class (\S+)$")
    record(f"{tag}: /sys/class/misc/rsnvme0 belongs to the PCI device",
           bool(node) and node[0][1].endswith(f"0000:00:{RS_SLOT:02x}.0"),
           node[0][0] if node else "no line")
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


def qemu_version():
    out = subprocess.run(["qemu-system-x86_64", "--version"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    return re.search(r"version (\S+)", out)[1]


# The namespaces of the mgmt-ns controllers (both alike): size in MiB and
# identifiers. QEMU 7.2's nvme-ns has uuid= and eui64= but no nguid=, so
# the NGUID paths are covered by the host unit tests only. A null UUID
# means none (QEMU would make up a random one without uuid=).
NULL_UUID = "00000000-0000-0000-0000-000000000000"
NS_CONFIG = [
    (32, {"uuid": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "eui64": "0x5254000011223344"}),
    (16, {"uuid": NULL_UUID}),
    (16, {"uuid": NULL_UUID, "eui64": "0x0102030405060708"}),
]
VENDOR_QEMU = 0x1b36


def expected_ns_attrs(serial, ignore_ids=False):
    """{(nsid, attribute): value or ABSENT} as the C driver's sysfs.c shows
    the NS_CONFIG namespaces of a QEMU controller with this serial; with
    `ignore_ids` as if QEMU reported no identifiers (the C driver's
    NVME_QUIRK_BOGUS_NID for QEMU's controller, 1b36:0010, in pci.c)."""
    out = {}
    for i, (_, p) in enumerate(NS_CONFIG):
        nsid = i + 1
        uuid = NULL_UUID if ignore_ids else p.get("uuid", NULL_UUID)
        eui = int("0" if ignore_ids else p.get("eui64", "0"), 16).to_bytes(8, "big")
        has_uuid, has_eui = uuid != NULL_UUID, any(eui)
        if has_uuid:
            wwid = f"uuid.{uuid}"
        elif has_eui:
            wwid = f"eui.{eui.hex()}"
        else:
            wwid = (f"nvme.{VENDOR_QEMU:04x}-{serial.encode().hex()}-"
                    f"{'QEMU NVMe Ctrl'.encode().hex()}-{nsid:08x}")
        out[(nsid, "nsid")] = str(nsid)
        out[(nsid, "wwid")] = wwid
        out[(nsid, "eui")] = " ".join(f"{b:02x}" for b in eui) if has_eui else "ABSENT"
        out[(nsid, "nguid")] = "ABSENT"
        out[(nsid, "uuid")] = uuid if has_uuid else "ABSENT"
    return out


def check_ns_attrs(record, tag, b):
    got = {(m[1], int(m[2]), m[3]): m[4] for m in
           b.lines(r"^@@NSATTR (c|rs) (\d+) (\w+)=(.*)$")}
    # The C driver ignores QEMU's identifiers (a quirk for the QEMU
    # controller, whose older versions made them up non-unique); rsnvme
    # has no quirk table and shows what the controller reports.
    for drv, serial, quirk, what in (
            ("rs", RS_SERIAL, False, "rsnvme: as QEMU is configured"),
            ("c", C_SERIAL, True, "C driver: as without identifiers (NVME_QUIRK_BOGUS_NID)")):
        want = expected_ns_attrs(serial, quirk)
        bad = [f"nsid {n} {a}: got {got.get((drv, n, a))!r}, want {v!r}"
               for (n, a), v in want.items() if got.get((drv, n, a)) != v]
        record(f"{tag}: {what}: nsid, wwid, eui, nguid, uuid of {len(NS_CONFIG)} namespaces",
               not bad, "; ".join(bad[:6]))
    # rsnvme against the C driver where the quirk makes no difference
    # (namespaces without identifiers), the serial number aside.
    hexes = (C_SERIAL.encode().hex(), RS_SERIAL.encode().hex())
    plain = [i + 1 for i, (_, p) in enumerate(NS_CONFIG)
             if p.get("uuid", NULL_UUID) == NULL_UUID and "eui64" not in p]
    keys = sorted(k[1:] for k in got if k[0] == "rs" and k[1] in plain)
    diff = [f"nsid {n} {a}: C {got.get(('c', n, a))!r} rsnvme {got.get(('rs', n, a))!r}"
            for n, a in keys
            if (got.get(("c", n, a)) or "").replace(*hexes) != got.get(("rs", n, a))]
    record(f"{tag}: namespace sysfs attributes without identifiers: rsnvme shows what the "
           f"C driver shows ({len(keys)} values)", len(keys) == 5 * len(plain) and not diff,
           "; ".join(diff[:6]))


# What each namespace ioctl case (passthru-bad ns) must return on rsnvme,
# as PT_EXPECT; "nsid": the namespace's ID.
NS_PT_EXPECT = {
    "ns-id": ("nsid", "0"),
    "submit-io-write": ("0", "0"),
    "submit-io-read": ("0", "0"),
    "submit-io-compare-equal": ("0", "0"),
    "submit-io-compare-differ": ("status", "0"),
    "submit-io-bad-opcode": ("-1", "EINVAL"),
    "submit-io-flags": ("-1", "EINVAL"),
    "submit-io-unmapped-buffer": ("-1", "EFAULT"),
    "submit-io-null-buffer": ("-1", "EINVAL"),
    "submit-io-null-argument": ("-1", "EFAULT"),
    "ns-io-read": ("0", "0"),
    "ns-io-other-namespace": ("-1", "EINVAL"),
    "ns-io-unmapped-buffer": ("-1", "EFAULT"),
    "ns-admin-identify": ("0", "0"),
    "ns-unknown-ioctl": ("-1", "ENOTTY"),
    "ns-unprivileged-submit-io": ("-1", "EACCES"),
}
# Cases the C driver must answer alike (it lets a process without
# CAP_SYS_ADMIN read through a namespace it opened; rsnvme asks for the
# capability for every I/O command, as on /dev/rsnvme<N>).
NS_PT_SAME_AS_C = ("ns-id", "submit-io-write", "submit-io-read", "submit-io-compare-equal",
                   "submit-io-compare-differ", "submit-io-bad-opcode", "submit-io-flags",
                   "submit-io-null-argument", "ns-io-read", "ns-io-other-namespace",
                   "ns-admin-identify", "ns-unknown-ioctl")


def check_ns_cli(record, tag, b):
    got = cli(b)
    for nsid, mb in ((1, NS_CONFIG[0][0]), (2, NS_CONFIG[1][0])):
        what = f"id-ns-{nsid}"
        crc, c = got.get(("c", what), (None, None))
        rrc, rs = got.get(("rs", what), (None, None))
        record(f"{tag}: nvme id-ns on rsnvme's namespace {nsid} block device: nsze {mb << 11}",
               rrc == 0 and isinstance(rs, dict) and rs.get("nsze") == mb << 11,
               f"rc {rrc} nsze {(rs or {}).get('nsze') if isinstance(rs, dict) else rs!r}")
        d = diff(c, rs, {})
        record(f"{tag}: nvme id-ns on namespace {nsid}'s block device: rsnvme and the C "
               "driver agree", crc == 0 and not d,
               "; ".join(f"{k}: C {c.get(k)!r} rsnvme {rs.get(k)!r}" for k in d[:10]))
    (crc, c), (rrc, rs) = got.get(("c", "get-ns-id-2"), (None, "")), got.get(("rs", "get-ns-id-2"),
                                                                              (None, ""))
    record(f"{tag}: nvme get-ns-id (NVME_IOCTL_ID) on namespace 2: 2, as with the C driver",
           rrc == 0 and isinstance(rs, str) and re.search(r"namespace-id:\s*2\b", rs)
           and re.sub(r"^\w+:", "", c or "") == re.sub(r"^\w+:", "", rs),
           f"rsnvme rc {rrc} {rs!r}; C rc {crc} {c!r}")
    io = {(m[1], m[2]): m for m in
          b.lines(r"^@@IOPT (c|rs) (\S+) rc=(\d+) want=(\w+) got=(\w+)$")}
    for drv in ("c", "rs"):
        for what, how in (("n2-write", "io-passthru on namespace 2's disk writes a pattern"),
                          ("n2-read", "io-passthru on namespace 2's disk reads a pattern"),
                          ("n1-nvme-write", "nvme write on namespace 1's disk writes a pattern"),
                          ("n1-nvme-read", "nvme read on namespace 1's disk reads a pattern")):
            m = io.get((drv, what))
            record(f"{tag}: {how} ({drv}): 8-16 KiB compared byte for byte (md5)",
                   bool(m) and m[3] == "0" and m[4] == m[5], m[0] if m else "no line")
        m = io.get((drv, "n2-other-nsid"))
        record(f"{tag}: io-passthru naming namespace 1 on namespace 2's disk fails ({drv})",
               bool(m) and m[3] != "0", m[0] if m else "no line")
    res = {(m[1], int(m[2]), m[3]): (m[4], m[5]) for m in
           b.lines(r"^@@PT (c|rs) (\d) (\S+) ret=(-?\d+) errno=([A-Z0-9]+)")}
    for nsid in (1, 2):
        for case, (ret, err) in NS_PT_EXPECT.items():
            r = res.get(("rs", nsid, case))
            ok = r is not None and r[1] == err and (
                int(r[0]) > 0 if ret == "status" else
                r[0] == str(nsid) if ret == "nsid" else r[0] == ret)
            record(f"{tag}: namespace {nsid} ioctl {case} on rsnvme returns "
                   f"{dict(status='an NVMe status', nsid=str(nsid)).get(ret, err)}", ok,
                   f"got {r}")
        for case in NS_PT_SAME_AS_C:
            r, c = res.get(("rs", nsid, case)), res.get(("c", nsid, case))
            record(f"{tag}: namespace {nsid} ioctl {case}: rsnvme answers as the C driver",
                   r is not None and r == c, f"rsnvme {r} C {c}")
        for what in ("submit-io-compare", "ns-io-read-data"):
            m = b.lines(rf"^@@PT rs {nsid} {what} same=(\d)")
            record(f"{tag}: namespace {nsid}: {what}: data read back equals the pattern",
                   bool(m) and m[0][1] == "1", m[0][0] if m else "no line")


def ns_devices():
    """The two mgmt-ns controllers: the C driver's, rsnvme's."""
    def namespaces():
        return [qemu.Ns(size_mb=mb, params=dict(p)) for mb, p in NS_CONFIG]
    return [qemu.Nvme(serial=C_SERIAL, namespaces=namespaces(), params={"addr": hex(C_SLOT)}),
            qemu.Nvme(serial=RS_SERIAL, namespaces=namespaces(), params={"addr": hex(RS_SLOT)})]


def run_ns(kdir, record, check_boot, initrd):
    tag = "mgmt-ns"
    env = {"c_bdf": f"0000:00:{C_SLOT:02x}.0", "rs_bdf": f"0000:00:{RS_SLOT:02x}.0"}
    b = qemu.boot(tag, initrd, kdir, "mgmt-ns", ns_devices(), smp=2, mem=1024, env=env,
                  timeout=180)
    check_boot(tag, b)
    record(f"{tag}: guest script ran to its end", bool(b.lines(r"^@@IO_END$")))
    check_ns_attrs(record, tag, b)
    check_ns_cli(record, tag, b)
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


RESCAN_SERIAL = "RSNVMERESCAN"


def run_rescan(kdir, record, check_boot, initrd):
    """Namespaces attached, detached and reformatted at runtime (QEMU 7.2
    can neither resize an nvme-ns, whose drive refuses block_resize, nor
    hot-plug one: its bus is not hot-pluggable; Namespace Attachment and
    Format NVM through nvme-cli are what it has)."""
    tag = "mgmt-rescan"
    dev = qemu.Nvme(serial=RESCAN_SERIAL, params={"addr": hex(RS_SLOT), "subsys": "sub0"},
                    namespaces=[qemu.Ns(size_mb=32),
                                qemu.Ns(size_mb=16, params={"detached": "true"})])
    qmp_result = []

    def on_line(line, qmp):
        if line.strip() == "@@QMP smart-warning" and qmp is not None:
            qmp_result.append(qmp.command("qom-set", path="/machine/peripheral/nvme0",
                                          property="smart_critical_warning", value=2))

    b = qemu.boot(tag, initrd, kdir, "mgmt-rescan", [dev], smp=2, mem=512, timeout=180,
                  extra_args=["-device", "nvme-subsys,id=sub0,nqn=nqn.2026-12.io.rsnvme:rescan"],
                  on_line=on_line)
    check_boot(tag, b)
    record(f"{tag}: guest script ran to its end", bool(b.lines(r"^@@IO_END$")))
    steps = {m[1]: (m[2], m[3]) for m in b.lines(r"^@@STEP (\S+) rc=(\d+) ?(.*)$")}
    for step in ("raw-0", "raw-1"):
        rc, out = steps.get(step, (None, "no line"))
        record(f"{tag}: Namespace Attachment (admin-passthru, {step}) succeeds", rc == "0",
               f"rc {rc}: {out}")
    for what in ("attach", "detach", "reattach", "format"):
        for step in (what, f"{what}-rescan"):
            rc, out = steps.get(step, (None, "no line"))
            record(f"{tag}: nvme {step} on /dev/rsnvme0 succeeds", rc == "0", f"rc {rc}: {out}")
    disks = {m[1]: m[2].split() for m in b.lines(r"^@@DISKS (\S+) ?(.*)$")}
    both = ["rsnvme0n1", "rsnvme0n2"]
    for when, want in (("start", ["rsnvme0n1"]), ("event-attached", both),
                       ("event-detached", ["rsnvme0n1"]), ("attached", both),
                       ("detached", ["rsnvme0n1"]), ("reattached", both), ("formatted", both)):
        record(f"{tag}: disks {when}: {' '.join(want)}", disks.get(when) == want,
               f"got {disks.get(when)}")
    sizes = {m[1]: (m[2], m[3]) for m in b.lines(r"^@@SIZE (\S+) (\d+) (\d+)$")}
    for when, want in (("attached", ("32768", "512")), ("formatted", ("32768", "4096"))):
        record(f"{tag}: namespace 2 {when}: {want[0]} sectors of 512 bytes, logical blocks of "
               f"{want[1]}", sizes.get(when) == want, f"got {sizes.get(when)}")
    log = [m[1] for m in b.lines(rf"rsnvme 0000:00:{RS_SLOT:02x}\.0: rescan: (.*)$")]
    added, removed = "namespace 2 added: 32768 blocks of 512 bytes", "namespace 2 removed"
    want = [added, removed, added, removed, added, removed,
            "namespace 2 added: 4096 blocks of 4096 bytes"]
    record(f"{tag}: rsnvme logs each change once: added, removed (events), added, removed, "
           "added (attach-ns, detach-ns), removed and added with 4 KiB blocks (format)",
           log == want, f"got {log}")
    # The first two changes came from events alone (no rescan ioctl until
    # the guest saw the second one happen): each logged its event.
    lines = [l for l in b.console.splitlines() if "rsnvme 0000" in l or l.startswith("@@")]
    first = lines[:next((i for i, l in enumerate(lines) if l.startswith("@@DISKS event-detached")),
                        len(lines))]
    events = [l for l in first if "namespace attributes changed: rescanning" in l]
    record(f"{tag}: Namespace Attribute Changed events: logged and handled (2 rescans before "
           "any ns-rescan)", len(events) >= 2 and sum(1 for l in first if "rescan: " in l) == 2,
           "\n".join(first[-12:]))
    record(f"{tag}: QMP qom-set smart_critical_warning=2 accepted",
           bool(qmp_result) and "return" in qmp_result[0], f"{qmp_result}")
    warn = b.lines(rf"rsnvme 0000:00:{RS_SLOT:02x}\.0: SMART/health critical warning (.*)$")
    record(f"{tag}: the SMART event is logged with its bits: 0x02: temperature out of range",
           bool(warn) and warn[0][1] == "0x02: temperature out of range",
           warn[0][0] if warn else "no line")
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


HOST_ABORTED = "0x371"


def run_stall(kdir, record, check_boot, initrd):
    """Passthrough commands that stall (fault=9, tests/guest/mgmt-stall.sh):
    a reset is not held off by them, many are outstanding at once, and a
    command's own timeout resets the controller, which takes it back."""
    tag = "mgmt-stall"
    dev = qemu.Nvme(serial="RSNVMESTALL", params={"addr": hex(RS_SLOT), "subsys": "sub0"},
                    namespaces=[qemu.Ns(size_mb=SIZE_MB),
                                qemu.Ns(size_mb=16, params={"detached": "true"})])
    qmp_result = []

    def on_line(line, qmp):
        value = {"@@QMP smart-warning": 2, "@@QMP smart-warning-2": 6}.get(line.strip())
        if value is not None and qmp is not None:
            qmp_result.append(qmp.command("qom-set", path="/machine/peripheral/nvme0",
                                          property="smart_critical_warning", value=value))

    b = qemu.boot(tag, initrd, kdir, "mgmt-stall", [dev], smp=2, mem=512, timeout=300,
                  on_line=on_line,
                  extra_args=["-device", "nvme-subsys,id=sub0,nqn=nqn.2026-12.io.rsnvme:stall"])
    check_boot(tag, b)
    record(f"{tag}: guest script ran to its end", bool(b.lines(r"^@@IO_END$")))
    lost = {m[2]: int(m[1]) for m in b.lines(r"^@@STALL lost (\d+) of (\d+)$")}
    record(f"{tag}: the stalled Identify reached the driver before the reset",
           lost.get("1", 0) >= 1, f"{lost}")
    record(f"{tag}: 8 Identify and 8 Read commands all reached the driver at once (none waits "
           "for another)", lost.get("17", 0) >= 17, f"{lost}")
    record(f"{tag}: the Identify and Read stalled at the unbind reached the driver",
           lost.get("21", 0) >= 21, f"{lost}")
    resets = {m[1]: m[2] for m in b.lines(r"^@@STALL (reset-\S+) rc=(\d+)$")}
    for what in ("reset-one", "reset-many"):
        record(f"{tag}: the reset_controller write with stalled commands returns 0 ({what})",
               resets.get(what) == "0", f"{resets}")
    runs = {}
    for m in b.lines(r"^@@STALL (\S+) thread=(\d+) ret=(\S+) errno=(\d+) ms=(\d+)$"):
        runs.setdefault(m[1], []).append((m[3], m[4]))
    for name, count, what in (("one", 1, "the Identify taken back by the reset"),
                              ("admin8", 8, "8 Identify commands taken back by one reset"),
                              ("io8", 8, "8 Read commands taken back by one reset"),
                              ("tadmin", 1, "an Identify taken back after its 3 s timeout"),
                              ("tio", 1, "a Read taken back after its 3 s timeout"),
                              ("gone-admin", 1, "an Identify taken back by the unbind"),
                              ("gone-io", 1, "a Read taken back by the unbind")):
        got = runs.get(name, [])
        record(f"{tag}: {what}: status {HOST_ABORTED} (host aborted)",
               len(got) == count and all(r == (HOST_ABORTED, "0") for r in got), f"{got}")
    bdf = f"0000:00:{RS_SLOT:02x}.0"
    log = [m[1] for m in b.lines(rf"rsnvme {re.escape(bdf)}: (.*)$")]
    asked = [l for l in log if l == "resetting the controller: requested through sysfs"]
    record(f"{tag}: four sysfs resets logged", len(asked) == 4, f"{len(asked)}")
    admin_timeout = [l for l in log
                     if re.fullmatch(r"admin command id \S+ timed out: resetting the controller", l)]
    record(f"{tag}: the Identify's own timeout resets the controller", len(admin_timeout) == 1,
           f"{admin_timeout}")
    io_timeout = [l for l in log if l == "I/O timeout after abort: resetting the controller"]
    record(f"{tag}: the Read's timeout is aborted, then resets the controller",
           len(io_timeout) == 1, f"{io_timeout}")
    done = [l for l in log if re.match(r"reset done: ", l)]
    record(f"{tag}: six resets done", len(done) == 6, "\n".join(done))
    attach = b.lines(r"^@@STALL (attach|reset-attach) rc=(\d+)(.*)$")
    record(f"{tag}: Namespace Attachment sent during a reset succeeds, and the reset",
           [(m[1], m[2]) for m in attach] == [("attach", "0"), ("reset-attach", "0")],
           f"{[m[0] for m in attach]}")
    added = [l for l in log if l == "rescan: namespace 2 added: 32768 blocks of 512 bytes"]
    record(f"{tag}: the attached namespace's disk is added once", len(added) == 1, f"{added}")
    record(f"{tag}: no reset failed", not any("failed: controller is dead" in l for l in log))
    pt = {m[1]: (m[2], m[3]) for m in b.lines(r"^@@PT (part-\S+) ret=(\S+) errno=(\S+)")}
    for case, want, what in (("part-identify", ("0", "0"), "Identify on a partition as root"),
                             ("part-id", ("1", "0"), "NVME_IOCTL_ID on a partition"),
                             ("part-unprivileged-identify", ("-1", "EACCES"),
                              "Identify on a partition without CAP_SYS_ADMIN: refused"),
                             ("part-unprivileged-id", ("1", "0"),
                              "NVME_IOCTL_ID on a partition without CAP_SYS_ADMIN")):
        record(f"{tag}: {what} (ret {want[0]}, {want[1]})", pt.get(case) == want,
               f"got {pt.get(case)}")
    record(f"{tag}: QMP qom-set smart_critical_warning accepted twice",
           len(qmp_result) == 2 and all("return" in r for r in qmp_result), f"{qmp_result}")
    slow = b.lines(r"^@@STALL reset-slow rc=(\d+)$")
    record(f"{tag}: the slow reset (fault=10) succeeds", bool(slow) and slow[0][1] == "0",
           slow[0][0] if slow else "no line")
    warn = [m[1] for m in b.lines(rf"rsnvme {re.escape(bdf)}: SMART/health critical warning "
                                  r"(.*)$")]
    record(f"{tag}: the SMART event during the reset is read (0x02), and so the next one "
           "(0x06) arrives", warn == ["0x02: temperature out of range",
                                      "0x06: temperature out of range, reliability degraded"],
           f"{warn}")
    unread = b.lines(r"log page unreadable")
    record(f"{tag}: no event's log page left unread", not unread,
           unread[0][0] if unread else "")
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")

URING_SIZE_MB = 32
URING_TRACE = ("pci_nvme_create_cq", "pci_nvme_io_cmd", "pci_cfg_read")
URING_MARK = r"\bpci_cfg_read nvme .*@0xfc\b"
# Identify Namespace fields QEMU sets per controller: its default EUI-64
# counts the namespaces QEMU created.
ID_NS_DIFFER = {"eui64": "QEMU numbers its default EUI-64s", "nguid": "likewise"}


def uring_windows(b):
    """The reads and writes each controller saw (as (sqid, opcode) lists)
    between consecutive pairs of trace marks: the fio runs of
    tests/guest/mgmt-uring.sh in order (C interrupt-driven and its
    verify_only from the block device, C polled and its verify_only, the
    same for rsnvme); and the queues without interrupts before the runs
    (completion queue IDs)."""
    windows, current, cqs = [], None, {}
    for line in b.trace.splitlines():
        if re.search(URING_MARK, line):
            if current is None:
                current = []
            else:
                windows.append(current)
                current = None
            continue
        m = re.search(r"\bpci_nvme_create_cq .*cqid=(\d+), .*ien=(\d+)", line)
        if m and not windows and current is None:
            # Their last creation before the runs (both drivers start with
            # a queue they make again).
            cqs[int(m[1])] = m[2]
        m = re.search(r"\bpci_nvme_io_cmd .* sqid (\d+) opc 0x([0-9a-f]+)", line)
        if m and current is not None and m[2] in ("1", "2"):
            current.append((int(m[1]), m[2]))
    return windows, {q for q, ien in cqs.items() if ien == "0"}


def run_uring(kdir, record, check_boot, initrd):
    """io_uring passthrough (issue 21, tests/guest/mgmt-uring.sh) on the
    generic character devices of both drivers, side by side: the ioctls,
    fio's io_uring_cmd engine interrupt-driven and polled (verified again
    from the block device), and an unbind with commands in flight."""
    tag = "mgmt-uring"
    devices = [qemu.Nvme(serial=C_SERIAL, size_mb=URING_SIZE_MB, params={"addr": hex(C_SLOT)}),
               qemu.Nvme(serial=RS_SERIAL, size_mb=URING_SIZE_MB, params={"addr": hex(RS_SLOT)})]
    env = {"c_bdf": f"0000:00:{C_SLOT:02x}.0", "rs_bdf": f"0000:00:{RS_SLOT:02x}.0"}
    b = qemu.boot(tag, initrd, kdir, "mgmt-uring", devices, smp=2, mem=1024, env=env,
                  timeout=480, trace=URING_TRACE)
    check_boot(tag, b)
    record(f"{tag}: guest script ran to its end", bool(b.lines(r"^@@IO_END$")))
    types = {m[1]: m[2] for m in b.lines(r"^@@NGTYPE (c|rs) (.*)$")}
    for drv, dev in (("c", "/dev/ng<N>n1"), ("rs", "/dev/rsng<N>n1")):
        record(f"{tag}: {dev} ({drv}) is a character device",
               types.get(drv) == "character special file", f"got {types.get(drv)!r}")
    got = cli(b)
    (crc, c), (rrc, rs) = (got.get(("c", "get-ns-id"), (None, "")),
                           got.get(("rs", "get-ns-id"), (None, "")))
    record(f"{tag}: nvme get-ns-id (NVME_IOCTL_ID) on the generic device: 1, as with the C "
           "driver", rrc == 0 and isinstance(rs, str) and re.search(r"namespace-id:\s*1\b", rs)
           and re.sub(r"^\w+:", "", c or "") == re.sub(r"^\w+:", "", rs),
           f"rsnvme rc {rrc} {rs!r}; C rc {crc} {c!r}")
    (crc, c), (rrc, rs) = got.get(("c", "id-ns"), (None, None)), got.get(("rs", "id-ns"),
                                                                          (None, None))
    record(f"{tag}: nvme id-ns (admin passthrough) on rsnvme's generic device: nsze "
           f"{URING_SIZE_MB << 11}", rrc == 0 and isinstance(rs, dict)
           and rs.get("nsze") == URING_SIZE_MB << 11,
           f"rc {rrc} {(rs or {}).get('nsze') if isinstance(rs, dict) else rs!r}")
    d = diff(c, rs, ID_NS_DIFFER)
    record(f"{tag}: nvme id-ns on the generic device: rsnvme and the C driver agree",
           crc == 0 and not d,
           "; ".join(f"{k}: C {unwrap(c).get(k)!r} rsnvme {unwrap(rs).get(k)!r}"
                     for k in d[:10]) if isinstance(unwrap(c), dict)
           and isinstance(unwrap(rs), dict) else f"C {c!r} rsnvme {rs!r}")
    io = {(m[1], m[2]): m for m in
          b.lines(r"^@@IOPT (c|rs) (\S+) rc=(\d+) want=(\w+) got=(\w+)$")}
    for drv in ("c", "rs"):
        for what, how in (("ng-write", "io-passthru on the generic device writes a pattern "
                           "(read back from the disk)"),
                          ("ng-read", "io-passthru on the generic device reads a pattern "
                           "(written to the disk)")):
            m = io.get((drv, what))
            record(f"{tag}: {how} ({drv}): 8-16 KiB compared byte for byte (md5)",
                   bool(m) and m[3] == "0" and m[4] == m[5], m[0] if m else "no line")
        m = io.get((drv, "ng-other-nsid"))
        record(f"{tag}: io-passthru naming namespace 2 on namespace 1's generic device fails "
               f"({drv})", bool(m) and m[3] != "0", m[0] if m else "no line")
    region = URING_SIZE_MB * 1024 // 2
    for drv in ("c", "rs"):
        for mode in ("irq", "poll"):
            name = f"uring-{drv}-{mode}"
            want = {f"{name}-cpu{c}-{region}": ("0", str(region), str(region)) for c in range(2)}
            jobs = {m[1]: (m[2], m[3], m[4]) for m in
                    b.lines(rf"^@@FIO {name} (\S+) err=(-?\d+) read_kib=(\d+) "
                            rf"write_kib=(\d+)$")}
            record(f"{tag}: fio io_uring_cmd {mode} on {drv}'s generic device: 2 jobs wrote "
                   f"and verified (crc32c) their {region} KiB each", jobs == want,
                   f"got {jobs}, want {want}")
            # verify_only counts the writes it replays without sending them
            # (QEMU's trace below shows it sent none).
            want = {f"{name}-bdev-cpu{c}-{region}": ("0", str(region), str(region))
                    for c in range(2)}
            jobs = {m[1]: (m[2], m[3], m[4]) for m in
                    b.lines(rf"^@@FIO {name}-bdev (\S+) err=(-?\d+) read_kib=(\d+) "
                            rf"write_kib=(\d+)$")}
            record(f"{tag}: fio verify_only from {drv}'s block device finds the io_uring_cmd "
                   f"{mode} run's data where it belongs", jobs == want,
                   f"got {jobs}, want {want}")
    windows, no_irq = uring_windows(b)
    record(f"{tag}: QEMU trace: each controller has one I/O queue without interrupts",
           len(no_irq) == 1, f"completion queues without interrupts: {sorted(no_irq)}")
    names = ("c irq", "c poll", "rs irq", "rs poll")
    record(f"{tag}: QEMU trace: eight fio runs framed by marks", len(windows) == 8,
           f"{len(windows)} windows")
    for name, ios in zip(names, windows[1::2]):
        reads = sum(1 for _, op in ios if op == "2")
        record(f"{tag}: QEMU trace: fio verify_only after io_uring_cmd {name} only read "
               f"({reads} reads)", reads > 0 and reads == len(ios),
               f"{len(ios) - reads} writes")
    for name, ios in zip(names, windows[0::2]):
        polled = [q for q, _ in ios if q in no_irq]
        if name.endswith("poll"):
            ok = bool(ios) and len(polled) == len(ios)
            how = "every read and write on the polled queue"
        else:
            ok = bool(ios) and not polled
            how = "no read or write on the polled queue"
        queues = sorted({q for q, _ in ios})
        record(f"{tag}: QEMU trace: fio io_uring_cmd {name}: {how} ({len(ios)} commands)", ok,
               f"queues used {queues}, polled {sorted(no_irq)}")
    unbind = {m[1]: m[2] for m in b.lines(r"^@@UNBIND (\S+) (.*)$")}
    irqs = unbind.get("interrupts-before-unbind", "0")
    record(f"{tag}: fio io_uring_cmd was running on rsnvme's generic device at the unbind "
           f"({irqs} interrupts)", irqs.isdigit() and int(irqs) >= 500, f"got {unbind}")
    record(f"{tag}: fio io_uring_cmd ended with an error after rsnvme's controller was "
           "unbound under it", unbind.get("fio-ended", "rc=stuck") not in ("rc=stuck", "rc=0"),
           f"got {unbind}")
    record(f"{tag}: the generic device goes with the unbind and comes back with the bind",
           unbind.get("ng-after-unbind") == "absent"
           and unbind.get("ng-after-bind") == "present", f"got {unbind}")
    rc, v = got.get(("rs", "get-ns-id-rebound"), (None, ""))
    record(f"{tag}: nvme get-ns-id on the generic device after the rebind: 1",
           rc == 0 and isinstance(v, str) and bool(re.search(r"namespace-id:\s*1\b", v)),
           f"rc {rc} {v!r}")
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


ABORT_FIRE = 12    # mgmt-abort-limit: completions fail_io_timeout hides
ABORT_TIMEOUT = 3  # mgmt-abort-limit: rsnvme's io_timeout (s, idle host)
MOST_ABORTS = 4    # rsnvme's own cap on outstanding Aborts
ABORT_TRACE = ("pci_cfg_read", "pci_nvme_admin_cmd", "pci_nvme_mmio_start_success")


def abort_windows(b):
    """The Abort commands QEMU received after the guest's first mark, per
    stretch between two enables of the controller (probe, then each
    reset), as a list of counts."""
    import recovery_tests as rt
    lines = b.trace.splitlines()
    marks = [i for i, l in enumerate(lines) if re.search(rt.MARK, l)]
    counts = []
    for line in lines[marks[0]:] if marks else []:
        if re.search(r"\bpci_nvme_mmio_start_success\b", line):
            counts.append(0)
        elif re.search(r"\bpci_nvme_admin_cmd .*'NVME_ADM_CMD_ABORT'", line) and counts:
            counts[-1] += 1
    return counts


def run_abort_limit(kdir, record, check_boot, initrd):
    """Many I/O timeouts at once (fail_io_timeout under fio) with each Abort
    kept outstanding until the next reset (fault=0x200): QEMU's trace must
    never show more Aborts between two enables than the controller's ACL +
    1 (QEMU 7.2: ACL 3) and rsnvme's cap of 4 allow, the limit must have
    been reached and a timeout beyond it reset the controller, and the
    data must survive (tests/guest/mgmt-abort-limit.sh)."""
    import recovery_tests as rt
    tag = "mgmt-abort-limit"
    dev = qemu.Nvme(serial="RSNVMEABORT", params={"addr": hex(RS_SLOT)},
                    namespaces=[qemu.Ns(size_mb=32), qemu.Ns(size_mb=32, lbs=4096)])
    b = qemu.boot(tag, initrd, kdir, "mgmt-abort-limit", [dev], smp=2, mem=512, timeout=300,
                  env={"fire": ABORT_FIRE, "timeout": ABORT_TIMEOUT}, trace=ABORT_TRACE)
    check_boot(tag, b)
    record(f"{tag}: guest script ran to its end", bool(b.lines(r"^@@IO_END$")))
    rc, ident = cli(b).get(("rs", "id-ctrl"), (None, None))
    acl = ident.get("acl") if isinstance(ident, dict) else None
    record(f"{tag}: nvme id-ctrl on rsnvme reports ACL 3 (QEMU 7.2)", rc == 0 and acl == 3,
           f"rc {rc} acl {acl!r}")
    limit = min(acl + 1, MOST_ABORTS) if isinstance(acl, int) else MOST_ABORTS
    counts = abort_windows(b)
    record(f"{tag}: QEMU's trace: Aborts between enables {counts}, never more than "
           f"min(ACL + 1, {MOST_ABORTS}) = {limit}", bool(counts) and max(counts) <= limit,
           f"{counts}")
    record(f"{tag}: QEMU's trace: the limit of {limit} outstanding Aborts was reached",
           limit in counts, f"{counts}")
    fired = len(b.lines(r"FAULT_INJECTION: forcing a failure"))
    record(f"{tag}: fail_io_timeout hid at least {ABORT_FIRE} completions", fired >= ABORT_FIRE,
           f"{fired}")
    bdf = f"0000:00:{RS_SLOT:02x}.0"
    tried = rt.rs(b, bdf, rt.ABORTING)
    kept = rt.rs(b, bdf, r"Abort of queue \d+ command id \S+: .*\(kept outstanding, injected\)$")
    record(f"{tag}: rsnvme: more Aborts wanted ({len(tried)}) than sent ({sum(counts)}): "
           "the limit refused some", len(tried) > sum(counts), f"{len(tried)} 'aborting' lines")
    record(f"{tag}: rsnvme: every Abort sent completed and was kept outstanding "
           f"({len(kept)} lines)", len(kept) == sum(counts), f"{len(kept)} vs {sum(counts)}")
    rt.check_resets(record, tag, b, bdf)
    rt.check_recovery_lines(record, tag, b, bdf, least_resets=1, failed=0)
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


RACE_TRACE = ("pci_cfg_read", "pci_nvme_io_cmd", "pci_nvme_mmio_shutdown_set",
              "pci_nvme_mmio_start_success", "pci_nvme_ub_db_wr_invalid_sq")


def first_io(lines, nsid):
    """The index of the first I/O command QEMU received for `nsid`."""
    return next((i for i, l in enumerate(lines)
                 if re.search(rf"\bpci_nvme_io_cmd cid \d+ nsid {nsid:#x} ", l)), None)


def run_rescan_race(kdir, record, check_boot, initrd):
    """Rescans racing a reset and a suspend (tests/guest/mgmt-rescan-race.sh):
    the fault flag 0x400 holds a rescan that has identified the namespaces
    until the controller leaves `live`, so that namespace 2's disk is added
    while an `nvme reset` holds the queues (fault=10), an `nvme ns-rescan`
    goes on during a sysfs reset, and namespace 3's disk is added while the
    controller is suspended; every disk must then work."""
    import pm_tests
    import recovery_tests as rt
    tag = "mgmt-rescan-race"
    dev = qemu.Nvme(serial="RSNVMERACE", params={"addr": hex(RS_SLOT), "subsys": "sub0"},
                    namespaces=[qemu.Ns(size_mb=32),
                                qemu.Ns(size_mb=16, params={"detached": "true"}),
                                qemu.Ns(size_mb=16, params={"detached": "true"})])
    b = qemu.boot(tag, initrd, kdir, "mgmt-rescan-race", [dev], smp=2, mem=512, timeout=300,
                  extra_args=["-device", "nvme-subsys,id=sub0,nqn=nqn.2026-12.io.rsnvme:race"],
                  trace=RACE_TRACE)
    check_boot(tag, b)
    record(f"{tag}: guest script ran to its end", bool(b.lines(r"^@@IO_END$")))
    race = {m[1]: (m[2], m[3]) for m in b.lines(r"^@@RACE (\S+) rc=(\d+) ?(.*)$")}
    for step, what in (("attach-2", "Namespace Attachment of namespace 2"),
                       ("reset-ioctl", "nvme reset (NVME_IOCTL_RESET)"),
                       ("reset-sysfs", "the reset through sysfs"),
                       ("ns-rescan", "nvme ns-rescan, going on during the sysfs reset"),
                       ("attach-3", "Namespace Attachment of namespace 3"),
                       ("suspend", "the system suspend (pm_test devices)")):
        rc, out = race.get(step, (None, "no line"))
        record(f"{tag}: {what} succeeds", rc == "0", f"rc {rc}: {out}")
    disks = {m[1]: m[2].split() for m in b.lines(r"^@@DISKS (\S+) ?(.*)$")}
    for when, want in (("after-reset", ["rsnvme0n1", "rsnvme0n2"]),
                       ("end", ["rsnvme0n1", "rsnvme0n2", "rsnvme0n3"])):
        record(f"{tag}: disks {when}: {' '.join(want)}", disks.get(when) == want,
               f"got {disks.get(when)}")
    bdf = f"0000:00:{RS_SLOT:02x}.0"
    log = [m[1] for m in b.lines(rf"rsnvme {re.escape(bdf)}: (.*)$")]
    going = [(i, m[1]) for i, m in
             ((i, re.fullmatch(r"rescan: going on with the controller (\S+) \(injected\)", l))
              for i, l in enumerate(log)) if m]
    # A starved event work may see the reset's second half (connecting).
    seen = [{"connecting": "resetting"}.get(g, g) for _, g in going]
    record(f"{tag}: three held rescans went on: during a reset, a reset and a suspend",
           seen == ["resetting", "resetting", "suspended"]
           and sum(l == "rescan: waiting for a reset or suspend (injected)" for l in log) == 3,
           f"{going}")

    def between(i, start, end):
        """Whether log line i comes after the last line before it matching
        `start` and before the first after it matching `end`."""
        before = [k for k, l in enumerate(log[:i]) if re.fullmatch(start, l)]
        after = [k for k, l in enumerate(log[i:]) if re.fullmatch(end, l)]
        return bool(before) and bool(after) and not any(
            re.fullmatch(end, l) for l in log[before[-1]:i])

    done = rt.RESET_DONE
    for k, (start, what) in enumerate(((r"resetting the controller: requested through ioctl",
                                        "the ioctl reset"),
                                       (r"resetting the controller: requested through sysfs",
                                        "the sysfs reset"))):
        record(f"{tag}: held rescan {k + 1} went on during {what} (between its 'resetting' "
               "and 'reset done' lines)",
               len(going) > k and between(going[k][0], start, done), f"{going}")
    record(f"{tag}: held rescan 3 went on while suspended (before 'resuming the controller')",
           len(going) > 2 and between(going[2][0], r"resetting the controller: .*|"
                                      r"reset done: .*", pm_tests.RESUMING),
           f"{going}")
    # The PM core's own note of a device added under a suspended parent,
    # printed while the devices sleep (pm_test's wait) and before the
    # resume: namespace 3's disk joined while the controller was suspended.
    kernel = [l for l in b.console.splitlines() if re.match(r"^\[\s*\d+\.\d+\] ", l)]
    waiting = next((i for i, l in enumerate(kernel) if "PM: suspend debug: Waiting" in l), None)
    joined = next((i for i, l in enumerate(kernel)
                   if re.search(rf"block rsnvme0n3: PM: parent {re.escape(bdf)} should not be "
                                r"sleeping$", l)), None)
    resuming = next((i for i, l in enumerate(kernel)
                     if l.endswith(f"rsnvme {bdf}: resuming the controller")), None)
    record(f"{tag}: namespace 3's disk was added while the devices slept (the PM core's "
           "'parent should not be sleeping' line, between pm_test's wait and the resume)",
           None not in (waiting, joined, resuming) and waiting < joined < resuming,
           f"lines {waiting}, {joined}, {resuming}")
    added = [l for l in log if re.fullmatch(r"rescan: namespace \d+ (added|removed).*", l)]
    record(f"{tag}: namespaces 2 and 3 added once each, none removed",
           added == ["rescan: namespace 2 added: 32768 blocks of 512 bytes",
                     "rescan: namespace 3 added: 32768 blocks of 512 bytes"], f"{added}")
    resets = [l for l in log if re.fullmatch(done, l)]
    record(f"{tag}: two resets done, none failed",
           len(resets) == 2 and not any(re.fullmatch(rt.RESET_FAILED, l) for l in log),
           f"{resets}")
    record(f"{tag}: one resume, done with the I/O queues",
           sum(bool(re.fullmatch(pm_tests.RESUME_DONE, l)) for l in log) == 1,
           "\n".join(l for l in log if "resum" in l))
    lines = b.trace.splitlines()
    marks = [i for i, l in enumerate(lines) if re.search(rt.MARK, l)]
    after = lines[marks[0]:] if marks else []
    enables = [i for i, l in enumerate(after) if re.search(r"\bpci_nvme_mmio_start_success\b", l)]
    shut = next((i for i, l in enumerate(after)
                 if re.search(r"\bpci_nvme_mmio_shutdown_set\b", l)), None)
    resumed = next((i for i in enables if shut is not None and i > shut), None)
    n2, n3 = first_io(after, 2), first_io(after, 3)
    record(f"{tag}: QEMU's trace: namespace 2's first I/O came after the ioctl reset enabled "
           "the controller again", bool(enables) and n2 is not None and n2 > enables[0],
           f"first I/O at {n2}, enables at {enables}")
    record(f"{tag}: QEMU's trace: namespace 3's first I/O came after the resume enabled the "
           "controller (its queue joined the set quiesced while suspended)",
           resumed is not None and n3 is not None and n3 > resumed,
           f"first I/O at {n3}, suspend's shutdown at {shut}, enables at {enables}")
    invalid = [l for l in after if re.search(r"\bpci_nvme_ub_db_wr_invalid_sq\b", l)]
    record(f"{tag}: QEMU's trace: no doorbell write for a queue that did not exist",
           not invalid, invalid[0] if invalid else "")
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


def run_all(kdir, record, check_boot, only=""):
    if all(only not in tag for tag in ("mgmt-cli", "mgmt-ns", "mgmt-rescan", "mgmt-stall",
                                       "mgmt-uring", "mgmt-abort-limit", "mgmt-rescan-race")):
        return
    initrd = initramfs(kdir)
    if only in "mgmt-uring":
        run_uring(kdir, record, check_boot, initrd)
    if only in "mgmt-abort-limit":
        run_abort_limit(kdir, record, check_boot, initrd)
    if only in "mgmt-rescan-race":
        run_rescan_race(kdir, record, check_boot, initrd)
    if only in "mgmt-stall":
        run_stall(kdir, record, check_boot, initrd)
    if only in "mgmt-ns":
        run_ns(kdir, record, check_boot, initrd)
    if only in "mgmt-rescan":
        run_rescan(kdir, record, check_boot, initrd)
    if only not in "mgmt-cli":
        return
    tag = "mgmt-cli"
    devices = [qemu.Nvme(serial=C_SERIAL, size_mb=SIZE_MB, params={"addr": hex(C_SLOT)}),
               qemu.Nvme(serial=RS_SERIAL, size_mb=SIZE_MB, params={"addr": hex(RS_SLOT)})]
    env = {"c_bdf": f"0000:00:{C_SLOT:02x}.0", "rs_bdf": f"0000:00:{RS_SLOT:02x}.0"}
    b = qemu.boot(tag, initrd, kdir, "mgmt-cli", devices, smp=2, mem=1024, env=env,
                  timeout=300, trace=TRACE)
    check_boot(tag, b)
    record(f"{tag}: guest script ran to its end", bool(b.lines(r"^@@IO_END$")))
    check_cli(record, tag, b)
    check_sysfs(record, tag, b)
    check_subsystem_reset(record, tag, b)
    check_rest(record, tag, b)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", default="", help="only scenarios containing this")
    args = ap.parse_args()
    import run
    run_all(qemu.kernel(), run.record, run.check_boot, args.k)
    run.finish()


if __name__ == "__main__":
    main()
