"""Deadlines scale with the guest's measured speed unless the user set one."""

import argparse
import dataclasses

from harness import requests
from harness import pipeline
from harness.run import deadlines, guestprogs
from harness.run.guest import cpus_online
from harness.run.runner import deadline_env


def test_a_slower_guest_gets_longer_deadlines_and_a_faster_one_keeps_them():
    ref = deadlines.REFERENCE_S
    assert deadlines.scale({"calibration_s": ref * 3}) == 3.0
    assert deadlines.scale({"calibration_s": ref / 2}) == 1.0
    assert deadlines.scale({"calibration_s": ref * 100}) == deadlines.MAX_SCALE


def test_a_guest_without_a_calibration_keeps_the_default():
    for caps in ({}, {"calibration_s": "soon"}, {"calibration_s": -1}, {"calibration_s": True}):
        assert deadlines.scale(caps) == 1.0


def test_only_a_default_test_timeout_scales():
    given = requests.from_args(argparse.Namespace(test_timeout=120.0)).run
    default = requests.from_args(argparse.Namespace(test_timeout=None)).run
    assert (given.test_timeout, given.scale_deadlines) == (120.0, False)
    assert (default.test_timeout, default.scale_deadlines) == (requests.TEST_TIMEOUT_S, True)


def test_a_tests_own_deadline_reaches_the_guest_scaled():
    prog = guestprogs.discover()[0]
    sub, own = prog.subtests[0], 15
    prog = dataclasses.replace(prog, timeouts=((sub, own),))
    env = deadline_env(prog, 60.0, lambda s: prog.timeout(s, 20.0) * 3)
    assert env["RWP_DEADLINE_S"] == "60"
    assert f"{sub}={int(own * 3)}" in env["RWP_DEADLINES"].split(",")


def test_the_online_cpu_count_is_read_from_the_guests_cpulist():
    assert [cpus_online({"cpus_online": v}) for v in ("0", "0-1", "0-3,6", "0,2-3")] == [1, 2, 5, 3]
    assert cpus_online({}) is None and cpus_online({"cpus_online": "soon"}) is None


def test_a_guest_with_fewer_cpus_than_asked_for_is_said_to_be_so():
    def session(online, cpus=2):
        s = pipeline.Session.__new__(pipeline.Session)
        s.run = requests.RunRequest(cpus=cpus)
        s.guest = type("G", (), {"capabilities": {"cpus_online": online}})()
        return s
    assert "1 CPU(s) online of the 2 asked for" in session("0").cpu_shortfall()
    assert session("0-1").cpu_shortfall() is None
    assert session("0", cpus=1).cpu_shortfall() is None
