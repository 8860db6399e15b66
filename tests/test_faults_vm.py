"""Host faults on the real kernel: QEMU killed from outside mid-run, Ctrl-C
while booting, and a cache path with a space under the shared transport."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import pipeline
from harness.errors import ExitStatus
from harness.parse import splats
from harness.parse.verdicts import Status
from harness.requests import RunRequest
from harness.run import guestprogs
from harness.run.guest import Guest
from harness.vm import qemu

from helpers import harness_argv

pytestmark = pytest.mark.vm


def _qemus(marker: str) -> list[int]:
    """QEMU processes whose command line carries marker."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in cmd and marker.encode() in cmd:
                pids.append(int(p.name))
    return pids


def _wait_for(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _start_run(tmp_path, marker, *extra):
    # Output to files: a pipe nobody reads until the end would block the run.
    out, err = open(tmp_path / "stdout", "w"), open(tmp_path / "stderr", "w")
    results = tmp_path / "runs"
    # SIGINT as a terminal would deliver it: a shell starting this suite in the
    # background (`make test &`) leaves it ignored, and Python keeps it so.
    return subprocess.Popen(harness_argv("run", "--results-dir", str(results), "--json",
                                         "--append", f"rwp_test_marker={marker}", *extra),
                            stdout=out, stderr=err, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _finish(proc, tmp_path, timeout):
    proc.wait(timeout=timeout)
    return (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()


def test_qemu_killed_from_outside_is_an_infrastructure_event_not_a_failure(tmp_path,
                                                                           guest_session):
    guest_session.kernel()                  # built, so that `run` finds it
    marker = secrets.token_hex(4)
    proc = _start_run(tmp_path, marker, "-k", "c/rwp_contract::")
    err = tmp_path / "stderr"
    # Once in the batch, and once more in the one-at-a-time rerun it causes.
    for stage in ("[tests] ...", "one at a time"):
        _wait_for(lambda: stage in err.read_text(), 300, stage)
        [pid] = _wait_for(lambda: _qemus(marker), 240, "QEMU to start")
        if stage == "one at a time":
            log = next((tmp_path / "runs").iterdir()) / "console.log"
            seen = log.read_text(errors="replace").count("@@RWPGUESTNS")
            _wait_for(lambda: log.read_text(errors="replace").count("@@RWPGUESTNS") > seen + 1,
                      240, "a test to run after the reboot")
        time.sleep(1)
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: pid not in _qemus(marker), 30, "QEMU to go")
    out, err = _finish(proc, tmp_path, 600)
    assert proc.returncode == ExitStatus.INFRA_FAILED, err[-2000:]
    assert "died without a kernel report again" in err
    [run_dir] = list((tmp_path / "runs").iterdir())
    doc = json.loads((run_dir / "results.json").read_text())
    assert not doc["complete"] and doc["not_run"]
    assert not [t for t in doc["tests"] if t["status"] in ("fail", "error")], \
        [(t["id"], t["reason"]) for t in doc["tests"] if t["status"] != "pass"]
    assert doc["manifest"]["quiet_vm_deaths"] == 2
    assert _qemus(marker) == []


def test_ctrl_c_while_booting_leaves_no_qemu(tmp_path, guest_session):
    guest_session.kernel()
    marker = secrets.token_hex(4)
    proc = _start_run(tmp_path, marker, "-k", "c/rwp_basic::")
    _wait_for(lambda: _qemus(marker), 240, "QEMU to start")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = _finish(proc, tmp_path, 120)
    assert proc.returncode == ExitStatus.INTERRUPTED, err[-1500:]
    time.sleep(1)
    assert _qemus(marker) == []
    [run_dir] = list((tmp_path / "runs").iterdir())
    doc = json.loads((run_dir / "results.json").read_text())
    assert not doc["complete"] and len(doc["not_run"]) == 7


def test_programs_under_a_path_with_a_space_run_over_the_shared_filesystem(tmp_path,
                                                                           guest_session):
    bres = guest_session.kernel()
    session = pipeline.Session(RunRequest(transport="shared"), bres, tmp_path / "console.log")
    spaced = Path(f"/tmp/rwp cache {secrets.token_hex(3)}")
    shutil.copytree(session.staged.root, spaced, symlinks=True)
    try:
        staged = guestprogs.Staged(spaced)
        guest = Guest(lambda: qemu.boot(pipeline.vm_request(RunRequest(), bres, None)), staged,
                      "shared")
        prog = next(p for p in guestprogs.discover() if p.name == "c/rwp_basic")
        from harness.run import batch
        res = list(batch.run_program(guest, prog, list(prog.subtests), lambda s: 20.0,
                                     splats.Allowlist()))
        guest.stop()
        assert guest.staged == staged
        assert all(r.status in (Status.PASS, Status.SKIP) for r in res), \
            [(r.test_id, r.reason) for r in res]
    finally:
        shutil.rmtree(spaced, ignore_errors=True)

