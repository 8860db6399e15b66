"""The boot phase: virtme-ng starts the built kernel; we keep its console.

vng's own exit status says nothing about the guest (without udev its
return-code port is missing), so the console with framed commands is the only
channel for results.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from harness import cache
from harness.arch import X86_64, Arch
from harness.errors import InfraError, MissingTool
from harness.tools import require
from harness.vm.console import BootPanic, GuestConsole

KVM_PROBE_DEADLINE_S = 40.0
BOOT_DEADLINE_S = 180.0


@dataclass(frozen=True)
class VMRequest:
    bzimage: Path
    cpus: int = 2
    memory: str = "2G"
    accel: str = "auto"                  # auto, kvm or tcg
    append: tuple[str, ...] = ()
    boot_timeout: float = BOOT_DEADLINE_S
    console_log: Path | None = None
    arch: Arch = X86_64
    # The guest's root filesystem: None for the host's own (a native guest).
    root: Path | None = None
    # (guest path, host directory) shared read-only with the guest.
    rodirs: tuple[tuple[str, Path], ...] = ()


@dataclass
class VM:
    accel: str
    child: pexpect.spawn
    console: GuestConsole
    boot_seconds: float
    argv: list[str] = field(default_factory=list)

    def cmdline(self) -> str:
        res = self.console.run("cat /proc/cmdline", timeout=30)
        return res.output.strip()

    def kill(self) -> None:
        """Stop QEMU at once, whatever the guest is doing."""
        _kill_group(self.child)

    def stop(self) -> None:
        """Stop the guest, and make sure no QEMU is left behind."""
        if self.child.isalive():
            try:
                # A reset, not a power-off: the trimmed kernel has no ACPI to
                # power off with, and -no-reboot makes QEMU exit on a reset.
                # Through sysrq, not reboot(8), which a minimal host (whose
                # root the guest runs on) may not have.
                self.child.sendline("echo b > /proc/sysrq-trigger")
                self.child.expect(pexpect.EOF, timeout=15)
            except (pexpect.TIMEOUT, pexpect.EOF, OSError):
                pass
        _kill_group(self.child)


def vng_path() -> str:
    """vng from the same environment as this Python, else from PATH."""
    here = Path(sys.executable).parent / "vng"
    if here.exists():
        return str(here)
    found = shutil.which("vng")
    if not found:
        raise MissingTool("'vng' not found; install virtme-ng (make setup does)")
    return found


def vng_argv(req: VMRequest, accel: str) -> list[str]:
    # -no-reboot: a panicking guest (panic=-1) makes QEMU exit instead of
    # booting again behind our back. /bin/sh: the user's own shell start-up
    # files have no business in the guest, and cost seconds under TCG.
    argv = [vng_path(), "--run", str(req.bzimage), "--force-9p",
            "--user", "root", "--shell", "/bin/sh", "--qemu-opts=-no-reboot",
            "--cpus", str(req.cpus), "--memory", req.memory]
    if req.arch.native:
        argv.append("--disable-microvm")
    else:
        argv += ["--arch", req.arch.name]
        if req.arch.qemu_cpu:
            # After vng's own -cpu: QEMU takes the last one.
            argv.append(f"--qemu-opts=-cpu {req.arch.qemu_cpu}")
    if req.root is not None:
        argv += ["--root", str(req.root)]
    for guest, host in req.rodirs:
        argv.append(f"--rodir={guest}={host}")
    if accel == "tcg":
        argv.append("--disable-kvm")
    # root=/dev/root: without CONFIG_BLOCK the kernel only mounts a 9p root
    # when it is named; panic=-1 turns a panic into a QEMU exit, not a hang.
    # log_buf_len: a batch's kernel log is read back once at its end, and the
    # trimmed config's 128 KiB would lose its start behind one task dump.
    extra = tcg_clock_args() if accel == "tcg" and req.arch.tsc_hint else []
    # numa=fake=2: two NUMA nodes for the migration and NUMA-balancing tests
    # (ignored by a kernel without CONFIG_NUMA_EMU).
    for a in ("root=/dev/root", "panic=-1", "log_buf_len=4M", "numa=fake=2", *extra,
              *req.append):
        argv += ["--append", a]
    return argv


def vng_env(vng: str) -> dict:
    """The environment to run vng in: it calls its helpers (virtme-run,
    virtme-configkernel) by name, and must find the ones next to it."""
    path = os.pathsep.join([str(Path(vng).parent), os.environ.get("PATH", "")])
    return dict(os.environ, PATH=path)


def host_tsc_khz(cpuinfo: str) -> int | None:
    """The host's TSC rate, when /proc/cpuinfo shows a constant one."""
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", cpuinfo, re.M)
    if not (flags and mhz) or "constant_tsc" not in flags.group(1).split():
        return None
    return int(float(mhz.group(1)) * 1000)


def tcg_clock_args() -> list[str]:
    # Under TCG the guest's TSC runs at the host's rate, but the guest
    # calibrates it against an emulated PIT; on a busy host that fails, and
    # with no ACPI timer the clock falls back to 4 ms jiffies. Telling the
    # guest the rate skips the calibration.
    try:
        khz = host_tsc_khz(Path("/proc/cpuinfo").read_text())
    except OSError:
        khz = None
    return [f"tsc_early_khz={khz}"] if khz else []


def _kill_group(child: pexpect.spawn) -> None:
    # vng runs QEMU (and virtiofsd, if any) as descendants in its session;
    # signalling the whole process group leaves none of them behind.
    if child.pid:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while child.isalive() and time.monotonic() < deadline:
                time.sleep(0.1)
    child.close(force=True)


def _spawn(req: VMRequest, accel: str, timeout: float) -> VM:
    argv = vng_argv(req, accel)
    env = dict(vng_env(argv[0]), TERM="dumb")
    began = time.monotonic()
    # maxread: a chatty test's output comes in large reads, not 2 KB ones.
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8",
                          codec_errors="replace", timeout=timeout, dimensions=(50, 500),
                          maxread=65536)
    # pexpect sleeps 50 ms before each send, for terminals that drop input
    # sent before they are ready; a shell reading its tty does not need it,
    # and a run sends hundreds of lines.
    child.delaybeforesend = None
    if req.console_log:
        req.console_log.parent.mkdir(parents=True, exist_ok=True)
        child.logfile_read = open(req.console_log, "a", encoding="utf-8")
    console = GuestConsole(child)
    try:
        console.wait_for_shell(timeout)
    except BootPanic:
        _kill_group(child)
        raise
    except InfraError as e:
        tail = (child.before or "")[-2000:] if isinstance(child.before, str) else ""
        _kill_group(child)
        raise InfraError(f"VM with {accel} did not reach a shell ({e}): {tail.strip()[-300:]}")
    except BaseException:
        # Ctrl-C or SIGTERM while booting: no QEMU may outlive the harness.
        _kill_group(child)
        raise
    return VM(accel, child, console, time.monotonic() - began, argv)


def _probe_file() -> Path:
    return cache.subdir("probe") / "kvm.json"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


# What QEMU or the kernel print when KVM itself is what fails: a clear "no".
_KVM_REFUSED = re.compile(r"failed to initialize kvm|Could not access KVM|KVM_CREATE_VM|"
                          r"kvm: .*(error|failed)|KVM is not supported|"
                          r"unsupported .*cpuid|kvm run failed", re.I)


def _saved_probe(probe: Path) -> bool | None:
    try:
        saved = json.loads(probe.read_text())
        if saved.get("boot_id") == _boot_id() and isinstance(saved.get("kvm"), bool):
            return saved["kvm"]
    except (OSError, ValueError, AttributeError):
        pass            # absent or torn: probe again
    return None


def _remember_kvm(ok: bool) -> None:
    cache.write_atomic(_probe_file(), json.dumps({"boot_id": _boot_id(), "kvm": ok}))


def _probe_kvm(req: VMRequest) -> tuple[bool, bool]:
    """(KVM boots, the answer is clear). Boot once with KVM under a deadline;
    remember a clear answer for this host boot. A kernel that panics or a
    guest that only runs out of time is not clear on its own: the same
    kernel may be what fails."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, True
    saved = _saved_probe(_probe_file())
    if saved is not None:
        return saved, True
    try:
        vm = _spawn(VMRequest(req.bzimage, cpus=1, memory="512M"), "kvm", KVM_PROBE_DEADLINE_S)
        vm.stop()
        ok, clear = True, True
    except BootPanic:
        ok, clear = False, False
    except InfraError as e:
        ok, clear = False, bool(_KVM_REFUSED.search(str(e))) or "exited before" in str(e)
    if clear:
        _remember_kvm(ok)
    return ok, clear


def kvm_works(req: VMRequest) -> bool:
    return _probe_kvm(req)[0]


def _accel(req: VMRequest) -> tuple[str, bool]:
    """The accelerator, and whether it is TCG only because a KVM probe failed
    in a way that may have been the kernel's fault."""
    if req.accel in ("kvm", "tcg"):
        return req.accel, False
    if not req.arch.native:
        return "tcg", False
    ok, clear = _probe_kvm(req)
    return ("kvm" if ok else "tcg"), not clear


def choose_accel(req: VMRequest) -> str:
    return _accel(req)[0]


def boot(req: VMRequest) -> VM:
    # virtme-ng runs file(1) on the kernel image and the init it copies; without
    # it, a kernel it did not see built (Debian's vmlinuz) fails with a traceback.
    require(req.arch.qemu, "file")
    if not req.bzimage.exists():
        raise InfraError(f"no kernel image at {req.bzimage}; run the build phase first")
    accel, unclear = _accel(req)
    print(f"[boot] accelerator: {accel}", file=sys.stderr, flush=True)
    vm = _spawn(req, accel, req.boot_timeout)
    if unclear:
        # The kernel KVM failed to boot just booted under TCG: KVM is what
        # fails here (nested KVM that hangs), so the next boot skips the
        # probe's deadline.
        _remember_kvm(False)
    return vm


def interactive(req: VMRequest) -> int:
    """`rwp-harness shell`: the user's own terminal on the guest console."""
    accel = choose_accel(req)
    print(f"[shell] accelerator: {accel}; 'echo b > /proc/sysrq-trigger' leaves", file=sys.stderr)
    argv = vng_argv(req, accel)
    return subprocess.call(argv, env=vng_env(argv[0]))
