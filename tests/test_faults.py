"""Host-side faults never read as a test verdict (issue: verdicts you can trust).

Each bad input gets one line and its own status; an unforeseen error gets the
internal-error status with its traceback in a log; bisect-step never says bad
for a harness fault; the cache survives torn files, killed fetches and two
runs at once; an interrupted run or bisection keeps what it had.
"""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import bisect, cache
from harness.errors import BuildError, ExitStatus, InfraError
from harness.fetch import apt, source
from harness.kernel import build
from harness.parse import protocol, verdicts
from harness.report import results
from harness.requests import Request, SourceRequest
from harness.run import guestprogs
from harness.vm import qemu

from helpers import git, harness_argv, make_fake_tree


def rwp(*args, env=None, cwd=None):
    return subprocess.run(harness_argv(*args), capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def _one_line(res, status, fragment):
    assert res.returncode == status, (res.returncode, res.stderr[-800:])
    assert "Traceback" not in res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("rwp-harness: ")]
    assert len(errors) == 1 and fragment in errors[0], res.stderr


# ---- 1. exit statuses ----

def test_non_utf8_fragment_is_bad_input(tmp_path, cache_dir):
    frag = tmp_path / "mine.config"
    frag.write_bytes(b"CONFIG_X=y\n# \xff\xfe\n")
    res = rwp("config", "--kernel-src", str(make_fake_tree(tmp_path / "k")), "--fragment",
              str(frag))
    _one_line(res, ExitStatus.BAD_INPUT, "not UTF-8")


def test_non_utf8_quilt_series_is_bad_input(tmp_path, cache_dir):
    d = tmp_path / "series-dir"
    d.mkdir()
    (d / "series").write_bytes(b"\xff.patch\n")
    res = rwp("fetch", "--kernel-src", str(make_fake_tree(tmp_path / "k")), "--patches", str(d))
    _one_line(res, ExitStatus.BAD_INPUT, "not UTF-8")


@pytest.mark.parametrize("text,fragment", [
    ("allow = 5\n", "array of tables"),
    ("[[allow]]\npattern = 'x'\nreason = 'r'\nexpires = 'soon'\n", "invalid"),
    ("[[allow]]\npattern = 3\nreason = 'r'\nexpires = 2030-01-01\n", "invalid"),
    ("[[allow]]\nreason = 'r'\nexpires = 2030-01-01\n", "has no 'pattern'"),
])
def test_bad_allowlist_values_are_bad_input(tmp_path, text, fragment):
    from harness.parse import splats
    from harness.errors import BadInput
    f = tmp_path / "allow.toml"
    f.write_text(text)
    with pytest.raises(BadInput, match=fragment):
        splats.Allowlist.load(f)


def test_a_results_dir_that_is_a_file_is_bad_input(tmp_path, cache_dir):
    f = tmp_path / "results"
    f.write_text("mine\n")
    res = rwp("run", "--results-dir", str(f), "--kernel-src", str(make_fake_tree(tmp_path / "k")))
    _one_line(res, ExitStatus.BAD_INPUT, "not a directory")
    assert f.read_text() == "mine\n"


@pytest.mark.parametrize("suite", ["sid main\ndeb http://x sid", "../etc", "Sid"])
def test_a_debian_suite_is_validated_before_it_reaches_apt(suite, cache_dir):
    res = rwp("fetch", "--debian-suite", suite)
    _one_line(res, ExitStatus.BAD_INPUT, "is not a Debian suite name")


def test_a_mirror_value_is_validated_before_it_reaches_apt(cache_dir):
    env = dict(os.environ, RWP_HARNESS_DEBIAN_MIRROR="http://x sid main\ndeb http://y")
    res = rwp("fetch", env=env)
    _one_line(res, ExitStatus.BAD_INPUT, "is not an http, https or file URL")


def test_a_non_utf8_mbox_is_bad_input_or_applies(tmp_path, cache_dir):
    mbox = tmp_path / "series.mbox"
    mbox.write_bytes(b"From x Mon Sep 17 00:00:00 2001\nSubject: \xff\xfe bad\n"
                     b"Content-Type: text/plain; charset=x-unknown\n\n\xff\n")
    res = rwp("fetch", "--kernel-src", str(make_fake_tree(tmp_path / "k")), "--patches", str(mbox))
    _one_line(res, ExitStatus.BAD_INPUT, "holds no patch")


def test_a_build_without_kernel_release_is_a_build_error(tmp_path, cache_dir):
    tree = make_fake_tree(tmp_path / "k")
    req = build.BuildRequest(source.from_tree(tree), tree, build_root=tmp_path / "b")
    bdir = tmp_path / "b"
    (bdir / "arch/x86/boot").mkdir(parents=True)
    (bdir / "arch/x86/boot/bzImage").write_bytes(b"x")
    (bdir / "hdr/include").mkdir(parents=True)
    (bdir / ".config").write_text("")
    (bdir / "config.ok").write_text(req.requested_config().digest() + "\n")
    (bdir / "build.ok").write_text("ok\n")
    immutable = build.BuildRequest(source.KernelSource(tree, "7.3.4", "tarball", "t", True),
                                   tree, build_root=bdir)
    with pytest.raises(BuildError, match="kernel.release"):
        build._build(immutable)
    assert not (bdir / "build.ok").exists()


def test_a_finished_build_is_used_while_another_build_holds_the_lock(tmp_path, cache_dir,
                                                                    monkeypatch):
    """A run of a finished package build need not wait behind another
    configuration's build (the debug profile's takes many minutes)."""
    tree = make_fake_tree(tmp_path / "k")
    bdir = tmp_path / "b"
    req = build.BuildRequest(source.KernelSource(tree, "7.3.4", "tarball", "t", True), tree,
                             build_root=bdir)
    (bdir / "arch/x86/boot").mkdir(parents=True)
    (bdir / "arch/x86/boot/bzImage").write_bytes(b"x")
    (bdir / "hdr/include").mkdir(parents=True)
    (bdir / "include/config").mkdir(parents=True)
    (bdir / "include/config/kernel.release").write_text("7.3.4\n")
    (bdir / ".config").write_text("")
    (bdir / "config.ok").write_text(req.requested_config().digest() + "\n")
    (bdir / "build.ok").write_text("ok\n")
    def taken(*a, **k):
        raise AssertionError("build() waited for the build lock")

    monkeypatch.setattr(cache, "lock", taken)
    got = build.build(req)
    assert (got.kernel_release, got.rebuilt) == ("7.3.4", False)
    (bdir / "build.ok").unlink()     # unfinished: build() must take the lock, so it is not
    assert build._finished(req) is None


INTERNAL = """
import sys

from harness import cli, pipeline
def boom(*a, **k):
    raise ValueError("a bug in the harness")
pipeline.{func} = boom
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command,status", [("fetch", ExitStatus.INTERNAL_ERROR),
                                            ("bisect-step", 128)])
def test_an_unforeseen_error_is_internal_with_its_traceback_in_a_log(tmp_path, cache_dir,
                                                                   command, status):
    func = "fetch" if command == "fetch" else "build_request"
    res = subprocess.run([sys.executable, "-c", INTERNAL.format(func=func), command,
                          "--kernel-src", str(make_fake_tree(tmp_path / "k"))],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    _one_line(res, status, "internal error")
    log = Path(res.stderr.split("traceback in ")[1].strip())
    assert "ValueError: a bug in the harness" in log.read_text()


def test_bisect_step_aborts_on_any_harness_error_never_bad(tmp_path, cache_dir):
    res = rwp("bisect-step", "--kernel-src", str(tmp_path / "nowhere"))
    _one_line(res, 128, "does not exist")


# ---- 3. the kernel asked for ----

def test_the_highest_version_wins_over_apts_pin_policy(monkeypatch):
    madison = ("linux-source-7.3 | 7.3.2-1 | http://m sid/main amd64 Packages\n"
               "linux-source-7.3 | 7.3.4-1~bpo13+1 | http://m trixie-backports/main amd64 Packages\n")
    monkeypatch.setattr(apt, "capture", lambda argv, cwd=None: (
        subprocess.CompletedProcess(argv, 0, madison, "") if "madison" in argv else
        subprocess.run(argv, capture_output=True, text=True)))
    a = apt.PrivateApt(Path("/nonexistent"))
    assert a.choose("linux-source-7.3") == ("7.3.4-1~bpo13+1", "trixie-backports")
    assert a.choose("linux-source-7.3", "7.3.2-1") == ("7.3.2-1", "sid")
    with pytest.raises(Exception, match="offered: 7.3.2-1, 7.3.4-1~bpo13"):
        a.choose("linux-source-7.3", "7.3.9-1")


def test_an_exact_version_is_accepted_and_parsed():
    r = SourceRequest(kernel_version="7.3.4-1~bpo13+1")
    r.check()
    assert (r.series, r.exact_version) == ("7.3", "7.3.4-1~bpo13+1")
    assert SourceRequest().exact_version is None


def test_an_unreachable_mirror_is_detected_though_apt_get_exits_zero(tmp_path):
    a = apt.PrivateApt(tmp_path / "apt", suites=("trixie-backports",),
                       mirror="http://127.0.0.1:9/debian")
    with pytest.raises(apt.MirrorUnreachable):
        a.update()


def _cached_source(cache_dir: Path, version="7.3.4-1~bpo13+1") -> Path:
    dest = cache_dir / "src" / f"linux-source-7.3_{version.replace('~', '_')}"
    make_fake_tree(dest)
    src = source.KernelSource(dest, "7.3.4", "debian", f"linux-source-7.3 {version}", True)
    cache.write_atomic(dest / source.MARKER, json.dumps(src.to_json()))
    return dest


def test_an_unreachable_mirror_uses_the_cached_source_with_a_notice(cache_dir, monkeypatch,
                                                                   capsys):
    _cached_source(cache_dir)
    monkeypatch.setenv("RWP_HARNESS_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    src = source.from_debian("7.3")
    assert src.identity == "linux-source-7.3 7.3.4-1~bpo13+1"
    assert "notice" in capsys.readouterr().err


def test_an_unreachable_mirror_without_a_cache_is_an_infrastructure_error(cache_dir):
    env = dict(os.environ, RWP_HARNESS_DEBIAN_MIRROR="http://127.0.0.1:9/debian")
    res = rwp("fetch", env=env)
    _one_line(res, ExitStatus.INFRA_FAILED, "--offline")


# ---- 4. the cache ----

def test_a_torn_source_marker_is_redone_not_a_traceback(cache_dir):
    dest = _cached_source(cache_dir)
    (dest / source.MARKER).write_text('{"path": "/x", "vers')
    assert source._cached(dest) is None
    res = rwp("fetch", "--offline")
    _one_line(res, ExitStatus.BAD_INPUT, "no unpacked linux-source-7.3")


def test_a_torn_kvm_probe_is_probed_again(cache_dir, monkeypatch):
    probe = cache.subdir("probe") / "kvm.json"
    probe.write_text('{"boot_id": ')
    assert qemu._saved_probe(probe) is None


@pytest.mark.parametrize("error,cached", [
    (qemu.BootPanic("the kernel panicked while booting: x"), False),
    (InfraError("no shell prompt from the guest within 40s"), False),
    (InfraError("VM with kvm did not reach a shell (x): qemu: failed to initialize kvm"), True),
])
def test_the_kvm_probe_remembers_only_a_clear_verdict(cache_dir, monkeypatch, tmp_path,
                                                      error, cached):
    monkeypatch.setattr(qemu.os, "access", lambda *a: True)

    def spawn(*a):
        raise error
    monkeypatch.setattr(qemu, "_spawn", spawn)
    assert qemu.kvm_works(qemu.VMRequest(tmp_path / "bzImage")) is False
    assert (cache.subdir("probe") / "kvm.json").exists() == cached


@pytest.mark.parametrize("tcg_boots", [True, False])
def test_a_kvm_timeout_is_remembered_once_tcg_boots_the_same_kernel(cache_dir, monkeypatch,
                                                                   tmp_path, tcg_boots):
    monkeypatch.setattr(qemu.os, "access", lambda *a: True)
    monkeypatch.setattr(qemu, "require", lambda *a: None)
    image = tmp_path / "bzImage"
    image.write_bytes(b"")
    accels = []

    def spawn(req, accel, deadline):
        accels.append(accel)
        if accel == "kvm":
            raise InfraError("no shell prompt from the guest within 40s")
        if not tcg_boots:
            raise InfraError("no shell prompt from the guest within 60s")
        return "vm"
    monkeypatch.setattr(qemu, "_spawn", spawn)
    req = qemu.VMRequest(image)
    if tcg_boots:
        assert qemu.boot(req) == "vm"
        assert qemu.boot(req) == "vm"
        assert accels == ["kvm", "tcg", "tcg"]      # the second boot skips the probe
    else:
        with pytest.raises(InfraError):
            qemu.boot(req)
        assert not (cache.subdir("probe") / "kvm.json").exists()


def _fetch_tarball(tarball, cache_root, out):
    os.environ["RWP_HARNESS_CACHE"] = str(cache_root)
    try:
        out.put(str(source.from_tarball(tarball).path))
    except BaseException as e:      # the parent asserts on what comes back
        out.put(f"error: {type(e).__name__}: {e}")


def _kernel_tarball(tmp_path) -> Path:
    tree = make_fake_tree(tmp_path / "linux-7.3.4")
    for i in range(200):
        (tree / "mm" / f"f{i}.c").write_text("x" * 20000)
    tarball = tmp_path / "linux.tar"
    subprocess.run(["tar", "-cf", str(tarball), "-C", str(tmp_path), "linux-7.3.4"], check=True)
    return tarball


def test_two_fetches_at_once_both_succeed(tmp_path, cache_dir):
    tarball = _kernel_tarball(tmp_path)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_fetch_tarball, args=(tarball, cache_dir, out)) for _ in (1, 2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    assert got[0] == got[1] and not got[0].startswith("error"), got
    assert (Path(got[0]) / "Makefile").exists()


def test_a_killed_unpack_is_swept_by_the_next_fetch(tmp_path, cache_dir):
    tarball = _kernel_tarball(tmp_path)
    left = cache.subdir("src") / ".unpack-killed"
    (left / "linux").mkdir(parents=True)
    source.from_tarball(tarball)
    assert not left.exists()


def test_a_run_waiting_on_a_lock_says_so(cache_dir):
    import fcntl
    path = cache.subdir("locks") / "fetch.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('held', flush=True); time.sleep(2)"), str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    probe = subprocess.run([sys.executable, "-c", (
        "from harness import cache\nwith cache.lock('fetch', notice_after=0.3): print('got it')")],
        capture_output=True, text=True, timeout=30, env=dict(os.environ,
                                                             RWP_HARNESS_CACHE=str(cache_dir)))
    holder.wait()
    assert "got it" in probe.stdout and "waiting for another run's 'fetch' lock" in probe.stderr
    del fcntl


def test_markers_are_written_atomically(tmp_path):
    target = tmp_path / "m"
    cache.write_atomic(target, "one\n")
    cache.write_atomic(target, "two\n")
    assert target.read_text() == "two\n" and list(tmp_path.iterdir()) == [target]


# ---- 5. interrupts ----

def test_an_interrupt_kills_the_whole_process_group(tmp_path):
    from harness.tools import run_group
    pidfile = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pidfile}; sleep 60"

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_group(["sh", "-c", script])
    finally:
        signal.signal(signal.SIGALRM, old)
    grandchild = int(pidfile.read_text())
    time.sleep(0.3)
    try:
        state = Path(f"/proc/{grandchild}/stat").read_text().split(")")[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z"), state      # killed: at most a zombie nobody reaped yet


def test_results_list_the_tests_a_stopped_run_never_reached(tmp_path):
    run = results.Run(tmp_path)
    run.planned = ["c/a::x", "c/a::y", "c/a::z"]
    run.add(verdicts.TestResult("c/a::x", verdicts.Status.PASS))
    run.save()
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["not_run"] == ["c/a::y", "c/a::z"] and doc["counts"]["not_run"] == 2
    assert not doc["complete"] and not doc["ok"]
    assert "# not run: c/a::z" in (tmp_path / "results.ktap").read_text()


def test_a_huge_output_is_capped_in_results_json():
    r = verdicts.TestResult("c/a::x", verdicts.Status.PASS, output="y" * (3 * 2**20))
    out = r.to_json()["output"]
    assert len(out) < verdicts.OUTPUT_CAP + 200 and "bytes cut" in out


def test_an_interrupted_bisection_writes_its_report(tmp_path, cache_dir, monkeypatch):
    repo = tmp_path / "linux"
    make_fake_tree(repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "tag", "base")
    for i in range(4):
        (repo / "mm" / "userfaultfd.c").write_text(f"int v{i};\n")
        git(repo, "commit", "-qam", f"commit {i}")
    calls = []

    def evaluate(req, breq, parent, same_as=None):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return bisect.Outcome.GOOD, "fine", {}, None
    monkeypatch.setattr(bisect, "evaluate", evaluate)
    req = Request(SourceRequest(kernel_src=repo),
                  run=__import__("harness.requests").requests.RunRequest(
                      results_dir=tmp_path / "res"),
                  bisect=__import__("harness.requests").requests.BisectRequest(good="base"))
    with pytest.raises(KeyboardInterrupt):
        bisect.run_bisection(req)
    assert not bisect.bisecting(repo)
    [report] = list((tmp_path / "res").glob("bisect-*/bisect.json"))
    doc = json.loads(report.read_text())
    assert doc["interrupted"] and len(doc["steps"]) == 1
    clone = next((cache_dir / "bisect").iterdir()) / "src"
    assert not bisect.bisecting(clone)


# ---- 6. bisect owns its state ----

def test_bisect_step_writes_nothing_into_the_tree_it_tests(tmp_path, cache_dir, monkeypatch):
    tree = make_fake_tree(tmp_path / "k")
    seen = {}

    def evaluate(req, breq, parent, same_as=None):
        seen["parent"] = parent
        return bisect.Outcome.GOOD, "fine", {}, None
    monkeypatch.setattr(bisect, "evaluate", evaluate)
    monkeypatch.chdir(tree)
    bisect.step_here(Request())
    assert cache_dir in seen["parent"].parents and tree not in seen["parent"].parents


def test_same_failure_makes_an_unrelated_failure_a_skip():
    bad = verdicts.TestResult("c/a::other", verdicts.Status.FAIL, "boom")
    ok = verdicts.TestResult("c/a::hunted", verdicts.Status.PASS)
    assert bisect.judge([bad, ok], frozenset({"c/a::hunted"}))[0] == bisect.Outcome.SKIP
    hunted = verdicts.TestResult("c/a::hunted", verdicts.Status.FAIL, "x")
    assert bisect.judge([bad, hunted], frozenset({"c/a::hunted"}))[0] == bisect.Outcome.BAD
    assert bisect.judge([bad, ok])[0] == bisect.Outcome.BAD


# ---- 7. quoting ----

def test_guest_commands_quote_every_path():
    staged = guestprogs.Staged(Path("/cache with space/guest/abc"))
    prog = guestprogs.GuestProgram("c/rwp_basic", "c", Path("rwp_basic.c"), ("a",))
    cmd = staged.command(prog, ("a",))
    assert cmd == "'/cache with space/guest/abc/bin/rwp_basic' a"
    line = protocol.bracket("/cache with space/harness/run-one.sh", "tok", 20, cmd,
                            {"RWP_DEADLINE_S": "20"})
    assert line.startswith("sh '/cache with space/harness/run-one.sh' tok 20 env RWP_DEADLINE_S=20 ")


def test_a_host_without_file_is_told_the_package_before_the_vm_starts(tmp_path, monkeypatch):
    """virtme-ng runs file(1) on a kernel it did not build: without it, vng dies with
    a traceback that read as 'the VM exited before reaching a shell'."""
    import shutil

    from harness.errors import MissingTool
    from harness.vm import qemu
    monkeypatch.setattr(shutil, "which", lambda prog, *a, **k: None if prog == "file" else "/bin/x")
    image = tmp_path / "vmlinuz"
    image.write_bytes(b"MZ")
    with pytest.raises(MissingTool, match=r"'file' not found; install it \(file\)") as e:
        qemu.boot(qemu.VMRequest(image))
    assert e.value.status == ExitStatus.MISSING_TOOL
