"""End to end on a real kernel: the session VM that also runs the guest suite."""

import json
import subprocess

import pytest

from harness.kernel import kconfig
from harness.parse import splats
from harness.parse.verdicts import Status
from harness.run import guestprogs, runner
from harness.run.guest import PUSH_ROOT, cpus_online

from helpers import harness_argv

pytestmark = pytest.mark.vm


def test_guest_runs_the_kernel_we_built(guest_session):
    console = guest_session.booted().guest.console()
    res = console.run("uname -r", timeout=60)
    assert res.status == 0
    assert res.output.strip() == guest_session.kernel().kernel_release


def test_exit_status_crosses_the_console(guest_session):
    console = guest_session.booted().guest.console()
    assert console.run("sh -c 'exit 42'", timeout=60).status == 42
    res = console.run("echo out; echo err >&2; false", timeout=60)
    assert (res.output, res.status) == ("out\nerr\n", 1)


def test_guest_capabilities_are_probed(guest_session):
    caps = guest_session.booted().guest.capabilities
    assert caps["kernel"] == guest_session.kernel().kernel_release
    assert int(caps["uffd_features"], 16) != 0 and "error" not in caps


def test_the_guest_has_every_cpu_it_was_given(guest_session):
    """Race tests need a second CPU: a kernel without ACPI found only the boot CPU."""
    session = guest_session.booted()
    assert cpus_online(session.guest.capabilities) == session.run.cpus
    assert session.cpu_shortfall() is None


def test_programs_pushed_over_the_console_give_the_same_results(guest_session):
    """The fallback transport: no shared filesystem, bytes typed into the console."""
    guest = guest_session.booted().guest
    console = guest.console()
    local = guest.local
    pushed = guestprogs.Staged(PUSH_ROOT)
    for rel in ("bin/rwp_basic", "harness/run-one.sh"):
        console.push_file(local.root / rel, str(pushed.root / rel))
        res = console.run(f"cmp {local.root / rel} {pushed.root / rel}", timeout=60)
        assert res.status == 0, res.output
    prog = next(p for p in guestprogs.discover() if p.name == "c/rwp_basic")
    allow = splats.Allowlist()
    via_share = [runner.run_test(guest, prog, s, 60, allow) for s in prog.subtests]
    guest.staged = pushed
    try:
        via_push = [runner.run_test(guest, prog, s, 60, allow) for s in prog.subtests]
    finally:
        guest.staged = local
    assert [r.status for r in via_push] == [r.status for r in via_share]
    assert all(r.status in (Status.PASS, Status.SKIP) for r in via_push)


def test_old_kernel_skips_rwp_and_exits_zero(tmp_path):
    """Debian's 7.2 predates RWP: RWP tests skip with the reason, refusals pass, exit 0."""
    res = subprocess.run(harness_argv("check", "--kernel-version", "7.2", "--results-dir",
                                      str(tmp_path)), capture_output=True, text=True,
                         timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    [run_dir] = list(tmp_path.iterdir())
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["complete"] and doc["manifest"]["kernel_release"].startswith("7.2")
    assert doc["manifest"]["guest_capabilities"]["rwp"] is False
    refusals = ["c/rwp_contract::rwp_refused_when_not_advertised",
                "c/rwp_contract::rwp_ioctls_unknown_when_not_advertised",
                "py/rwp_contract::rwp_refused_when_not_advertised"]
    tests = {t["id"]: t for t in doc["tests"]}
    for refusal in refusals:
        assert tests[refusal]["status"] == "pass", tests[refusal]
    others = [t for tid, t in tests.items() if tid not in refusals]
    assert others, "the 7.2 run ran no RWP test"
    for t in others:
        assert t["status"] == "skip", t
        assert t["reason"] == "kernel does not advertise UFFD_FEATURE_RWP", t


def test_peer_suite_reports_upstream_cases_beside_ours(tmp_path):
    """The tree's own uffd-unit-tests, built from the same source, in the same kind of VM."""
    res = subprocess.run(harness_argv("check", "--suite", "peer", "--results-dir",
                                      str(tmp_path), "--json"), capture_output=True,
                         text=True, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    tests = {t["id"]: t for t in json.loads(res.stdout)["tests"]}
    rwp = [t for tid, t in tests.items() if tid.startswith("peer/uffd-unit-tests::rwp-")]
    assert len(rwp) >= 10, sorted(tests)
    assert all(t["status"] in ("pass", "skip") for t in rwp)
    assert tests["peer/uffd-unit-tests::rwp-async__anon"]["status"] == "pass"
    assert tests["peer/uffd-unit-tests::kernel_log"]["status"] == "pass"
    assert not any(" " in tid for tid in tests)


def test_tcg_guest_is_told_the_tsc_rate():
    from harness.vm import qemu
    cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2596.122\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n"
    assert qemu.host_tsc_khz(cpuinfo) == 2596122
    assert qemu.host_tsc_khz(cpuinfo.replace(" constant_tsc", "")) is None
    assert qemu.host_tsc_khz("processor\t: 0\n") is None


@pytest.mark.parametrize("profile", kconfig.profile_names())
def test_every_profile_keeps_its_options_on_the_default_kernel(profile, guest_session):
    """A profile whose options olddefconfig drops would stop its first real use
    (the debug profile did: tinyconfig's SLUB_TINY rules out KASAN)."""
    guest_session.kernel()                  # the default source is fetched
    res = subprocess.run(harness_argv("config", "--offline", "--profile", profile),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
