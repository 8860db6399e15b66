"""A run directory: everything one run produced, written as it goes.

Layout: results.json, results.ktap, junit.xml, console.log, build.log and
config (the final .config). The result files are rewritten at most once a
second and at the end, so a killed run still leaves what it had, marked
incomplete, with the tests it never reached listed as not run.
"""

import json
import os
import secrets
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BadInput
from harness.parse.verdicts import BAD as _BAD
from harness.parse.verdicts import Status, TestResult, capped, split_test_id

DEFAULT_RESULTS = "rwp-results"


def new_run_dir(base: Path | None = None, kind: str = "") -> Path:
    """A new directory under base named for the time: <kind>-<date>-<time>-<id>
    (bench, bisect, mutate, pytest; a plain run has no kind)."""
    base = Path(base or os.environ.get("RWP_HARNESS_RESULTS") or DEFAULT_RESULTS)
    name = (f"{kind}-" if kind else "") + time.strftime("%Y%m%d-%H%M%S") + "-" + \
        secrets.token_hex(3)
    path = base.expanduser().resolve() / name
    try:
        path.mkdir(parents=True, exist_ok=False)
    except (FileExistsError, NotADirectoryError):
        raise BadInput(f"cannot make a run directory under {base}: it is not a directory")
    except PermissionError:
        raise BadInput(f"cannot make a run directory under {base}: permission denied")
    return path


def read_document(path: Path) -> dict:
    """A saved run's results.json, given its run directory or the file."""
    path = Path(path)
    f = path / "results.json" if path.is_dir() else path
    try:
        doc = json.loads(f.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no results.json (not a run directory?)")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{f}: unreadable: {e}")
    except ValueError as e:
        raise BadInput(f"{f}: not JSON ({e})")
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise BadInput(f"{f}: not an rwp-harness results.json (no test list)")
    return doc


SAVE_EVERY_S = 1.0


@dataclass
class Run:
    path: Path
    manifest: dict = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)
    complete: bool = False
    planned: list[str] = field(default_factory=list)   # test ids the run meant to run
    _saved_at: float = field(default=float("-inf"), repr=False)

    @property
    def console_log(self) -> Path:
        return self.path / "console.log"

    def keep_build_artifacts(self, build_log: Path, dotconfig: Path) -> None:
        for src, name in ((build_log, "build.log"), (dotconfig, "config")):
            if src.exists():
                shutil.copy2(src, self.path / name)

    def add(self, result: TestResult) -> None:
        """Keep result; the files are rewritten at most every SAVE_EVERY_S, since
        a batch hands over a whole program's results at once and rewriting
        everything per result grows with the square of the run. The run's
        end (or interruption) saves in any case."""
        self.tests.append(result)
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def not_run(self) -> list[str]:
        """The planned tests a stopped run never reached."""
        done = {t.test_id for t in self.tests}
        return [t for t in self.planned if t not in done]

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for t in self.tests:
            counts[t.status.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        return self.complete and not any(t.status in _BAD for t in self.tests)

    def document(self) -> dict:
        return {"complete": self.complete, "ok": self.ok, "manifest": self.manifest,
                "counts": {**self.counts(), "not_run": len(self.not_run())},
                "tests": [t.to_json() for t in self.tests], "not_run": self.not_run()}

    def save(self) -> None:
        self._saved_at = time.monotonic()
        self._write("results.json", json.dumps(self.document(), indent=1))
        self._write("results.ktap", self.ktap())
        self._write("junit.xml", self.junit())

    def _write(self, name: str, text: str) -> None:
        tmp = self.path / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(self.path / name)

    def ktap(self) -> str:
        lines = ["KTAP version 1", f"1..{len(self.tests)}"]
        for i, t in enumerate(self.tests, 1):
            lines += [f"# {d}" for d in t.diagnostics]
            lines += [f"# splat: {s.title}" for s in t.splats]
            if t.status == Status.PASS:
                lines.append(f"ok {i} {t.test_id}")
            elif t.status == Status.SKIP:
                lines.append(f"ok {i} {t.test_id} # SKIP {t.reason}")
            elif t.status == Status.XFAIL:
                lines.append(f"not ok {i} {t.test_id} # XFAIL {t.reason}")
            else:
                lines.append(f"not ok {i} {t.test_id}" + (f" # {t.reason}" if t.reason else ""))
        if not self.complete:
            lines.append("# incomplete: the run stopped before every test ran")
            lines += [f"# not run: {tid}" for tid in self.not_run()]
        return "\n".join(lines) + "\n"

    def junit(self) -> str:
        c = self.counts()
        suite = ET.Element("testsuite", name="rwp-harness", tests=str(len(self.tests)),
                           failures=str(c["fail"] + c["flaky"]), errors=str(c["error"]),
                           skipped=str(c["skip"] + c["xfail"]))
        for t in self.tests:
            program, name = split_test_id(t.test_id)
            case = ET.SubElement(suite, "testcase", classname=program, name=name,
                                 time=f"{t.duration:.3f}")
            detail = "\n".join(t.diagnostics + [s.text for s in t.splats])
            if t.status == Status.SKIP:
                ET.SubElement(case, "skipped", message=t.reason)
            elif t.status == Status.XFAIL:
                # pytest's convention: an expected failure is a skip of type xfail.
                ET.SubElement(case, "skipped", type="xfail", message=t.reason)
            elif t.status == Status.ERROR:
                ET.SubElement(case, "error", message=t.reason).text = detail
            elif t.status in (Status.FAIL, Status.FLAKY):
                ET.SubElement(case, "failure", message=t.reason).text = detail
            if t.output:
                ET.SubElement(case, "system-out").text = capped(t.output)
        if not self.complete:
            ET.SubElement(suite, "properties").append(
                ET.Element("property", name="incomplete", value="true"))
        return ET.tostring(suite, encoding="unicode") + "\n"

    def summary(self) -> str:
        """A table of everything but the passes (already shown live), then the counts."""
        lines = []
        for t in self.tests:
            if t.status == Status.PASS:
                continue
            extra = f"  ({t.reason})" if t.reason else ""
            lines.append(f"  {t.status.value.upper():5} {t.test_id}{extra}")
            if t.status in _BAD:
                lines += [f"          {d}" for d in t.diagnostics[-8:]]
                for s in t.splats:
                    lines += [f"          | {l}" for l in s.text.splitlines()[:12]]
        if not self.complete:
            lines.append(f"  INCOMPLETE: the run stopped before every test ran "
                         f"({len(self.not_run())} not run)")
        reboots = self.manifest.get("reboots", 0)
        c = self.counts()
        lines.append(f"{c['pass']} passed, {c['fail'] + c['error'] + c['flaky']} failed, "
                     f"{c['skip']} skipped, {c['xfail']} xfailed, {c['flaky']} flaky, "
                     f"{reboots} reboots  (results: {self.path})")
        return "\n".join(lines)
