# SPDX-License-Identifier: GPL-2.0
"""Builds the rsnvme test guest and boots it in QEMU.

Shared by `make qemu` (demo.py) and `make test` (tests/run.py): toolchain
setup, the cached kernel build, the module build, a busybox initramfs with
the module and the guest test scripts, and QEMU boots whose console is
captured, checked for kernel warnings and parsed for @@PASS/@@FAIL lines.
"""

import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("RSNVME_CACHE", Path.home() / ".cache" / "rsnvme"))
BUILD = Path(os.environ.get("RSNVME_BUILD", ROOT / "build"))
os.environ["RSNVME_CACHE"] = str(CACHE)

# Console lines that fail any run: kernel warnings, oopses, lockdep and
# might_sleep reports, DMA-API debug complaints, stalls.
BAD_CONSOLE = re.compile(
    r"WARNING:|BUG:|Oops|Kernel panic|sleeping function called|"
    r"DEBUG_LOCKS_WARN_ON|possible circular locking|inconsistent lock state|"
    r"possible recursive locking|INFO: task .* blocked|INFO: trying to register|"
    r"DMA-API: (?!preallocated|debugging enabled)|self-detected stall|rcu: INFO|general protection fault|"
    r"turning off the locking correctness validator|UBSAN:|"
    r"kernel BUG|Call Trace:"
)


# A kernel log record ("[   10.593356] ...") that starts in the middle of a
# console line, and the rest of the line it cut (on the next line).
SPLICED = re.compile(r"(?<=[^\n])(\[\s*\d+\.\d+\] [^\n]*)\n([^\n]*)")


# --- How slow this host is --------------------------------------------------
# Every bound a test waits for (the QEMU run on the host, the waits in the
# guest scripts) is a base value measured on an idle 2-core host, multiplied
# by a slowness factor: vCPU threads and other runnable tasks share the host
# cores, so with R runnable tasks (load average) beside a guest of S vCPUs on
# N cores each thread gets about N / (R + S) of a core. RSNVME_SLOW=F sets
# the factor instead (F >= 1). Only bounds scale: no check depends on speed.
SLOW_MAX = 8.0


def host_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def slow_factor(smp=1):
    """The slowness factor for a guest of `smp` vCPUs started now:
    RSNVME_SLOW if set, else max(1, (1-minute load average + smp) / host
    cores), at most SLOW_MAX."""
    env = os.environ.get("RSNVME_SLOW")
    if env:
        return max(1.0, float(env))
    return min(SLOW_MAX, max(1.0, (os.getloadavg()[0] + smp) / host_cores()))


def load_factor():
    """The factor the load alone implies while a guest runs (the load
    average then counts the guest's busy vCPUs already)."""
    if os.environ.get("RSNVME_SLOW"):
        return 1.0
    return min(SLOW_MAX, max(1.0, os.getloadavg()[0] / host_cores()))


def run(cmd, **kw):
    """Runs a command, failing loudly with its output when it fails."""
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def setup():
    """Installs the toolchain and guest packages (idempotent, quick)."""
    run([str(ROOT / "qemu-ci" / "setup.sh")])


def kernel(variant="test"):
    """Builds (or reuses) the guest kernel; returns its build directory.
    `variant` "bench" is the kernel without debugging (kernel.bench.config)."""
    out = run(
        [str(ROOT / "qemu-ci" / "build-kernel.sh"), variant], stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


# What a module build needs from the source tree (stage_module_source).
MODULE_SOURCES = ("Makefile", "Kbuild", "dkms.conf", "c_shim", "include", "rust_core", "tools")
# Build outputs in the source tree (as in .gitignore), never staged.
_BUILD_OUTPUT = re.compile(
    r"(\.(o|ko|mod|mod\.c|cmd|a|d|rmeta)$|^\.|^Module\.symvers$|^modules\.order$|"
    r"^bindings_generated\.rs$|^Cargo\.lock$)")


def stage_module_source(dest):
    """Mirrors the module's sources into `dest` (sources only; build output
    there stays, so rebuilds are incremental) and returns it: a module built
    there (build_module(src=dest)) leaves the tree's own rsnvme.ko alone."""
    dest = Path(dest)
    wanted = set()
    for top in MODULE_SOURCES:
        src = ROOT / top
        files = [src] if src.is_file() else [
            p for p in src.rglob("*")
            if p.is_file() and "target" not in p.relative_to(ROOT).parts
            and not _BUILD_OUTPUT.search(p.name)]
        for f in files:
            rel = f.relative_to(ROOT)
            wanted.add(rel)
            out = dest / rel
            st = f.stat()
            if out.exists() and out.stat().st_size == st.st_size \
                    and out.stat().st_mtime_ns == st.st_mtime_ns:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out)
    # Sources deleted from the tree go from the copy too.
    for f in dest.rglob("*"):
        rel = f.relative_to(dest)
        if f.is_file() and rel.parts[0] in MODULE_SOURCES and rel not in wanted \
                and not _BUILD_OUTPUT.search(f.name):
            f.unlink()
    return dest


def build_module(kdir, clippy=False, clean=False, faults=True, src=ROOT):
    """Builds rsnvme.ko against kdir in `src` (the tree, or a copy made by
    stage_module_source); returns the build output. With `faults`, the
    module has the `fault` parameter the tests use. The module is left in
    `src`/rsnvme.ko (and in its kernel's build/modules/ directory)."""
    args = ["make", "-C", str(src), f"KDIR={kdir}"]
    if faults:
        args.append("RSNVME_FAULT_INJECTION=y")
    if clean:
        # This kernel's and variant's output only (build/modules/<kernel>/).
        run(args + ["clean-kernel"], stdout=subprocess.DEVNULL)
    if clippy:
        args.append("CLIPPY=1")
    out = run(args + ["modules"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
              text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError("module build failed:\n" + out.stdout[-6000:])
    return out.stdout


def build_initramfs(kdir, extra_files=(), module=ROOT / "rsnvme.ko", name="initramfs"):
    """Packs busybox, /init, the guest tests and the modules (rsnvme.ko
    from `module`, the C driver's from kdir) into BUILD/<name>.cpio."""
    stage = BUILD / name
    shutil.rmtree(stage, ignore_errors=True)
    for d in ("bin", "dev", "proc", "sys", "tmp", "mnt", "tests", "lib/modules"):
        (stage / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", stage / "bin" / "busybox")
    shutil.copy2(ROOT / "qemu-ci" / "guest" / "init", stage / "init")
    (stage / "init").chmod(0o755)
    for script in (ROOT / "tests" / "guest").glob("*.sh"):
        shutil.copy2(script, stage / "tests" / script.name)
    shutil.copy2(module, stage / "lib" / "modules" / "rsnvme.ko")
    for ref in ("nvme-core.ko", "nvme.ko"):
        src = Path(kdir) / "drivers" / "nvme" / "host" / ref
        if src.exists():
            shutil.copy2(src, stage / "lib" / "modules" / ref)
    for src, dst in extra_files:
        (stage / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, stage / dst)
    cpio = BUILD / f"{name}.cpio"
    files = subprocess.run(["find", "."], cwd=stage, stdout=subprocess.PIPE, check=True)
    with open(cpio, "wb") as f:
        run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=stage,
            input=files.stdout, stdout=f)
    return cpio


# Dynamically linked host tools the I/O tests run in the guest (Debian's
# fio and util-linux's blkdiscard, whose -z busybox lacks), at the same paths.
IO_TOOLS = ("/usr/bin/fio", "/usr/sbin/blkdiscard")


def io_tools(tools=IO_TOOLS):
    """(src, dst) pairs for build_initramfs(extra_files=...): the tools, every
    shared library `ldd` lists for them and the dynamic loader, each at its
    host path (symlinks resolved, so the guest gets real files)."""
    files = {}
    for tool in tools:
        files[tool] = tool
        out = run(["ldd", tool], stdout=subprocess.PIPE, text=True).stdout
        for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out):
            files[m.group(1)] = m.group(1)
    return [(os.path.realpath(src), dst.lstrip("/")) for src, dst in sorted(files.items())]



def guest_program(name):
    """(src, dst) for build_initramfs(extra_files=...): tests/guest/<name>.c
    built static on the host (the guest has no C library of its own),
    installed as /bin/<name>."""
    out = BUILD / name
    out.parent.mkdir(parents=True, exist_ok=True)
    run(["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", str(out),
         str(ROOT / "tests" / "guest" / f"{name}.c")])
    return (out, f"bin/{name}")


@dataclass
class Ns:
    """One namespace of an emulated controller (QEMU's nvme-ns device)."""

    size_mb: int = 64
    lbs: int = 512
    params: dict = field(default_factory=dict)


@dataclass
class Nvme:
    """One emulated NVMe controller with raw backing images.

    Without `namespaces` the controller has one 512-byte-LBA namespace of
    `size_mb` (QEMU's drive= shorthand); `namespaces=[]` gives none.
    `drive_opts` are added to every -drive of the controller, e.g.
    {"discard": "unmap"} to pass discards on to the image file.
    `blkdebug` (single-namespace form only) names a QEMU blkdebug rule file
    put between the device and its image, to inject backing-store errors.
    Images are created empty unless boot() got a `workdir` that already holds
    one under the same name (nvme<i>.img, nvme<i>n<nsid>.img): then its
    content is kept, so a test can prefill it.
    """

    serial: str = "RSNVME0001"
    size_mb: int = 64
    params: dict = field(default_factory=dict)
    namespaces: list = None
    drive_opts: dict = field(default_factory=dict)
    blkdebug: str = None
    # The PCI(e) bus to plug into (e.g. a pcie-root-port's id), else the
    # machine's root bus.
    bus: str = None
    # A QEMU -drive backing instead of an image file (single-namespace form
    # only), e.g. "driver=null-co,size=1G,read-zeroes=on": I/O that costs
    # the host nearly nothing.
    drive: str = None

    def expected_namespaces(self):
        """(nsid, blocks, lba size) QEMU exposes, usable or not."""
        if self.namespaces is None:
            return [(1, (self.size_mb << 20) // 512, 512)]
        return [(i + 1, (ns.size_mb << 20) // ns.lbs, ns.lbs)
                for i, ns in enumerate(self.namespaces)]

    def args(self, index, workdir):
        def image(name, size_mb):
            img = Path(workdir) / name
            with open(img, "r+b" if img.exists() else "wb") as f:
                f.truncate(size_mb << 20)
            return img

        opts = "".join(f",{k}={v}" for k, v in self.drive_opts.items())

        dev = f"nvme,id=nvme{index},serial={self.serial}"
        if self.bus:
            dev += f",bus={self.bus}"
        for k, v in self.params.items():
            dev += f",{k}={v}"
        if self.namespaces is None and self.drive:
            return ["-drive", f"{self.drive},if=none,id=d{index}{opts}",
                    "-device", dev + f",drive=d{index}"]
        if self.namespaces is None:
            img = image(f"nvme{index}.img", self.size_mb)
            if self.blkdebug:
                img = f"blkdebug:{self.blkdebug}:{img}"
            return ["-drive", f"file={img},if=none,id=d{index},format=raw{opts}",
                    "-device", dev + f",drive=d{index}"]
        out = ["-device", dev]
        for j, ns in enumerate(self.namespaces):
            img = image(f"nvme{index}n{j + 1}.img", ns.size_mb)
            nsdev = (f"nvme-ns,drive=d{index}n{j + 1},bus=nvme{index},nsid={j + 1},"
                     f"logical_block_size={ns.lbs},physical_block_size={ns.lbs}")
            for k, v in ns.params.items():
                nsdev += f",{k}={v}"
            out += ["-drive", f"file={img},if=none,id=d{index}n{j + 1},format=raw{opts}",
                    "-device", nsdev]
        return out


@dataclass
class Boot:
    """What one QEMU run printed, parsed."""

    name: str
    console: str
    seconds: float
    timed_out: bool
    log: Path
    timeout: float = 0.0  # for an idle host; QEMU got timeout * slow
    slow: float = 1.0
    returncode: int = None
    trace: str = ""  # QEMU's own trace events (boot(trace=...)), one a line

    @property
    def last_marker(self):
        """The last @@ line of the console: how far the guest got."""
        marks = re.findall(r"^@@.*$", self.console, re.M)
        return marks[-1] if marks else "none (no @@ line at all)"

    @property
    def failure(self):
        """Why the run did not finish, for a FAIL line ("" when it did)."""
        if self.timed_out:
            return (f"{self.name}: QEMU killed on timeout after {self.seconds:.0f} s "
                    f"(timeout {self.timeout:.0f} s x slow factor {self.slow:.1f} = "
                    f"{self.timeout * self.slow:.0f} s); last @@ line: "
                    f"{self.last_marker!r}; log {self.log}")
        if not self.done:
            return (f"{self.name}: QEMU exited (status {self.returncode}) after "
                    f"{self.seconds:.0f} s without @@DONE; last @@ line: "
                    f"{self.last_marker!r}; log {self.log}")
        return ""

    @property
    def done(self):
        return re.search(r"^@@DONE ", self.console, re.M) is not None

    @property
    def results(self):
        """(name, passed, detail) for each @@PASS/@@FAIL line."""
        out = []
        for m in re.finditer(r"^@@(PASS|FAIL) ([^:\r\n]*)(?::\s*(.*))?$", self.console, re.M):
            out.append((m.group(2).strip(), m.group(1) == "PASS", m.group(3) or ""))
        return out

    @property
    def bad_lines(self):
        return [l for l in self.console.splitlines() if BAD_CONSOLE.search(l)]

    def lines(self, pattern):
        """All regex matches of pattern, one per console line. A kernel log
        record the serial console spliced into the middle of a guest line
        ("@@STEP attach rc[  10.5] rsnvme ...\n=0 ...") is moved after the
        line it cut, so both read whole."""
        console = SPLICED.sub(r"\2\n\1", self.console)
        return [m for m in (re.search(pattern, l) for l in console.splitlines()) if m]

    def events(self, pattern):
        """All regex matches of pattern, one per line of QEMU's trace."""
        return [m for m in (re.search(pattern, l) for l in self.trace.splitlines()) if m]


def boot(name, initrd, kdir, test, nvme=(), smp=2, mem=512, timeout=240,
         env=None, interactive=False, append="", workdir=None, slow=None, trace=(),
         single_thread=False, machine=None, extra_args=(), on_line=None, retried=False):
    """Boots the guest, runs /tests/<test>.sh, returns the parsed console.

    If QEMU itself dies of a signal before the guest printed anything of
    ours (QEMU 7.2's multi-threaded TCG has crashed while the guest kernel
    was still enumerating PCI), that is no result of the test: the guest is
    booted once more (`retried` marks the second boot) and says so.

    `timeout` is the bound for an idle host; it is multiplied by `slow`
    (default: slow_factor(smp) now), and further if the host load rises
    while QEMU runs. The guest gets the factor, rounded up, as $rsnvme_slow
    for its own bounds (tests/guest/lib.sh).
    `machine` is QEMU's -M (default: pc), `extra_args` more QEMU arguments.
    With `on_line`, QEMU gets a QMP socket and on_line(line, qmp) is called
    for each console line as it arrives (qmp: a Qmp connected to it, its
    waits bounded by 10 s times the slow factor, or None if it could not
    connect), e.g. to hot-unplug a device when the guest says so. The
    console is not read while on_line runs: it must bound what it waits
    for.
    The NVMe image files live in a temporary directory removed on return,
    or in `workdir` (which must exist) where they stay for the caller to
    inspect, and where a caller may put prefilled images before the boot.
    `trace` names QEMU trace events (`qemu-system-x86_64 -trace help`) to
    record: what the emulated device saw, whatever the guest says. They go
    to build/logs/<name>.trace (not the console, where they could split a
    guest line) and into Boot.trace.
    """
    again = {**locals(), "retried": True}
    accel = os.environ.get("RSNVME_ACCEL", "tcg")
    # single_thread: every vCPU on one host thread. QEMU 7.2's multi-threaded
    # TCG crashed (SIGSEGV in memory_region_dispatch_write) when the guest
    # turned a device's memory decoding off while other vCPUs wrote to it.
    if single_thread and accel == "tcg":
        accel = "tcg,thread=single"
    slow = slow_factor(smp) if slow is None else slow
    env = dict(env or {})
    env.setdefault("slow", math.ceil(slow))
    # acpi=noirq: legacy PCI interrupts are routed without ACPI. Under TCG,
    # evaluating the ACPI interrupt-link methods took 3.6 s on every PCI
    # enable and disable (measured with both rsnvme and the C driver);
    # MSI/MSI-X, which the driver uses, do not depend on it.
    append = f"console=ttyS0 panic=-1 acpi=noirq rsnvme_test={test} {append}".strip()
    # The RCU stall detector is a timeout too (21 s): a starved vCPU thread
    # must not look like a CPU stuck in the kernel.
    if math.ceil(slow) > 1:
        append += f" rcupdate.rcu_cpu_stall_timeout={min(300, 21 * math.ceil(slow))}"
    for k, v in env.items():
        append += f" rsnvme_{k}={v}"
    logdir = BUILD / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    trace_log = logdir / f"{name}.trace"
    trace_log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="rsnvme-") as tmp:
        work = workdir if workdir is not None else tmp
        cmd = [
            "qemu-system-x86_64", "-accel", accel, "-m", str(mem), "-smp", str(smp),
            "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", str(Path(kdir) / "arch/x86/boot/bzImage"),
            "-initrd", str(initrd), "-append", append,
        ]
        if machine:
            cmd += ["-M", machine]
        cmd += list(extra_args)
        for i, dev in enumerate(nvme):
            cmd += dev.args(i, work)
        qmp_path = None
        if on_line is not None:
            qmp_path = Path(tmp) / "qmp.sock"
            cmd += ["-qmp", f"unix:{qmp_path},server=on,wait=off"]
        if trace:
            cmd += ["-D", str(trace_log)]
            for event in trace:
                cmd += ["-trace", event]
        if interactive:
            subprocess.run(cmd)
            return None
        start = time.monotonic()
        out, rc, timed_out, slow = _run_bounded(cmd, timeout, slow, on_line, qmp_path)
    console = out.decode(errors="replace").replace("\r", "")
    log.write_text(console)
    if (not retried and rc is not None and rc < 0 and not timed_out and on_line is None
            and not re.search(r"^@@", console, re.M)):
        print(f"{name}: QEMU died of signal {-rc} before the guest ran anything of ours "
              f"(log {log}); booting it once more", flush=True)
        log.rename(log.with_suffix(".crashed.log"))
        return boot(**again)
    traced = trace_log.read_text(errors="replace") if trace and trace_log.exists() else ""
    return Boot(name, console, time.monotonic() - start, timed_out, log,
                timeout=timeout, slow=slow, returncode=rc, trace=traced)


class Qmp:
    """A QMP connection to a running QEMU (its -qmp unix socket).

    Every wait is bounded by `bound` seconds (QEMU answers a command at
    once; the bound is for a starved host). QEMU's asynchronous events
    (e.g. DEVICE_DELETED once the guest let a device go) are kept in
    `events`, in arrival order, whenever they are read.
    """

    def __init__(self, path, bound=10.0):
        self.bound = bound
        self.events = []
        self.buf = b""
        deadline = time.monotonic() + bound
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._message(time.monotonic() + bound)  # the greeting
        self.command("qmp_capabilities")

    def _message(self, deadline):
        """The next message from QEMU; TimeoutError after `deadline`."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from QEMU's QMP socket in time")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise OSError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, name, **args):
        """Runs one command; returns QEMU's reply (with "return" or "error")."""
        self.sock.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        deadline = time.monotonic() + self.bound
        while True:
            msg = self._message(deadline)
            if "event" not in msg:
                return msg
            self.events.append(msg)

    def wait_event(self, name, seconds, **data):
        """The first event `name` whose data has the given items, among those
        kept or arriving within `seconds`; None if none came in time."""
        def match(e):
            return e["event"] == name and all(e.get("data", {}).get(k) == v
                                              for k, v in data.items())
        deadline = time.monotonic() + seconds
        seen = 0
        while True:
            for e in self.events[seen:]:
                if match(e):
                    return e
            seen = len(self.events)
            try:
                msg = self._message(deadline)
            except TimeoutError:
                return None
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        self.sock.close()


def _run_bounded(cmd, timeout, slow, on_line=None, qmp_path=None):
    """Runs QEMU, collecting its output, until it exits or has run for
    timeout * slow seconds, where slow grows with the host load seen
    meanwhile (sampled every second). Returns (output, exit status,
    whether it was killed, the final factor)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    chunks = []

    def drain():
        qmp, partial = None, b""
        if on_line is not None:
            try:
                qmp = Qmp(qmp_path, bound=10 * slow)
            except (OSError, ValueError):
                qmp = None
        while True:
            data = proc.stdout.read1(65536)
            if not data:
                break
            chunks.append(data)
            if on_line is not None:
                partial += data
                *lines, partial = partial.split(b"\n")
                for line in lines:
                    try:
                        on_line(line.decode(errors="replace").rstrip("\r"), qmp)
                    except Exception:  # noqa: BLE001
                        # Keep draining: QEMU would stall on a full pipe.
                        # The caller's checks find what on_line left undone.
                        traceback.print_exc()
        if qmp is not None:
            qmp.close()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    start = time.monotonic()
    timed_out = False
    while True:
        try:
            proc.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            pass
        slow = max(slow, load_factor())
        if time.monotonic() - start > timeout * slow:
            timed_out = True
            proc.kill()
            proc.wait()
            break
    reader.join(timeout=10)
    proc.stdout.close()
    return b"".join(chunks), proc.returncode, timed_out, slow
