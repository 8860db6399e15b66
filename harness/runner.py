"""The run phase: guest programs executed over the console, results per subtest."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import ktap
from .console import GuestConsole
from .errors import InfraError
from .guestprogs import GuestProgram, Staged

PUSH_ROOT = Path("/tmp/rwp-guest")
PROGRAM_TIMEOUT_S = 300.0


@dataclass
class SubtestResult:
    test_id: str               # program::subtest
    status: ktap.Status
    reason: str = ""
    diagnostics: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"id": self.test_id, "status": self.status.value, "reason": self.reason,
                "diagnostics": self.diagnostics}


@dataclass
class ProgramResult:
    program: str
    command: str
    exit_status: int | None
    duration: float
    output: str
    subtests: list[SubtestResult]
    errors: list[str]

    def to_json(self) -> dict:
        return {"program": self.program, "command": self.command,
                "exit_status": self.exit_status, "duration": round(self.duration, 3),
                "errors": self.errors, "subtests": [s.to_json() for s in self.subtests],
                "output": self.output}


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


def _subtest_results(prog: GuestProgram, wanted: tuple[str, ...],
                     report: ktap.Report, timed_out: bool) -> list[SubtestResult]:
    seen = report.by_name()
    out = []
    for name in wanted:
        case = seen.get(name)
        tid = f"{prog.name}::{name}"
        if case is not None:
            out.append(SubtestResult(tid, case.status, case.reason, case.diagnostics))
        else:
            why = "program timed out before reporting it" if timed_out else \
                "program ended without reporting it"
            out.append(SubtestResult(tid, ktap.Status.ERROR, why))
    return out


def run_program(console: GuestConsole, staged: Staged, prog: GuestProgram,
                timeout: float = PROGRAM_TIMEOUT_S) -> ProgramResult:
    command = staged.command(prog, prog.subtests)
    began = time.monotonic()
    res = console.run(command, timeout=timeout)
    report = ktap.parse(res.output)
    errors = list(report.errors)
    if res.timed_out:
        errors.append(f"timed out after {timeout:.0f}s")
    subtests = _subtest_results(prog, prog.subtests, report, res.timed_out)
    return ProgramResult(prog.name, command, res.status, time.monotonic() - began,
                         res.output, subtests, errors)
