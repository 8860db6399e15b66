"""Where the harness keeps what outlives a run: sources, builds, ccache, apt state.

Every marker, stamp and probe result is written atomically (a temporary file
renamed over it), so a run killed at any moment leaves the old entry or the
new one, never half of one; readers treat an unreadable entry as absent and
redo it. Work that writes shared entries holds a named lock.
"""

import fcntl
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from harness.errors import BadInput

# A 7.3 source tree, its tinyconfig build and ccache need about this much.
BUILD_SPACE_GIB = 4
# A run waiting on another's lock says so after this long.
LOCK_NOTICE_S = 3.0


def cache_root() -> Path:
    env = os.environ.get("RWP_HARNESS_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "rwp-harness"


def subdir(name: str) -> Path:
    path = cache_root() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadInput(f"the harness cache needs {path} to be a directory")
    return path


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_marker(path: Path) -> str | None:
    """A marker's text, or None when it is absent or unreadable."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def require_space(gib: float = BUILD_SPACE_GIB) -> None:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free / 2**30
    if free < gib:
        raise BadInput(f"not enough disk space in the cache {root}: {free:.1f} GiB free, "
                       f"{gib} GiB needed (set RWP_HARNESS_CACHE to a larger disk)")


@contextmanager
def lock(name: str, notice_after: float = LOCK_NOTICE_S):
    """Hold an exclusive cache-wide lock: parallel VMs (pytest -n) and bisections
    share one cache. A run that waits says so once after notice_after seconds."""
    path = subdir("locks") / f"{name}.lock"
    with open(path, "w") as f:
        began, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and time.monotonic() - began >= notice_after:
                    print(f"[cache] waiting for another run's '{name}' lock ({path})",
                          file=sys.stderr, flush=True)
                    told = True
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def replacing(dest: Path, prefix: str):
    """A new directory beside dest, filled by the block, that becomes dest
    when the block ends without an error: a reader sees the old dest or the
    whole new one. A killed run leaves prefix* behind, for sweep()."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sweep(parent: Path, pattern: str) -> list[Path]:
    """Remove what a killed run left behind under parent (call with the lock
    that guards parent held, so nothing matched is still being written)."""
    gone = []
    for p in parent.glob(pattern):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        gone.append(p)
    return gone
