"""Batch mode: each guest program runs as one framed command, not one per test.

A framed command costs a console round trip, a guest shell, the program's
start (a Python interpreter over 9p under TCG) and a read of the kernel log;
paid per test it was most of a run's time. In a batch the program itself
brackets each test in the kernel log and prints each test's taint before and
after and its run time (RWP_MARKS, see guest/include/rwp_test.h and
guest/py/ktest.py), so each result is still judged on its own slice of the
kernel log, as in a run per test.

What a batch cannot judge runs again one test at a time (runner.run_once):
- the VM died or stopped answering: every test of the batch, after a reboot;
- a test outlived its deadline (the program ends itself there): that test and
  the ones it kept from running, after a reboot, since the stuck task may
  still hold locks; the tests before it keep their results;
- tests the program never reported (it crashed): those tests;
- a kernel log that lost the batch's start, or a splat before the first test:
  every test of the batch.
"""

import re
import secrets
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator

from . import ktap, splats
from .console import GuestDied
from .guestprogs import GuestProgram
from .runner import (HOST_GRACE_S, Guest, TestResult, _bracketed, _combine, _guest_seconds,
                     _judge, _kernel_log, run_test)

_SUB = re.compile(r"^@@RWPSUB (\S+) (-?\d+) (-?\d+) (\d+)$", re.M)
_RESULT_LINE = re.compile(r"^(?:not )?ok \d+ (\S+)")


@dataclass(frozen=True)
class SubMarks:
    """What the program reported about one test besides its KTAP line."""
    taint_before: int
    taint_after: int
    seconds: float


@dataclass
class BatchOutcome:
    results: dict[str, TestResult] = field(default_factory=dict)
    rerun: list[str] = field(default_factory=list)     # to run one at a time
    why: str = ""                                       # why anything is rerun
    guest_seconds: float = 0.0                          # the program's own time


def sub_marks(output: str) -> dict[str, SubMarks]:
    return {m.group(1): SubMarks(int(m.group(2)), int(m.group(3)), int(m.group(4)) / 1e9)
            for m in _SUB.finditer(output)}


def split_output(output: str) -> dict[str, str]:
    """Each test's own lines: its diagnostics up to and including its result."""
    parts, current = {}, []
    for line in output.splitlines():
        if line.startswith("@@RWPSUB "):
            continue
        current.append(line)
        m = _RESULT_LINE.match(line)
        if m:
            parts[m.group(1)] = "\n".join(current) + "\n"
            current = []
    return parts


def slice_log(log: str, token: str) -> tuple[str, dict[str, str]]:
    """The batch's kernel log cut at each test's begin marker.

    The per-test markers say test-begin and test-end, so that they never
    match the batch's own begin and end markers that run-one.sh writes.

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


def _hung_test(output: str) -> str | None:
    m = re.search(r"^@@RWPTIMEOUT \d+ (\S+)$", output, re.M)
    return m.group(1) if m else None


def run_batch(guest: Guest, prog: GuestProgram, subs: list[str],
              timeout_of: Callable[[str], float], allow: splats.Allowlist,
              name_them: bool = True) -> BatchOutcome:
    """subs run as one command; without name_them the program runs all its
    tests, which must then be subs."""
    console = guest.console()
    token = secrets.token_hex(6)
    # A backstop only: a stuck test is ended by the program's own deadline.
    deadline = sum(timeout_of(s) for s in subs)
    command = _bracketed(guest, token, deadline,
                         f"env RWP_MARKS={token} "
                         f"{guest.staged.command(prog, tuple(subs) if name_them else ())}")
    out = BatchOutcome()
    try:
        res = console.run(command, timeout=deadline + HOST_GRACE_S)
    except GuestDied:
        guest.reboot(f"the VM died during a batch of {prog.name}")
        out.rerun, out.why = list(subs), "the VM died during the batch"
        return out
    if res.timed_out:
        guest.reboot(f"a batch of {prog.name} did not finish")
        out.rerun, out.why = list(subs), f"the batch did not finish in {deadline:.0f}s"
        return out
    out.guest_seconds = _guest_seconds(res.output) or 0.0
    log = _kernel_log(console, token)
    before, slices = slice_log(log, token)
    if f"rwp-harness: begin {token}" not in before or splats.find(before):
        out.rerun = list(subs)
        out.why = ("a kernel splat before the first test" if splats.find(before)
                   else "the kernel log lost the batch's start")
        return out
    _judge_each(prog, subs, res.output, slices, allow, out)
    hung = _hung_test(res.output)
    if hung:
        guest.reboot(f"{prog.name}::{hung} hit its deadline in a batch")
        out.why = f"{hung} hit its deadline"
    elif out.rerun:
        out.why = "the program did not report every test"
    return out


def _judge_each(prog: GuestProgram, subs: list[str], output: str, slices: dict[str, str],
                allow: splats.Allowlist, out: BatchOutcome) -> None:
    cases = ktap.parse(output).by_name()
    marks = sub_marks(output)
    texts = split_output(output)
    hung = _hung_test(output)
    for sub in subs:
        case, mark = cases.get(sub), marks.get(sub)
        if case is None or mark is None or sub == hung:
            out.rerun.append(sub)
            continue
        r = TestResult(f"{prog.name}::{sub}", case.status, case.reason, case.diagnostics,
                       duration=mark.seconds, output=texts.get(sub, ""),
                       taint=(mark.taint_before, mark.taint_after))
        r.guest_seconds = round(mark.seconds, 4)
        r.kernel_log = slices.get(sub, "")
        _judge(r, splats.find(r.kernel_log), allow)
        out.results[sub] = r


# Test names per batch command, in bytes: with the framing and paths the line
# stays under the console's limit (console.MAX_LINE).
NAMES_PER_COMMAND = 2800


def chunks(subs: list[str], budget: int = NAMES_PER_COMMAND) -> list[list[str]]:
    """subs cut into runs whose names, space separated, fit in budget bytes."""
    out, current, used = [], [], 0
    for sub in subs:
        if current and used + len(sub) + 1 > budget:
            out.append(current)
            current, used = [], 0
        current.append(sub)
        used += len(sub) + 1
    return out + ([current] if current else [])


def run_program(guest: Guest, prog: GuestProgram, subs: list[str],
                timeout_of: Callable[[str], float], allow: splats.Allowlist,
                repeat: int = 1, one_by_one: bool = False) -> Iterator[TestResult]:
    """Every named test of one program, in batches unless one_by_one, in the
    order of subs. Each result is yielded as soon as it is final, so that an
    interrupted run keeps it; with repeat, each test's runs are combined as in
    runner.run_test, at the end."""
    if repeat == 1:
        yield from _one_round(guest, prog, subs, timeout_of, allow, one_by_one)
        return
    runs: dict[str, list[TestResult]] = {s: [] for s in subs}
    for _ in range(repeat):
        for r in _one_round(guest, prog, subs, timeout_of, allow, one_by_one):
            runs[r.test_id.split("::", 1)[1]].append(r)
    for s in subs:
        yield _combine(runs[s])


def _one_round(guest: Guest, prog: GuestProgram, subs: list[str],
               timeout_of: Callable[[str], float], allow: splats.Allowlist,
               one_by_one: bool) -> Iterator[TestResult]:
    if one_by_one:
        for sub in subs:
            yield _alone(guest, prog, sub, timeout_of, allow)
        return
    # The whole program needs no names: one command however many tests.
    whole = prog.runs_all(subs)
    for part in [list(subs)] if whole else chunks(subs):
        batch = run_batch(guest, prog, part, timeout_of, allow, name_them=not whole)
        guest.guest_seconds += batch.guest_seconds
        if batch.rerun:
            print(f"[run] {prog.name}: {batch.why}; running {len(batch.rerun)} test(s) "
                  "one at a time", file=sys.stderr, flush=True)
        for sub in part:
            yield (_combine([batch.results[sub]]) if sub in batch.results
                   else _alone(guest, prog, sub, timeout_of, allow))


def _alone(guest: Guest, prog: GuestProgram, sub: str,
           timeout_of: Callable[[str], float], allow: splats.Allowlist) -> TestResult:
    r = run_test(guest, prog, sub, timeout_of(sub), allow)
    guest.guest_seconds += r.guest_seconds or 0.0
    return r
