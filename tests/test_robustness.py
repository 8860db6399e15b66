"""Real kernel faults in the middle of a run, provoked with lkdtm (guest/selftest).

The harness must charge each report to the test that caused it, survive a
panic and a hang by rebooting, keep running the tests after them, and leave
nothing behind when it is interrupted: one test per guest command
(--one-by-one) and in a batch, where a panic or a hang sends the tests it
cost back to one at a time.
"""

import json
import os
import secrets
import signal
import subprocess
import time

import pytest

from harness.errors import ExitStatus

from helpers import harness_argv

pytestmark = pytest.mark.vm

FAULT_TESTS = ["healthy_before", "warning", "healthy_after_warning", "bug", "panic",
               "healthy_after_panic", "hung_task", "healthy_after_hang"]


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults")
    selection = [a for t in FAULT_TESTS for a in ("-k", f"lkdtm_faults::{t}")]
    return _fault_check(out, selection, "--one-by-one")


def _fault_check(out, selection, *extra):
    res = subprocess.run(harness_argv("check", "--suite", "selftest", *selection, "--results-dir",
                                      str(out), "--json", *extra),
                         capture_output=True, text=True, timeout=3600)
    [run_dir] = list(out.iterdir())
    doc = json.loads(res.stdout)
    return res, run_dir, doc, {t["id"].split("::")[1]: t for t in doc["tests"]}


def test_fault_run_fails_but_completes(fault_run):
    res, run_dir, doc, tests = fault_run
    assert res.returncode == ExitStatus.TESTS_FAILED, res.stderr[-2000:]
    assert doc["complete"] and list(tests) == FAULT_TESTS
    for name in ("results.json", "results.ktap", "junit.xml", "console.log", "config"):
        assert (run_dir / name).stat().st_size > 0, name


def test_healthy_tests_are_not_blamed(fault_run):
    _, _, _, tests = fault_run
    for name in FAULT_TESTS:
        if name.startswith("healthy"):
            assert tests[name]["status"] == "pass", tests[name]
            assert tests[name]["splats"] == []


def test_warning_is_charged_to_its_test_whole(fault_run):
    _, _, _, tests = fault_run
    t = tests["warning"]
    assert t["status"] == "fail" and t["reason"].startswith("kernel splat: WARNING:")
    [splat] = t["splats"]
    assert splat["kind"] == "warning" and "lkdtm" in splat["text"]
    assert "cut here" in splat["text"] and "end trace" in splat["text"]
    assert t["taint_before"] != t["taint_after"]


def test_bug_is_charged_to_its_test(fault_run):
    _, _, _, tests = fault_run
    t = tests["bug"]
    assert t["status"] == "fail"
    assert t["splats"][0]["kind"] in ("bug", "oops") and "lkdtm" in t["splats"][0]["text"]


def test_panic_is_reported_and_survived(fault_run):
    _, run_dir, doc, tests = fault_run
    t = tests["panic"]
    assert t["status"] == "fail" and t["reason"].startswith("kernel panic")
    assert any(s["kind"] == "panic" for s in t["splats"])
    assert "Kernel panic - not syncing" in (run_dir / "console.log").read_text(errors="replace")


def test_hang_is_reported_with_task_dump_and_survived(fault_run):
    _, _, doc, tests = fault_run
    t = tests["hung_task"]
    assert t["status"] == "error" and "deadline of 15s expired" in t["reason"]
    assert "lkdtm_HUNG_TASK" in t["kernel_log"]
    assert any(s["kind"] == "hung-task" for s in t["splats"])
    assert doc["manifest"]["reboots"] == 2


def test_junit_and_ktap_agree_with_json(fault_run):
    _, run_dir, _, tests = fault_run
    junit = (run_dir / "junit.xml").read_text()
    assert junit.count("<testcase") == len(FAULT_TESTS)
    assert junit.count("<failure") == 3 and junit.count("<error") == 1
    ktap = (run_dir / "results.ktap").read_text().splitlines()
    assert sum(l.startswith("not ok") for l in ktap) == 4


BATCH_TESTS = ["healthy_before", "warning", "healthy_after_warning", "bug", "hung_task",
               "healthy_after_hang"]


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch-faults")
    return _fault_check(out, [a for t in BATCH_TESTS for a in ("-k", f"lkdtm_faults::{t}")])


def test_in_a_batch_each_splat_is_charged_to_its_own_test(batch_run):
    res, _, doc, tests = batch_run
    assert res.returncode == ExitStatus.TESTS_FAILED, res.stderr[-2000:]
    assert list(tests) == BATCH_TESTS
    w, b = tests["warning"], tests["bug"]
    assert w["status"] == "fail" and w["reason"].startswith("kernel splat: WARNING:")
    assert [s["kind"] for s in w["splats"]] == ["warning"]
    assert w["taint_before"] != w["taint_after"]
    assert b["status"] == "fail" and b["splats"][0]["kind"] in ("bug", "oops")
    assert "lkdtm_WARNING" not in b["kernel_log"] and "lkdtm_BUG" not in w["kernel_log"]
    for name in ("healthy_before", "healthy_after_warning", "healthy_after_hang"):
        assert tests[name]["status"] == "pass" and tests[name]["splats"] == [], tests[name]


def test_a_hang_in_a_batch_reruns_it_and_the_rest_alone(batch_run):
    res, _, doc, tests = batch_run
    assert "hung_task hit its deadline; running 2 test(s) one at a time" in res.stderr
    t = tests["hung_task"]
    assert t["status"] == "error" and "deadline of 15s expired" in t["reason"]
    assert any(s["kind"] == "hung-task" for s in t["splats"])
    # one after the batch's hang, one after the hang alone
    assert doc["manifest"]["reboots"] == 2


def test_a_panic_in_a_batch_reruns_the_batch_alone(tmp_path):
    names = ["healthy_before", "panic", "healthy_after_panic"]
    res, _, doc, tests = _fault_check(tmp_path, [a for t in names for a in
                                                 ("-k", f"lkdtm_faults::{t}")])
    assert "the VM died during the batch; running 3 test(s) one at a time" in res.stderr
    assert tests["panic"]["status"] == "fail"
    assert tests["panic"]["reason"].startswith("kernel panic")
    assert tests["healthy_before"]["status"] == tests["healthy_after_panic"]["status"] == "pass"
    assert doc["manifest"]["reboots"] == 2


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        pids.append(int(proc))
            except OSError:
                pass
    return pids


def test_interrupt_kills_the_guest_and_keeps_partial_results(tmp_path):
    token = secrets.token_hex(6)
    # One by one, so that healthy_before's result is out before the sleeper runs.
    proc = subprocess.Popen(harness_argv("check", "--suite", "selftest", "-k", "healthy_before",
                                    "-k", "sleeper", "--one-by-one", "--append", f"rwp_itest={token}",
                                    "--results-dir", str(tmp_path)),
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "healthy_before" in line:
            break
    time.sleep(3)    # the sleeper is now running in the guest
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == ExitStatus.INTERRUPTED, "".join(seen) + rest
    assert _processes_mentioning(f"rwp_itest={token}") == [], "QEMU left behind"
    [run_dir] = list(tmp_path.iterdir())
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["complete"] is False and not doc["ok"]
    assert [t["id"] for t in doc["tests"]] == ["selftest/lkdtm_faults::healthy_before"]
    assert "incomplete" in (run_dir / "results.ktap").read_text()


def test_qemu_that_cannot_start_is_an_infrastructure_error(tmp_path):
    res = subprocess.run(harness_argv("check", "-k", "api_advertises", "--memory", "64T",
                                 "--accel", "tcg", "--results-dir", str(tmp_path)),
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == ExitStatus.INFRA_FAILED, res.stderr[-2000:]
    error = [l for l in res.stderr.splitlines() if l.startswith("rwp-harness: error:")]
    assert len(error) == 1 and "did not reach a shell" in error[0]
    assert "Traceback" not in res.stderr
