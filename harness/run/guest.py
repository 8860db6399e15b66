"""The guest the tests run in, and the one way to run a bracketed command in it.

A bracketed command runs under guest/harness/run-one.sh (kernel-log markers,
taint, a guest-side deadline) with a host deadline beyond it. run() turns
every way that can end into one typed Outcome, so the runner, the batch and
the peer suite only turn outcomes into results:

  DONE      the command finished; its kernel log was read back
  HUNG      a guest-side deadline expired (protocol.Timeout says whose);
            its kernel log was read back, then the VM rebooted
  STALLED   nothing came back within the host's deadline (or, in a batch, no
            test began within one test's deadline): evidence collected, VM killed
  DIED      the VM died under the command: `kernel` holds the panic or oops
            that explains it; without one it is an infrastructure event

A VM that dies without a kernel report (QEMU killed from outside, the OOM
killer) is the host's fault, not the test's: run() counts it, the caller runs
the affected tests again, and a second such death in a run raises InfraError
from run() itself.
"""

import secrets
import shlex
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable

from harness.errors import InfraError
from harness.parse import protocol, splats
from harness.parse.verdicts import kernel_caused
from harness.run.guestprogs import Staged
from harness.vm.console import GuestConsole, GuestDied

PUSH_ROOT = Path("/tmp/rwp-guest")
# How long the host waits beyond a guest-side deadline for the guest to
# report, before it declares the guest stalled and kills it.
HOST_GRACE_S = 20.0
# Unexplained VM deaths a run survives; the next one ends it.
QUIET_DEATHS_TOLERATED = 1


class Ended(str, Enum):
    DONE = "done"
    HUNG = "hung"
    STALLED = "stalled"
    DIED = "died"


@dataclass
class Outcome:
    ended: Ended
    output: str
    token: str
    duration: float
    kernel_log: str = ""
    timeout: protocol.Timeout | None = None
    kernel: list[splats.Splat] = field(default_factory=list)   # what killed the VM
    in_progress: str | None = None     # STALLED in a batch: the test that never ended

    @property
    def quiet_death(self) -> bool:
        return self.ended == Ended.DIED and not self.kernel


class Guest:
    """The VM the tests run in; rebooted after a panic, a hang or a death."""

    def __init__(self, boot: Callable[[], "object"], staged: Staged, transport: str,
                 shared_at: Path | None = None):
        self._boot = boot
        self.local = staged
        self.transport = transport
        # Where the guest sees the staged programs when not at their host path
        # (a guest with a root of its own).
        self.shared_at = shared_at
        self.machine = None
        self.staged: Staged | None = None
        self.reboots = 0
        self.quiet_deaths = 0
        self.capabilities: dict = {}
        self.boot_seconds: list[float] = []
        # The programs' own run time, timed in the guest: the baseline of the
        # harness's overhead.
        self.guest_seconds = 0.0

    def console(self) -> GuestConsole:
        if self.machine is None:
            self.machine = self._boot()
            self.boot_seconds.append(round(self.machine.boot_seconds, 2))
            self.staged = deliver(self.machine.console, self.local, self.transport,
                                  self.shared_at)
            prepare(self.machine.console, self.staged)
            self.capabilities = probe_capabilities(self.machine.console, self.staged)
        return self.machine.console

    def reboot(self, why: str) -> None:
        print(f"[run] rebooting the guest: {why}", file=sys.stderr, flush=True)
        self.stop(now=True)
        self.reboots += 1

    def stop(self, now: bool = False) -> None:
        """Power off; with now, kill QEMU without asking the guest."""
        if self.machine is not None:
            machine, self.machine = self.machine, None
            if now:
                machine.kill()
            else:
                machine.stop()

    def died_quietly(self, during: str) -> None:
        """Count a death no kernel report explains; the second ends the run."""
        self.quiet_deaths += 1
        if self.quiet_deaths > QUIET_DEATHS_TOLERATED:
            raise InfraError(f"the VM died without a kernel report again (during {during}): "
                             "QEMU was killed from outside or the host is short of memory")

    def run(self, command: str, deadline: float, env: dict[str, str] | None = None,
            idle: float | None = None, marks: bool = False) -> Outcome:
        """command bracketed by run-one.sh with a guest-side deadline. With
        marks, the program brackets each test under the bracket's own token
        (protocol.MARKS_ENV); with idle, a test must begin, end or hit its
        deadline (protocol.PROGRESS) at least every idle seconds, so a
        stalled batch is noticed in one test's time."""
        console = self.console()
        token = secrets.token_hex(6)
        if marks:
            env = {**(env or {}), protocol.MARKS_ENV: token}
        line = protocol.bracket(str(self.staged.root / "harness/run-one.sh"), token, deadline,
                                command, env)
        began = time.monotonic()
        try:
            res = console.run(line, timeout=deadline + HOST_GRACE_S,
                              progress=protocol.PROGRESS if idle else None, idle=idle)
        except GuestDied as e:
            return self._died(e, token, began, command)
        if res.timed_out:
            evidence = self._evidence(console)
            begun = protocol.started(res.output)
            out = Outcome(Ended.STALLED, res.output + evidence, token, time.monotonic() - began,
                          in_progress=begun[-1] if begun else None)
            self.reboot(f"no answer from the guest within its deadline ({command[:60]})")
            return out
        timeout = protocol.timeout(res.output)
        try:
            log = console.run(protocol.kernel_log_command(token), timeout=60).output
        except GuestDied as e:
            return self._died(e, token, began, command, res.output)
        out = Outcome(Ended.HUNG if timeout else Ended.DONE, res.output, token,
                      res.duration, kernel_log=log, timeout=timeout)
        if timeout:
            # What hung may still hold locks or sit in D state: start clean.
            self.reboot(f"{timeout.test or 'the command'} hit its deadline ({command[:60]})")
        return out

    def _died(self, e: GuestDied, token: str, began: float, command: str,
              before: str = "") -> Outcome:
        out = Outcome(Ended.DIED, before + e.output, token, time.monotonic() - began,
                      kernel=kernel_caused(e.output))
        why = f"kernel {out.kernel[0].kind}" if out.kernel else "the VM exited"
        self.reboot(f"{why} during {command[:60]}")
        if out.quiet_death:
            self.died_quietly(command[:60])
        return out

    def _evidence(self, console: GuestConsole) -> str:
        """What a stalled guest can still show: task stacks through a serial
        sysrq (the shell cannot answer), then the console's tail."""
        try:
            return console.sysrq_dump()
        except GuestDied as e:
            return e.output


def deliver(console: GuestConsole, staged: Staged, transport: str,
            shared_at: Path | None = None) -> Staged:
    """Make the staged programs visible in the guest; returns where they are there."""
    if transport in ("auto", "shared"):
        for there in (staged.root, shared_at):
            if there is None:
                continue
            probe = console.run(f"test -r {shlex.quote(str(there / '.complete'))}", timeout=30)
            if probe.status == 0:
                return Staged(there)
        if transport == "shared":
            raise InfraError(f"{staged.root} is not visible in the guest's shared filesystem")
    for f in staged.files():
        console.push_file(f, str(PUSH_ROOT / f.relative_to(staged.root)))
    return Staged(PUSH_ROOT)


def prepare(console: GuestConsole, staged: Staged) -> None:
    """Hugepages, THP mode, debugfs: what the tests need from the guest."""
    res = console.run(f"sh {shlex.quote(str(staged.root / 'harness/setup.sh'))}", timeout=60)
    if res.status != 0:
        raise InfraError(f"guest set-up failed: {res.output.strip()[-300:]}")


def cpus_online(caps: dict) -> int | None:
    """The guest's online CPU count from its cpulist ("0-1,3"), None if unknown."""
    text = str(caps.get("cpus_online", "")).strip()
    if not text:
        return None
    total = 0
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            total += int(last or first) - int(first) + 1
    except ValueError:
        return None
    return total


def probe_capabilities(console: GuestConsole, staged: Staged) -> dict:
    return protocol.capabilities(console.run(staged.helper_command("caps.py"), timeout=60).output)
