"""The pytest view's run directory: the same results.json, JUnit and KCIDB
files as `rwp-harness run`, from a session over a fake guest."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import pipeline, pytest_plugin
from harness.parse.verdicts import Status, TestResult
from harness.report import compare, kcidb
from harness.run.batch import BatchInterrupted
from harness.run.guestprogs import GuestProgram

PROG = GuestProgram("c/rwp_basic", "c", Path("guest/c/rwp_basic.c"),
                    ("sync_read_fault", "sync_write_fault", "async_read"))


class Config:
    def __init__(self, root: Path, kcidb_file: Path | None):
        self.rootpath = root
        self.values = {"--rwp-kernel-src": None, "--rwp-kernel-version": "7.3",
                       "--rwp-transport": "auto", "--rwp-accel": "auto",
                       "--rwp-allowlist": None, "--rwp-one-by-one": False,
                       "--rwp-test-timeout": None, "--rwp-profile": [],
                       "--rwp-coverage": False, "--rwp-results-dir": None,
                       "--rwp-kcidb": kcidb_file, "--rwp-kcidb-origin": "lab",
                       "--rwp-arch": "x86_64"}

    def getoption(self, name):
        return self.values[name]


class FakeSession:
    """pipeline.Session's face to the plugin: a guest and a program's results."""
    outcome: dict = {}
    interrupt_at: str | None = None

    def __init__(self, run, bres, console_log, counters=None):
        self.guest = SimpleNamespace(console=lambda: None, reboots=0, boot_seconds=[3.0],
                                     guest_seconds=1.5, quiet_deaths=0)
        self.closed = None

    def results(self, prog, subs):
        done = []
        for sub in subs:
            res = TestResult(f"{prog.name}::{sub}", self.outcome.get(sub, Status.PASS),
                             reason="" if sub not in self.outcome else "check failed",
                             duration=0.25)
            if sub == self.interrupt_at:
                raise BatchInterrupted(done)
            done.append(res)
            yield res

    def cpu_shortfall(self):
        return None

    def close(self, now=False):
        self.closed = "now" if now else "clean"


def _item(session_items, sub):
    item = SimpleNamespace(program=PROG, subtest=sub, group="c/rwp_basic#0")
    item.session = SimpleNamespace(items=session_items)
    return item


@pytest.fixture
def view(tmp_path, monkeypatch):
    def make(kcidb_file=None, outcome=None, interrupt_at=None):
        monkeypatch.setattr(pipeline, "Session", FakeSession)
        monkeypatch.setattr(FakeSession, "outcome", outcome or {})
        monkeypatch.setattr(FakeSession, "interrupt_at", interrupt_at)
        monkeypatch.setattr(pipeline, "run_manifest",
                            lambda run, req, bres, timings: {"kernel_release": "7.3.4",
                                                             "timings": timings})
        monkeypatch.setattr(pipeline, "guest_manifest", lambda s: {"accel": "tcg"})
        gs = pytest_plugin.GuestSession(Config(tmp_path, kcidb_file))
        gs.build_request = SimpleNamespace()
        gs.build_result = SimpleNamespace(log=tmp_path / "no-log", dotconfig=tmp_path / "no-cfg")
        monkeypatch.setattr(gs, "kernel", lambda: gs.build_result)
        gs.planned = [f"c/rwp_basic::{s}" for s in PROG.subtests]
        return gs
    return make


def _run_dir(tmp_path: Path) -> Path:
    (found,) = (tmp_path / "rwp-results").glob("pytest-*")
    return found


def test_a_pytest_session_leaves_a_run_directory_compare_and_kcidb_read(view, tmp_path):
    gs = view(kcidb_file=tmp_path / "kcidb.json", outcome={"sync_write_fault": Status.FAIL})
    items = [_item([], s) for s in PROG.subtests]
    for it in items:
        it.session.items = []          # each item runs alone: its group is itself
        gs.run(it)
    gs.close()
    run = _run_dir(tmp_path)
    doc = json.loads((run / "results.json").read_text())
    assert doc["complete"] and not doc["ok"] and doc["not_run"] == []
    assert {t["id"]: t["status"] for t in doc["tests"]} == {
        "c/rwp_basic::sync_read_fault": "pass", "c/rwp_basic::sync_write_fault": "fail",
        "c/rwp_basic::async_read": "pass"}
    assert doc["manifest"]["accel"] == "tcg" and doc["manifest"]["pytest_worker"] == "main"
    assert (run / "junit.xml").exists() and (run / "results.ktap").exists()
    kdoc = json.loads((tmp_path / "kcidb.json").read_text())
    kcidb.validate(kdoc)
    assert {t["path"]: t["status"] for t in kdoc["tests"]}[
        "rwp.c.rwp_basic.sync_write_fault"] == "FAIL"
    assert all(t["id"].startswith("lab:") for t in kdoc["tests"])
    # The pytest view's run is a baseline like any other.
    assert compare.compare(compare.load(run), compare.load(run)).regressions == []


def test_an_interrupted_pytest_session_is_incomplete_with_what_it_ran(view, tmp_path):
    gs = view(interrupt_at="sync_write_fault")
    members = [_item([], s) for s in PROG.subtests]
    for m in members:
        m.session.items = []
    gs.run(members[0])
    with pytest.raises(KeyboardInterrupt):
        gs.run(members[1])
    gs.close()
    doc = json.loads((_run_dir(tmp_path) / "results.json").read_text())
    assert not doc["complete"]
    assert [t["id"] for t in doc["tests"]] == ["c/rwp_basic::sync_read_fault"]
    assert doc["not_run"] == ["c/rwp_basic::sync_write_fault", "c/rwp_basic::async_read"]
    assert gs.session.closed == "now"


def test_a_session_that_never_booted_writes_no_run_directory(view, tmp_path):
    view(kcidb_file=tmp_path / "kcidb.json").close()
    assert not (tmp_path / "rwp-results").exists() and not (tmp_path / "kcidb.json").exists()
