"""The guest shell over a pexpect console, with framed commands.

Each command is wrapped between a start and an end marker that carry a unique
token and the command's exit status. The markers are assembled by printf at
run time, so the echoed command line never matches them, and the kernel
writing to the same console cannot be mistaken for either.
"""

import base64
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pexpect

from .errors import InfraError


class GuestDied(InfraError):
    """The console closed under a command: a panic, or QEMU exited."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output

class BootPanic(InfraError):
    """The kernel panicked before the shell came up."""


_PROMPT = re.compile(r"[#$] ?$|[#$] \S*$")
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


@dataclass(frozen=True)
class CommandResult:
    command: str
    output: str
    status: int | None      # None when the deadline expired
    duration: float

    @property
    def timed_out(self) -> bool:
        return self.status is None


def frame(command: str, token: str) -> tuple[str, re.Pattern, re.Pattern]:
    """The line to send, and the patterns of its start and end markers."""
    line = (f"printf '@@RWP%s:%s@@\\n' B {token}; {{ {command}; }} </dev/null; "
            f"printf '@@RWP%s:%s:%d@@\\n' E {token} $?")
    start = re.compile(rf"@@RWPB:{token}@@\r?\n")
    end = re.compile(rf"@@RWPE:{token}:(\d+)@@")
    return line, start, end


def _text(value) -> str:
    # pexpect leaves its EOF/TIMEOUT classes in before/after; only text counts.
    return value if isinstance(value, str) else ""


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

    def run(self, command: str, timeout: float) -> CommandResult:
        token = uuid.uuid4().hex[:12]
        line, start, end = frame(command, token)
        if len(line) > MAX_LINE:
            raise InfraError(f"a guest command of {len(line)} bytes is longer than the guest's "
                             f"tty takes ({MAX_LINE}): {command[:60]}...")
        began = time.monotonic()
        self.child.sendline(line)
        try:
            self.child.expect(start, timeout=timeout)
            remaining = max(1.0, timeout - (time.monotonic() - began))
            if self.child.expect([end, _PANIC], timeout=remaining) == 1:
                self._died(command)
        except pexpect.TIMEOUT:
            partial = clean_output(self.child.before or "")
            return CommandResult(command, partial, None, time.monotonic() - began)
        except pexpect.EOF:
            raise GuestDied(f"the VM exited while running: {command}",
                            clean_output(self.child.before or ""))
        output = clean_output(self.child.before)
        return CommandResult(command, output, int(self.child.match.group(1)),
                             time.monotonic() - began)

    def _died(self, command: str) -> None:
        """A panic is on the console: collect the rest of its report, then give up."""
        seen = _text(self.child.before) + _text(self.child.after)
        try:
            self.child.expect([_PANIC_END, pexpect.EOF], timeout=PANIC_DRAIN_S)
            seen += _text(self.child.before) + _text(self.child.after)
        except pexpect.TIMEOUT:
            seen += _text(self.child.before)
        raise GuestDied(f"kernel panic while running: {command}", clean_output(seen))

    def push_file(self, local: Path, remote: str, timeout: float = 300) -> None:
        """Copy a file into the guest through the console itself (base64)."""
        data = base64.b64encode(local.read_bytes()).decode()
        tmp = f"{remote}.b64"
        self._must(f"mkdir -p \"$(dirname {remote})\" && : > {tmp}", timeout)
        for i in range(0, len(data), PUSH_CHUNK):
            self._must(f"printf '%s' '{data[i:i + PUSH_CHUNK]}' >> {tmp}", timeout)
        self._must(f"base64 -d {tmp} > {remote} && rm -f {tmp} && chmod +x {remote}", timeout)

    def _must(self, command: str, timeout: float) -> None:
        res = self.run(command, timeout)
        if res.status != 0:
            raise InfraError(f"guest command failed ({res.status}): {command[:80]}: "
                             f"{res.output.strip()[:200]}")
