"""Where in the test a failing helper was called from.

A failed check in a guest C program names its own file and line, which for a
check inside a shared helper is the helper's. It also prints the return
addresses of its stack (rwp_ktap.h, protocol.CALLERS); this turns them into
the calling test's file and line with addr2line and the program's static
binary on the host, as kselftest's ASSERT macros name the test's own line.
"""

import re
import subprocess
from pathlib import Path

from harness.parse import protocol
from harness.tools import run_group

_ADDR = re.compile(r"^0x[0-9a-f]+$")


def frames(binary: Path, addresses: list[int]) -> list[tuple[str, str]]:
    """(function, file:line) of each address, inlined callers expanded,
    innermost first; empty when addr2line cannot read the binary."""
    if not addresses:
        return []
    try:
        res = run_group(["addr2line", "-a", "-f", "-i", "-e", str(binary),
                         # A return address points after its call: the call is one byte before.
                         *[hex(a - 1) for a in addresses]], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if res.returncode != 0:
        return []
    lines = [ln for ln in res.stdout.splitlines() if not _ADDR.match(ln)]
    out = []
    for fn, where in zip(lines[0::2], lines[1::2]):
        path, _, line = where.rpartition(":")
        out.append((fn, f"{Path(path).name}:{line.split(' ')[0]}"))
    return out


def called_from(found: list[tuple[str, str]], test_function: str, source: str) -> str | None:
    """The test's own line: the frame of its function, else (a body run by a
    helper such as run_then_restore) the outermost frame in its source file."""
    own = [w for fn, w in found if fn == test_function]
    if own:
        return own[0]
    mine = [w for fn, w in found if w.startswith(source + ":")]
    return mine[-1] if mine else None


def resolve(diagnostics: list[str], binary: Path, test_function: str, source: str) -> list[str]:
    """diagnostics with each callers line turned into "called from the test at
    FILE:LINE", or dropped when it adds nothing (the check is in the test)."""
    out = []
    for d in diagnostics:
        addresses = protocol.callers(d)
        if addresses is None:
            out.append(d)
            continue
        where = called_from(frames(binary, addresses), test_function, source)
        if where and not any(o.startswith(where + ":") for o in out):
            out.append(f"called from the test at {where} ({test_function})")
    return out
