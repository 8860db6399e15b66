"""The guest test frameworks (rwp_ktap.h, ktest.py) run on the host: what a
test's ending turns into, above all that an expected failure is expected at
its one named check and nowhere else."""

import os
import subprocess
import sys

import pytest

from harness.parse import ktap, protocol
from harness.parse.verdicts import Status
from harness.run import callsite, guestprogs

# One body per case, in C and in Python; each finding check is at a known line.
C_CASES = r'''
#include "rwp_ktap.h"

RWP_TEST(finding_hit) { FINDING("F1: the kernel is wrong", 1 == 2, "one is not two"); }
RWP_TEST(finding_held_then_pass) { FINDING("F2: fixed now", 1 == 1, "unused"); }
RWP_TEST(finding_held_then_other_failure)
{
	FINDING("F3: fixed", 1 == 1, "unused");
	CHECK(0, "a later check failed");
}
RWP_TEST(failure_before_finding)
{
	CHECK(0, "set-up failed");
	FINDING("F4: never reached", 0, "unused");
}
RWP_TEST(crash_before_finding)
{
	raise(SIGSEGV);
	FINDING("F5: never reached", 0, "unused");
}
RWP_TEST(deadline_before_finding)
{
	pause();
	FINDING("F6: never reached", 0, "unused");
}
RWP_TEST(finding_not_on_this_path)
{
	if (getpid() < 0)
		FINDING("F7: another memory type", 0, "unused");
}
RWP_TEST(skipped) { SKIP("no such feature"); }

static inline void shared_helper(int v)
{
	CHECK(v == 0, "the helper's check");
}

RWP_TEST(helper_failure_names_the_test_line)
{
	shared_helper(0);
	shared_helper(1);
}
RWP_MAIN
'''

PY_CASES = r'''
import os, signal, sys
sys.path.insert(0, sys.argv.pop(1))
import ktest
from ktest import test, finding


def helper_that_fails():
    assert False, "the helper's check"


@test
def finding_hit():
    finding("F1: the kernel is wrong", 1 == 2, "one is not two")

@test
def finding_held_then_pass():
    finding("F2: fixed now", 1 == 1, "unused")

@test
def finding_held_then_other_failure():
    finding("F3: fixed", 1 == 1, "unused")
    assert False, "a later check failed"

@test
def failure_before_finding():
    assert False, "set-up failed"
    finding("F4: never reached", False, "unused")

@test
def crash_before_finding():
    os.kill(os.getpid(), signal.SIGSEGV)
    finding("F5: never reached", False, "unused")

@test
def deadline_before_finding():
    signal.pause()
    finding("F6: never reached", False, "unused")

@test
def finding_not_on_this_path():
    if os.getpid() < 0:
        finding("F7: another memory type", False, "unused")

@test
def skipped():
    raise ktest.Skip("no such feature")

@test
def finding_swallowed_by_a_broad_except():
    try:
        finding("F8: the kernel is wrong", False, "caught")
    except Exception:
        pass

@test
def helper_failure_names_the_test_line():
    helper_that_fails()

ktest.main()
'''

WANT = {
    "finding_hit": Status.XFAIL,
    "finding_held_then_pass": Status.FAIL,
    "finding_held_then_other_failure": Status.FAIL,
    "failure_before_finding": Status.FAIL,
    "crash_before_finding": Status.FAIL,
    "deadline_before_finding": Status.FAIL,
    "finding_not_on_this_path": Status.PASS,
    "skipped": Status.SKIP,
}
ENV = {**os.environ, "RWP_DEADLINE_S": "1"}


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture(scope="module")
def c_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("c")
    (d / "cases.c").write_text(C_CASES)
    subprocess.run(guestprogs.gcc_argv([d / "cases.c"], d / "cases", d), check=True)
    return subprocess.run([str(d / "cases")], capture_output=True, text=True, env=ENV,
                          timeout=60).stdout, d / "cases"


@pytest.fixture(scope="module")
def py_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("py")
    (d / "cases.py").write_text(PY_CASES)
    return subprocess.run([sys.executable, str(d / "cases.py"), str(guestprogs.GUEST_DIR / "py")],
                          capture_output=True, text=True, env=ENV, timeout=60).stdout


def _statuses(out: str) -> dict:
    return {c.name: c.status for c in ktap.parse(out).cases}


@pytest.fixture(scope="module")
def c_out(c_run):
    return c_run[0]


@pytest.mark.parametrize("lang", ["c", "py"])
def test_an_expected_failure_is_expected_at_its_check_only(lang, c_out, py_run):
    out = c_out if lang == "c" else py_run
    got = _statuses(out)
    assert {k: got.get(k) for k in WANT} == WANT, out


@pytest.mark.parametrize("lang", ["c", "py"])
def test_the_xfail_reason_names_the_finding_and_its_line(lang, c_out, py_run):
    out, src = (c_out, C_CASES) if lang == "c" else (py_run, PY_CASES)
    ext = "c" if lang == "c" else "py"
    line = _line_of(src, '"F1: the kernel is wrong"')
    xfail = next(c for c in ktap.parse(out).cases if c.name == "finding_hit")
    assert xfail.reason == f"F1: the kernel is wrong (cases.{ext}:{line})"
    assert f"cases.{ext}:{line}: one is not two" in out


@pytest.mark.parametrize("lang", ["c", "py"])
def test_a_held_finding_says_it_looks_fixed(lang, c_out, py_run):
    out = c_out if lang == "c" else py_run
    assert "the finding looks fixed" in out and "F2: fixed now" in out


def test_a_python_finding_cannot_be_swallowed_by_a_test(py_run):
    assert _statuses(py_run)["finding_swallowed_by_a_broad_except"] == Status.XFAIL


def test_a_python_helper_failure_names_the_calling_test_line(py_run):
    test_line = _line_of(PY_CASES, "    helper_that_fails()")
    helper_line = _line_of(PY_CASES, "assert False, \"the helper's check\"")
    assert (f"cases.py:{test_line} (in helper_that_fails at cases.py:{helper_line}): "
            "assertion failed: the helper's check") in py_run


def test_a_c_helper_failure_names_the_calling_test_line(c_run):
    out, binary = c_run
    case = next(c for c in ktap.parse(out).cases if c.name == "helper_failure_names_the_test_line")
    helper_line = _line_of(C_CASES, 'CHECK(v == 0, "the helper\'s check");')
    test_line = _line_of(C_CASES, "	shared_helper(1);")
    assert f"cases.c:{helper_line}: the helper's check" in case.diagnostics
    got = callsite.resolve(case.diagnostics, binary, "helper_failure_names_the_test_line", "cases.c")
    assert f"called from the test at cases.c:{test_line} (helper_failure_names_the_test_line)" in got
    assert not any(protocol.callers(d) for d in got)


def test_a_check_in_the_test_itself_gets_no_second_line(c_run):
    out, binary = c_run
    case = next(c for c in ktap.parse(out).cases if c.name == "failure_before_finding")
    got = callsite.resolve(case.diagnostics, binary, "failure_before_finding", "cases.c")
    assert not any(d.startswith("called from") for d in got), got
