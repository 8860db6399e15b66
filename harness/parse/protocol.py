"""The guest<->host protocol: every marker the guest writes and its one parser.

On the console (the guest's stdout):

| marker                                 | written by                        | parsed by          |
|----------------------------------------|-----------------------------------|--------------------|
| @@RWPB:TOKEN@@ / @@RWPE:TOKEN:RC@@     | the shell, from frame()           | console.run        |
| @@RWPTAINT0 N / @@RWPTAINT1 N          | guest/harness/run-one.sh          | taint()            |
| @@RWPGUESTNS NS                        | run-one.sh                        | guest_seconds()    |
| @@RWPTIMEOUT S [TEST]                  | run-one.sh; rwp_ktap.h, ktest.py  | timeout()          |
| @@RWPSTUCK                             | run-one.sh (a task survived KILL) | (evidence only)    |
| @@RWPSTART TEST                        | rwp_ktap.h, ktest.py (RWP_MARKS)  | started(), PROGRESS |
| @@RWPSUB TEST TAINT0 TAINT1 NS         | rwp_ktap.h, ktest.py (RWP_MARKS)  | sub_marks()        |
| @@RWPCAPS {json}                       | guest/harness/caps.py             | capabilities()     |
| @@RWPGCOV-BEGIN N ... @@RWPGCOV-END    | guest/harness/gcov.py (base64)    | gcov_archive()     |
| # @@RWPAT ADDR... (a KTAP diagnostic)  | rwp_ktap.h, a failed check        | callers()          |

In the kernel log (/dev/kmsg):

| line                                   | written by            | parsed by             |
|----------------------------------------|-----------------------|-----------------------|
| rwp-harness: begin TOKEN / end TOKEN   | run-one.sh            | kernel_log_command()  |
| rwp-harness: test-begin TOKEN/TEST     | rwp_ktap.h, ktest.py  | slice_log()           |
| rwp-harness: test-end TOKEN/TEST       | rwp_ktap.h, ktest.py  | (kept in the slice)   |

The environment a guest program reads:

| variable        | meaning                                                        |
|-----------------|----------------------------------------------------------------|
| RWP_MARKS       | batch mode: the token of the per-test markers above            |
| RWP_DEADLINE_S  | each test's deadline in seconds (the host's --test-timeout)    |
| RWP_DEADLINES   | per-test overrides, "name=seconds,name=seconds"                |

The per-test markers say test-begin and test-end so that they never match the
batch's own begin and end markers. The console frame is assembled by printf
at run time, so the echoed command line never matches its own markers.
"""

import base64
import json
import re
import shlex
from dataclasses import dataclass

MARKS_ENV = "RWP_MARKS"
DEADLINE_ENV = "RWP_DEADLINE_S"
DEADLINES_ENV = "RWP_DEADLINES"
# How long a guest program's parent waits past a test's deadline before it
# dumps the task stacks and ends itself (rwp_ktap.h, ktest.py): the child's
# own alarm cannot end a task stuck in the kernel.
GUEST_GRACE_S = 10

_TAINT = re.compile(r"^@@RWPTAINT([01]) (-?\d+)$", re.M)
_GUEST_NS = re.compile(r"^@@RWPGUESTNS (\d+)$", re.M)
_TIMEOUT = re.compile(r"^@@RWPTIMEOUT (\d+)(?: (\S+))?$", re.M)
_SUB = re.compile(r"^@@RWPSUB (\S+) (-?\d+) (-?\d+) (\d+)$", re.M)
_CAPS = re.compile(r"^@@RWPCAPS (\{.*\})$", re.M)
_GCOV = re.compile(r"^@@RWPGCOV-BEGIN (\d+)\r?\n(.*?)^@@RWPGCOV-END", re.M | re.S)
_CALLERS = re.compile(r"^@@RWPAT((?: 0x[0-9a-f]+)+)$")
START = re.compile(r"@@RWPSTART (\S+)\r?\n")
# What counts as a batch's progress: a test began, ended, or hit its deadline.
PROGRESS = re.compile(r"(@@RWP(?:START|SUB|TIMEOUT) [^\r\n]*)\r?\n")
_RESULT_LINE = re.compile(r"^(?:not )?ok \d+ (\S+)")


def frame(command: str, token: str) -> tuple[str, re.Pattern, re.Pattern]:
    """The console line to send, and the patterns of its start and end markers."""
    line = (f"printf '@@RWP%s:%s@@\\n' B {token}; {{ {command}; }} </dev/null; "
            f"printf '@@RWP%s:%s:%d@@\\n' E {token} $?")
    start = re.compile(rf"@@RWPB:{token}@@\r?\n")
    end = re.compile(rf"@@RWPE:{token}:(\d+)@@")
    return line, start, end


def bracket(run_one: str, token: str, deadline: float, command: str,
            env: dict[str, str] | None = None) -> str:
    """command under run-one.sh (kernel-log markers, taint, a guest-side
    deadline), with env set for it; every value is quoted for the shell."""
    prefix = ["env", *(f"{k}={v}" for k, v in sorted((env or {}).items()))] if env else []
    return " ".join([shlex.quote(p) for p in ["sh", run_one, token, str(int(deadline)), *prefix]]
                    + [command])


def deadlines_env(default: float, overrides: dict[str, float]) -> dict[str, str]:
    env = {DEADLINE_ENV: str(int(default))}
    if overrides:
        env[DEADLINES_ENV] = ",".join(f"{k}={int(v)}" for k, v in sorted(overrides.items()))
    return env


def kernel_log_command(token: str) -> str:
    return f"dmesg | sed -n '/rwp-harness: begin {token}/,/rwp-harness: end {token}/p'"


def taint(output: str) -> tuple[int | None, int | None]:
    found = {m.group(1): int(m.group(2)) for m in _TAINT.finditer(output)}
    return found.get("0"), found.get("1")


def guest_seconds(output: str) -> float | None:
    m = _GUEST_NS.search(output)
    return round(int(m.group(1)) / 1e9, 4) if m else None


@dataclass(frozen=True)
class Timeout:
    """A guest-side deadline expired: run-one.sh's (no test named) or a
    program's own for one test."""
    seconds: int
    test: str | None


def timeout(output: str) -> Timeout | None:
    m = _TIMEOUT.search(output)
    return Timeout(int(m.group(1)), m.group(2)) if m else None


@dataclass(frozen=True)
class SubMarks:
    """What a batched program reported about one test besides its KTAP line."""
    taint_before: int
    taint_after: int
    seconds: float


def sub_marks(output: str) -> dict[str, SubMarks]:
    return {m.group(1): SubMarks(int(m.group(2)), int(m.group(3)), int(m.group(4)) / 1e9)
            for m in _SUB.finditer(output)}


def started(output: str) -> list[str]:
    """The tests a batched program began, in order."""
    return [m.group(1) for m in START.finditer(output)]


def capabilities(output: str) -> dict:
    m = _CAPS.search(output)
    if not m:
        return {"error": output.strip()[-300:]}
    try:
        return json.loads(m.group(1))
    except json.JSONDecodeError as e:
        return {"error": f"unreadable capabilities ({e})"}


def gcov_archive(output: str) -> bytes | None:
    """The tar.gz of gcov counters gcov.py printed, or None when it is missing
    or torn (its size does not match)."""
    m = _GCOV.search(output)
    if not m:
        return None
    try:
        data = base64.b64decode("".join(m.group(2).split()), validate=True)
    except ValueError:
        return None
    return data if len(data) == int(m.group(1)) else None


def split_output(output: str) -> dict[str, str]:
    """Each test's own lines of a batch: its diagnostics up to its result."""
    parts, current = {}, []
    for line in output.splitlines():
        if line.startswith(("@@RWPSUB ", "@@RWPSTART ")):
            continue
        current.append(line)
        m = _RESULT_LINE.match(line)
        if m:
            parts[m.group(1)] = "\n".join(current) + "\n"
            current = []
    return parts


def slice_log(log: str, token: str) -> tuple[str, dict[str, str]]:
    """A batch's kernel log cut at each test's begin marker.

    A test's slice runs to the next test's begin marker, so a splat printed
    just after a test ended (an RCU callback, a deferred free) is still
    charged to it. Returns what came before the first test, and the slices.
    """
    begin = re.compile(rf"rwp-harness: test-begin {re.escape(token)}/(\S+)")
    before, slices, current = [], {}, None
    for line in log.splitlines(keepends=True):
        m = begin.search(line)
        if m:
            current = m.group(1)
            slices[current] = []
        (slices[current] if current else before).append(line)
    return "".join(before), {k: "".join(v) for k, v in slices.items()}


def batch_started(log: str, token: str) -> bool:
    return f"rwp-harness: begin {token}" in log


def callers(diagnostic: str) -> list[int] | None:
    """The return addresses of a failed C check's stack (a diagnostic line
    without its "# "), or None when the line is not that marker."""
    m = _CALLERS.match(diagnostic.strip())
    return [int(a, 16) for a in m.group(1).split()] if m else None
