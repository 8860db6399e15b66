"""Running host programs: argument lists only, logs to files, clear errors."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

from harness.errors import MissingTool

# Debian package that provides each external program we call.
PACKAGE_OF = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "tar": "tar",
    "xz": "xz-utils",
    "make": "make",
    "gcc": "gcc",
    "gcov": "gcc",
    "genhtml": "lcov",
    "ccache": "ccache",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "git": "git",
    "rsync": "rsync",
    "cpio": "cpio",
    "depmod": "kmod",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-system-aarch64": "qemu-system-arm",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "file": "file",
    "vng": "virtme-ng (pip, installed by 'make setup')",
}
# What another architecture needs is not in 'make setup': its own target.
SETUP_TARGET = {
    "qemu-system-aarch64": "setup-arm64",
    "aarch64-linux-gnu-gcc": "setup-arm64",
}


def require(*programs: str) -> None:
    for prog in programs:
        if shutil.which(prog) is None:
            pkg = PACKAGE_OF.get(prog, prog)
            raise MissingTool(f"'{prog}' not found; install it ({pkg}) or run "
                              f"'make {SETUP_TARGET.get(prog, 'setup')}'")


def run_group(argv: Sequence, cwd: Path | None = None, env: dict | None = None,
              log: Path | None = None, timeout: float | None = None
              ) -> subprocess.CompletedProcess:
    """The one way the harness runs a host program: an argument list, no stdin,
    output captured as text (or appended to log), in its own process group,
    which is killed whole if the harness is interrupted or timeout passes
    (make's and QEMU's children included; subprocess.TimeoutExpired is raised)."""
    argv = [str(a) for a in argv]
    out = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")
        out.write(("$ " + " ".join(argv) + "\n").encode())
        out.flush()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out if out else subprocess.PIPE,
                                stderr=subprocess.STDOUT if out else subprocess.PIPE,
                                text=out is None, errors="replace" if out is None else None,
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:
            kill_group(proc.pid)
            proc.wait()
            raise
        return subprocess.CompletedProcess(argv, proc.returncode, stdout or "", stderr or "")
    finally:
        if out:
            out.close()


def kill_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.5)


def run_logged(argv: Sequence, log: Path, cwd: Path | None = None,
               env: dict | None = None) -> int:
    """Run argv with stdout and stderr appended to log; return the exit status."""
    return run_group(argv, cwd=cwd, env=env, log=log).returncode


def capture(argv: Sequence, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_group(argv, cwd=cwd)


def log_tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
