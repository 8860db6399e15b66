"""Two runs compared: what changed from a baseline run to a new one.

A run is a run directory or its results.json, or a JUnit file (the harness's
own junit.xml or the pytest view's --junitxml). The comparison lists
regressions, fixes, other status changes, new and vanished tests, new splats,
durations that moved beyond a ratio, and differences of the manifests (kernel,
config, the guest's userfaultfd capabilities).

A regression is a test that was not failing (pass, xfail, skip) and now fails,
errors or is flaky, or a new test that fails. A new run that stopped early
(tests not run) gives no verdict on the tests it did not reach: that is its
own outcome, never a regression.
"""

import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import BadInput
from harness.parse.verdicts import BAD, Status, current_id, selected_by, test_id
from harness.report import results

_BAD = {s.value for s in BAD}
# Manifest entries whose change is worth a line: what the kernel and guest were.
_MANIFEST_KEYS = ("kernel_release", "config_sha256", "series_hash", "accel")


@dataclass
class RunView:
    """What a comparison needs of one run."""
    label: str
    statuses: dict[str, str] = field(default_factory=dict)     # test id -> status
    reasons: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    splats: dict[str, list[str]] = field(default_factory=dict)  # test id -> splat titles
    manifest: dict[str, str] = field(default_factory=dict)     # flattened, for differences
    not_run: list[str] = field(default_factory=list)
    select: list[str] = field(default_factory=list)            # the run's -k patterns


def load(path: Path) -> RunView:
    path = Path(path)
    if path.suffix == ".xml" or (path.is_dir() and not (path / "results.json").exists()
                                 and (path / "junit.xml").exists()):
        return _from_junit(path / "junit.xml" if path.is_dir() else path, str(path))
    doc = results.read_document(path)
    # A baseline from before a test moved names it by its old id (renamed.py).
    view = RunView(str(path), not_run=[current_id(t) for t in doc.get("not_run") or []])
    for t in doc["tests"]:
        tid = current_id(t["id"])
        view.statuses[tid] = t["status"]
        view.reasons[tid] = t.get("reason") or _check_message(t.get("diagnostics") or [])
        view.durations[tid] = float(t.get("duration") or 0.0)
        view.splats[tid] = [s["title"] for s in t.get("splats", [])]
    view.manifest = _flat_manifest(doc.get("manifest") or {})
    view.select = list((doc.get("manifest") or {}).get("select") or [])
    return view


# "rwp_lifecycle.c:1397: round 20: ..." : a check's own message, with its line.
_AT_LINE = re.compile(r"^[\w./-]+\.(?:c|h|py):\d+: ")


def _check_message(diagnostics: list[str]) -> str:
    """Why a test that gave no reason failed: its check's message (the line
    that names the file and line), else its first diagnostic."""
    return next((d for d in diagnostics if _AT_LINE.match(d)), next(iter(diagnostics), ""))


def _flat_manifest(m: dict) -> dict[str, str]:
    flat = {k: str(m[k]) for k in _MANIFEST_KEYS if m.get(k) not in (None, "")}
    if m.get("select"):
        flat["select"] = " ".join(m["select"])
    src = m.get("source") or {}
    if src.get("identity"):
        flat["source"] = str(src["identity"])
    # A run from before --arch names none: it was x86_64.
    arch = m.get("arch")
    flat["arch"] = str(arch.get("name", "x86_64")) if isinstance(arch, dict) else "x86_64"
    for k, v in sorted((m.get("guest_capabilities") or {}).items()):
        if k != "calibration_s":        # a timing, not a capability
            flat[f"guest.{k}"] = str(v)
    return flat


def _junit_id(case: ET.Element) -> str:
    """The test id of a JUnit case: the harness writes classname=program; the
    pytest view's classname is the guest source's dotted path."""
    cls, name = case.get("classname", ""), case.get("name", "")
    if "/" not in cls:
        parts = cls.split(".")
        if parts and parts[-1] == "c":
            parts = parts[:-1]
        if len(parts) >= 2 and parts[-2] in ("c", "py"):
            cls = f"{parts[-2]}/{parts[-1]}"
    return current_id(test_id(cls, name))


def _junit_status(case: ET.Element) -> tuple[str, str]:
    for tag, status in (("failure", Status.FAIL), ("error", Status.ERROR)):
        el = case.find(tag)
        if el is not None:
            return status.value, el.get("message", "")
    el = case.find("skipped")
    if el is not None:
        xfail = el.get("type") in ("pytest.xfail", "xfail")
        return (Status.XFAIL if xfail else Status.SKIP).value, el.get("message", "")
    return Status.PASS.value, ""


def _from_junit(path: Path, label: str) -> RunView:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file")
    except (OSError, ET.ParseError) as e:
        raise BadInput(f"{path}: not a JUnit XML file ({e})")
    view = RunView(label)
    for case in root.iter("testcase"):
        tid = _junit_id(case)
        view.statuses[tid], view.reasons[tid] = _junit_status(case)
        try:
            view.durations[tid] = float(case.get("time") or 0.0)
        except ValueError:
            view.durations[tid] = 0.0
    if not view.statuses:
        raise BadInput(f"{path}: no test cases")
    return view


@dataclass
class Change:
    test: str
    before: str
    after: str
    reason: str = ""


@dataclass
class Comparison:
    base: str
    new: str
    regressions: list[Change] = field(default_factory=list)
    fixes: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)        # before = ""
    vanished: list[Change] = field(default_factory=list)     # after = "" or "not run"
    new_splats: list[Change] = field(default_factory=list)   # after = the splat's title
    timings: list[Change] = field(default_factory=list)      # before/after in seconds
    unselected: int = 0             # base tests outside the new run's -k selection
    manifest: list[Change] = field(default_factory=list)     # test = the manifest key
    not_run: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    @property
    def incomplete(self) -> bool:
        return bool(self.not_run)

    def to_json(self) -> dict:
        return asdict(self) | {"regressed": self.regressed, "incomplete": self.incomplete}


def compare(base: RunView, new: RunView, ratio: float = 2.0, min_seconds: float = 1.0
            ) -> Comparison:
    """ratio, min_seconds: a duration is reported when it moved by more than
    ratio times and the longer of the two is at least min_seconds (TCG makes
    millisecond tests noisy)."""
    c = Comparison(base.label, new.label, not_run=sorted(new.not_run))
    for tid, after in new.statuses.items():
        before = base.statuses.get(tid)
        why = new.reasons.get(tid, "")
        if before is None:
            c.added.append(Change(tid, "", after, why))
            if after in _BAD:
                c.regressions.append(Change(tid, "new", after, why))
            continue
        if after in _BAD and before not in _BAD:
            c.regressions.append(Change(tid, before, after, why))
        elif before in _BAD and after not in _BAD:
            c.fixes.append(Change(tid, before, after, why))
        elif before != after:
            c.changed.append(Change(tid, before, after, why))
        old = set(base.splats.get(tid, []))
        c.new_splats += [Change(tid, "", title) for title in new.splats.get(tid, [])
                         if title not in old]
        b, a = base.durations.get(tid, 0.0), new.durations.get(tid, 0.0)
        if max(a, b) >= min_seconds and (min(a, b) == 0 or max(a, b) / min(a, b) > ratio):
            c.timings.append(Change(tid, f"{b:.2f}", f"{a:.2f}"))
    not_run = set(new.not_run)
    # A test the new run's -k left out did not vanish: it was not asked for
    # (a mutant's run, a bisect step's selection).
    gone = [t for t in base.statuses if t not in new.statuses]
    c.vanished = [Change(t, base.statuses[t], "not run" if t in not_run else "")
                  for t in gone if selected_by(t, new.select)]
    c.unselected = len(gone) - len(c.vanished)
    # A JUnit file has no manifest: nothing to say of it.
    keys = set(base.manifest) | set(new.manifest) if base.manifest and new.manifest else set()
    for key in sorted(keys):
        b, a = base.manifest.get(key, ""), new.manifest.get(key, "")
        if a != b:
            c.manifest.append(Change(key, b, a))
    return c


# Rows shown per section; the rest are counted (a stopped run vanishes hundreds).
SECTION_ROWS = 25


def _section(title: str, rows: list[Change], fmt) -> list[str]:
    if not rows:
        return []
    shown = [f"  {fmt(r)}" for r in rows[:SECTION_ROWS]]
    more = [f"  ... and {len(rows) - SECTION_ROWS} more (--json lists all)"] \
        if len(rows) > SECTION_ROWS else []
    return [f"{title} ({len(rows)}):", *shown, *more]


def text(c: Comparison) -> str:
    def move(r: Change) -> str:
        return f"{r.test}  {r.before} -> {r.after}" + (f"  ({r.reason})" if r.reason else "")
    lines = [f"compare {c.base} -> {c.new}"]
    lines += _section("regressions", c.regressions, move)
    lines += _section("fixes", c.fixes, move)
    lines += _section("other status changes", c.changed, move)
    lines += _section("new tests", c.added, lambda r: f"{r.test}  {r.after}")
    lines += _section("vanished tests", c.vanished,
                      lambda r: f"{r.test}  (was {r.before}" + (", not run)" if r.after else ")"))
    lines += _section("new splats", c.new_splats, lambda r: f"{r.test}  {r.after}")
    lines += _section("durations moved", c.timings,
                      lambda r: f"{r.test}  {r.before}s -> {r.after}s")
    lines += _section("manifest differences", c.manifest,
                      lambda r: f"{r.test}: {r.before or '-'} -> {r.after or '-'}")
    verdict = (f"{len(c.regressions)} regression(s)" if c.regressed else "no regression")
    if c.incomplete:
        verdict += f"; the new run is incomplete ({len(c.not_run)} test(s) not run)"
    lines.append(f"{verdict}, {len(c.fixes)} fix(es), {len(c.added)} new, "
                 f"{len(c.vanished)} vanished, {len(c.new_splats)} new splat(s)"
                 + (f", {c.unselected} outside the new run's selection" if c.unselected else ""))
    return "\n".join(lines)
