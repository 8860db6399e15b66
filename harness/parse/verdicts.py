"""The harness's verdicts: what one test came to, and how a verdict is reached.

A guest program reports KTAP (ok, not ok, SKIP, XFAIL); the harness turns that,
the test's kernel log, its taint and what the VM did into one verdict. ERROR
(the harness could not judge: a crash, a deadline, no report) and FLAKY
(--repeat disagreed) are the harness's own; NOTRUN marks a test a stopped run
never reached. Splats stay typed (splats.Splat) until a result is serialised.
"""

from dataclasses import dataclass, field
from enum import Enum

from harness.parse import splats as splatmod
from harness.parse.renamed import MOVED


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    XFAIL = "xfail"
    ERROR = "error"      # crashed, hung, or never reported
    FLAKY = "flaky"      # with --repeat: passed in some runs, failed in others


BAD = (Status.FAIL, Status.ERROR, Status.FLAKY)
# Bytes of a test's console output kept in results.json; the console log has it all.
OUTPUT_CAP = 256 * 1024


def test_id(program: str, sub: str) -> str:
    return f"{program}::{sub}"


def split_test_id(tid: str) -> tuple[str, str]:
    program, sep, sub = tid.partition("::")
    return (program, sub) if sep else (tid, "")


def _name(sub: str) -> str:
    """A subtest's test name: a memory-typed one (name__anon) without its type."""
    return sub.split("__", 1)[0]


_FORMER = {(new, name): old for (old, name), new in MOVED.items()}


def current_id(tid: str) -> str:
    """The id a test has today, given one it had before it moved (renamed.py)."""
    program, sub = split_test_id(tid)
    new = MOVED.get((program, _name(sub)))
    return test_id(new, sub) if new else tid


def former_id(tid: str) -> str | None:
    """The id a test had before it moved, or None."""
    program, sub = split_test_id(tid)
    old = _FORMER.get((program, _name(sub)))
    return test_id(old, sub) if old else None


def selected_by(tid: str, patterns) -> bool:
    """-k's rule: a test is selected when its id, or the id it had before it
    moved, contains any pattern (no patterns: every test)."""
    if not patterns:
        return True
    former = former_id(tid)
    return any(p in tid or (former is not None and p in former) for p in patterns)


def capped(text: str, cap: int = OUTPUT_CAP) -> str:
    if len(text) <= cap:
        return text
    return (text[:cap // 2] + f"\n[... {len(text) - cap} bytes cut; the whole output is in "
            "console.log ...]\n" + text[-cap // 2:])


@dataclass
class TestResult:
    __test__ = False           # a result, not a pytest test class
    test_id: str               # program::subtest
    status: Status
    reason: str = ""
    diagnostics: list[str] = field(default_factory=list)
    duration: float = 0.0
    output: str = ""
    splats: list[splatmod.Splat] = field(default_factory=list)
    excused: list[tuple[splatmod.Splat, str]] = field(default_factory=list)
    kernel_log: str = ""
    taint: tuple[int | None, int | None] = (None, None)
    runs: list[str] = field(default_factory=list)   # status of each run, with --repeat
    guest_seconds: float | None = None   # the program's own run time, timed in the guest

    @property
    def failed(self) -> bool:
        return self.status in BAD

    def to_json(self) -> dict:
        return {"id": self.test_id, "status": self.status.value, "reason": self.reason,
                "diagnostics": self.diagnostics, "duration": round(self.duration, 3),
                "splats": [s.to_json() for s in self.splats],
                "excused_splats": [{**s.to_json(), "excused_by": why} for s, why in self.excused],
                "taint_before": self.taint[0], "taint_after": self.taint[1],
                "runs": self.runs, "guest_seconds": self.guest_seconds,
                "output": capped(self.output), "kernel_log": capped(self.kernel_log)}


def judge(result: TestResult, found: list[splatmod.Splat], allow: splatmod.Allowlist) -> None:
    """Fold splats and taint into the result: either one fails the test."""
    for s in found:
        entry = allow.excuse(s)
        if entry:
            result.excused.append((s, entry.reason))
        else:
            result.splats.append(s)
    before, after = result.taint
    if result.status == Status.ERROR:
        return
    if result.splats:
        result.status = Status.FAIL
        result.reason = "kernel splat: " + result.splats[0].title
    elif before is not None and after is not None and before != after and not result.excused:
        result.status = Status.FAIL
        result.reason = f"kernel taint changed from {before} to {after}"


def combine(runs: list[TestResult]) -> TestResult:
    """One result from several runs: flaky when they disagree on pass or fail."""
    final = next((r for r in runs if r.failed), runs[-1])
    failed = sum(r.failed for r in runs)
    final.runs = [r.status.value for r in runs]
    if 0 < failed < len(runs):
        final.reason = f"flaky: failed {failed} of {len(runs)} runs; first failure: {final.reason}"
        final.status = Status.FLAKY
    elif len(runs) > 1 and not failed:
        final.reason = final.reason or f"passed {len(runs)} of {len(runs)} runs"
    return final


_KERNEL_DEATH = ("panic", "oops", "bug", "gpf", "kasan", "kfence")


def kernel_caused(console_text: str) -> list[splatmod.Splat]:
    """The kernel reports on the console that explain a VM's death: a QEMU
    that exits without one was killed from outside (an infrastructure event)."""
    return [s for s in splatmod.find(console_text) if s.kind in _KERNEL_DEATH]

