"""End to end on a real kernel: the session VM that also runs the guest suite."""

import json
import os
import subprocess
import sys

import pytest

from harness import guestprogs, ktap, runner

pytestmark = pytest.mark.vm


def test_guest_runs_the_kernel_we_built(guest_session):
    machine = guest_session.vm()
    res = machine.console.run("uname -r", timeout=60)
    assert res.status == 0
    assert res.output.strip() == guest_session.kernel().kernel_release


def test_exit_status_crosses_the_console(guest_session):
    console = guest_session.vm().console
    assert console.run("sh -c 'exit 42'", timeout=60).status == 42
    res = console.run("echo out; echo err >&2; false", timeout=60)
    assert (res.output, res.status) == ("out\nerr\n", 1)


def test_programs_pushed_over_the_console_give_the_same_results(guest_session):
    """The fallback transport: no shared filesystem, bytes typed into the console."""
    machine = guest_session.vm()
    local = guestprogs.stage(guest_session.kernel().headers)
    pushed = guestprogs.Staged(runner.PUSH_ROOT)
    prog = next(p for p in guestprogs.discover() if p.name == "c/rwp_basic")
    machine.console.push_file(local.root / "bin" / "rwp_basic", str(pushed.root / "bin/rwp_basic"))
    res = machine.console.run(f"cmp {local.root / 'bin/rwp_basic'} {pushed.root / 'bin/rwp_basic'}",
                              timeout=60)
    assert res.status == 0, res.output
    via_push = runner.run_program(machine.console, pushed, prog)
    via_share = runner.run_program(machine.console, local, prog)
    assert [s.status for s in via_push.subtests] == [s.status for s in via_share.subtests]
    assert all(s.status in (ktap.Status.PASS, ktap.Status.SKIP) for s in via_push.subtests)


def test_old_kernel_skips_rwp_and_exits_zero(tmp_path):
    """Debian's 7.2 predates RWP: every RWP test skips with the reason, the run passes."""
    res = subprocess.run([sys.executable, "-m", "harness.cli", "check", "--kernel-version", "7.2",
                          "--results-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    [run_dir] = list(tmp_path.iterdir())
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["complete"] and doc["manifest"]["kernel_release"].startswith("7.2")
    subtests = [s for p in doc["programs"] for s in p["subtests"]]
    assert subtests, "the 7.2 run ran no test"
    for s in subtests:
        assert s["status"] == "skip", s
        assert s["reason"] == "kernel does not advertise UFFD_FEATURE_RWP", s
