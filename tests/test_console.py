"""The console framing, against a local bash standing in for the guest shell."""

import hashlib
import os

import pexpect
import pytest

from harness.parse.protocol import START, frame
from harness.vm.console import GuestConsole


@pytest.fixture
def shell():
    env = dict(os.environ, PS1="root@guest:~# ", TERM="dumb")
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=env,
                          encoding="utf-8", timeout=20)
    yield child
    child.close(force=True)


@pytest.fixture
def console(shell):
    c = GuestConsole(shell)
    c.wait_for_shell(timeout=20)
    return c


def test_frame_markers_are_not_in_the_sent_line():
    line, start, end = frame("echo hi", "abc123")
    assert not start.search(line) and not end.search(line)
    assert start.search("@@RWPB:abc123@@\r\n")
    assert end.search("@@RWPE:abc123:7@@").group(1) == "7"


def test_exit_status_and_output_are_exact(console):
    res = console.run("printf 'a\\nb\\n'; exit_with() { return $1; }; exit_with 3", timeout=10)
    assert (res.output, res.status) == ("a\nb\n", 3)
    assert console.run("true", timeout=10).status == 0


def test_markers_survive_an_echoing_terminal(shell):
    # Without wait_for_shell the tty still echoes every command line.
    c = GuestConsole(shell)
    shell.expect(r"# $")
    res = c.run("echo visible", timeout=10)
    assert res.status == 0 and res.output.strip().endswith("visible")


def test_interleaved_noise_outside_the_frame_is_ignored(console):
    console.run("(sleep 0.3; echo '[   1.0] WARNING: noise') &", timeout=10)
    res = console.run("sleep 1; echo done", timeout=10)
    assert res.status == 0 and "done" in res.output
    assert console.run("echo after", timeout=10).output == "after\n"


def test_timeout_reports_no_status(console):
    res = console.run("sleep 5", timeout=1)
    assert res.timed_out and res.status is None


def test_push_file_roundtrip(console, tmp_path):
    data = os.urandom(20000) + b"\x00\x01'\"$`\\"
    local = tmp_path / "blob"
    local.write_bytes(data)
    remote = tmp_path / "guest" / "blob"
    console.push_file(local, str(remote))
    assert remote.read_bytes() == data
    res = console.run(f"sha256sum {remote}", timeout=10)
    assert res.output.split()[0] == hashlib.sha256(data).hexdigest()


def test_panic_on_the_console_ends_the_command_at_once(console):
    from harness.vm.console import GuestDied
    fake = ("printf '[ 1.0] Kernel panic - not syncing: dumptest\\n[ 1.1] Kernel Offset: disabled\\n"
            "[ 1.2] ---[ end Kernel panic - not syncing: dumptest ]---\\n'; sleep 30")
    with pytest.raises(GuestDied) as e:
        console.run(fake, timeout=60)
    assert "dumptest ]---" in e.value.output and "Kernel Offset" in e.value.output


def test_a_line_longer_than_the_tty_takes_is_refused_at_once(console):
    from harness.errors import InfraError
    with pytest.raises(InfraError, match="longer than the guest's tty takes"):
        console.run("echo " + "x" * 5000, timeout=5)
    assert console.run("echo still-here", timeout=5).output.strip() == "still-here"


def test_a_shell_that_loses_the_first_lines_is_asked_again(monkeypatch):
    # Stands in for a guest shell whose tty flushes what was typed while it
    # was starting: the first two lines (set-up and a framed command) vanish.
    from harness.vm import console as console_mod
    monkeypatch.setattr(console_mod, "SHELL_ANSWER_S", 2.0)
    _answers_after_boot("printf '# '; read -r a; read -r b; exec bash --norc -i", PS1="# ")


def test_a_prompt_that_arrives_with_dashs_ndelay_line_is_seen():
    # A slow guest hands the prompt and dash's complaint over in one read, so
    # the prompt is not the last thing received, and no more output follows.
    # A shell without a prompt of its own: a second prompt would hide the bug.
    _answers_after_boot("printf '# sh: turning off NDELAY mode\\r\\n'; "
                        "while IFS= read -r line; do eval \"$line\"; done")


def _answers_after_boot(script: str, **env) -> None:
    """A stand-in guest that starts with script: the console must find its
    shell and get an answer from it."""
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-c", script],
                          env=dict(os.environ, TERM="dumb", **env), encoding="utf-8", timeout=20)
    try:
        c = GuestConsole(child)
        c.wait_for_shell(timeout=20)
        assert c.run("echo answered", timeout=10).output.strip() == "answered"
    finally:
        child.close(force=True)


def test_sixteen_mib_of_output_is_judged_within_its_deadline(console):
    # pexpect searched the whole buffer on every read: 106 s for this once.
    import time
    began = time.monotonic()
    res = console.run("head -c 16777216 /dev/zero | tr '\\0' x | fold -w 4095", timeout=60)
    took = time.monotonic() - began
    assert res.status == 0 and len(res.output) >= 16 * 2**20
    assert took < 60, took


def test_progress_markers_reset_the_idle_deadline_and_silence_ends_it(console):
    steps = "; ".join(f"echo @@RWPSTART t{i}; sleep 0.6" for i in range(4))
    res = console.run(steps, timeout=30, progress=START, idle=1.5)
    assert res.status == 0 and res.progress == ("t0", "t1", "t2", "t3")
    res = console.run("echo @@RWPSTART a; echo @@RWPSTART b; sleep 5", timeout=30,
                      progress=START, idle=1.0)
    assert res.timed_out and res.progress == ("a", "b") and res.duration < 4


def test_progress_cannot_stretch_the_whole_deadline(console):
    res = console.run("while :; do echo @@RWPSTART t; sleep 0.3; done", timeout=3,
                      progress=START, idle=2)
    assert res.timed_out and res.duration < 6
