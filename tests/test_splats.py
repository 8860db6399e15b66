import datetime as dt

import pytest

from harness.errors import BadInput
from harness.parse import splats

from helpers import DATA


def _find(name):
    return splats.find((DATA / name).read_text())


def test_warning_is_cut_whole_from_cut_here_to_end_trace():
    [s] = _find("kmsg-warning.log")
    assert s.kind == "warning"
    assert s.title.startswith("WARNING: CPU: 0 PID: 101 at drivers/misc/lkdtm/bugs.c:107")
    lines = s.text.splitlines()
    assert "cut here" in lines[0] and "end trace" in lines[-1]
    assert not any("rwp-harness:" in l for l in lines)


def test_two_reports_are_two_splats():
    found = _find("kmsg-bug-then-warning.log")
    assert [s.kind for s in found] == ["bug", "warning"]
    assert "Oops: invalid opcode" in found[0].text
    assert found[1].title.startswith("WARNING: CPU: 1 PID: 141 at mm/userfaultfd.c")


def test_hung_task_report_keeps_its_stack():
    [s] = _find("kmsg-hung-task.log")
    assert s.kind == "hung-task" and "lkdtm_HUNG_TASK" in s.text


def test_panic_on_console_among_test_output():
    [s] = _find("console-panic.log")
    assert s.kind == "panic" and s.title == "Kernel panic - not syncing: dumptest"
    assert s.text.splitlines()[-1].endswith("---[ end Kernel panic - not syncing: dumptest ]---")


@pytest.mark.parametrize("line, kind", [
    ("BUG: KASAN: slab-use-after-free in foo+0x1/0x2", "kasan"),
    ("BUG: KFENCE: out-of-bounds read in bar", "kfence"),
    ("UBSAN: array-index-out-of-bounds in mm/x.c:1:2", "ubsan"),
    ("WARNING: possible circular locking dependency detected", "lockdep"),
    ("rcu: INFO: rcu_preempt self-detected stall on CPU", "rcu-stall"),
    ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a:1]", "soft-lockup"),
    ("Oops: general protection fault, probably for non-canonical address", "gpf"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000000", "oops"),
])
def test_every_report_kind_is_recognised(line, kind):
    [s] = splats.find(f"[    1.000000] {line}\n[    1.000001] Call Trace:\n")
    assert s.kind == kind


def test_ordinary_kernel_lines_are_not_splats():
    log = "[ 1.0] 9p: Installing v9fs\n[ 1.1] rwp-harness: begin x\n[ 1.2] BUGS: none here\n"
    assert splats.find(log) == []


def test_allowlist_excuses_until_expiry(tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text('[[allow]]\npattern = "lkdtm/bugs.c:107"\nreason = "provoked"\n'
                    'expires = 2027-01-31\n')
    allow = splats.Allowlist.load(path)
    [s] = _find("kmsg-warning.log")
    assert allow.excuse(s, today=dt.date(2027, 1, 31)).reason == "provoked"
    assert allow.excuse(s, today=dt.date(2027, 2, 1)) is None
    [bug, warn] = _find("kmsg-bug-then-warning.log")
    assert allow.excuse(bug, today=dt.date(2026, 1, 1)) is None


@pytest.mark.parametrize("text", [
    "[[allow]]\npattern = \"x\"\nreason = \"r\"\n",
    "[[allow]]\npattern = \"(\"\nreason = \"r\"\nexpires = 2027-01-01\n",
    "not toml at all [",
])
def test_bad_allowlist_is_bad_input(tmp_path, text):
    path = tmp_path / "allow.toml"
    path.write_text(text)
    with pytest.raises(BadInput):
        splats.Allowlist.load(path)


# Logs saved from a real run of guest/selftest/lkdtm_faults.py on Linux 7.3.4.

def test_real_lkdtm_warning():
    found = _find("lkdtm-warning.log")
    assert [s.kind for s in found] == ["warning"]
    assert found[0].title.startswith("WARNING: drivers/misc/lkdtm/bugs.c:164 at lkdtm_WARNING")
    assert found[0].text.splitlines()[-1].rstrip().endswith("---[ end trace 0000000000000000 ]---")


def test_real_lkdtm_bug_is_one_splat_with_its_oops():
    found = _find("lkdtm-bug.log")
    assert [s.kind for s in found] == ["bug"]
    assert "Oops: invalid opcode" in found[0].text and "lkdtm_BUG" in found[0].text


def test_real_panic_from_the_console():
    found = _find("lkdtm-panic.log")
    assert [s.kind for s in found] == ["panic"]
    assert found[0].title == "Kernel panic - not syncing: dumptest"


def test_real_hung_task_with_sysrq_dumps():
    found = _find("lkdtm-hung_task.log")
    assert found[0].kind == "hung-task"
    assert "lkdtm_HUNG_TASK" in found[0].text
    # The sysrq task dumps that follow are evidence, not further splats.
    assert {s.kind for s in found} == {"hung-task"}
