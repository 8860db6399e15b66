"""The guest shell over a pexpect console, with framed commands.

Each command is wrapped between a start and an end marker that carry a unique
token and the command's exit status. The markers are assembled by printf at
run time, so the echoed command line never matches them, and the kernel
writing to the same console cannot be mistaken for either.
"""

import base64
import re
import shlex
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pexpect

from harness.errors import InfraError
from harness.parse.protocol import frame


class GuestDied(InfraError):
    """The console closed under a command: a panic, or QEMU exited."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output

class BootPanic(InfraError):
    """The kernel panicked before the shell came up."""


# The prompt ends what has arrived, unless dash's complaint about a
# non-blocking tty came in the same read: then nothing follows it.
_PROMPT = re.compile(r"[#$] ?$|[#$] \S*$|[#$] sh: turning off NDELAY mode")
# Whatever QEMU does after a panic (exit, reboot, hang), the run must not wait
# for a marker that will never come.
_PANIC = re.compile(r"Kernel panic - not syncing")
_PANIC_END = re.compile(r"---\[ end Kernel panic[^\]]*\]---")
PANIC_DRAIN_S = 10.0
# A canonical-mode tty takes at most 4095 bytes per line; a longer command
# would never reach the shell and its end marker never come back.
MAX_LINE = 4000
SETTLE_S = 0.2
SHELL_ATTEMPTS = 3
SHELL_ANSWER_S = 30.0
# Bytes of base64 per console line: well under that limit with the framing.
PUSH_CHUNK = 3000
# The markers are short: searching only the end of what arrived keeps a
# program that prints megabytes from costing time quadratic in its output.
SEARCH_WINDOW = 8192
# Serial sysrq keys for a guest whose shell cannot answer: the backtrace of
# every active CPU (a livelock) and the blocked tasks (a deadlock).
SYSRQ_KEYS = "lw"
SYSRQ_DRAIN_S = 5.0


@dataclass(frozen=True)
class CommandResult:
    command: str
    output: str
    status: int | None      # None when the deadline expired
    duration: float
    progress: tuple[str, ...] = ()     # the progress markers seen, in order

    @property
    def timed_out(self) -> bool:
        return self.status is None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM under a command; output is what it printed so far."""

    def __init__(self, output: str):
        super().__init__()
        self.output = output


def _text(value) -> str:
    # pexpect leaves its EOF/TIMEOUT classes in before/after; only text counts.
    return value if isinstance(value, str) else ""


def _pending(child: pexpect.spawn) -> str:
    # What arrived after the last match, not yet handed out as before.
    try:
        return _text(child.buffer) if isinstance(child.buffer, str) else ""
    except Exception:   # pexpect internals vary by version; nothing is owed here
        return ""


def clean_output(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "")


class GuestConsole:
    def __init__(self, child: pexpect.spawn):
        self.child = child

    def wait_for_shell(self, timeout: float) -> None:
        """Wait for the first prompt, then make the shell quiet and machine-friendly."""
        try:
            self.child.expect(_PROMPT, timeout=timeout)
        except pexpect.TIMEOUT:
            self._panicked_at_boot()
            raise InfraError(f"no shell prompt from the guest within {timeout:.0f}s")
        except pexpect.EOF:
            self._panicked_at_boot()
            raise InfraError("the VM exited before reaching a shell")
        # Input typed while the shell is still setting up its terminal can
        # be flushed (dash says "turning off NDELAY mode"): settle, and ask
        # again if the first framed command goes unanswered.
        time.sleep(SETTLE_S)
        for _ in range(SHELL_ATTEMPTS):
            self.child.sendline("stty -echo -onlcr cols 500; export PS1='' PS2='' TERM=dumb")
            if self.run("true", timeout=min(timeout, SHELL_ANSWER_S)).status == 0:
                return
        raise InfraError("the guest shell does not answer framed commands")

    def _panicked_at_boot(self) -> None:
        seen = clean_output(_text(self.child.before))
        m = _PANIC.search(seen)
        if m:
            line = seen[m.start():].splitlines()[0]
            raise BootPanic(f"the kernel panicked while booting: {line.strip()}")

    def run(self, command: str, timeout: float, progress: re.Pattern | None = None,
            idle: float | None = None) -> CommandResult:
        """Send command framed; wait up to timeout for its end. With progress,
        each match of that pattern (its first group names a step) must come
        within idle seconds of the one before, or the command counts as
        timed out."""
        token = uuid.uuid4().hex[:12]
        line, start, end = frame(command, token)
        if len(line) > MAX_LINE:
            raise InfraError(f"a guest command of {len(line)} bytes is longer than the guest's "
                             f"tty takes ({MAX_LINE}): {command[:60]}...")
        began = time.monotonic()
        seen: list[str] = []
        steps: list[str] = []
        self.child.sendline(line)
        patterns = [end, _PANIC] + ([progress] if progress else [])
        try:
            self.child.expect(start, timeout=timeout, searchwindowsize=SEARCH_WINDOW)
            while True:
                left = timeout - (time.monotonic() - began)
                if left <= 0:       # progress cannot stretch the whole deadline
                    return CommandResult(command, clean_output("".join(seen)), None,
                                         time.monotonic() - began, tuple(steps))
                wait = max(1.0, min(left, idle) if idle else left)
                i = self.child.expect(patterns, timeout=wait, searchwindowsize=SEARCH_WINDOW)
                seen.append(_text(self.child.before))
                if i == 0:
                    break
                if i == 1:
                    self._died(command, "".join(seen))
                seen.append(_text(self.child.after))
                steps.append(self.child.match.group(1))
        except pexpect.TIMEOUT:
            seen.append(_text(self.child.before))
            return CommandResult(command, clean_output("".join(seen)), None,
                                 time.monotonic() - began, tuple(steps))
        except pexpect.EOF:
            raise GuestDied(f"the VM exited while running: {command}",
                            clean_output("".join(seen) + _text(self.child.before)))
        except KeyboardInterrupt:
            raise Interrupted(clean_output("".join(seen) + _pending(self.child)))
        return CommandResult(command, clean_output("".join(seen)),
                             int(self.child.match.group(1)), time.monotonic() - began,
                             tuple(steps))

    def sysrq_dump(self) -> str:
        """Task stacks from a guest that cannot run a command: a serial break
        (QEMU's mux escape, Ctrl-A b) makes the next key a sysrq."""
        out = []
        for key in SYSRQ_KEYS:
            self.child.send("\x01b")
            time.sleep(0.2)
            self.child.send(key)
        try:
            self.child.expect(pexpect.EOF, timeout=SYSRQ_DRAIN_S)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            pass
        out.append(_text(self.child.before))
        return clean_output("\n[sysrq evidence]\n" + "".join(out)[-200_000:])

    def _died(self, command: str, before: str = "") -> None:
        """A panic is on the console: collect the rest of its report, then give up."""
        seen = before + _text(self.child.after)
        try:
            self.child.expect([_PANIC_END, pexpect.EOF], timeout=PANIC_DRAIN_S)
            seen += _text(self.child.before) + _text(self.child.after)
        except pexpect.TIMEOUT:
            seen += _text(self.child.before)
        raise GuestDied(f"kernel panic while running: {command}", clean_output(seen))

    def push_file(self, local: Path, remote: str, timeout: float = 300) -> None:
        """Copy a file into the guest through the console itself (base64)."""
        data = base64.b64encode(local.read_bytes()).decode()
        q, tmp = shlex.quote(remote), shlex.quote(f"{remote}.b64")
        self._must(f"mkdir -p \"$(dirname {q})\" && : > {tmp}", timeout)
        for i in range(0, len(data), PUSH_CHUNK):
            self._must(f"printf '%s' '{data[i:i + PUSH_CHUNK]}' >> {tmp}", timeout)
        self._must(f"base64 -d {tmp} > {q} && rm -f {tmp} && chmod +x {q}", timeout)

    def _must(self, command: str, timeout: float) -> None:
        res = self.run(command, timeout)
        if res.status != 0:
            raise InfraError(f"guest command failed ({res.status}): {command[:80]}: "
                             f"{res.output.strip()[:200]}")
