"""How a test's own verdict, its kernel log and repeated runs combine."""

import datetime as dt

from harness.parse import ktap, protocol, splats, verdicts
from harness.run import runner

from helpers import DATA

WARNING_LOG = (DATA / "kmsg-warning.log").read_text()


def _result(status=verdicts.Status.PASS, taint=(0, 0)):
    return verdicts.TestResult("c/x::y", status, taint=taint)


def test_splat_fails_a_passing_test():
    r = _result(taint=(0, 512))
    verdicts.judge(r, splats.find(WARNING_LOG), splats.Allowlist())
    assert r.status == verdicts.Status.FAIL and r.reason.startswith("kernel splat: WARNING: CPU: 0")
    assert len(r.splats) == 1


def test_allowlisted_splat_and_its_taint_are_excused():
    entry = splats.AllowEntry(__import__("re").compile("lkdtm_WARNING"), "known",
                              dt.date.today() + dt.timedelta(days=1))
    r = _result(taint=(0, 512))
    verdicts.judge(r, splats.find(WARNING_LOG), splats.Allowlist([entry]))
    assert r.status == verdicts.Status.PASS and r.splats == []
    assert r.excused[0][1] == "known"


def test_expired_allowlist_entry_no_longer_excuses():
    entry = splats.AllowEntry(__import__("re").compile("lkdtm_WARNING"), "known",
                              dt.date.today() - dt.timedelta(days=1))
    r = _result(taint=(0, 512))
    verdicts.judge(r, splats.find(WARNING_LOG), splats.Allowlist([entry]))
    assert r.status == verdicts.Status.FAIL


def test_taint_change_without_a_visible_splat_fails():
    r = _result(taint=(0, 4096))
    verdicts.judge(r, [], splats.Allowlist())
    assert r.status == verdicts.Status.FAIL and r.reason == "kernel taint changed from 0 to 4096"


def test_timeout_stays_an_error_with_its_splats():
    r = _result(status=verdicts.Status.ERROR)
    verdicts.judge(r, splats.find((DATA / "kmsg-hung-task.log").read_text()), splats.Allowlist())
    assert r.status == verdicts.Status.ERROR and r.splats[0].kind == "hung-task"


def test_taint_markers_are_read_from_output():
    out = "@@RWPTAINT0 0\nKTAP version 1\n1..1\nok 1 y\n@@RWPTAINT1 512\n"
    assert protocol.taint(out) == (0, 512)
    assert protocol.taint("nothing") == (None, None)


def test_guest_side_time_is_read_from_output():
    out = "@@RWPTAINT0 0\nok 1 y\n@@RWPGUESTNS 1234567890\n@@RWPTAINT1 0\n"
    assert protocol.guest_seconds(out) == 1.2346
    assert protocol.guest_seconds("ok 1 y\n") is None


def test_repeats_that_disagree_are_flaky():
    runs = [_result(), _result(verdicts.Status.FAIL), _result()]
    runs[1].reason = "boom"
    final = verdicts.combine(runs)
    assert final.status == verdicts.Status.FLAKY
    assert final.runs == ["pass", "fail", "pass"] and "failed 1 of 3" in final.reason


def test_repeats_that_all_pass_or_all_fail_are_not_flaky():
    assert verdicts.combine([_result(), _result()]).status == verdicts.Status.PASS
    both = verdicts.combine([_result(verdicts.Status.FAIL), _result(verdicts.Status.ERROR)])
    assert both.status == verdicts.Status.FAIL


def test_peer_case_ids_have_no_spaces_and_keep_skipped_names():
    named = ktap.Case("rwp-async on shmem-private", verdicts.Status.PASS)
    skipped = ktap.Case("test26", verdicts.Status.SKIP, "wp-fork-pin on anon (no CONFIG_GUP_TEST)")
    assert runner._peer_id(runner._peer_case_name(named)) == \
        "peer/uffd-unit-tests::rwp-async__shmem-private"
    assert runner._peer_id(runner._peer_case_name(skipped)) == \
        "peer/uffd-unit-tests::wp-fork-pin__anon"
