"""The CI views of a saved run: KCIDB documents and comparisons of two runs."""

import copy
import json
import subprocess
import sys

import pytest

from harness.errors import ExitStatus
from harness.report import compare, kcidb, results
from harness.parse.verdicts import Status, TestResult

DATA = __import__("pathlib").Path(__file__).parent / "data" / "compare"


def rwp(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=60)


def _run_dir(tmp_path, name, doc):
    d = tmp_path / name
    d.mkdir()
    (d / "results.json").write_text(json.dumps(doc))
    for f in ("console.log", "build.log", "config"):
        (d / f).write_text("x\n")
    return d


def _doc(name):
    return json.loads((DATA / name).read_text())


# ---- KCIDB ----

def test_a_saved_run_is_a_valid_kcidb_document(tmp_path):
    doc = _doc("new.json")
    for t in doc["tests"]:
        if t["id"] == "c/rwp_basic::async_resolves_without_message":
            t["status"], t["reason"] = "error", "no result: the VM died"
    doc["not_run"] = ["c/rwp_mm::swap_out_keeps_protection_anon"]
    doc["manifest"]["series"] = {"kind": "mbox", "files": [str(tmp_path / "s.mbx")],
                                 "patch_sha256": ["a" * 64, "b" * 64],
                                 "message_id": "20261201.1@example.org", "describe": "mbox"}
    run = _run_dir(tmp_path, "20261203-070000-abcdef", doc)
    out = tmp_path / "kcidb.json"
    kdoc = kcidb.write(run, out)
    assert json.loads(out.read_text()) == kdoc
    import kcidb_io
    kcidb_io.schema.V5_3.validate_exactly(kdoc)         # what write() checked, again
    (co,), (b,) = kdoc["checkouts"], kdoc["builds"]
    assert co["message_id"] == "20261201.1@example.org"
    assert co["patchset_hash"] == __import__("hashlib").sha256(
        ("a" * 64 + "\n" + "b" * 64 + "\n").encode()).hexdigest()
    assert b["checkout_id"] == co["id"] and b["architecture"] == "x86_64"
    by = {t["misc"]["test_id"]: t for t in kdoc["tests"]}
    assert {t["build_id"] for t in kdoc["tests"]} == {b["id"]}
    assert all(t["id"].startswith("rwp:20261203-070000-abcdef/") for t in kdoc["tests"])
    statuses = {t["misc"]["harness_status"]: t["status"] for t in kdoc["tests"]}
    assert statuses == {"xfail": "DONE", "error": "ERROR", "pass": "PASS", "fail": "FAIL",
                        "flaky": "FAIL", "skip": "SKIP", "not_run": "MISS"}
    failed = by["c/rwp_basic::sync_read_fault"]
    assert "no fault message" in failed["log_excerpt"] and "WARNING: ..." in failed["log_excerpt"]
    assert failed["path"] == "rwp.c.rwp_basic.sync_read_fault"


def test_kcidb_paths_and_origin():
    assert kcidb.test_path("c/rwp_contract::sync_read_fault__anon_thp") == \
        "rwp.c.rwp_contract.sync_read_fault.anon_thp"
    assert kcidb.test_path("peer/uffd-unit-tests::rwp test (anon)") == \
        "rwp.peer.uffd-unit-tests.rwp_test__anon_"
    kdoc = kcidb.document(_doc("base.json"), DATA, origin="myci")
    assert {o["origin"] for o in kdoc["checkouts"] + kdoc["builds"] + kdoc["tests"]} == {"myci"}
    assert all(o["id"].startswith("myci:") for o in kdoc["tests"])


def test_a_document_kcidb_io_refuses_is_a_harness_bug(tmp_path, monkeypatch):
    run = _run_dir(tmp_path, "r", _doc("base.json"))
    monkeypatch.setitem(kcidb.STATUS, "pass", "GREEN")
    with pytest.raises(kcidb.InvalidDocument, match="status") as e:
        kcidb.write(run, tmp_path / "k.json")
    assert e.value.status == ExitStatus.INTERNAL_ERROR
    assert not (tmp_path / "k.json").exists()


def test_report_command_writes_kcidb_and_refuses_bad_input(tmp_path):
    run = _run_dir(tmp_path, "r", _doc("base.json"))
    res = rwp("report", str(run), "--kcidb", str(tmp_path / "k.json"))
    assert res.returncode == 0 and "KCIDB v5.3, 8 test(s)" in res.stdout, res.stderr
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "results.json").write_text('{"tests": [')
    res = rwp("report", str(tmp_path / "torn"), "--kcidb", str(tmp_path / "k2.json"))
    assert res.returncode == ExitStatus.BAD_INPUT and "not JSON" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "k2.json").exists()


# ---- compare ----

def test_compare_lists_each_kind_of_change():
    c = compare.compare(compare.load(DATA / "base.json"), compare.load(DATA / "new.json"))
    moves = lambda rows: [(r.test, r.before, r.after) for r in rows]
    assert moves(c.regressions) == [("c/rwp_basic::sync_read_fault", "pass", "fail"),
                                    ("py/rwp_basic::sync_read_fault", "pass", "flaky")]
    assert moves(c.fixes) == [("c/rwp_basic::async_resolves_without_message", "error", "pass")]
    assert [r.test for r in c.added] == ["c/rwp_basic::register_wp_and_rwp_refused"]
    assert [r.test for r in c.vanished] == ["py/rwp_basic::register_rwp"]
    assert [r.after[:8] for r in c.new_splats] == ["WARNING:"]
    assert moves(c.timings) == [("c/rwp_basic::sync_write_fault", "1.20", "4.50")]
    assert ("guest.uffd_features", "0x7ffff", "0x3ffff") in moves(c.manifest)
    assert c.regressed and not c.incomplete


def test_tests_outside_a_selected_runs_selection_did_not_vanish(tmp_path):
    """A mutant's or bisect step's run selects a few programs: the rest of
    the baseline was not asked for, and a test the selection names but the run
    lost still vanished."""
    new = _doc("base.json")
    new["manifest"]["select"] = ["c/rwp_basic::"]
    new["tests"] = [t for t in new["tests"] if t["id"].startswith("c/rwp_basic::")
                    and t["id"] != "c/rwp_basic::sync_write_fault"]
    c = compare.compare(compare.load(DATA / "base.json"),
                        compare.load(_run_dir(tmp_path, "sel", new)))
    assert [r.test for r in c.vanished] == ["c/rwp_basic::sync_write_fault"]
    outside = [t["id"] for t in _doc("base.json")["tests"]
               if not t["id"].startswith("c/rwp_basic::")]
    assert outside and c.unselected == len(outside)
    assert ("select", "", "c/rwp_basic::") in [(r.test, r.before, r.after) for r in c.manifest]
    assert f"{len(outside)} outside the new run's selection" in compare.text(c)


def test_a_regression_is_explained_by_its_checks_message(tmp_path):
    """A C check prints its expression, then its file, line and message: the
    message is the reason a reader wants, not the expression."""
    new = _doc("base.json")
    failed = next(t for t in new["tests"] if t["id"] == "c/rwp_basic::sync_write_fault")
    failed.update(status="fail", reason="", diagnostics=[
        "check failed: WAIT_UNTIL(done == round, RWP_WAIT_MS) (errno 0 Success)",
        "rwp_lifecycle.c:1397: round 20: the touch is still blocked",
        "# @@RWPAT 0x401234"])
    c = compare.compare(compare.load(DATA / "base.json"), compare.load(_run_dir(tmp_path, "n", new)))
    reasons = {r.test: r.reason for r in c.regressions}
    assert reasons["c/rwp_basic::sync_write_fault"] == \
        "rwp_lifecycle.c:1397: round 20: the touch is still blocked"


def test_compare_exit_statuses(tmp_path):
    base, new = str(DATA / "base.json"), str(DATA / "new.json")
    res = rwp("compare", base, new)
    assert res.returncode == ExitStatus.TESTS_FAILED, res.stderr
    assert "regressions (2):" in res.stdout and "2 regression(s)" in res.stdout
    res = rwp("compare", new, base, "--json")        # the other way round
    doc = json.loads(res.stdout)
    assert res.returncode == ExitStatus.TESTS_FAILED and doc["regressed"]
    assert [r["test"] for r in doc["regressions"]] == ["c/rwp_basic::async_resolves_without_message"]
    assert len(doc["fixes"]) == 2
    res = rwp("compare", base, base)
    assert res.returncode == 0 and "no regression" in res.stdout
    stopped = _doc("base.json")
    stopped["not_run"] = [t["id"] for t in stopped["tests"][4:]]
    stopped["tests"] = stopped["tests"][:4]
    stopped["complete"] = False
    run = _run_dir(tmp_path, "stopped", stopped)
    res = rwp("compare", base, str(run))
    assert res.returncode == ExitStatus.INFRA_FAILED        # no verdict on what did not run
    assert "incomplete (4 test(s) not run)" in res.stdout and "(was pass, not run)" in res.stdout
    for bad in ([base, str(tmp_path / "nope")], [base, base, "--timing-ratio", "0.5"]):
        res = rwp("compare", *bad)
        assert res.returncode == ExitStatus.BAD_INPUT and "Traceback" not in res.stderr


def test_a_new_failing_test_is_a_regression():
    base = compare.RunView("a", {"t::a": "pass"})
    new = compare.RunView("b", {"t::a": "pass", "t::b": "fail", "t::c": "xfail"})
    c = compare.compare(base, new)
    assert [(r.test, r.before) for r in c.regressions] == [("t::b", "new")]


def _results_run(tmp_path, statuses):
    run = results.Run(tmp_path)
    for tid, st in statuses.items():
        run.tests.append(TestResult(tid, st, reason="why" if st != Status.PASS else ""))
    run.complete = True
    return run


def test_junit_files_compare_like_results(tmp_path):
    statuses = {"c/p::a": Status.PASS, "c/p::b": Status.XFAIL, "c/p::c": Status.SKIP,
                "py/q::d": Status.FAIL, "py/q::e": Status.ERROR}
    junit = tmp_path / "junit.xml"
    junit.write_text(_results_run(tmp_path, statuses).junit())
    view = compare.load(junit)
    assert view.statuses == {k: v.value for k, v in statuses.items()}
    # The pytest view: classname is the guest source's dotted path, xfail a typed skip.
    pytest_junit = tmp_path / "pytest.xml"
    pytest_junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="guest.c.rwp_basic.c" name="sync_read_fault" time="0.5"/>'
        '<testcase classname="guest.py.rwp_basic" name="sync_read_fault" time="0.4">'
        '<failure message="boom">x</failure></testcase>'
        '<testcase classname="guest.c.rwp_basic.c" name="register_rwp" time="0.1">'
        '<skipped type="pytest.xfail" message="H3" /></testcase>'
        '</testsuite></testsuites>')
    assert compare.load(pytest_junit).statuses == {
        "c/rwp_basic::sync_read_fault": "pass", "py/rwp_basic::sync_read_fault": "fail",
        "c/rwp_basic::register_rwp": "xfail"}
    (tmp_path / "empty.xml").write_text("<testsuite/>")
    (tmp_path / "torn.xml").write_text("<testsuite><testcase")
    for bad in ("empty.xml", "torn.xml"):
        with pytest.raises(compare.BadInput):
            compare.load(tmp_path / bad)


def test_a_baseline_from_before_a_test_moved_compares_under_its_new_id(tmp_path):
    """A baseline made when zero_page_is_protected was in rwp_edges: the new
    run has it in rwp_contract, and the comparison sees one test, unchanged."""
    base, new = _doc("base.json"), _doc("base.json")
    row = {"id": "c/rwp_edges::zero_page_is_protected", "status": "pass", "duration": 0.1}
    base["tests"].append(dict(row))
    new["tests"].append(dict(row, id="c/rwp_contract::zero_page_is_protected", status="fail"))
    c = compare.compare(compare.load(_run_dir(tmp_path, "base", base)),
                        compare.load(_run_dir(tmp_path, "new", new)))
    assert [(r.test, r.before, r.after) for r in c.regressions] == [
        ("c/rwp_contract::zero_page_is_protected", "pass", "fail")]
    assert not c.vanished and not c.added


def test_the_kcidb_build_names_the_runs_architecture(tmp_path):
    arm = kcidb._build({"arch": {"name": "arm64", "cross_compiler": True}}, tmp_path, "rwp", "c1")
    old = kcidb._build({}, tmp_path, "rwp", "c1")       # a run from before --arch
    assert (arm["architecture"], old["architecture"]) == ("arm64", "x86_64")
