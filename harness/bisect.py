"""Bisection: which commit broke the selected tests.

`rwp-harness bisect` drives `git bisect` in a clone the harness owns (it
shares the user's objects, so the user's checkout, HEAD and refs are never
touched), with one build directory kept across steps so each step is an
incremental build. `rwp-harness bisect-step` judges the checked-out commit
alone and exits with git's conventions, for the user's own `git bisect run`.

A step is:
  good   every selected test passed (expected failures count as passes)
  bad    a selected test failed, errored, hung or panicked the guest; with
         --repeat, failed in any run
  skip   the commit is untestable: the build or the config check failed,
         or every selected test was skipped (the feature is not there yet);
         a panic while booting too, unless --boot-panic bad
  abort  the harness could not test at all (QEMU or the VM did not start, a
         missing tool): never reported as bad
"""

import hashlib
import json
import re
import shutil
from argparse import Namespace
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from . import cache, gittree, ktap, patches, pipeline, results, source
from .console import BootPanic
from .errors import BadInput, BuildError, ConfigError, HarnessError
from .runner import TestResult


class Outcome(str, Enum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"
    ABORT = "abort"


# git bisect run: 0 good, 1-127 bad except 125 skip, anything else aborts.
STEP_EXIT = {Outcome.GOOD: 0, Outcome.BAD: 1, Outcome.SKIP: 125, Outcome.ABORT: 128}
BOOT_PANIC_DEFAULT = Outcome.SKIP
BUILD_SUBDIR = ".rwp-build"
KEEP_WORKSPACES = 3


@dataclass
class Step:
    commit: str
    subject: str
    outcome: Outcome
    reason: str
    timings: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    run_dir: str = ""
    steps_left: int | None = None      # git's estimate when the step began

    def to_json(self) -> dict:
        d = asdict(self)
        d["outcome"] = self.outcome.value
        return d


@dataclass
class BisectResult:
    good: str
    bad: str
    steps: list[Step] = field(default_factory=list)
    first_bad: str = ""
    first_bad_subject: str = ""
    candidates: list[str] = field(default_factory=list)   # when skips leave several
    aborted: str = ""
    log: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["steps"] = [s.to_json() for s in self.steps]
        return d


def judge(tests: list[TestResult]) -> tuple[Outcome, str]:
    failed = [t for t in tests if t.failed]
    if failed:
        t = failed[0]
        why = t.reason or next(iter(t.diagnostics), "")
        return Outcome.BAD, f"{t.test_id} {t.status.value}: {why}".strip()
    if not tests:
        return Outcome.SKIP, "no test ran"
    if all(t.status == ktap.Status.SKIP for t in tests):
        return Outcome.SKIP, f"all {len(tests)} selected test(s) skipped: {tests[0].reason}"
    return Outcome.GOOD, f"{len(tests)} selected test(s) passed"


def evaluate(args: Namespace, req, run_parent: Path) -> tuple[Outcome, str, dict, results.Run | None]:
    """Build, boot and run the selected tests once; judge the commit."""
    timings: dict = {}
    try:
        bres = pipeline.do_build(req, timings)
    except (ConfigError, BuildError) as e:
        return Outcome.SKIP, f"untestable: {str(e).splitlines()[0]}", timings, None
    step_args = Namespace(**{**vars(args), "results_dir": run_parent, "json": False})
    try:
        run = pipeline.run_tests(step_args, req, bres, timings)
    except BootPanic as e:
        return Outcome(args.boot_panic), str(e), timings, None
    except BadInput:
        raise
    except HarnessError as e:
        return Outcome.ABORT, f"could not test: {str(e).splitlines()[0]}", timings, None
    outcome, reason = judge(run.tests)
    return outcome, reason, timings, run


# ---- the harness's own clone ----

def workspace(repo: Path) -> Path:
    """The harness's clone of repo (objects shared), its build dir inside it."""
    key = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:12]
    home = cache.subdir("bisect") / key
    src = home / "src"
    if not (home / "ready").exists() or not gittree.is_repo(src):
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        gittree.git(home, "clone", "-q", "--shared", "--no-checkout", str(repo), str(src))
        # The build directory sits in the tree so kbuild names sources by the
        # relative path '..': compiler command lines are then the same in every
        # clone, and ccache hits across them.
        with open(src / ".git/info/exclude", "a") as f:
            f.write(f"/{BUILD_SUBDIR}/\n")
        (home / "origin").write_text(str(repo.resolve()) + "\n")
        (home / "ready").write_text("ok\n")
    (home / "ready").touch()
    _prune(home)
    _clean(src)
    return src


def _prune(keep: Path) -> None:
    """Each clone holds a checkout and a build: keep only the recently used."""
    homes = sorted((p for p in keep.parent.iterdir() if (p / "ready").exists()),
                   key=lambda p: (p / "ready").stat().st_mtime, reverse=True)
    for old in homes[KEEP_WORKSPACES:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _clean(src: Path) -> None:
    """Leave no state from an earlier, interrupted bisection in the clone."""
    for args in (("bisect", "reset", "--quiet"), ("am", "--abort")):
        gittree.git(src, *args, check=False)


def build_dir(src: Path) -> Path:
    return src / BUILD_SUBDIR


def apply_series(src: Path, base: str, series: patches.Series) -> str:
    """Commit the series on top of base in the clone; return its tip."""
    gittree.git(src, "checkout", "-q", "--force", "--detach", base)
    patches.commit_series(src, series)
    return gittree.resolve(src, "HEAD")


# ---- driving git bisect ----

_LEFT = re.compile(r"roughly (\d+) step")
_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
_ONLY_SKIPPED = re.compile(r"only 'skip'ped commits left")


def _bisect(src: Path, *args: str) -> str:
    res = gittree.git(src, "bisect", *args, check=False)
    text = res.stdout + res.stderr
    if res.returncode != 0 and not (_FIRST_BAD.search(text) or _ONLY_SKIPPED.search(text)):
        raise BadInput(f"git bisect {args[0]} failed: {text.strip().splitlines()[-1:]}")
    return text


def _conclude(src: Path, text: str, result: BisectResult) -> bool:
    m = _FIRST_BAD.search(text)
    if m:
        result.first_bad = m.group(1)
        result.first_bad_subject = gittree.subject(src, m.group(1))
        return True
    if _ONLY_SKIPPED.search(text):
        result.candidates = re.findall(r"^([0-9a-f]{40})\b", text, re.M)
        return True
    return False


def drive(src: Path, good: str, bad: str, step, progress=None) -> BisectResult:
    """git bisect in src between good and bad; step(commit, left) -> Step."""
    result = BisectResult(good, bad)
    gittree.git(src, "checkout", "-q", "--force", "--detach", bad)
    text = _bisect(src, "start", bad, good)
    try:
        while not _conclude(src, text, result):
            commit = gittree.resolve(src, "HEAD")
            m = _LEFT.search(text)
            left = int(m.group(1)) if m else None
            if progress:
                progress(len(result.steps) + 1, commit, gittree.subject(src, commit), left)
            st = step(commit, left)
            result.steps.append(st)
            if st.outcome == Outcome.ABORT:
                result.aborted = st.reason
                break
            text = _bisect(src, st.outcome.value)
        result.log = gittree.git(src, "bisect", "log", check=False).stdout
    finally:
        gittree.git(src, "bisect", "reset", "--quiet", check=False)
    return result


def write_report(result: BisectResult, out: Path) -> None:
    (out / "bisect.json").write_text(json.dumps(result.to_json(), indent=1))
    (out / "bisect.log").write_text(result.log)


def summary(result: BisectResult) -> str:
    lines = [f"{'step':>4}  {'commit':12}  {'outcome':7}  {'build':>7}  {'boot':>5}  "
             f"{'tests':>6}  reason"]
    for i, s in enumerate(result.steps, 1):
        t = s.timings
        lines.append(f"{i:>4}  {s.commit[:12]}  {s.outcome.value:7}  "
                     f"{t.get('config', 0) + t.get('build', 0):6.1f}s  "
                     f"{t.get('boot', 0):4.1f}s  {t.get('tests', 0):5.1f}s  {s.reason[:70]}")
    if result.first_bad:
        lines.append(f"first bad commit: {result.first_bad} {result.first_bad_subject}")
    elif result.candidates:
        lines.append("skipped commits hide the first bad one; it is one of: "
                     + " ".join(c[:12] for c in result.candidates))
    elif result.aborted:
        lines.append(f"bisection aborted: {result.aborted}")
    return "\n".join(lines)


def step_source(src: Path, commit: str, origin: str) -> source.KernelSource:
    return source.KernelSource(src, source.makefile_version(src), "git",
                               f"{origin} {commit}", immutable=False)


def output_dir(base: Path | None) -> Path:
    out = results.new_run_dir(base)
    return out.rename(out.with_name("bisect-" + out.name))
