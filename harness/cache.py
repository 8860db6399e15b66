"""Where the harness keeps what outlives a run: sources, builds, ccache, apt state."""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("RWP_HARNESS_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "rwp-harness"


def subdir(name: str) -> Path:
    path = cache_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# A 7.3 source tree, its tinyconfig build and ccache need about this much.
BUILD_SPACE_GIB = 4


def require_space(gib: float = BUILD_SPACE_GIB) -> None:
    import shutil

    from .errors import BadInput
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free / 2**30
    if free < gib:
        raise BadInput(f"not enough disk space in the cache {root}: {free:.1f} GiB free, "
                       f"{gib} GiB needed (set RWP_HARNESS_CACHE to a larger disk)")


@contextmanager
def lock(name: str):
    """Hold an exclusive cache-wide lock: parallel VMs (pytest -n) and bisections
    share one cache, and two kernel builds at once would only slow both."""
    path = subdir("locks") / f"{name}.lock"
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
