"""`rwp-harness mutate`: which deliberate kernel breakages the suite misses.

Each mutant (harness/mutants/catalog.py) is applied in turn to a clone the
harness owns (as bisect's, with one build directory kept across mutants, so
each is an incremental build), built, booted and run with the selected tests,
then reverted. The unmutated tree runs first as the control and must pass.

A mutant is
  killed         a test's verdict differs from the control's: it failed,
                 errored, hung or splatted, or a test that passed now skips
                 (a breakage that hides the feature is caught too), or the
                 kernel panicked while booting
  survived       every test's verdict is the control's
  not applied    its text is not in the tree (exactly once)
  not built      the mutated kernel does not build
  not tested     the harness could not test it (QEMU, the VM): never counted
                 as killed or survived; the loop stops there

The kill ratio is killed / (killed + survived). With the tracefile of a
coverage run of the same tree (--coverage-run), each mutant also says whether
the control's tests executed the lines it changes at all. --by-coverage then
runs each mutant with only the programs whose counters executed its lines
(counters are kept per program); one whose lines no program executed is
built and judged survived without a run: every program would run only code the control
ran. A program whose counters a reboot cut short counts as executing every
line; a mutant gcov has no line of runs with everything.
"""

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from harness import bisect, cache, pipeline
from harness.coverage import report as coverage_report
from harness.errors import BadInput, BuildError, ConfigError, ExitStatus, HarnessError
from harness.fetch import gittree, patches
from harness.kernel import build
from harness.mutants.catalog import Mutant, NotApplicable
from harness.parse.verdicts import TestResult
from harness.report import results
from harness.run import guestprogs
from harness.requests import Request
from harness.vm.console import BootPanic

DEFAULT_SET = Path(__file__).resolve().parents[1] / "kernel-mutations" / "curated.toml"


class Verdict(str, Enum):
    KILLED = "killed"
    SURVIVED = "survived"
    NOT_APPLIED = "not applied"
    NOT_BUILT = "not built"
    NOT_TESTED = "not tested"


class ControlFailed(HarnessError):
    """The unmutated tree does not pass the selected tests: no mutant can be judged."""
    status = ExitStatus.TESTS_FAILED


@dataclass
class MutantResult:
    id: str
    file: str
    area: str
    why: str
    verdict: Verdict
    reason: str
    killers: list[str] = field(default_factory=list)     # "test: control -> mutant"
    # Did the coverage run (--coverage-run) execute its lines: None when not
    # given, or when gcov has no line of the mutant in its table.
    executed: bool | None = None
    # --by-coverage: the programs it ran with (empty: the whole selection).
    selected: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    run_dir: str = ""
    programs: str = ""          # the guest programs' digest it was judged with

    def to_json(self) -> dict:
        return asdict(self) | {"verdict": self.verdict.value}


@dataclass
class MutationRun:
    base: str
    control: dict = field(default_factory=dict)          # test id -> status
    control_seconds: float = 0.0
    # The guest programs' digest the control ran: a mutant run with other
    # programs would be judged against tests the control never passed.
    programs: str = ""
    # The requested kernel config's digest: the control of another config
    # (a fragment edited between a run and its --resume) judges nothing.
    config: str = ""
    mutants: list[MutantResult] = field(default_factory=list)
    stopped: str = ""
    interrupted: bool = False

    def count(self, v: Verdict) -> int:
        return sum(1 for m in self.mutants if m.verdict == v)

    @property
    def kill_ratio(self) -> float | None:
        k, s = self.count(Verdict.KILLED), self.count(Verdict.SURVIVED)
        return k / (k + s) if k + s else None

    @classmethod
    def resumed(cls, out: Path, base: str) -> "MutationRun":
        """What an earlier run in out judged (a mutant it could not test is
        tried again); its control stands if it tested the same commit with
        the same guest programs, and is run again otherwise."""
        try:
            doc = json.loads((out / "mutate.json").read_text())
        except (OSError, ValueError) as e:
            raise BadInput(f"--resume {out}: no readable mutate.json ({e})")
        if doc.get("base") != base:
            raise BadInput(f"--resume {out}: it mutated {str(doc.get('base'))[:12]}, "
                           f"not {base[:12]}")
        run = cls(base, doc["control"], doc.get("control_seconds", 0.0), doc.get("programs", ""),
                  doc.get("config", ""))
        if run.programs != guestprogs.sources_digest():
            run.control, run.programs = {}, ""
        for m in doc["mutants"]:
            if m["verdict"] != Verdict.NOT_TESTED.value:
                run.mutants.append(MutantResult(**{**m, "verdict": Verdict(m["verdict"])}))
        return run

    def to_json(self) -> dict:
        return {"base": self.base, "programs": self.programs, "config": self.config,
                "control": self.control,
                "control_seconds": round(self.control_seconds, 1),
                "mutants": [m.to_json() for m in self.mutants],
                "counts": {v.value: self.count(v) for v in Verdict},
                "kill_ratio": self.kill_ratio, "stopped": self.stopped,
                "interrupted": self.interrupted}


def judge(control: dict[str, str], tests: list[TestResult]) -> tuple[Verdict, str, list[str]]:
    """A mutant's verdict: the tests whose verdict moved from the control's."""
    killers = []
    for t in tests:
        before = control.get(t.test_id)
        if t.failed or (before is not None and t.status.value != before):
            why = f": {t.reason}" if t.reason else ""
            killers.append(f"{t.test_id}: {before or 'new'} -> {t.status.value}{why}")
    if killers:
        return Verdict.KILLED, killers[0], killers
    if not tests:
        return Verdict.NOT_TESTED, "no test ran", []
    return Verdict.SURVIVED, f"all {len(tests)} test(s) as in the control", []


def _evaluate(req: Request, breq: build.BuildRequest, parent: Path, exitfirst: bool = False,
              test: bool = True) -> tuple[str, str, dict, results.Run | None]:
    """Build and run (test=False: only build); ("built"|"not built"|"panic"|
    "not tested", reason, timings, run). A mutant's run stops at its first
    failing test: one kills it."""
    timings: dict = {}
    try:
        bres = pipeline.do_build(breq, timings)
    except (ConfigError, BuildError) as e:
        return "not built", str(e).splitlines()[0], timings, None
    if not test:
        return "built", "", timings, None
    run_req = dataclasses.replace(req.run, results_dir=parent, json=False,
                                  exitfirst=exitfirst or req.run.exitfirst)
    try:
        run = pipeline.run_tests(run_req, breq, bres, timings)
    except BootPanic as e:
        return "panic", f"the kernel panicked while booting: {str(e).splitlines()[0]}", timings, None
    except BadInput:
        raise
    except HarnessError as e:
        return "not tested", str(e).splitlines()[0], timings, None
    return "built", "", timings, run


def _checkout(req: Request, repo: Path, base_default: str, src: Path) -> tuple[str, str]:
    """Check out the tree to mutate in the clone: its commit, the series digest."""
    base = gittree.resolve(repo, req.mutate.base or base_default or "HEAD")
    gittree.git(src, "checkout", "-q", "--force", "--detach", base)
    digest = ""
    if req.source.patches:
        series = patches.load(req.source.patches, repo)
        if series.kind == "git-range":
            gittree.git(src, "checkout", "-q", "--force", "--detach", series.tip)
            base = series.tip
        else:
            base = bisect.apply_series(src, base, series)
        digest = series.digest
    return base, digest


def _same_programs(run: Path) -> None:
    """--by-coverage skips a mutant no program executed: only sound when the
    coverage run ran the programs this one runs (a test added since may
    execute the line)."""
    try:
        made = results.read_document(run).get("manifest", {}).get("guest_programs", "")
    except BadInput:
        made = ""
    now = guestprogs.sources_digest()
    if made != now:
        raise BadInput(f"--by-coverage: the coverage run {run} ran guest programs "
                       f"{made or '(not recorded)'}, these are {now}; run a coverage run "
                       "of these programs first")


class CoverageRun:
    """What a coverage run of the same tree (--coverage-run) says of a
    mutant's lines. gcov may know none of them (a comment, or a statement the
    compiler folded into another line's block at -O2): then nothing is said."""

    def __init__(self, run: Path, by_program: bool = False):
        self.total, _ = coverage_report.load(run)
        if by_program:
            _same_programs(run)
        self.programs, self.partial = (coverage_report.load_programs(run) if by_program
                                       else ({}, set()))

    @staticmethod
    def _counts(cov, path: str, lines: set[int]) -> list[int]:
        fc = cov.files.get(path)
        return [fc.lines[n] for n in lines if fc and n in fc.lines]

    def executed(self, path: str, lines: set[int]) -> bool | None:
        known = self._counts(self.total, path, lines)
        return any(n > 0 for n in known) if known else None

    def executed_by(self, path: str, lines: set[int]) -> list[str]:
        """The programs whose counters executed any of the lines."""
        return sorted(p for p, cov in self.programs.items() if p in self.partial
                      or any(n > 0 for n in self._counts(cov, path, lines)))


def run_mutations(req: Request, mutants: list[Mutant], progress=print
                  ) -> tuple[MutationRun, Path]:
    executed = (CoverageRun(req.mutate.coverage_run, req.mutate.by_coverage)
                if req.mutate.coverage_run else None)
    repo, _, base_default = bisect.repository(req)
    with bisect.claimed(repo) as src:
        return _run(req, mutants, progress, executed, repo, base_default, src)


def _run(req, mutants, progress, executed, repo, base_default, src) -> tuple[MutationRun, Path]:
    base, digest = _checkout(req, repo, base_default, src)
    if req.mutate.resume:
        out = req.mutate.resume
        result = MutationRun.resumed(out, base)
    else:
        out = results.new_run_dir(req.run.results_dir, "mutate")
        result = MutationRun(base)
    origin = f"mutate {base[:12]}"

    def breq() -> build.BuildRequest:
        return build.BuildRequest(bisect.step_source(src, base, origin), src, digest,
                                  req.kernel.profiles, req.kernel.fragments, req.kernel.jobs,
                                  build_root=bisect.build_dir(src, req.kernel.arch),
                                  arch=req.kernel.arch)

    config = breq().requested_config().digest()
    if result.control and result.config != config:
        progress(f"[mutate] the kernel config changed since the judged mutants' control "
                 f"({result.config or 'not recorded'} -> {config}): running the control again")
        result.control = {}
    try:
        if not result.control:
            if result.mutants and result.programs != guestprogs.sources_digest():
                progress("[mutate] the guest programs changed since the judged mutants' "
                         "control: running the control again")
            _control(req, breq(), out, result, progress)
        done = {m.id for m in result.mutants}
        todo = [m for m in mutants if m.id not in done]
        progress(f"[mutate] {len(todo)} mutant(s) to run ({len(done)} judged before) in {out}")
        for i, m in enumerate(todo, 1):
            now = guestprogs.sources_digest()
            if now != result.programs:
                result.stopped = (f"the guest programs changed since the control "
                                  f"({result.programs} -> {now}); --resume {out} runs "
                                  f"the control again with them")
                break
            r = _one(req, m, src, breq(), out / "mutants" / m.id, result.control, executed)
            r.programs = now
            result.mutants.append(r)
            write_report(result, out)      # a stopped run keeps what it judged
            progress(f"[mutate] {i}/{len(todo)} {m.id}: {r.verdict.value} "
                     f"({r.seconds:.0f}s) {r.reason[:90]}")
            if r.verdict == Verdict.NOT_TESTED:
                result.stopped = f"{m.id}: {r.reason}"
                break
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        write_report(result, out)
    return result, out


def _control(req, breq, out: Path, result: MutationRun, progress) -> None:
    began = time.monotonic()
    programs = guestprogs.sources_digest()
    state, reason, _, run = _evaluate(req, breq, out / "control")
    result.control_seconds = time.monotonic() - began
    if run is None or not run.ok:
        why = reason or ", ".join(t.test_id for t in run.tests if t.failed)[:300]
        raise ControlFailed(f"the unmutated tree ({result.base[:12]}) does not pass: {why}")
    result.control = {t.test_id: t.status.value for t in run.tests}
    result.programs = programs
    result.config = breq.requested_config().digest()
    progress(f"[mutate] control: {len(run.tests)} tests as expected in "
             f"{result.control_seconds:.0f}s")


def _one(req, m: Mutant, src: Path, breq, parent: Path, control, executed) -> MutantResult:
    began = time.monotonic()
    res = MutantResult(m.id, m.file, m.area, m.why, Verdict.NOT_APPLIED, "")
    lines = m.lines(src)
    if executed is not None:
        res.executed = executed.executed(m.file, lines)
    try:
        m.apply(src)
    except NotApplicable as e:
        res.reason = str(e)
        return res
    unreached = req.mutate.by_coverage and res.executed is False
    if req.mutate.by_coverage and res.executed:
        res.selected = executed.executed_by(m.file, lines)
        req = dataclasses.replace(req, run=dataclasses.replace(
            req.run, select=tuple(f"{p}::" for p in res.selected)))
    try:
        state, reason, res.timings, run = _evaluate(req, breq, parent, exitfirst=True,
                                                    test=not unreached)
    finally:
        m.revert(src)
    res.seconds = time.monotonic() - began
    if state == "not built":
        res.verdict, res.reason = Verdict.NOT_BUILT, reason
    elif state == "panic":
        res.verdict, res.reason = Verdict.KILLED, reason
    elif state == "not tested":
        res.verdict, res.reason = Verdict.NOT_TESTED, reason
    elif run is None:
        res.verdict, res.reason = Verdict.SURVIVED, "built; no program executed its lines: not run"
    else:
        res.verdict, res.reason, res.killers = judge(control, run.tests)
        res.run_dir = str(run.path)
    return res


def write_report(result: MutationRun, out: Path) -> None:
    cache.write_atomic(out / "mutate.json", json.dumps(result.to_json(), indent=1))
    cache.write_atomic(out / "mutate.md", table(result) + "\n")


def table(result: MutationRun) -> str:
    lines = ["| mutant | area | verdict | executed | time | killed by / reason |",
             "|---|---|---|---|---|---|"]
    for m in result.mutants:
        ex = {True: "yes", False: "no", None: "-"}[m.executed]
        lines.append(f"| {m.id} | {m.area} | {m.verdict.value} | {ex} | {m.seconds:.0f}s | "
                     f"{m.reason[:100].replace('|', '/')} |")
    ratio = result.kill_ratio
    counts = ", ".join(f"{result.count(v)} {v.value}" for v in Verdict if result.count(v))
    lines.append("")
    lines.append(f"kill ratio: {'-' if ratio is None else f'{ratio:.1%}'} ({counts})")
    if result.stopped:
        lines.append(f"stopped: {result.stopped}")
    return "\n".join(lines)
