"""Batch mode: each guest program runs as one framed command, not one per test.

A framed command costs a console round trip, a guest shell, the program's
start (a Python interpreter over 9p under TCG) and a read of the kernel log;
paid per test it was most of a run's time. In a batch the program itself
brackets each test in the kernel log, says when each test begins, and prints
each test's taint before and after and its run time (protocol.py), so each
result is still judged on its own slice of the kernel log, as in a run per
test.

The host gives each test its own deadline: when no test begins or ends within
one test's deadline plus grace, the guest has stalled (a livelock its own
watchdog cannot end); the test in progress is charged with the evidence.

What a batch cannot judge runs again one test at a time (runner.run_once):
- the VM died: every test not yet judged, after a reboot (a death without a
  kernel report also counts towards ending the run, guest.py);
- a test outlived its deadline (the program ends itself there), or the guest
  stalled in it: that test is charged; the ones it kept from running run one
  at a time after a reboot, since the stuck task may still hold locks; the
  tests before it keep their results (a stall: they run again, their kernel
  log being lost with the VM);
- tests the program never reported (it crashed): those tests;
- a kernel log that lost the batch's start, or a splat before the first test:
  every test of the batch.
Ctrl-C in a batch keeps the results the program had already reported.
"""

import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator

from harness.parse import ktap, protocol, splats
from harness.parse.verdicts import TestResult, combine, judge, split_test_id, test_id
from harness.run import callsite
from harness.run.guest import Ended, Guest, HOST_GRACE_S
from harness.run.guestprogs import GuestProgram
from harness.run.runner import deadline_env, from_outcome, run_test
from harness.vm.console import Interrupted


@dataclass
class BatchOutcome:
    results: dict[str, TestResult] = field(default_factory=dict)
    rerun: list[str] = field(default_factory=list)     # to run one at a time
    why: str = ""                                       # why anything is rerun
    guest_seconds: float = 0.0                          # the program's own time


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, with the results its program had reported.

    Raised, not yielded before a raise: a consumer that stops at a failed
    result (--exitfirst) closes the generator, and an interrupt raised after
    the yields would be lost with it; the run would go on."""

    def __init__(self, results: list[TestResult]):
        super().__init__()
        self.results = results


def run_batch(guest: Guest, prog: GuestProgram, subs: list[str],
              timeout_of: Callable[[str], float], allow: splats.Allowlist,
              name_them: bool = True, default_deadline: float | None = None) -> BatchOutcome:
    """subs run as one command; without name_them the program runs all its
    tests, which must then be subs."""
    longest = max(timeout_of(s) for s in subs)
    # run-one.sh's deadline is a backstop for the whole command; the host's
    # per-test idle deadline is what notices a stall.
    backstop = sum(timeout_of(s) + protocol.GUEST_GRACE_S for s in subs)
    idle = longest + protocol.GUEST_GRACE_S + HOST_GRACE_S
    env = deadline_env(prog, default_deadline or longest, timeout_of)
    out = BatchOutcome()
    guest.console()                     # booted: the staged paths are the guest's
    command = guest.staged.command(prog, tuple(subs) if name_them else ())
    try:
        res = guest.run(command, backstop, env, idle=idle, marks=True)
    except Interrupted as e:
        raise BatchInterrupted(_reported(prog, subs, e.output, allow))
    if res.ended == Ended.DIED:
        out.rerun, out.why = list(subs), "the VM died during the batch"
        return out
    out.guest_seconds = protocol.guest_seconds(res.output) or 0.0
    if res.ended == Ended.STALLED:
        stuck = res.in_progress
        if stuck in subs:
            out.results[stuck] = from_outcome(res, test_id(prog.name, stuck), stuck,
                                              timeout_of(stuck), allow)
        out.rerun = [s for s in subs if s != stuck]
        out.why = (f"the guest stalled in {stuck}" if stuck else "the guest stalled") + \
            f" (nothing for {idle:.0f}s)"
        return out
    before, slices = protocol.slice_log(res.kernel_log, res.token)
    if not protocol.batch_started(before, res.token) or splats.find(before):
        out.rerun = list(subs)
        out.why = ("a kernel splat before the first test" if splats.find(before)
                   else "the kernel log lost the batch's start")
        return out
    _judge_each(prog, subs, res.output, slices, allow, out)
    hung = res.timeout.test if res.timeout else None
    if hung:
        out.why = f"{hung} hit its deadline"
    elif out.rerun:
        out.why = "the program did not report every test"
    return out


def _printed(prog: GuestProgram, subs: list[str], output: str) -> dict[str, TestResult]:
    """The results the program printed whole (a KTAP line and its marks), not
    yet judged against the kernel log."""
    cases, marks = ktap.parse(output).by_name(), protocol.sub_marks(output)
    texts = protocol.split_output(output)
    printed = {}
    for sub in subs:
        case, mark = cases.get(sub), marks.get(sub)
        if case is None or mark is None:
            continue
        r = TestResult(test_id(prog.name, sub), case.status, case.reason, case.diagnostics,
                       duration=mark.seconds, output=texts.get(sub, ""),
                       taint=(mark.taint_before, mark.taint_after))
        r.guest_seconds = round(mark.seconds, 4)
        printed[sub] = r
    return printed


def _judge_each(prog: GuestProgram, subs: list[str], output: str, slices: dict[str, str],
                allow: splats.Allowlist, out: BatchOutcome) -> None:
    printed = _printed(prog, subs, output)
    timeout = protocol.timeout(output)
    hung = timeout.test if timeout else None
    for sub in subs:
        r = printed.get(sub)
        if r is None or sub == hung:
            out.rerun.append(sub)
            continue
        r.kernel_log = slices.get(sub, "")
        judge(r, splats.find(r.kernel_log), allow)
        out.results[sub] = r


def _reported(prog: GuestProgram, subs: list[str], output: str,
              allow: splats.Allowlist) -> list[TestResult]:
    """The results an interrupted batch had printed, without their kernel log
    (the run is stopping); each says so."""
    kept = list(_printed(prog, subs, output).values())
    for r in kept:
        r.diagnostics = [*r.diagnostics, "kernel log not read: the run was interrupted"]
        judge(r, [], allow)
    return kept


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
                repeat: int = 1, one_by_one: bool = False,
                default_deadline: float | None = None) -> Iterator[TestResult]:
    """Every named test of one program, in batches unless one_by_one, in the
    order of subs. Each result is yielded as soon as it is final, so that an
    interrupted run keeps it; with repeat, each test's runs are combined as in
    runner.run_test, at the end."""
    if repeat == 1:
        try:
            for r in _one_round(guest, prog, subs, timeout_of, allow, one_by_one,
                                default_deadline):
                yield _with_call_sites(guest, prog, r)
        except BatchInterrupted as e:
            e.results = [_with_call_sites(guest, prog, r) for r in e.results]
            raise
        return
    runs: dict[str, list[TestResult]] = {s: [] for s in subs}
    for _ in range(repeat):
        for r in _one_round(guest, prog, subs, timeout_of, allow, one_by_one, default_deadline):
            runs[split_test_id(r.test_id)[1]].append(r)
    for s in subs:
        yield _with_call_sites(guest, prog, combine(runs[s]))


def _with_call_sites(guest: Guest, prog: GuestProgram, r: TestResult) -> TestResult:
    """A C check that failed in a helper also names the test's line (callsite.py)."""
    if prog.lang == "c" and r.diagnostics:
        sub = split_test_id(r.test_id)[1]
        r.diagnostics = callsite.resolve(r.diagnostics, guest.local.binary(prog),
                                         prog.function_of(sub), prog.source.name)
    return r


def _one_round(guest: Guest, prog: GuestProgram, subs: list[str],
               timeout_of: Callable[[str], float], allow: splats.Allowlist,
               one_by_one: bool, default_deadline: float | None) -> Iterator[TestResult]:
    def alone(sub: str) -> TestResult:
        r = run_test(guest, prog, sub, timeout_of(sub), allow,
                     default_deadline=default_deadline)
        guest.guest_seconds += r.guest_seconds or 0.0
        return r

    if one_by_one:
        for sub in subs:
            yield alone(sub)
        return
    # The whole program needs no names: one command however many tests.
    whole = prog.runs_all(subs)
    for part in [list(subs)] if whole else chunks(subs):
        batch = run_batch(guest, prog, part, timeout_of, allow, name_them=not whole,
                          default_deadline=default_deadline)
        guest.guest_seconds += batch.guest_seconds
        if batch.rerun:
            print(f"[run] {prog.name}: {batch.why}; running {len(batch.rerun)} test(s) "
                  "one at a time", file=sys.stderr, flush=True)
        for sub in part:
            yield (combine([batch.results[sub]]) if sub in batch.results else alone(sub))
