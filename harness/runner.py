"""The run phase: each guest test run alone, bracketed, judged with its kernel log.

Every subtest is its own framed command, wrapped by guest/harness/run-one.sh:
kernel-log markers before and after, the taint value before and after, and a
deadline after which blocked and all task stacks are dumped. The kernel log
between the markers is then read back and searched for splats, so a WARNING is
charged to the test that caused it. A panic or a hang costs the VM: the test
is reported with the evidence and the VM is rebooted for the next one.
"""

import json
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import ktap, splats
from .console import GuestConsole, GuestDied
from .errors import InfraError
from .guestprogs import GuestProgram, Staged

PUSH_ROOT = Path("/tmp/rwp-guest")
TEST_TIMEOUT_S = 60.0
# How long the host waits beyond a test's deadline for the guest's own
# watchdog to report, before it declares the guest hung and kills it.
HOST_GRACE_S = 20.0
_TAINT = re.compile(r"^@@RWPTAINT([01]) (\d+)$", re.M)
_CAPS = re.compile(r"^@@RWPCAPS (\{.*\})$", re.M)
_GUEST_NS = re.compile(r"^@@RWPGUESTNS (\d+)$", re.M)


@dataclass
class TestResult:
    __test__ = False           # a result, not a pytest test class
    test_id: str               # program::subtest
    status: ktap.Status
    reason: str = ""
    diagnostics: list[str] = field(default_factory=list)
    duration: float = 0.0
    output: str = ""
    splats: list[dict] = field(default_factory=list)
    excused: list[dict] = field(default_factory=list)
    kernel_log: str = ""
    taint: tuple[int | None, int | None] = (None, None)
    runs: list[str] = field(default_factory=list)   # status of each run, with --repeat
    guest_seconds: float | None = None   # the program's own run time, timed in the guest

    @property
    def failed(self) -> bool:
        return self.status in (ktap.Status.FAIL, ktap.Status.ERROR, ktap.Status.FLAKY)

    def to_json(self) -> dict:
        return {"id": self.test_id, "status": self.status.value, "reason": self.reason,
                "diagnostics": self.diagnostics, "duration": round(self.duration, 3),
                "splats": self.splats, "excused_splats": self.excused,
                "taint_before": self.taint[0], "taint_after": self.taint[1],
                "runs": self.runs, "guest_seconds": self.guest_seconds,
                "output": self.output, "kernel_log": self.kernel_log}


class Guest:
    """The VM the tests run in; rebooted after a panic or a hang."""

    def __init__(self, boot: Callable[[], "object"], staged: Staged, transport: str):
        self._boot = boot
        self.local = staged
        self.transport = transport
        self.machine = None
        self.staged: Staged | None = None
        self.reboots = 0
        self.capabilities: dict = {}
        self.boot_seconds: list[float] = []
        # The programs' own run time, timed in the guest: the baseline of the
        # harness's overhead.
        self.guest_seconds = 0.0

    def console(self) -> GuestConsole:
        if self.machine is None:
            self.machine = self._boot()
            self.boot_seconds.append(round(self.machine.boot_seconds, 2))
            self.staged = deliver(self.machine.console, self.local, self.transport)
            prepare(self.machine.console, self.staged)
            self.capabilities = probe_capabilities(self.machine.console, self.staged)
        return self.machine.console

    def reboot(self, why: str) -> None:
        print(f"[run] rebooting the guest: {why}", file=sys.stderr, flush=True)
        self.stop(now=True)
        self.reboots += 1

    def stop(self, now: bool = False) -> None:
        """Power off; with now, kill QEMU without asking the guest."""
        if self.machine is not None:
            if now:
                self.machine.kill()
            else:
                self.machine.stop()
            self.machine = None


def deliver(console: GuestConsole, staged: Staged, transport: str) -> Staged:
    """Make the staged programs visible in the guest; returns where they are there."""
    if transport in ("auto", "shared"):
        probe = console.run(f"test -r {staged.root / '.complete'}", timeout=30)
        if probe.status == 0:
            return staged
        if transport == "shared":
            raise InfraError(f"{staged.root} is not visible in the guest's shared filesystem")
    for f in staged.files():
        console.push_file(f, str(PUSH_ROOT / f.relative_to(staged.root)))
    return Staged(PUSH_ROOT)


def prepare(console: GuestConsole, staged: Staged) -> None:
    """Hugepages, THP mode, debugfs: what the tests need from the guest."""
    res = console.run(f"sh {staged.root / 'harness/setup.sh'}", timeout=60)
    if res.status != 0:
        raise InfraError(f"guest set-up failed: {res.output.strip()[-300:]}")


def probe_capabilities(console: GuestConsole, staged: Staged) -> dict:
    res = console.run(staged.helper_command("caps.py"), timeout=60)
    m = _CAPS.search(res.output)
    return json.loads(m.group(1)) if m else {"error": res.output.strip()[-300:]}


def _bracketed(guest: Guest, token: str, deadline: float, command: str) -> str:
    """command wrapped by run-one.sh: kernel-log markers, taint, guest-side deadline."""
    return f"sh {guest.staged.root / 'harness/run-one.sh'} {token} {int(deadline)} {command}"


def _taint(output: str) -> tuple[int | None, int | None]:
    found = {m.group(1): int(m.group(2)) for m in _TAINT.finditer(output)}
    return found.get("0"), found.get("1")


def _guest_seconds(output: str) -> float | None:
    m = _GUEST_NS.search(output)
    return round(int(m.group(1)) / 1e9, 4) if m else None


def _kernel_log(console: GuestConsole, token: str) -> str:
    res = console.run(f"dmesg | sed -n '/rwp-harness: begin {token}/,/rwp-harness: end {token}/p'",
                      timeout=60)
    return res.output


def _judge(result: TestResult, found: list[splats.Splat], allow: splats.Allowlist) -> None:
    """Fold splats and taint into the result: either one fails the test."""
    for s in found:
        entry = allow.excuse(s)
        if entry:
            result.excused.append({**s.to_json(), "excused_by": entry.reason})
        else:
            result.splats.append(s.to_json())
    before, after = result.taint
    if result.status == ktap.Status.ERROR:
        return
    if result.splats:
        result.status = ktap.Status.FAIL
        result.reason = "kernel splat: " + result.splats[0]["title"]
    elif before is not None and after is not None and before != after and not result.excused:
        result.status = ktap.Status.FAIL
        result.reason = f"kernel taint changed from {before} to {after}"


def run_once(guest: Guest, prog: GuestProgram, sub: str, deadline: float,
             allow: splats.Allowlist) -> TestResult:
    console = guest.console()
    token = secrets.token_hex(6)
    tid = f"{prog.name}::{sub}"
    command = _bracketed(guest, token, deadline, guest.staged.command(prog, (sub,)))
    began = time.monotonic()
    try:
        res = console.run(command, timeout=deadline + HOST_GRACE_S)
    except GuestDied as e:
        found = splats.find(e.output)
        panic = any(s.kind == "panic" for s in found)
        why = "kernel panic" if panic else "the VM exited"
        result = TestResult(tid, ktap.Status.FAIL, why + (f": {found[0].title}" if found else ""),
                            duration=time.monotonic() - began, output=e.output,
                            kernel_log=e.output, splats=[s.to_json() for s in found])
        guest.reboot(f"{why} during {tid}")
        return result
    duration = time.monotonic() - began
    if res.timed_out:
        result = TestResult(tid, ktap.Status.ERROR,
                            f"hung: no result {deadline:.0f}s + {HOST_GRACE_S:.0f}s after start; "
                            "the guest could not kill it", duration=duration, output=res.output,
                            kernel_log=res.output)
        result.splats = [s.to_json() for s in splats.find(res.output)]
        guest.reboot(f"{tid} hung")
        return result
    case = ktap.parse(res.output).by_name().get(sub)
    result = TestResult(tid, case.status if case else ktap.Status.ERROR,
                        case.reason if case else "program ended without reporting it",
                        case.diagnostics if case else [], duration, res.output,
                        taint=_taint(res.output))
    result.guest_seconds = _guest_seconds(res.output)
    hung = "@@RWPTIMEOUT" in res.output
    if hung:
        result.status = ktap.Status.ERROR
        result.reason = f"deadline of {deadline:.0f}s expired; task stacks in the kernel log"
    result.kernel_log = _kernel_log(console, token)
    _judge(result, splats.find(result.kernel_log), allow)
    if hung:
        # What hung may still hold locks or sit in D state: start clean.
        guest.reboot(f"{tid} hit its deadline")
    return result


PEER_TIMEOUT_S = 900.0
PEER_PREFIX = "peer/uffd-unit-tests"


def _peer_id(case_name: str) -> str:
    # "rwp-async on shmem-private" -> "rwp-async__shmem-private": ids without spaces.
    return f"{PEER_PREFIX}::" + case_name.replace(" on ", "__").replace(" ", "_")


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
    console = guest.console()
    binary = guest.staged.root / "peer" / "uffd-unit-tests"
    if not (guest.local.root / "peer" / "uffd-unit-tests").exists():
        reason = ("uffd-unit-tests did not build from this tree"
                  if (guest.local.root / "peer" / "build-error.txt").exists()
                  else "this kernel tree has no tools/testing/selftests/mm/uffd-unit-tests.c")
        return [TestResult(f"{PEER_PREFIX}::build", ktap.Status.SKIP, reason)]
    token = secrets.token_hex(6)
    began = time.monotonic()
    try:
        res = console.run(_bracketed(guest, token, deadline, str(binary)),
                          timeout=deadline + HOST_GRACE_S)
    except GuestDied as e:
        guest.reboot("the VM died during uffd-unit-tests")
        found = splats.find(e.output)
        return [TestResult(f"{PEER_PREFIX}::kernel_log", ktap.Status.FAIL,
                           "the VM died" + (f": {found[0].title}" if found else ""),
                           output=e.output, splats=[s.to_json() for s in found])]
    report = ktap.parse(res.output)
    results = [TestResult(_peer_id(_peer_case_name(c)), c.status, c.reason, c.diagnostics)
               for c in report.cases]
    whole = TestResult(f"{PEER_PREFIX}::kernel_log", ktap.Status.PASS,
                       duration=time.monotonic() - began, output=res.output,
                       taint=_taint(res.output))
    if res.timed_out or "@@RWPTIMEOUT" in res.output:
        whole.status, whole.reason = ktap.Status.ERROR, f"did not finish in {deadline:.0f}s"
        guest.reboot("uffd-unit-tests hit its deadline")
    else:
        whole.kernel_log = _kernel_log(console, token)
        _judge(whole, splats.find(whole.kernel_log), allow)
        if report.errors and whole.status == ktap.Status.PASS:
            whole.status, whole.reason = ktap.Status.ERROR, "; ".join(report.errors)
    return results + [whole]


def _combine(runs: list[TestResult]) -> TestResult:
    """One result from several runs: flaky when they disagree on pass or fail."""
    final = next((r for r in runs if r.failed), runs[-1])
    failed = sum(r.failed for r in runs)
    final.runs = [r.status.value for r in runs]
    if 0 < failed < len(runs):
        final.reason = f"flaky: failed {failed} of {len(runs)} runs; first failure: {final.reason}"
        final.status = ktap.Status.FLAKY
    elif len(runs) > 1 and not failed:
        final.reason = final.reason or f"passed {len(runs)} of {len(runs)} runs"
    return final


def run_test(guest: Guest, prog: GuestProgram, sub: str, deadline: float,
             allow: splats.Allowlist, repeat: int = 1) -> TestResult:
    return _combine([run_once(guest, prog, sub, deadline, allow) for _ in range(repeat)])
