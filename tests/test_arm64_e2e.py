"""End to end on a real arm64 kernel from this x86_64 host: cross-built, booted
under TCG on the Debian arm64 root the harness makes, the basic programs of
both languages run, a kernel WARNING charged to the test that caused it, and
the userfaultfd ABI of guest/py/uffd.py checked against the arm64 headers on
the arm64 guest itself (its syscall numbers are not x86_64's).

The whole suite on arm64 is `make check ARGS="--arch arm64"`, not CI's.
"""

import json
import shlex
import shutil
import subprocess

import pytest

from harness import arch
from harness.errors import ExitStatus
from harness.fetch import guestroot
from harness.requests import KernelRequest, RunRequest, SourceRequest
from harness import pipeline
from harness.run.guestprogs import GUEST_DIR, gcc_argv
from harness.tools import run_group

from helpers import harness_argv

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(arch.ARM64.native, reason="the host is arm64: not a cross run"),
              pytest.mark.skipif(not (shutil.which(arch.ARM64.gcc) and shutil.which(arch.ARM64.qemu)),
                                 reason="no arm64 cross compiler or QEMU: make setup-arm64 "
                                        "(make test runs it)")]

SELECTION = ["c/rwp_basic", "py/rwp_basic", "lkdtm_faults::healthy_before",
             "lkdtm_faults::warning", "lkdtm_faults::healthy_after_warning"]


@pytest.fixture(scope="module")
def arm64_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("arm64")
    argv = ["check", "--arch", "arm64", "--suite", "c", "--suite", "py", "--suite", "selftest",
            "--results-dir", str(out), "--json"]
    for sel in SELECTION:
        argv += ["-k", sel]
    res = subprocess.run(harness_argv(*argv), capture_output=True, text=True, timeout=3600,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == ExitStatus.TESTS_FAILED, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    return doc, {t["id"]: t for t in doc["tests"]}


def test_the_run_is_an_arm64_kernel_on_an_arm64_root(arm64_run):
    doc, _ = arm64_run
    man = doc["manifest"]
    assert doc["complete"]
    assert man["arch"]["name"] == "arm64" and man["arch"]["cross_compiler"] is True
    assert man["guest_root"]["suite"] == guestroot.SUITE
    assert "python3" in man["guest_root"]["packages"]
    assert man["host"]["compiler"].startswith("aarch64-linux-gnu-gcc")
    assert man["accel"] == "tcg" and "--arch" in man["vng"]
    assert man["guest_capabilities"]["rwp"] is True
    assert man["cpus_online"] == 2 and man["transport"] == "shared"


def test_the_basic_programs_pass_on_arm64(arm64_run):
    _, tests = arm64_run
    basic = {i: t for i, t in tests.items() if "/rwp_basic::" in i}
    assert {i.split("/")[0] for i in basic} == {"c", "py"}
    assert all(t["status"] == "pass" for t in basic.values()), \
        {i: t["status"] for i, t in basic.items()}


def test_a_warning_is_charged_to_its_test_on_arm64(arm64_run):
    _, tests = arm64_run
    [warn] = [t for i, t in tests.items() if i.endswith("::warning")]
    assert warn["status"] == "fail" and warn["reason"].startswith("kernel splat: WARNING:")
    assert warn["splats"][0]["kind"] == "warning" and "lkdtm" in warn["splats"][0]["text"]
    healthy = [t for i, t in tests.items() if "::healthy_" in i]
    assert len(healthy) == 2 and all(t["status"] == "pass" for t in healthy)


def test_uffd_py_agrees_with_the_arm64_headers_on_the_arm64_guest(arm64_run, tmp_path):
    """uffd_abi.c built for arm64 and uffd_abi.py on the guest's Python print
    the same facts (test_abi.py does this for x86_64 on the host)."""
    req_kernel = KernelRequest(arch=arch.ARM64)
    _, bres = pipeline.kernel(SourceRequest(offline=True), req_kernel, {}, build_it=False)
    exe = tmp_path / "uffd_abi"
    res = run_group(gcc_argv([GUEST_DIR / "abi/uffd_abi.c"], exe, bres.headers,
                             cc=arch.ARM64.gcc))
    assert res.returncode == 0, res.stderr
    session = pipeline.Session(RunRequest(), bres, tmp_path / "console.log")
    try:
        console = session.guest.console()
        where = "/tmp/rwp-abi"
        for local, remote in ((exe, "abi/uffd_abi"), (GUEST_DIR / "abi/uffd_abi.py",
                                                      "abi/uffd_abi.py"),
                              (GUEST_DIR / "py/uffd.py", "py/uffd.py")):
            console.push_file(local, f"{where}/{remote}")
        c_side = console.run(f"chmod +x {where}/abi/uffd_abi && {where}/abi/uffd_abi",
                             timeout=120)
        py_side = console.run(shlex.join(["python3", f"{where}/abi/uffd_abi.py"]), timeout=120)
        machine = console.run("uname -m", timeout=60).output.strip()
    finally:
        session.close()
    assert machine == "aarch64"
    assert c_side.status == 0 and py_side.status == 0, c_side.output + py_side.output
    c_abi = dict(line.split() for line in c_side.output.splitlines() if line.strip())
    py_abi = dict(line.split() for line in py_side.output.splitlines() if line.strip())
    assert c_abi["__NR_userfaultfd"] == "282"       # the generic table, not x86_64's 323
    assert py_abi == c_abi
