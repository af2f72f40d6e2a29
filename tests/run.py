#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make test`: every rsnvme test, ending with `N passed, N failed`.

Host checks first (cargo unit tests, rustfmt, checkpatch, the generated
header, the C shim's size), then the kernel and module builds (with clippy,
no warnings allowed), then QEMU boots under several device setups whose
console output is checked line by line.

Usage: tests/run.py [-k SUBSTRING]   (only QEMU scenarios whose name matches)
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


def shim_guard():
    shim = ROOT / "c_shim" / "rsnvme_shim.c"
    lines = [l for l in shim.read_text().splitlines() if l.strip()]
    record("shim: at most 40 non-blank lines", len(lines) <= 40, f"{len(lines)} lines")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", shim.read_text(), flags=re.S)
    logic = [l for l in code.splitlines()
             if re.search(r"\b(if|for|while|switch|goto|do)\b|\?", l)]
    record("shim: no control flow", not logic, "; ".join(logic))
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


def checkpatch(ksrc):
    res = subprocess.run(["perl", str(ksrc / "scripts" / "checkpatch.pl"), "--strict",
                          "--no-tree", "--show-types", "-f", "c_shim/rsnvme_shim.c"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    clean = "total: 0 errors, 0 warnings, 0 checks" in res.stdout
    record("lint: checkpatch.pl --strict c_shim/rsnvme_shim.c", clean, res.stdout[-3000:])


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
           b.done and not b.timed_out, f"timed out={b.timed_out}, log {b.log}")
    bad = b.bad_lines
    record(f"{tag}: no kernel warnings on the console", not bad, "\n".join(bad[:20]))
    for name, ok, detail in b.results:
        record(f"{tag}: guest: {name}", ok, detail)
    if not b.results:
        record(f"{tag}: guest reported results", False, f"see {b.log}")


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
        unb = b.lines(rf"rsnvme {re.escape(bdf)}: unbinding, CSTS")
        record(f"{tag}: {bdf} unbound after every probe", len(unb) == 1 + cycles,
               f"{len(unb)} unbind lines")
    if n == 0:
        record(f"{tag}: no rsnvme device lines without NVMe hardware",
               not b.lines(r"rsnvme [0-9a-f]{4}:"))
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


SCENARIOS = [
    # name, devices, cycles, smp
    ("probe-one", [qemu.Nvme(serial="RSNVMEONE")], 20, 2),
    ("probe-cmb", [qemu.Nvme(serial="RSNVMECMB", params={"cmb_size_mb": 1})], 3, 1),
    ("probe-two", [qemu.Nvme(serial="RSNVMEA"), qemu.Nvme(serial="RSNVMEB")], 5, 2),
    ("probe-none", [], 3, 1),
]


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
    header_fresh()
    rustfmt()
    ksrc = Path(subprocess.run(
        ["bash", "-c", f". {ROOT}/qemu-ci/env.sh && echo $KSRC"],
        stdout=subprocess.PIPE, text=True, check=True).stdout.strip())
    checkpatch(ksrc)

    try:
        kdir = qemu.kernel()
    except subprocess.CalledProcessError as e:
        record("build: guest kernel", False, str(e))
        finish()
    try:
        out = qemu.build_module(kdir, clippy=True, clean=True)
    except RuntimeError as e:
        record("build: rsnvme.ko", False, str(e))
        finish()
    warnings = [l for l in out.splitlines() if re.search(r"warning|error", l, re.I)]
    record("build: rsnvme.ko with CLIPPY=1, no warnings", not warnings,
           "\n".join(warnings[:40]))
    initrd = qemu.build_initramfs(kdir)

    for name, devices, cycles, smp in SCENARIOS:
        if args.k not in name:
            continue
        b = qemu.boot(name, initrd, kdir, "probe", devices, smp=smp,
                      env={"cycles": cycles})
        check_boot(name, b)
        check_probe(name, b, devices, cycles)
    finish()


if __name__ == "__main__":
    main()
