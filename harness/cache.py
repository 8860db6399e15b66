"""Where the harness keeps what outlives a run: sources, builds, ccache, apt state."""

import os
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
