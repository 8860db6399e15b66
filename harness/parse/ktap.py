"""The parse phase: KTAP output of a guest program into cases (pass, fail, skip, xfail).

Tolerant of what a serial console does to output: carriage returns, kernel
log lines interleaved, and a program that dies before its plan is complete.
"""

import re
from dataclasses import dataclass, field

from harness.parse.verdicts import Status


@dataclass
class Case:
    name: str
    status: Status
    reason: str = ""
    diagnostics: list[str] = field(default_factory=list)


@dataclass
class Report:
    plan: int | None = None
    cases: list[Case] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, Case]:
        return {c.name: c for c in self.cases}


_VERSION = re.compile(r"^(KTAP|TAP) version (\d+)$")
_PLAN = re.compile(r"^1\.\.(\d+)")
_RESULT = re.compile(r"^(not ok|ok) (\d+)(?: -)?(?: ([^#]*?))?\s*(?:#\s*(\w+)\s*(.*))?$")
_KERNEL_LOG = re.compile(r"^\[\s*\d+\.\d+\]")


def _directive(ok: bool, word: str | None) -> Status:
    word = (word or "").upper()
    if word == "SKIP":
        return Status.SKIP
    if word in ("XFAIL", "TODO") and not ok:
        return Status.XFAIL
    return Status.PASS if ok else Status.FAIL


def parse(text: str) -> Report:
    """Parse the top level of a KTAP document; nested subtests stay diagnostics."""
    rep = Report()
    pending: list[str] = []
    seen_version = False
    for raw in text.replace("\r", "").splitlines():
        if _KERNEL_LOG.match(raw):
            continue
        indented = raw.startswith((" ", "\t"))
        line = raw.strip()
        if indented:
            pending.append(line)
            continue
        if _VERSION.match(line):
            seen_version = True
            continue
        m = _PLAN.match(line)
        if m and rep.plan is None:
            rep.plan = int(m.group(1))
            continue
        m = _RESULT.match(line)
        if m:
            ok = m.group(1) == "ok"
            status = _directive(ok, m.group(4))
            name = (m.group(3) or f"test{m.group(2)}").strip()
            rep.cases.append(Case(name, status, (m.group(5) or "").strip(), pending))
            pending = []
            continue
        if line.startswith("#"):
            pending.append(line[1:].strip())
    if not seen_version:
        rep.errors.append("no KTAP version line")
    if rep.plan is None:
        rep.errors.append("no test plan")
    elif len(rep.cases) < rep.plan:
        rep.errors.append(f"plan announced {rep.plan} tests, {len(rep.cases)} reported")
    return rep
