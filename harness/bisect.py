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

import dataclasses
from contextlib import contextmanager
import hashlib
import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from harness import cache, pipeline
from harness.arch import X86_64, Arch
from harness.errors import BadInput, BuildError, ConfigError, HarnessError, InfraError
from harness.fetch import gittree, patches, source
from harness.kernel import build
from harness.parse.verdicts import Status, TestResult
from harness.phases import phase
from harness.report import results
from harness.requests import Request
from harness.vm.console import BootPanic


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
    interrupted: bool = False
    log: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["steps"] = [s.to_json() for s in self.steps]
        return d


def judge(tests: list[TestResult], same_as: frozenset[str] | None = None) -> tuple[Outcome, str]:
    """A step's outcome from its results; with same_as (the ids that failed at
    --bad), a failure of any other test is a skip, not bad."""
    failed = [t for t in tests if t.failed]
    if failed and same_as is not None:
        matching = [t for t in failed if t.test_id in same_as]
        if not matching:
            ids = ", ".join(t.test_id for t in failed[:3])
            return Outcome.SKIP, f"untestable: only other tests failed ({ids})"
        failed = matching
    if failed:
        t = failed[0]
        why = t.reason or next(iter(t.diagnostics), "")
        return Outcome.BAD, f"{t.test_id} {t.status.value}: {why}".strip()
    if not tests:
        return Outcome.SKIP, "no test ran"
    if all(t.status == Status.SKIP for t in tests):
        return Outcome.SKIP, f"all {len(tests)} selected test(s) skipped: {tests[0].reason}"
    return Outcome.GOOD, f"{len(tests)} selected test(s) passed"


def evaluate(req: Request, breq: build.BuildRequest, run_parent: Path,
             same_as: frozenset[str] | None = None
             ) -> tuple[Outcome, str, dict, results.Run | None]:
    """Build, boot and run the selected tests once; judge the commit."""
    timings: dict = {}
    try:
        bres = pipeline.do_build(breq, timings)
    except (ConfigError, BuildError) as e:
        return Outcome.SKIP, f"untestable: {str(e).splitlines()[0]}", timings, None
    run_req = dataclasses.replace(req.run, results_dir=run_parent, json=False)
    try:
        run = pipeline.run_tests(run_req, breq, bres, timings)
    except BootPanic as e:
        return Outcome(req.bisect.boot_panic), str(e), timings, None
    except BadInput:
        raise
    except HarnessError as e:
        return Outcome.ABORT, f"could not test: {str(e).splitlines()[0]}", timings, None
    outcome, reason = judge(run.tests, same_as)
    return outcome, reason, timings, run


def step_here(req: Request) -> tuple[Outcome, str, results.Run | None]:
    """`bisect-step`: the tree in the current directory (or --kernel-src),
    judged alone. Nothing is written into it: results go under the cache
    unless --results-dir names a place."""
    pipeline.check_inputs(req.run)
    src_req = req.source
    if not (src_req.kernel_src or src_req.kernel_tarball):
        src_req = dataclasses.replace(src_req, kernel_src=Path.cwd())
    breq = pipeline.build_request(src_req, req.kernel, {})
    parent = req.run.results_dir or cache.subdir("bisect-steps")
    outcome, reason, _, run = evaluate(req, breq, parent)
    return outcome, reason, run


# ---- the harness's own clone ----

def _key(repo: Path) -> str:
    return hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:12]


def workspace(repo: Path) -> Path:
    """The harness's clone of repo (objects shared), its build dir inside it."""
    with cache.lock("bisect-clones"):
        return _workspace(repo, cache.subdir("bisect") / _key(repo))


@contextmanager
def claimed(repo: Path):
    """The clone of repo, held for a whole bisection or mutation run: both
    check out commits and edit its tree, so a second run waits."""
    with cache.lock(f"clone-{_key(repo)}"):
        yield workspace(repo)


def _workspace(repo: Path, home: Path) -> Path:
    src = home / "src"
    if not (home / "ready").exists() or not gittree.is_repo(src):
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        gittree.git(home, "clone", "-q", "--shared", "--no-checkout", str(repo), str(src))
        # The build directory sits in the tree so kbuild names sources by the
        # relative path '..': compiler command lines are then the same in every
        # clone, and ccache hits across them.
        (home / "origin").write_text(str(repo.resolve()) + "\n")
        cache.write_atomic(home / "ready", "ok\n")
    _exclude_builds(src)
    (home / "ready").touch()
    _prune(home)
    _clean(src)
    return src


def _exclude_builds(src: Path) -> None:
    """git ignores every architecture's build directory (a clone made before
    there were two names only the first)."""
    exclude = src / ".git/info/exclude"
    line = f"/{BUILD_SUBDIR}*/"
    have = cache.read_marker(exclude) or ""
    if line not in have.splitlines():
        with open(exclude, "a") as f:
            f.write(line + "\n")


def _prune(keep: Path) -> None:
    """Each clone holds a checkout and a build: keep only the recently used."""
    homes = sorted((p for p in keep.parent.iterdir() if (p / "ready").exists()),
                   key=lambda p: (p / "ready").stat().st_mtime, reverse=True)
    for old in homes[KEEP_WORKSPACES:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _clean(src: Path) -> None:
    """Leave no state from an earlier, interrupted bisection in the clone."""
    reset(src)
    gittree.git(src, "am", "--abort", check=False)


def reset(src: Path) -> None:
    """End any bisection in src, for sure: `git bisect reset` has no --quiet
    on every git the harness supports (2.39 refuses it), so its result is
    checked by the state it leaves."""
    gittree.git(src, "bisect", "reset", check=False)
    if bisecting(src):
        raise InfraError(f"git bisect reset left {src} mid-bisection")


def bisecting(src: Path) -> bool:
    git_dir = gittree.git(src, "rev-parse", "--absolute-git-dir", check=False).stdout.strip()
    return bool(git_dir) and (Path(git_dir) / "BISECT_START").exists()


def build_dir(src: Path, arch: Arch = X86_64) -> Path:
    # One fixed directory per architecture: a step rebuilds only what changed.
    return src / (BUILD_SUBDIR if arch == X86_64 else f"{BUILD_SUBDIR}-{arch.name}")


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


def drive(src: Path, good: str, bad: str, step, progress=None,
          result: BisectResult | None = None) -> BisectResult:
    """git bisect in src between good and bad; step(commit, left) -> Step.
    Steps land in result as they finish, so an interrupt keeps them."""
    result = result or BisectResult(good, bad)
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
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        result.log = gittree.git(src, "bisect", "log", check=False).stdout
        reset(src)
    return result


def write_report(result: BisectResult, out: Path) -> None:
    cache.write_atomic(out / "bisect.json", json.dumps(result.to_json(), indent=1))
    cache.write_atomic(out / "bisect.log", result.log)


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
    elif result.interrupted:
        lines.append(f"bisection interrupted after {len(result.steps)} step(s)")
    return "\n".join(lines)


def step_source(src: Path, commit: str, origin: str) -> source.KernelSource:
    return source.KernelSource(src, source.makefile_version(src), "git",
                               f"{origin} {commit}", immutable=False)


def output_dir(base: Path | None) -> Path:
    return results.new_run_dir(base, "bisect")


# ---- a whole bisection ----

def repository(req: Request) -> tuple[Path, str, str]:
    """The repository to bisect in, the origin's name, and the default good ref."""
    if req.source.kernel_src:
        repo = req.source.kernel_src.expanduser().resolve()
        if not repo.is_dir() or not gittree.is_repo(repo):
            raise BadInput(f"bisect needs a git repository; {repo} is not one")
        return repo, str(repo), ""
    src, _, _ = pipeline.fetch(dataclasses.replace(req.source, patches=None), {})
    with phase("git tree"):
        repo, tag = gittree.from_package(src)
    print(f"[bisect] {src.identity} is commit {tag} in {repo}", file=sys.stderr)
    return repo, src.identity, tag


def _range(req: Request, repo: Path, src: Path, base_default: str) -> tuple[str, str, str]:
    """(good, bad, series digest) as commit hashes, the series applied if given."""
    good, bad = req.bisect.good, req.bisect.bad
    if not req.source.patches:
        if not good:
            raise BadInput("bisect needs --good REF (and --bad REF, default HEAD)")
        return gittree.resolve(repo, good), gittree.resolve(repo, bad or "HEAD"), ""
    series = patches.load(req.source.patches, repo)
    if series.kind == "git-range":
        return series.base, series.tip, series.digest
    base = gittree.resolve(repo, good or base_default or "HEAD")
    with phase("series"):
        tip = apply_series(src, base, series)
    print(f"[bisect] applied {series.describe()} on {base[:12]}: tip {tip[:12]}",
          file=sys.stderr)
    return base, (gittree.resolve(src, bad) if bad else tip), series.digest


def run_bisection(req: Request) -> tuple[BisectResult, Path]:
    """`rwp-harness bisect`: the report is written however the bisection ends."""
    repo, origin, base_default = repository(req)
    with claimed(repo) as src:
        return _run_bisection(req, repo, origin, base_default, src)


def _run_bisection(req: Request, repo: Path, origin: str, base_default: str, src: Path
                   ) -> tuple[BisectResult, Path]:
    good, bad, digest = _range(req, repo, src, base_default)
    out = output_dir(req.run.results_dir)
    print(f"[bisect] good {good[:12]}, bad {bad[:12]}; clone {src}; report in {out}",
          file=sys.stderr)

    def breq(commit):
        return build.BuildRequest(step_source(src, commit, origin), src, digest,
                                  req.kernel.profiles, req.kernel.fragments, req.kernel.jobs,
                                  build_root=build_dir(src, req.kernel.arch),
                                  gcov_objects=req.kernel.coverage_objects,
                                  arch=req.kernel.arch)

    result = BisectResult(good, bad)
    same_as = None
    try:
        if req.bisect.failure == "same":
            same_as = _failures_at(req, src, bad, breq(bad), out, result)
        if not result.aborted:
            drive(src, good, bad, lambda c, left: _step(req, src, c, left, breq(c), out, same_as),
                  _progress, result)
    finally:
        write_report(result, out)
    return result, out


def _failures_at(req, src, bad, bad_req, out, result) -> frozenset[str] | None:
    """The tests that fail at --bad: the failure the bisection hunts."""
    gittree.git(src, "checkout", "-q", "--force", "--detach", bad)
    outcome, reason, _, run = evaluate(req, bad_req, out / "steps")
    if outcome != Outcome.BAD or run is None:
        result.aborted = f"--failure same: the --bad commit is {outcome.value}, not bad: {reason}"
        return None
    ids = frozenset(t.test_id for t in run.tests if t.failed)
    print(f"[bisect] at --bad, failing: {', '.join(sorted(ids))}", file=sys.stderr)
    return ids


def _progress(n, commit, subject, left):
    more = f", about {left} more after this" if left is not None else ""
    print(f"[bisect] step {n}: {commit[:12]} {subject}{more}", file=sys.stderr, flush=True)


def _step(req, src, commit, left, breq, out, same_as) -> Step:
    outcome, reason, times, run = evaluate(req, breq, out / "steps", same_as)
    st = Step(commit, gittree.subject(src, commit), outcome, reason, times,
              run.counts() if run else {}, str(run.path) if run else "", left)
    print(f"[bisect] {commit[:12]} is {outcome.value}: {reason}", file=sys.stderr, flush=True)
    return st
