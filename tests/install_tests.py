#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Installing rsnvme (issue 12): `make install`, kmod's modprobe, DKMS and
the hand-over helper, on the host and in QEMU.

  inst-make      `make install INSTALL_MOD_PATH=<dir>` against the QEMU
                 kernel: the module in <dir>/lib/modules/<release>/extra/,
                 depmod's files listing it and its PCI class alias. A guest
                 with that tree and Debian's kmod (tests/guest/inst-modprobe.sh)
                 loads it with `modprobe rsnvme` and by the controller's
                 modalias, as udev would, uses the disk, unloads it with
                 `modprobe -r`.
  inst-dkms      Debian's dkms (add, build, install) against the QEMU
                 kernel's build tree under a test root (never the host's
                 /var/lib/dkms or /lib/modules): first with a rustc and a
                 bindgen whose versions differ from the kernel's (the build
                 must stop with the mismatch message), then the real build;
                 the guest loads the module dkms built.
  inst-headers   (host only) a headers tree as the kernel's own packaging
                 makes it lacks rust/: the build stops naming the missing
                 files; with them copied in, rsnvme builds against it.
  inst-handover  tools/nvme-handover in a guest with both drivers and two
                 controllers (tests/guest/inst-handover.sh): refusals while
                 a namespace is mounted, swapped on or open; the move to
                 rsnvme and back with data read back through each driver.

tests/run.py calls run_all(). Alone (uses the cached kernel; builds only
what `make install` and dkms build):

    tests/install_tests.py [-k NAME]
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "qemu-ci"))
sys.path.insert(0, str(ROOT / "tests"))
import qemu  # noqa: E402

Q = qemu.Nvme
NS = qemu.Ns
ALIAS = "pci:v*d*sv*sd*bc01sc08i02*"
# kmod's modprobe and its libraries, at their host paths.
KMOD = ("/usr/bin/kmod",)
SEED = 4200000
# Versions no kernel here was built with, for the mismatch checks.
FAKE = {"RUSTC": "rustc 1.78.0 (9b00956e5 2024-04-29)", "BINDGEN": "bindgen 0.65.1"}


def release(kdir):
    return (Path(kdir) / "include" / "config" / "kernel.release").read_text().strip()


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def tree_files(root):
    """(src, dst) pairs for build_initramfs: every file of a modules tree
    `root` (<root>/lib/modules/...), at the same place in the guest."""
    return [(str(p), str(p.relative_to(root))) for p in sorted((Path(root) / "lib").rglob("*"))
            if p.is_file() and not p.is_symlink()]


def check_tree(record, tag, root, kver, moddir):
    """The modules tree under `root` holds rsnvme in `moddir` and depmod's
    files list it with its PCI class alias."""
    lib = Path(root) / "lib" / "modules" / kver
    ko = lib / moddir / "rsnvme.ko"
    record(f"{tag}: module installed as lib/modules/{kver}/{moddir}/rsnvme.ko", ko.is_file(),
           " ".join(str(p.relative_to(root)) for p in Path(root).rglob("*.ko")))
    dep = (lib / "modules.dep").read_text() if (lib / "modules.dep").exists() else ""
    record(f"{tag}: modules.dep lists {moddir}/rsnvme.ko",
           re.search(rf"^{re.escape(moddir)}/rsnvme\.ko:", dep, re.M) is not None, dep[:300])
    aliases = (lib / "modules.alias").read_text() if (lib / "modules.alias").exists() else ""
    record(f"{tag}: modules.alias maps {ALIAS} to rsnvme",
           f"alias {ALIAS} rsnvme" in aliases.splitlines(), aliases[:300])
    if ko.is_file():
        info = subprocess.run(["modinfo", "-F", "vermagic", str(ko)], stdout=subprocess.PIPE,
                              text=True).stdout.strip()
        record(f"{tag}: its vermagic names kernel {kver}", info.split(" ")[:1] == [kver], info)
    return ko


def boot_modprobe(ctx, tag, root, moddir):
    """Boots a guest with the modules tree under `root` and kmod; checks
    what tests/guest/inst-modprobe.sh saw."""
    record, kdir = ctx["record"], ctx["kdir"]
    kver = release(kdir)
    ko = Path(root) / "lib" / "modules" / kver / moddir / "rsnvme.ko"
    initrd = qemu.build_initramfs(kdir, extra_files=qemu.io_tools(KMOD) + tree_files(root),
                                  name=f"{tag}-initramfs")
    b = qemu.boot(tag, initrd, kdir, "inst-modprobe", [Q(serial="RSNVMEINST")], smp=2,
                  timeout=120, env={"moddir": moddir, "seed": SEED})
    ctx["check_boot"](tag, b)
    want = f"/lib/modules/{kver}/{moddir}/rsnvme.ko"
    got = b.lines(r"^@@MODINFO filename=(.*)$")
    record(f"{tag}: host: modinfo in the guest names {want}",
           bool(got) and got[0][1] == want, got[0][0] if got else "no @@MODINFO line")
    sums = b.lines(r"^@@MODFILE_MD5 ([0-9a-f]{32})$")
    record(f"{tag}: host: the guest's module file is the installed one (md5)",
           bool(sums) and ko.is_file() and sums[0][1] == md5(ko),
           sums[0][0] if sums else "no @@MODFILE_MD5 line")
    res = b.lines(r"^@@RESOLVE (\S+) -> (.*)$")
    record(f"{tag}: host: the controller's modalias resolves to rsnvme alone",
           bool(res) and res[0][1].startswith("pci:v00001B36d00000010") and
           res[0][2].split() == ["rsnvme"], res[0][0] if res else "no @@RESOLVE line")
    summaries = b.lines(r"rsnvme (\S+): model \"QEMU NVMe Ctrl\" serial \"RSNVMEINST\"")
    unbinds = b.lines(r"rsnvme (\S+): unbinding$")
    record(f"{tag}: host: rsnvme probed twice (modprobe, modalias) and unbound twice",
           len(summaries) == 2 and len(unbinds) == 2,
           f"{len(summaries)} probes, {len(unbinds)} unbinds")
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


def inst_make(ctx, tag="inst-make"):
    """make install into a temporary INSTALL_MOD_PATH, then the guest."""
    record, kdir = ctx["record"], ctx["kdir"]
    kver = release(kdir)
    with tempfile.TemporaryDirectory(prefix="rsnvme-install-") as root:
        out = subprocess.run(["make", "-C", str(ROOT), f"KDIR={kdir}", "RSNVME_FAULT_INJECTION=y",
                              f"INSTALL_MOD_PATH={root}", "install"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not record(f"{tag}: make install INSTALL_MOD_PATH=<tmp> succeeds", out.returncode == 0,
                      out.stdout[-3000:]):
            return
        record(f"{tag}: make install ran depmod",
               f"DEPMOD  {root}/lib/modules/{kver}" in out.stdout, out.stdout[-1000:])
        check_tree(record, tag, root, kver, "extra")
        boot_modprobe(ctx, tag, root, "extra")


def fake_tool(d, var):
    """A script that prints a version the kernel was not built with."""
    p = Path(d) / var.lower()
    p.write_text(f"#!/bin/sh\necho '{FAKE[var]}'\n")
    p.chmod(0o755)
    return p


def inst_dkms(ctx, tag="inst-dkms"):
    """dkms add/build/install in a test root, the mismatch message, the guest."""
    record, kdir = ctx["record"], ctx["kdir"]
    kver = release(kdir)
    conf = (ROOT / "dkms.conf").read_text()
    version = re.search(r'^PACKAGE_VERSION="([^"]+)"', conf, re.M)[1]
    with tempfile.TemporaryDirectory(prefix="rsnvme-dkms-") as root:
        r = Path(root)
        build = r / "lib" / "modules" / kver / "build"
        build.parent.mkdir(parents=True)
        build.symlink_to(kdir)
        (r / "var" / "lib" / "dkms").mkdir(parents=True)
        qemu.stage_module_source(r / "usr" / "src" / f"rsnvme-{version}")
        dkms = ["dkms", "--dkmstree", str(r / "var/lib/dkms"), "--sourcetree", str(r / "usr/src"),
                "--installtree", str(r / "lib/modules"), "--kernelsourcedir", str(build),
                "-k", kver]
        # Never sign with (or make) a key of the host's: no sign-file.
        bindgen = os.environ.get("BINDGEN") or env_sh("BINDGEN")
        env = dict(os.environ, sign_file="/nonexistent/sign-file", RUSTC="/usr/bin/rustc",
                   BINDGEN=bindgen)

        def run(*args, **more):
            res = subprocess.run(dkms + list(args), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=dict(env, **more))
            return res.returncode, res.stdout

        rc, out = run("add", f"rsnvme/{version}")
        if not record(f"{tag}: dkms add rsnvme/{version}", rc == 0, out[-2000:]):
            return
        log = r / "var/lib/dkms/rsnvme" / version / "build" / "make.log"
        for var, what in (("RUSTC", "rustc"), ("BINDGEN", "bindgen")):
            fake = fake_tool(root, var)
            rc, out = run("build", f"rsnvme/{version}", **{var: str(fake)})
            text = log.read_text() if log.exists() else out
            msg = re.search(rf"rsnvme: {what} mismatch: '{re.escape(str(fake))} --version' says "
                            rf"'{re.escape(FAKE[var])}', but the kernel in \S+ was built with "
                            rf"'([^']+)' \(CONFIG_{var}_VERSION_TEXT\)", text)
            record(f"{tag}: dkms build with another {what} fails with the mismatch message",
                   rc != 0 and msg is not None, f"exit {rc}: {text[-1500:]}")
            print(f"{tag}: {msg[0] if msg else 'no mismatch message'}", flush=True)
        rc, out = run("build", f"rsnvme/{version}")
        built = r / "var/lib/dkms/rsnvme" / version / kver
        mlog = next(built.rglob("make.log"), None) if built.exists() else None
        text = mlog.read_text() if mlog else out
        if not record(f"{tag}: dkms build rsnvme/{version} -k {kver}", rc == 0, out[-3000:]):
            return
        warnings = [line for line in text.splitlines()
                    if re.search(r"warning|error", line, re.I) and "jobserver" not in line]
        record(f"{tag}: dkms build without warnings", not warnings, "\n".join(warnings[:20]))
        # depmod is ours, with -b (dkms would run it on the host's tree).
        rc, out = run("install", "--no-depmod", f"rsnvme/{version}")
        if not record(f"{tag}: dkms install (into the test root)", rc == 0, out[-3000:]):
            return
        res = subprocess.run(["depmod", "-a", "-b", root, "-F", str(Path(kdir) / "System.map"),
                              kver], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        record(f"{tag}: depmod -b <root> {kver}", res.returncode == 0, res.stdout)
        moddir = "updates/dkms" if (r / "lib/modules" / kver / "updates/dkms/rsnvme.ko").exists() \
            else "extra"
        print(f"{tag}: dkms installed the module in {moddir}/", flush=True)
        check_tree(record, tag, root, kver, moddir)
        rc, out = run("status", f"rsnvme/{version}")
        record(f"{tag}: dkms status says installed", rc == 0 and
               re.search(rf"rsnvme/{re.escape(version)}, {re.escape(kver)}, \S+: installed", out)
               is not None, out)
        boot_modprobe(ctx, tag, root, moddir)


def env_sh(var):
    """`var` as qemu-ci/env.sh sets it for KVER's kernel."""
    return subprocess.run(["bash", "-c", f". {ROOT}/qemu-ci/env.sh && echo ${var}"],
                          stdout=subprocess.PIPE, text=True, check=True).stdout.strip()


def ksrc():
    """The kernel source tree the QEMU kernel was built from (qemu-ci/env.sh)."""
    return Path(env_sh("KSRC"))


# What a headers tree needs beside what the kernel's packaging puts in it.
RUST_FILES = ("rust/*.rmeta", "rust/libmacros.so", "rust/bindings/.bindings_generated.rs.cmd")


def inst_headers(ctx, tag="inst-headers"):
    """A headers tree as the kernel's own packaging makes it (`make
    bindeb-pkg`: scripts/package/install-extmod-build) lacks rust/: the build
    must stop naming what is missing; with the files README.md names copied
    in from the build tree, rsnvme builds against it."""
    record, kdir = ctx["record"], Path(ctx["kdir"])
    kver = release(kdir)
    with tempfile.TemporaryDirectory(prefix="rsnvme-headers-") as tmp:
        hdr = Path(tmp) / "headers"
        res = subprocess.run(["sh", str(ksrc() / "scripts/package/install-extmod-build"),
                              str(hdr)], cwd=kdir, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             env=dict(os.environ, srctree=str(ksrc()), SRCARCH="x86",
                                      CC="gcc", HOSTCC="gcc"))
        if not record(f"{tag}: the kernel's install-extmod-build makes a headers tree",
                      res.returncode == 0 and (hdr / "Module.symvers").exists(), res.stdout):
            return
        src = qemu.stage_module_source(Path(tmp) / "src")
        build = ["make", "-C", str(src), f"KDIR={hdr}", "modules"]
        res = subprocess.run(build, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        m = re.search(r"rsnvme: the kernel build tree \S+ lacks the Rust files an out-of-tree "
                      r"Rust module is built against: (.*?)\. Header packages", res.stdout)
        listed = set(m[1].split()) if m else set()
        record(f"{tag}: the build against it stops, naming the missing Rust files",
               res.returncode != 0 and {"rust/libkernel.rmeta", "rust/libmacros.so",
                                        "rust/bindings/.bindings_generated.rs.cmd"} <= listed,
               res.stdout[-1500:])
        for pattern in RUST_FILES:
            for f in kdir.glob(pattern):
                dst = hdr / f.relative_to(kdir)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dst)
        res = subprocess.run(build, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ko = src / "rsnvme.ko"
        record(f"{tag}: with {', '.join(RUST_FILES)} copied in, rsnvme builds against it",
               res.returncode == 0 and ko.exists(), res.stdout[-3000:])
        if ko.exists():
            info = subprocess.run(["modinfo", "-F", "vermagic", str(ko)],
                                  stdout=subprocess.PIPE, text=True).stdout.strip()
            record(f"{tag}: its vermagic names kernel {kver}", info.split(" ")[:1] == [kver], info)


def inst_handover(ctx, tag="inst-handover"):
    """tools/nvme-handover in a guest with both drivers."""
    record, kdir = ctx["record"], ctx["kdir"]
    initrd = qemu.build_initramfs(
        kdir, extra_files=[(str(ROOT / "tools" / "nvme-handover"), "usr/sbin/nvme-handover")],
        name=f"{tag}-initramfs")
    devices = [Q(serial="RSNVMEHOA", namespaces=[NS(16), NS(16)]), Q(serial="RSNVMEHOB")]
    b = qemu.boot(tag, initrd, kdir, "inst-handover", devices, smp=2, timeout=180,
                  env={"seed": SEED})
    ctx["check_boot"](tag, b)
    rcs = {m[1]: int(m[2]) for m in b.lines(r"^@@HANDOVER (\S+) rc=(\d+)$")}
    want = {"nvme-mounted": 1, "nvme-swap": 1, "nvme-open": 1, "dry-run": 0, "to-rsnvme": 0,
            "again": 0, "rsnvme-mounted": 1, "rsnvme-swap": 1, "rsnvme-open": 1, "to-nvme": 0,
            "nvme-partition": 1, "rsnvme-partition": 1,
            "no-device": 2, "not-loaded": 2}
    record(f"{tag}: host: every hand-over ran with the exit status it must have",
           rcs == want, f"got {rcs}, want {want}")
    refusals = b.lines(r"^@@HANDOVER_OUT (\S+) nvme-handover: refusing to move (\S+) from "
                       r"(\S+) to (\S+): (.*)$")
    def why(text):
        """A refusal's reason, with the disk's name and the PID left out."""
        disk, rest = text.split(" ", 1)
        return re.sub(r"process \d+", "process N", rest.replace(f"/dev/{disk}", "/dev/DISK"))
    got = sorted((m[1], m[3], m[4], why(m[5])) for m in refusals)
    want = sorted((f"{drv}-{what}", drv, other, text)
                  for drv, other in (("nvme", "rsnvme"), ("rsnvme", "nvme"))
                  for what, text in (("mounted", "is mounted on /mnt/h (ext2)"),
                                     ("swap", "is used as swap (/dev/DISK)"),
                                     ("open", "is open in process N (sleep)"),
                                     ("partition", "is mounted on /mnt/h (ext2)")))
    record(f"{tag}: host: one refusal line per case, naming the use", got == want,
           f"got {got}, want {want}")
    moved = b.lines(r"rsnvme (\S+): model \"QEMU NVMe Ctrl\" serial \"RSNVMEHOA\"")
    record(f"{tag}: host: rsnvme probed the handed-over controller once, never the other",
           len(moved) == 1 and not b.lines(r"serial \"RSNVMEHOB\""),
           f"{len(moved)} probes of RSNVMEHOA")
    leak = b.lines(r"^@@KMEMLEAK (\S+)$")
    record(f"{tag}: kmemleak finds no leaks", bool(leak) and leak[0][1] == "0",
           leak[0][0] if leak else "no kmemleak report")


SCENARIOS = [("inst-make", inst_make), ("inst-dkms", inst_dkms), ("inst-headers", inst_headers),
             ("inst-handover", inst_handover)]


def run_all(kdir, record, check_boot, only=""):
    """Runs the install scenarios whose name contains `only`."""
    todo = [(n, f) for n, f in SCENARIOS if only in n]
    if not todo:
        return
    if shutil.which("dkms") is None and any(n == "inst-dkms" for n, _ in todo):
        record("inst-dkms: dkms is installed (qemu-ci/setup.sh)", False)
        todo = [(n, f) for n, f in todo if n != "inst-dkms"]
    ctx = {"kdir": kdir, "record": record, "check_boot": check_boot}
    for name, fn in todo:
        fn(ctx, tag=name)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", default="", help="only scenarios containing this")
    args = ap.parse_args()
    import run as harness
    run_all(qemu.kernel(), harness.record, harness.check_boot, args.k)
    harness.finish()


if __name__ == "__main__":
    main()
