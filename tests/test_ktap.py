from harness.parse import ktap
from harness.parse.verdicts import Status

from helpers import DATA


def test_all_pass():
    rep = ktap.parse((DATA / "ktap-7.3-pass.log").read_text())
    assert rep.plan == 7 and not rep.errors and _ok(rep)
    assert [c.status for c in rep.cases] == [Status.PASS] * 7
    assert rep.cases[3].name == "sync_read_fault"


def test_skips_keep_their_reason():
    rep = ktap.parse((DATA / "ktap-7.2-skip.log").read_text())
    assert _ok(rep)
    assert {c.status for c in rep.cases} == {Status.SKIP}
    assert rep.cases[0].reason == "kernel does not advertise UFFD_FEATURE_RWP"


def test_console_noise_failure_and_crash():
    rep = ktap.parse((DATA / "ktap-crash-midway.log").read_text())
    names = [c.name for c in rep.cases]
    assert names == ["api_advertises_rwp", "sync_read_fault", "async_resolves_without_message"]
    failed = rep.by_name()["sync_read_fault"]
    assert failed.status == Status.FAIL
    assert failed.diagnostics[0] == "rwp_basic.c:97: flags 0x1, want 0x9"
    # Kernel log lines are not diagnostics of the test.
    assert not any("WARNING" in d for d in failed.diagnostics)
    assert rep.errors == ["plan announced 4 tests, 3 reported"]
    assert not _ok(rep)


def test_missing_header_and_plan_are_errors():
    rep = ktap.parse("ok 1 x\n")
    assert "no KTAP version line" in rep.errors and "no test plan" in rep.errors


def test_xfail_and_numbering_without_name():
    rep = ktap.parse("KTAP version 1\n1..2\nnot ok 1 known_bug # XFAIL evidence\nok 2\n")
    assert rep.cases[0].status == Status.XFAIL and rep.cases[0].reason == "evidence"
    assert rep.cases[1].name == "test2"
    assert _ok(rep)


def test_nested_subtests_stay_diagnostics():
    text = "KTAP version 1\n1..1\n    KTAP version 1\n    1..1\n    ok 1 inner\nok 1 outer\n"
    rep = ktap.parse(text)
    assert [c.name for c in rep.cases] == ["outer"]
    assert "ok 1 inner" in rep.cases[0].diagnostics


def _ok(rep) -> bool:
    return not rep.errors and all(c.status in (Status.PASS, Status.SKIP, Status.XFAIL)
                                  for c in rep.cases)
