"""A run directory: everything one run produced, written as it goes.

Layout: console.log, build.log, config (the final .config), results.json,
results.ktap. results.json is rewritten after every program, so a killed run
still leaves what it had.
"""

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import ktap
from .runner import ProgramResult

DEFAULT_RESULTS = "rwp-results"


def new_run_dir(base: Path | None = None) -> Path:
    base = Path(base or os.environ.get("RWP_HARNESS_RESULTS") or DEFAULT_RESULTS)
    name = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
    path = base.expanduser().resolve() / name
    path.mkdir(parents=True, exist_ok=False)
    return path


@dataclass
class Run:
    path: Path
    manifest: dict = field(default_factory=dict)
    programs: list[ProgramResult] = field(default_factory=list)
    complete: bool = False

    @property
    def console_log(self) -> Path:
        return self.path / "console.log"

    def keep_build_artifacts(self, build_log: Path, dotconfig: Path) -> None:
        for src, name in ((build_log, "build.log"), (dotconfig, "config")):
            if src.exists():
                shutil.copy2(src, self.path / name)

    def add(self, result: ProgramResult) -> None:
        self.programs.append(result)
        self.save()

    def subtests(self):
        return [s for p in self.programs for s in p.subtests]

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in ktap.Status}
        for s in self.subtests():
            counts[s.status.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        bad = (ktap.Status.FAIL, ktap.Status.ERROR)
        return (self.complete and all(not p.errors for p in self.programs)
                and not any(s.status in bad for s in self.subtests()))

    def save(self) -> None:
        doc = {"complete": self.complete, "manifest": self.manifest,
               "counts": self.counts(), "programs": [p.to_json() for p in self.programs]}
        tmp = self.path / "results.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.path / "results.json")
        (self.path / "results.ktap").write_text(self.ktap())

    def ktap(self) -> str:
        subs = self.subtests()
        lines = ["KTAP version 1", f"1..{len(subs)}"]
        for i, s in enumerate(subs, 1):
            for d in s.diagnostics:
                lines.append(f"# {d}")
            if s.status == ktap.Status.PASS:
                lines.append(f"ok {i} {s.test_id}")
            elif s.status == ktap.Status.SKIP:
                lines.append(f"ok {i} {s.test_id} # SKIP {s.reason}")
            elif s.status == ktap.Status.XFAIL:
                lines.append(f"not ok {i} {s.test_id} # XFAIL {s.reason}")
            else:
                lines.append(f"not ok {i} {s.test_id}" + (f" # {s.reason}" if s.reason else ""))
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """Everything but the passes (already shown live), then the counts."""
        lines = []
        for s in self.subtests():
            if s.status == ktap.Status.PASS:
                continue
            extra = f"  ({s.reason})" if s.reason else ""
            lines.append(f"  {s.status.value.upper():5} {s.test_id}{extra}")
            if s.status in (ktap.Status.FAIL, ktap.Status.ERROR):
                lines += [f"          {d}" for d in s.diagnostics[-8:]]
        for p in self.programs:
            for e in p.errors:
                lines.append(f"  ERROR {p.program}: {e}")
        c = self.counts()
        if not self.complete:
            lines.append("  INCOMPLETE: the run stopped before every program ran")
        lines.append(f"{c['pass']} passed, {c['fail'] + c['error']} failed, "
                     f"{c['skip']} skipped, {c['xfail']} xfailed  (results: {self.path})")
        return "\n".join(lines)
