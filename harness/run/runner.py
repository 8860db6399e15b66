"""The run phase, one test at a time: each guest test run alone, bracketed,
judged with its kernel log (batch.py runs a whole program as one command and
falls back to this).

The bracketed command (guest.Guest.run) ends in one of a few outcomes; this
module only turns each into a result. A panic, an oops or a hang costs the VM:
the test is reported with the evidence and the VM is rebooted for the next
one. A VM that dies with no kernel report is the host's fault: the test runs
again once, and a second such death ends the run (InfraError).
"""

import re
from collections.abc import Callable

from harness.parse import ktap, protocol, splats
from harness.parse.verdicts import Status, TestResult, combine, judge, test_id
from harness.run.guest import Ended, Guest, Outcome
from harness.run.guestprogs import GuestProgram

def deadline_env(prog: GuestProgram, default: float,
                 timeout_of: Callable[[str], float]) -> dict[str, str]:
    """What a program reads its tests' deadlines from (protocol.DEADLINE_ENV):
    the default, and timeout_of for each test that sets its own."""
    return protocol.deadlines_env(default, {s: timeout_of(s) for s, _ in prog.timeouts})


def run_once(guest: Guest, prog: GuestProgram, sub: str, deadline: float,
             allow: splats.Allowlist, default_deadline: float | None = None) -> TestResult:
    tid = test_id(prog.name, sub)
    # Only sub runs: its deadline is the one that matters.
    env = deadline_env(prog, default_deadline or deadline, lambda s: deadline)
    # run-one.sh's deadline is the backstop behind the program's own, which
    # ends a stuck test GUEST_GRACE_S after its deadline.
    backstop = deadline + 2 * protocol.GUEST_GRACE_S
    guest.console()                     # booted: the staged paths are the guest's
    out = guest.run(guest.staged.command(prog, (sub,)), backstop, env)
    if out.quiet_death:     # the host's fault, once: run it again (a second one raises)
        guest.console()
        out = guest.run(guest.staged.command(prog, (sub,)), backstop, env)
    return from_outcome(out, tid, sub, deadline, allow)


def from_outcome(out: Outcome, tid: str, sub: str, deadline: float,
                 allow: splats.Allowlist) -> TestResult:
    if out.ended == Ended.DIED:
        why = "kernel panic" if any(s.kind == "panic" for s in out.kernel) else \
            f"kernel {out.kernel[0].kind}" if out.kernel else "the VM exited"
        return TestResult(tid, Status.FAIL if out.kernel else Status.ERROR,
                          why + (f": {out.kernel[0].title}" if out.kernel else ""),
                          duration=out.duration, output=out.output, kernel_log=out.output,
                          splats=splats.find(out.output))
    if out.ended == Ended.STALLED:
        return TestResult(tid, Status.ERROR,
                          f"hung: the guest gave no answer {deadline:.0f}s + grace after the "
                          "start; evidence from a serial sysrq in the kernel log",
                          duration=out.duration, output=out.output, kernel_log=out.output,
                          splats=splats.find(out.output))
    case = ktap.parse(out.output).by_name().get(sub)
    result = TestResult(tid, case.status if case else Status.ERROR,
                        case.reason if case else "program ended without reporting it",
                        case.diagnostics if case else [], out.duration, out.output,
                        taint=protocol.taint(out.output))
    result.guest_seconds = protocol.guest_seconds(out.output)
    if out.ended == Ended.HUNG:
        result.status = Status.ERROR
        result.reason = f"deadline of {deadline:.0f}s expired; task stacks in the kernel log"
    result.kernel_log = out.kernel_log
    judge(result, splats.find(result.kernel_log), allow)
    return result


PEER_TIMEOUT_S = 900.0
PEER_PREFIX = "peer/uffd-unit-tests"


def _peer_id(case_name: str) -> str:
    # "rwp-async on shmem-private" -> "rwp-async__shmem-private": ids without spaces.
    return test_id(PEER_PREFIX, case_name.replace(" on ", "__").replace(" ", "_"))


def _peer_case_name(case: ktap.Case) -> str:
    # kselftest prints a skip as "ok 26 # SKIP wp-fork-pin on anon (why)":
    # the case's name is then only in the reason.
    m = re.match(r"(\S+ on \S+)", case.reason)
    if re.fullmatch(r"test\d+", case.name) and m:
        return m.group(1)
    return case.name


def run_peer(guest: Guest, allow: splats.Allowlist,
             deadline: float = PEER_TIMEOUT_S) -> list[TestResult]:
    """The tree's own uffd-unit-tests, run whole; one result per case it reports.

    Its cases share one process, so a splat cannot be charged to one of them:
    the run as a whole is the extra case "::kernel_log", which fails on a
    splat or a taint change during the run.
    """
    guest.console()
    if not (guest.local.root / "peer" / "uffd-unit-tests").exists():
        reason = ("uffd-unit-tests did not build from this tree"
                  if (guest.local.root / "peer" / "build-error.txt").exists()
                  else "this kernel tree has no tools/testing/selftests/mm/uffd-unit-tests.c")
        return [TestResult(test_id(PEER_PREFIX, "build"), Status.SKIP, reason)]
    binary = str(guest.staged.root / "peer" / "uffd-unit-tests")
    whole_id = test_id(PEER_PREFIX, "kernel_log")
    out = guest.run(binary, deadline)
    if out.quiet_death:
        out = guest.run(binary, deadline)
    if out.ended == Ended.DIED:
        return [from_outcome(out, whole_id, "kernel_log", deadline, allow)]
    report = ktap.parse(out.output)
    results = [TestResult(_peer_id(_peer_case_name(c)), c.status, c.reason, c.diagnostics)
               for c in report.cases]
    whole = TestResult(whole_id, Status.PASS, duration=out.duration, output=out.output,
                       taint=protocol.taint(out.output))
    if out.ended in (Ended.HUNG, Ended.STALLED):
        whole.status, whole.reason = Status.ERROR, f"did not finish in {deadline:.0f}s"
    else:
        whole.kernel_log = out.kernel_log
        judge(whole, splats.find(whole.kernel_log), allow)
        if report.errors and whole.status == Status.PASS:
            whole.status, whole.reason = Status.ERROR, "; ".join(report.errors)
    return results + [whole]


def run_test(guest: Guest, prog: GuestProgram, sub: str, deadline: float,
             allow: splats.Allowlist, repeat: int = 1,
             default_deadline: float | None = None) -> TestResult:
    return combine([run_once(guest, prog, sub, deadline, allow, default_deadline)
                    for _ in range(repeat)])


