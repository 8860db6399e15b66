"""The live progress line: redrawn on a terminal, a plain line at most every
30 s without one, nothing that fails a phase."""

import re
import subprocess
import sys
import textwrap

import pexpect

from harness import progress

SCRIPT = textwrap.dedent("""
    import time
    from harness import progress
    n = {"done": 0}
    def poll():
        n["done"] += 1
        return progress.Snapshot.of(n["done"], 10, "objects")
    print("[build] ...", file=__import__("sys").stderr, flush=True)
    with progress.watch("build", poll, every=0.1):
        time.sleep(1.2)
    print("[build] done", file=__import__("sys").stderr, flush=True)
""")


def test_describe_gives_done_total_and_time_left():
    assert progress.describe("build", progress.Snapshot(250, 1000, "objects"), 60.0) == \
        "[build] 250/1000 objects (25%), 1m00s, ~3m00s left"
    assert progress.describe("tests", progress.Snapshot(3, 10, "tests", "3 pass, 0 fail"),
                             5.0) == "[tests] 3/10 tests (30%), 5s, ~11s left; 3 pass, 0 fail"
    assert progress.describe("boot", progress.Snapshot(12, None, ""), 12.0) == "[boot] 12s"
    # A total the count outran was a wrong estimate: it is dropped, not shown as 120%.
    assert progress.Snapshot.of(1200, 1000, "objects").total is None


def test_a_log_counter_counts_only_what_was_appended(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("  CC      old.o\n")
    counter = progress.LogCounter(log, ("  CC ", "  AS "))
    with log.open("a") as f:
        f.write("  CC      mm/memory.o\n  AS      arch/x86/entry/entry_64.o\n  LD      vmlinux\n  CC  ")
    assert counter.poll() == 2
    with log.open("a") as f:
        f.write("    mm/userfaultfd.o\n")
    assert counter.poll() == 3


def test_plain_lines_come_at_most_every_30s(monkeypatch):
    out = __import__("io").StringIO()
    clock = iter([0.0, 1.0, 29.0, 31.0, 45.0, 62.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    bar = progress.Progress("build", out, live=False)
    for done in (1, 2, 3, 4, 5):
        bar.update(progress.Snapshot(done, 10, "objects"))
    assert out.getvalue().splitlines() == ["[build] 3/10 objects (30%), 31s, ~1m12s left",
                                           "[build] 5/10 objects (50%), 1m02s, ~1m02s left"]


def test_a_failing_poll_does_not_stop_the_phase():
    def poll():
        raise OSError("the log went away")
    with progress.watch("build", poll, live=False, every=0.01):
        __import__("time").sleep(0.05)


def test_the_line_is_redrawn_on_a_terminal_and_absent_without_one(tmp_path):
    child = pexpect.spawn(sys.executable, ["-c", SCRIPT], env={"TERM": "xterm", "PATH": "/usr/bin:/bin",
                          "PYTHONPATH": str(__import__("pathlib").Path(progress.__file__).parent.parent)},
                          encoding="utf-8", timeout=30, dimensions=(24, 120))
    child.expect(pexpect.EOF)
    seen = child.before
    assert "[build] done" in seen
    assert "objects" in seen and "/10" in seen and "\x1b[" in seen     # rich redrew it
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen)
    # The live line names its phase: "[build]" is not taken for a style tag.
    assert re.search(r"\[build\] \S+ \d+/10 objects", plain), plain[-500:]
    piped = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                           timeout=30, env={"TERM": "xterm", "PATH": "/usr/bin:/bin",
                                            "PYTHONPATH": child.env["PYTHONPATH"]})
    assert piped.stderr.splitlines() == ["[build] ...", "[build] done"]   # under 30 s: no line
    assert "\x1b[" not in piped.stderr


def test_ci_and_dumb_terminals_get_plain_lines(monkeypatch):
    class Tty:
        def isatty(self):
            return True
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("RWP_HARNESS_PLAIN_PROGRESS", raising=False)
    assert progress.live_terminal(Tty())
    monkeypatch.setenv("CI", "true")
    assert not progress.live_terminal(Tty())
    monkeypatch.delenv("CI")
    monkeypatch.setenv("TERM", "dumb")
    assert not progress.live_terminal(Tty())


def test_a_build_of_every_object_is_one_with_nothing_built_or_a_fresh_config(tmp_path):
    """A bisection directory reconfigured for new fragments recompiles nearly
    everything: its progress has the expected total, like a first build."""
    from harness.kernel.build import builds_all
    assert builds_all(tmp_path, configured=False)          # nothing built yet
    (tmp_path / "vmlinux").write_bytes(b"")
    assert not builds_all(tmp_path, configured=False)      # an incremental rebuild
    assert builds_all(tmp_path, configured=True)           # fragments changed
