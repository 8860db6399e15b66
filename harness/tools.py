"""Running host programs: argument lists only, logs to files, clear errors."""

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from .errors import MissingTool

# Debian package that provides each external program we call.
PACKAGE_OF = {
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "tar": "tar",
    "xz": "xz-utils",
    "make": "make",
    "gcc": "gcc",
    "ccache": "ccache",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "git": "git",
    "rsync": "rsync",
    "cpio": "cpio",
    "depmod": "kmod",
    "qemu-system-x86_64": "qemu-system-x86",
    "vng": "virtme-ng (pip, installed by 'make setup')",
}


def require(*programs: str) -> None:
    for prog in programs:
        if shutil.which(prog) is None:
            pkg = PACKAGE_OF.get(prog, prog)
            raise MissingTool(f"'{prog}' not found; install it ({pkg}) or run 'make setup'")


def run_logged(argv: Sequence[str], log: Path, cwd: Path | None = None,
               env: dict | None = None) -> int:
    """Run argv with stdout and stderr appended to log; return the exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(("$ " + " ".join(str(a) for a in argv) + "\n").encode())
        out.flush()
        proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env,
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc.returncode


def capture(argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def log_tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
