"""One terminal line per phase, with its elapsed time."""

import sys
import time
from contextlib import contextmanager

from harness.errors import HarnessError


@contextmanager
def phase(name: str, timings: dict | None = None, quiet: bool = False):
    start = time.monotonic()
    if not quiet:
        print(f"[{name}] ...", file=sys.stderr, flush=True)
    try:
        yield
    except HarnessError:
        if not quiet:
            print(f"[{name}] FAILED after {time.monotonic() - start:.1f}s",
                  file=sys.stderr, flush=True)
        raise
    elapsed = time.monotonic() - start
    if timings is not None:
        timings[name] = round(elapsed, 2)
    if not quiet:
        print(f"[{name}] done in {elapsed:.1f}s", file=sys.stderr, flush=True)
