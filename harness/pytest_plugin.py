"""The pytest view of the guest suite.

Every guest program under guest/ is collected as a pytest file and each of its
KTAP subtests as an item, so `pytest guest/c/rwp_basic.c::sync_read_fault`
runs one subtest. With pytest-xdist (`-n N`) each worker is its own session
with its own VM and console, and pytest merges the reports. One VM serves a
whole session: the kernel is built (or found in the cache) and booted on first
use.

Items run in batches as in `rwp-harness check` (harness/batch.py): each
program's items are cut into groups of GROUP_TESTS, and the first item of a
group to run runs the whole group's selected items as one guest command; the
others report the results it left. Each group is an xdist_group, and under
-n this plugin makes --dist loadgroup the default, so a group stays on one
worker while the groups are shared out. (With an explicit --dist load the
results stay right, but a group may run on both workers.)

Each session (each xdist worker) also writes a run directory as `rwp-harness
run` does, rwp-results/pytest-<time>-<id>/ (results.json, junit.xml, KTAP,
console log, manifest), so `rwp-harness compare` and `report --kcidb` read
the pytest view's runs too, and --rwp-kcidb FILE writes the KCIDB document at
the end. A worker is given only some of the items, so a worker's run plans
only the items it ran: its not-run list stays empty.
"""

import os
from pathlib import Path

import pytest

from harness import arch, pipeline
from harness.coverage import profile, report
from harness.coverage.counters import Counters
from harness.errors import HarnessError
from harness.phases import phase
from harness.parse.verdicts import Status, TestResult, test_id
from harness.report import kcidb, results
from harness.requests import TEST_TIMEOUT_S, KernelRequest, Request, RunRequest, SourceRequest
from harness.requests import check_accel
from harness.run import guestprogs
from harness.run.batch import BatchInterrupted

_SESSION = pytest.StashKey["GuestSession"]()
# Small enough that -n 2 can balance the groups, large enough that a group's
# command and kernel-log read cost little beside its tests.
GROUP_TESTS = 24


def pytest_addoption(parser):
    g = parser.getgroup("rwp", "rwp-harness guest suite")
    g.addoption("--rwp-kernel-version", default="7.3", help="Debian linux-source-X.Y to test")
    g.addoption("--rwp-kernel-src", type=Path, default=None, help="your kernel tree instead")
    g.addoption("--rwp-accel", choices=("auto", "kvm", "tcg"), default="auto")
    g.addoption("--rwp-arch", choices=tuple(arch.ARCHES), default=arch.DEFAULT,
                help="the kernel's architecture (another than the host's runs under TCG)")
    g.addoption("--rwp-transport", choices=("auto", "shared", "push"), default="auto")
    g.addoption("--rwp-profile", action="append", default=[], help="extra config profile")
    g.addoption("--rwp-allowlist", type=Path, default=None, help="splat allowlist (TOML)")
    g.addoption("--rwp-one-by-one", action="store_true",
                help="run each item as its own guest command, not in batches")
    g.addoption("--rwp-coverage", action="store_true",
                help="a gcov kernel; the RWP line coverage of the items run goes to "
                     "the run directory's coverage/ (see --coverage)")
    g.addoption("--rwp-results-dir", type=Path, default=None, metavar="DIR",
                help=f"parent of the run directory (default: ./{results.DEFAULT_RESULTS})")
    g.addoption("--rwp-kcidb", type=Path, default=None, metavar="FILE",
                help="write the run as a KCIDB v5 document at the end (under -n: "
                     "FILE-gwK.json per worker)")
    g.addoption("--rwp-kcidb-origin", default=kcidb.DEFAULT_ORIGIN, metavar="NAME",
                help=f"origin prefix of every KCIDB id (default: {kcidb.DEFAULT_ORIGIN})")
    g.addoption("--rwp-test-timeout", type=float, default=None,
                help=f"deadline per test unless the test sets its own (default: "
                     f"{TEST_TIMEOUT_S:g}, multiplied by the guest's measured slowdown)")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    # Before xdist turns -n into --dist load: groups must stay whole.
    opt = config.option
    if getattr(opt, "numprocesses", None) and getattr(opt, "dist", None) == "no" \
            and not getattr(opt, "distload", False):
        opt.dist = "loadgroup"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    # A guest Python program named on the command line is also imported as a
    # pytest module, where ktest's @test decorator would look like a test.
    if guestprogs.GUEST_DIR in Path(str(collector.path)).parents:
        return []
    return None


def pytest_configure(config):
    config.stash[_SESSION] = GuestSession(config)


def pytest_unconfigure(config):
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def pytest_collection_finish(session):
    # An xdist worker collects every item but runs only those it is given.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        session.config.stash[_SESSION].planned = [
            test_id(i.program.name, i.subtest) for i in session.items if isinstance(i, GuestItem)]


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        session.config.stash[_SESSION].interrupted = True


def pytest_collect_file(file_path: Path, parent):
    guest = guestprogs.GUEST_DIR
    if file_path.parent.parent == guest and file_path.parent.name in ("c", "py"):
        prog = next((p for p in guestprogs.discover() if p.source == file_path), None)
        if prog is not None:
            return GuestFile.from_parent(parent, path=file_path, program=prog)
    return None


class GuestSession:
    """The build and the guest shared by all guest items: the same typed
    requests and pipeline.Session as `rwp-harness run`."""

    def __init__(self, config):
        self.config = config
        self.session: pipeline.Session | None = None
        self.build_request = None
        self.build_result = None
        self.counters: Counters | None = None
        self.error: str | None = None
        self.results: dict[str, TestResult] = {}
        self.timings: dict = {}
        self.out: results.Run | None = None
        self.planned: list[str] = []       # known without xdist only
        self.interrupted = False

    def request(self) -> Request:
        opt = self.config.getoption
        src = SourceRequest(kernel_src=opt("--rwp-kernel-src"),
                            kernel_version=opt("--rwp-kernel-version"))
        run = RunRequest(transport=opt("--rwp-transport"), accel=opt("--rwp-accel"),
                         allowlist=opt("--rwp-allowlist"), one_by_one=opt("--rwp-one-by-one"),
                         test_timeout=opt("--rwp-test-timeout") or TEST_TIMEOUT_S,
                         scale_deadlines=opt("--rwp-test-timeout") is None, cpus=_cpus_per_vm())
        src.check()
        run.check()
        objects = profile.DEFAULT_OBJECTS if opt("--rwp-coverage") else ()
        kernel = KernelRequest(profiles=tuple(opt("--rwp-profile")), coverage_objects=objects,
                               arch=arch.get(opt("--rwp-arch")))
        check_accel(kernel, run)
        return Request(src, kernel, run)

    def kernel(self):
        """The kernel the items run on, built (or found in the cache) once."""
        if self.build_result is None:
            req = self.request()
            self.build_request = pipeline.build_request(req.source, req.kernel, self.timings)
            self.build_result = pipeline.do_build(self.build_request, self.timings)
        return self.build_result

    def booted(self) -> pipeline.Session:
        """The guest, booted; a failure to get one fails every item that needs it."""
        if self.error:
            pytest.fail(self.error, pytrace=False)
        try:
            if self.session is None:
                req = self.request()
                bres = self.kernel()
                base = self.config.getoption("--rwp-results-dir") or \
                    Path(self.config.rootpath) / results.DEFAULT_RESULTS
                self.out = out = results.Run(results.new_run_dir(base, "pytest"))
                out.keep_build_artifacts(bres.log, bres.dotconfig)
                out.planned = list(self.planned)
                out.manifest.update(pipeline.run_manifest(req.run, self.build_request, bres,
                                                          self.timings),
                                    pytest_worker=_worker())
                if req.kernel.coverage:
                    self.counters = Counters(out.path / "coverage" / "counters")
                self.session = pipeline.Session(req.run, bres, out.console_log,
                                                counters=self.counters)
                with phase("boot", self.timings):
                    self.session.guest.console()
                out.manifest.update(pipeline.guest_manifest(self.session))
                if (short := self.session.cpu_shortfall()):
                    print(f"rwp-harness: warning: {short}")
            self.session.guest.console()
        except HarnessError as e:
            self.error = f"{type(e).__name__}: {e}"
            pytest.fail(self.error, pytrace=False)
        return self.session

    def run(self, item: "GuestItem") -> TestResult:
        """item's result, running its group's selected items if not yet run."""
        tid = test_id(item.program.name, item.subtest)
        if tid not in self.results:
            members = [i.subtest for i in item.session.items
                       if isinstance(i, GuestItem) and i.group == item.group]
            session = self.booted()
            try:
                for res in session.results(item.program, members or [item.subtest]):
                    self.results[res.test_id] = res
                    self.out.add(res)
            except BatchInterrupted as e:
                self.results.update((r.test_id, r) for r in e.results)
                for r in e.results:
                    self.out.add(r)
                self.interrupted = True
                raise KeyboardInterrupt from None
        return self.results.pop(tid)

    def close(self) -> None:
        if self.session is not None:
            self.session.close(now=self.interrupted)
        out = self.out
        if out is None:
            return
        out.complete = not self.interrupted
        pipeline.guest_figures(out, self.session.guest)
        out.manifest["timings"] = self.timings
        out.save()
        if self.counters is not None and self.counters.dumps:
            try:
                out.manifest["coverage"] = report.write(out.path / "coverage", self.counters,
                                                        self.build_request, self.build_result)
                out.save()
            except HarnessError as e:
                print(f"rwp-harness: coverage: {e}")
        dest = self.config.getoption("--rwp-kcidb")
        if dest is not None:
            if _worker() != "main":
                dest = dest.with_name(f"{dest.stem}-{_worker()}{dest.suffix}")
            try:
                kcidb.write(out.path, dest, self.config.getoption("--rwp-kcidb-origin"))
            except HarnessError as e:
                print(f"rwp-harness: KCIDB: {e}")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _cpus_per_vm() -> int:
    """Under -n N the host's CPUs are shared out: N VMs with 2 vCPUs each on a
    2-core host would only take turns (TCG runs one host thread per vCPU)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def guest_session(request) -> GuestSession:
    return request.config.stash[_SESSION]


class GuestFile(pytest.File):
    def __init__(self, *, program: guestprogs.GuestProgram, **kw):
        super().__init__(**kw)
        self.program = program

    def collect(self):
        for i, sub in enumerate(self.program.subtests):
            group = f"{self.program.name}#{i // GROUP_TESTS}"
            yield GuestItem.from_parent(self, name=sub, program=self.program, subtest=sub,
                                        group=group)


class GuestFailure(Exception):
    pass


class GuestItem(pytest.Item):
    def __init__(self, *, program: guestprogs.GuestProgram, subtest: str, group: str, **kw):
        super().__init__(**kw)
        self.program = program
        self.subtest = subtest
        self.group = group
        self.add_marker(pytest.mark.vm)
        self.add_marker(pytest.mark.xdist_group(group))

    def runtest(self):
        res = self.config.stash[_SESSION].run(self)
        if res.status == Status.SKIP:
            pytest.skip(res.reason or "skipped by the guest program without a reason")
        if res.status == Status.XFAIL:
            pytest.xfail(res.reason)
        if res.status != Status.PASS:
            detail = "\n".join([res.reason, *res.diagnostics, *(s.text for s in res.splats)])
            raise GuestFailure(f"{res.test_id}: {res.status.value}\n{detail}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, GuestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, test_id(self.program.name, self.subtest)
