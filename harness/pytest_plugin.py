"""The pytest view of the guest suite.

Every guest program under guest/ is collected as a pytest file and each of its
KTAP subtests as an item, so `pytest guest/c/rwp_basic.c::sync_read_fault`
runs one subtest. One VM serves the whole session: the kernel is built (or
found in the cache) and booted on first use, each program runs once for the
subtests selected, and its items report their own result.
"""

from pathlib import Path

import pytest

from . import build, guestprogs, ktap, runner, source, vm
from .errors import HarnessError

_SESSION = pytest.StashKey["GuestSession"]()


def pytest_addoption(parser):
    g = parser.getgroup("rwp", "rwp-harness guest suite")
    g.addoption("--rwp-kernel-version", default="7.3", help="Debian linux-source-X.Y to test")
    g.addoption("--rwp-kernel-src", type=Path, default=None, help="your kernel tree instead")
    g.addoption("--rwp-accel", choices=("auto", "kvm", "tcg"), default="auto")
    g.addoption("--rwp-transport", choices=("auto", "shared", "push"), default="auto")
    g.addoption("--rwp-profile", action="append", default=[], help="extra config profile")


def pytest_configure(config):
    config.stash[_SESSION] = GuestSession(config)


def pytest_unconfigure(config):
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def pytest_collect_file(file_path: Path, parent):
    guest = guestprogs.GUEST_DIR
    if file_path.parent.parent == guest and file_path.parent.name in ("c", "py"):
        prog = next((p for p in guestprogs.discover() if p.source == file_path), None)
        if prog is not None:
            return GuestFile.from_parent(parent, path=file_path, program=prog)
    return None


def pytest_collection_modifyitems(config, items):
    """Tell the session which subtests of each program were selected."""
    chosen: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, GuestItem):
            chosen.setdefault(item.program.name, []).append(item.subtest)
    config.stash[_SESSION].selected = chosen


class GuestSession:
    """The build, the VM and the program results shared by all guest items."""

    def __init__(self, config):
        self.config = config
        self.selected: dict[str, list[str]] = {}
        self.machine: vm.VM | None = None
        self.build_result: build.BuildResult | None = None
        self.staged: guestprogs.Staged | None = None
        self.results: dict[str, runner.ProgramResult] = {}
        self.error: str | None = None

    def _opt(self, name):
        return self.config.getoption(name)

    def kernel(self) -> build.BuildResult:
        if self.build_result is None:
            if self._opt("--rwp-kernel-src"):
                src = source.from_tree(self._opt("--rwp-kernel-src"))
            else:
                src = source.from_debian(self._opt("--rwp-kernel-version"))
            req = build.BuildRequest(src, src.path, profiles=tuple(self._opt("--rwp-profile")))
            self.build_result = build.build(req)
        return self.build_result

    def vm(self) -> vm.VM:
        """The booted VM; a failure to get one fails every item that needs it."""
        if self.error:
            pytest.fail(self.error, pytrace=False)
        if self.machine is None:
            try:
                bres = self.kernel()
                self.staged = guestprogs.stage(bres.headers)
                log = Path(self.config.rootpath) / "rwp-results" / "pytest-console.log"
                self.machine = vm.boot(vm.VMRequest(bres.bzimage, accel=self._opt("--rwp-accel"),
                                                    console_log=log))
                self.staged = runner.deliver(self.machine.console, self.staged,
                                             self._opt("--rwp-transport"))
            except HarnessError as e:
                self.error = f"{type(e).__name__}: {e}"
                pytest.fail(self.error, pytrace=False)
        return self.machine

    def program_result(self, prog: guestprogs.GuestProgram) -> runner.ProgramResult:
        if prog.name not in self.results:
            machine = self.vm()
            subs = tuple(self.selected.get(prog.name, prog.subtests))
            narrowed = guestprogs.GuestProgram(prog.name, prog.lang, prog.source, subs)
            self.results[prog.name] = runner.run_program(machine.console, self.staged, narrowed)
        return self.results[prog.name]

    def close(self) -> None:
        if self.machine is not None:
            self.machine.stop()
            self.machine = None


@pytest.fixture(scope="session")
def guest_session(request) -> GuestSession:
    return request.config.stash[_SESSION]


class GuestFile(pytest.File):
    def __init__(self, *, program: guestprogs.GuestProgram, **kw):
        super().__init__(**kw)
        self.program = program

    def collect(self):
        for sub in self.program.subtests:
            yield GuestItem.from_parent(self, name=sub, program=self.program, subtest=sub)


class GuestFailure(Exception):
    pass


class GuestItem(pytest.Item):
    def __init__(self, *, program: guestprogs.GuestProgram, subtest: str, **kw):
        super().__init__(**kw)
        self.program = program
        self.subtest = subtest
        self.add_marker(pytest.mark.vm)

    def runtest(self):
        session = self.config.stash[_SESSION]
        result = session.program_result(self.program)
        tid = f"{self.program.name}::{self.subtest}"
        sub = next((s for s in result.subtests if s.test_id == tid), None)
        if sub is None:
            raise GuestFailure(f"{tid} was not run")
        if sub.status == ktap.Status.SKIP:
            pytest.skip(sub.reason or "skipped by the guest program without a reason")
        if sub.status == ktap.Status.XFAIL:
            pytest.xfail(sub.reason)
        if sub.status != ktap.Status.PASS:
            detail = "\n".join(sub.diagnostics + ([sub.reason] if sub.reason else [])
                               + result.errors)
            raise GuestFailure(f"{tid}: {sub.status.value}\n{detail}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, GuestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.program.name}::{self.subtest}"
