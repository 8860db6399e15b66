"""Batch mode: per-test results from one program run, and the fall-backs.

The batch output and its kernel log are saved from a real run of
c/rwp_basic on 7.3.4; splats are spliced into that log where a test would
have caused them. The guest is faked at the console: what the harness sends
decides what comes back.
"""

import re

import pytest
from pathlib import Path

from harness.errors import InfraError
from harness.parse import protocol, splats
from harness.parse.verdicts import Status
from harness.run import batch
from harness.run.guest import Guest
from harness.run.guestprogs import GuestProgram, Staged
from harness.vm.console import CommandResult, GuestDied

from helpers import DATA

OUT = (DATA / "batch-rwp_basic.out").read_text()
KMSG = (DATA / "batch-rwp_basic.kmsg").read_text()
TOKEN = "292e1ed9aef4"
WARNING = "".join(l for l in (DATA / "kmsg-warning.log").read_text().splitlines(True)
                  if "rwp-harness" not in l)
SUBS = ["api_advertises_rwp", "register_rwp", "rwprotect_populated_keeps_contents",
        "sync_read_fault", "sync_write_fault", "async_resolves_without_message",
        "register_wp_and_rwp_refused"]
PROG = GuestProgram("c/rwp_basic", "c", Path("guest/c/rwp_basic.c"), tuple(SUBS))


def _after(log: str, marker: str, text: str) -> str:
    """log with text inserted after the line holding marker."""
    i = log.index(marker)
    i = log.index("\n", i) + 1
    return log[:i] + text + log[i:]


def test_marks_and_output_are_read_per_test():
    marks = protocol.sub_marks(OUT)
    assert list(marks) == SUBS
    assert marks["sync_read_fault"].seconds == 0.010348955
    assert marks["register_rwp"].taint_before == marks["register_rwp"].taint_after == 0
    parts = protocol.split_output(OUT)
    assert parts["register_rwp"] == "ok 2 register_rwp\n"
    assert "@@RWPSUB" not in "".join(parts.values())


def test_each_test_gets_its_own_slice_of_the_kernel_log():
    before, slices = protocol.slice_log(KMSG, TOKEN)
    assert f"rwp-harness: begin {TOKEN}" in before and "test-begin" not in before
    assert list(slices) == SUBS
    assert "test-end 292e1ed9aef4/sync_read_fault" in slices["sync_read_fault"]
    assert "sync_write_fault" not in slices["sync_read_fault"]


def test_a_splat_after_a_test_ended_is_still_charged_to_it():
    log = _after(KMSG, f"test-end {TOKEN}/register_rwp", WARNING)
    _, slices = protocol.slice_log(log, TOKEN)
    assert splats.find(slices["register_rwp"])
    assert not splats.find(slices["api_advertises_rwp"])
    assert not splats.find(slices["rwprotect_populated_keeps_contents"])


def test_chunks_keep_order_and_respect_the_budget():
    names = [f"t{i:03}" for i in range(100)]        # 5 bytes each with the space
    parts = batch.chunks(names, budget=50)
    assert [n for p in parts for n in p] == names
    assert all(len(" ".join(p)) + 1 <= 50 for p in parts) and len(parts) == 10
    assert batch.chunks(["a" * 80], budget=50) == [["a" * 80]]


class FakeConsole:
    """Answers the batch command with out (its token put in), dmesg with kmsg,
    and a one-test command with a pass, recording what it was sent."""

    def __init__(self, out: str, kmsg: str, die: bool = False,
                 death: str = "Kernel panic - not syncing: boom", stall: bool = False):
        self.out, self.kmsg, self.die, self.death, self.stall = out, kmsg, die, death, stall
        self.sent: list[str] = []
        self.token = TOKEN
        self.deadlines: list[tuple[float, float | None]] = []

    def run(self, command: str, timeout: float, progress=None, idle=None) -> CommandResult:
        self.sent.append(command)
        self.deadlines.append((timeout, idle))
        m = re.search(r"RWP_MARKS=(\w+)", command)
        if m:
            if self.die:
                raise GuestDied("the VM exited", self.death)
            if self.stall:
                cut = self.out.index("@@RWPSUB sync_read_fault")
                return CommandResult(command, self.out[:cut] + "@@RWPSTART sync_read_fault\n",
                                     None, idle, ("api_advertises_rwp", "sync_read_fault"))
            self.token = m.group(1)
            return CommandResult(command, self.out, 0, 1.0)
        if command.startswith("dmesg"):
            return CommandResult(command, self.kmsg.replace(TOKEN, self.token), 0, 0.1)
        name = command.split()[-1]          # run-one.sh ... program NAME
        return CommandResult(command, f"@@RWPTAINT0 0\nKTAP version 1\n1..1\nok 1 {name}\n"
                                      "@@RWPGUESTNS 1000000\n@@RWPTAINT1 0\n", 0, 0.5)


    def sysrq_dump(self) -> str:
        return "\n[sysrq evidence]\nsysrq: Show backtrace of all active CPUs\n"


class FakeGuest(Guest):
    """The real Guest (its bracketed command and outcomes) over a fake console."""

    def __init__(self, console: FakeConsole):
        super().__init__(lambda: None, Staged(Path("/g")), "shared")
        self._console = console
        self.staged = Staged(Path("/g"))
        self.reboot_reasons: list[str] = []

    def console(self):
        return self._console

    def reboot(self, why: str) -> None:
        self.reboot_reasons.append(why)


def _run(out=OUT, kmsg=KMSG, die=False, subs=SUBS):
    guest = FakeGuest(FakeConsole(out, kmsg, die))
    res = list(batch.run_program(guest, PROG, list(subs), lambda s: 60.0, splats.Allowlist()))
    singles = [c for c in guest._console.sent if "RWP_MARKS" not in c and "dmesg" not in c]
    return {r.test_id.split("::")[1]: r for r in res}, guest, singles


def test_clean_batch_is_one_command_and_every_test_passes():
    res, guest, singles = _run()
    assert all(r.status == Status.PASS for r in res.values()) and list(res) == SUBS
    assert singles == [] and guest.reboot_reasons == []
    assert res["sync_read_fault"].guest_seconds == 0.0103
    assert guest.guest_seconds == 0.2008


def test_a_warning_fails_only_the_test_that_caused_it():
    kmsg = _after(KMSG, f"test-begin {TOKEN}/sync_write_fault", WARNING)
    out = OUT.replace("@@RWPSUB sync_write_fault 0 0", "@@RWPSUB sync_write_fault 0 512")
    res, _, singles = _run(out, kmsg)
    assert res["sync_write_fault"].status == Status.FAIL
    assert res["sync_write_fault"].reason.startswith("kernel splat: WARNING")
    assert res["sync_write_fault"].taint == (0, 512)
    assert [s for s, r in res.items() if r.status != Status.PASS] == ["sync_write_fault"]
    assert singles == []


def test_a_taint_change_without_text_fails_its_test():
    out = OUT.replace("@@RWPSUB register_rwp 0 0", "@@RWPSUB register_rwp 0 4096")
    res, _, _ = _run(out)
    assert res["register_rwp"].status == Status.FAIL
    assert res["register_rwp"].reason == "kernel taint changed from 0 to 4096"


def test_tests_the_program_never_reported_run_one_at_a_time():
    cut = OUT.index("@@RWPSUB sync_write_fault")
    res, guest, singles = _run(OUT[:cut])
    assert [s.split()[-1] for s in singles] == SUBS[4:]
    assert all(r.status == Status.PASS for r in res.values())
    assert guest.reboot_reasons == []


def test_a_hung_test_reboots_and_it_and_the_rest_run_one_at_a_time():
    cut = OUT.index("@@RWPSUB sync_read_fault")
    out = OUT[:cut] + "@@RWPTIMEOUT 30 sync_read_fault\n"
    res, guest, singles = _run(out)
    assert [s.split()[-1] for s in singles] == SUBS[3:]
    assert len(guest.reboot_reasons) == 1 and "sync_read_fault" in guest.reboot_reasons[0]
    assert res["register_rwp"].status == Status.PASS


def test_a_dead_vm_reruns_the_whole_batch_after_a_reboot():
    res, guest, singles = _run(die=True)
    assert [s.split()[-1] for s in singles] == SUBS and len(guest.reboot_reasons) == 1


def test_a_splat_before_the_first_test_reruns_the_batch():
    kmsg = _after(KMSG, f"rwp-harness: begin {TOKEN}", WARNING)
    res, _, singles = _run(kmsg=kmsg)
    assert [s.split()[-1] for s in singles] == SUBS


def test_a_kernel_log_that_lost_the_start_reruns_the_batch():
    kmsg = KMSG[KMSG.index("\n") + 1:]
    _, _, singles = _run(kmsg=kmsg)
    assert [s.split()[-1] for s in singles] == SUBS


def test_a_whole_program_is_one_command_without_names_and_a_part_names_them():
    _, guest, _ = _run()
    [sent] = [c for c in guest._console.sent if "RWP_MARKS" in c]
    assert sent.rstrip().endswith("bin/rwp_basic")
    _, guest, _ = _run(subs=SUBS[:2])
    [sent] = [c for c in guest._console.sent if "RWP_MARKS" in c]
    assert sent.rstrip().endswith("bin/rwp_basic api_advertises_rwp register_rwp")


def test_a_selection_is_named_even_when_it_is_all_the_program_was_narrowed_to():
    narrowed = GuestProgram(PROG.name, "c", PROG.source, tuple(SUBS[:2]), (), tuple(SUBS))
    guest = FakeGuest(FakeConsole(OUT, KMSG))
    list(batch.run_program(guest, narrowed, SUBS[:2], lambda s: 60.0, splats.Allowlist()))
    [sent] = [c for c in guest._console.sent if "RWP_MARKS" in c]
    assert sent.rstrip().endswith("bin/rwp_basic api_advertises_rwp register_rwp")


def test_one_by_one_sends_no_batch():
    guest = FakeGuest(FakeConsole(OUT, KMSG))
    list(batch.run_program(guest, PROG, SUBS[:2], lambda s: 60.0, splats.Allowlist(),
                           one_by_one=True))
    assert not any("RWP_MARKS" in c for c in guest._console.sent)


def test_repeat_combines_each_tests_runs():
    guest = FakeGuest(FakeConsole(OUT, KMSG))
    res = list(batch.run_program(guest, PROG, SUBS, lambda s: 60.0, splats.Allowlist(),
                                 repeat=3))
    assert [r.test_id.split("::")[1] for r in res] == SUBS
    assert all(r.runs == ["pass"] * 3 for r in res)


def test_a_death_without_a_kernel_report_is_not_a_failure_and_the_tests_run_again():
    guest = FakeGuest(FakeConsole(OUT, KMSG, die=True, death="qemu: terminating on signal 15"))
    res = list(batch.run_program(guest, PROG, SUBS, lambda s: 20.0, splats.Allowlist()))
    assert all(r.status == Status.PASS for r in res) and guest.quiet_deaths == 1


def test_a_second_death_without_a_kernel_report_ends_the_run():
    class DyingConsole(FakeConsole):
        def run(self, command, timeout, progress=None, idle=None):
            if "rwp-guest" in command or "/g/" in command:
                self.sent.append(command)
                raise GuestDied("the VM exited", "")
            return super().run(command, timeout, progress, idle)
    guest = FakeGuest(DyingConsole(OUT, KMSG))
    with pytest.raises(InfraError, match="died without a kernel report again"):
        list(batch.run_program(guest, PROG, SUBS, lambda s: 20.0, splats.Allowlist()))


def test_a_death_with_a_panic_is_charged_to_the_test_not_the_host():
    guest = FakeGuest(FakeConsole(OUT, KMSG))
    guest._console.die = True
    out = batch.run_batch(guest, PROG, SUBS, lambda s: 20.0, splats.Allowlist())
    assert out.rerun == SUBS and guest.quiet_deaths == 0


def test_a_stalled_guest_charges_the_test_in_progress_within_one_tests_deadline():
    guest = FakeGuest(FakeConsole(OUT, KMSG, stall=True))
    out = batch.run_batch(guest, PROG, SUBS, lambda s: 20.0, splats.Allowlist())
    stuck = out.results["sync_read_fault"]
    assert stuck.status == Status.ERROR and stuck.reason.startswith("hung")
    assert "sysrq evidence" in stuck.output
    assert "sync_read_fault" not in out.rerun and len(out.rerun) == len(SUBS) - 1
    [(_, idle)] = [d for c, d in zip(guest._console.sent, guest._console.deadlines)
                   if "RWP_MARKS" in c]
    assert idle == 20.0 + protocol.GUEST_GRACE_S + 20.0     # one test, not the batch's sum
    assert len(guest.reboot_reasons) == 1


def test_the_test_deadline_reaches_the_program():
    prog = GuestProgram(PROG.name, "c", PROG.source, tuple(SUBS), (("sync_read_fault", 90),),
                        tuple(SUBS))
    guest = FakeGuest(FakeConsole(OUT, KMSG))
    list(batch.run_program(guest, prog, SUBS, lambda s: prog.timeout(s, 120.0),
                           splats.Allowlist(), default_deadline=120.0))
    [sent] = [c for c in guest._console.sent if "RWP_MARKS" in c]
    assert "RWP_DEADLINE_S=120" in sent and "RWP_DEADLINES=sync_read_fault=90" in sent


def test_an_interrupted_batch_keeps_what_the_program_reported():
    from harness.vm.console import Interrupted

    class Interrupting(FakeConsole):
        def run(self, command, timeout, progress=None, idle=None):
            if "RWP_MARKS" in command:
                raise Interrupted(OUT[:OUT.index("@@RWPSUB sync_read_fault")])
            return super().run(command, timeout, progress, idle)
    guest = FakeGuest(Interrupting(OUT, KMSG))
    got = []
    with pytest.raises(batch.BatchInterrupted) as e:
        for r in batch.run_program(guest, PROG, SUBS, lambda s: 20.0, splats.Allowlist()):
            got.append(r)
    assert got == []            # carried by the interrupt, which no consumer can drop
    assert [r.test_id.split("::")[1] for r in e.value.results] == SUBS[:3]
    assert all("interrupted" in r.diagnostics[-1] for r in e.value.results)


def test_an_interrupt_survives_a_run_that_stops_at_its_first_failure(tmp_path):
    """--exitfirst breaks out of the results at a failure: an interrupt that
    came with that failure must still end the run (mutate once went on to the
    next mutant after a SIGTERM)."""
    from harness import pipeline, progress
    from harness.parse.verdicts import Status, TestResult
    from harness.report import results
    from harness.requests import RunRequest

    class Session:
        guest = None

        def results(self, prog, subs):
            raise batch.BatchInterrupted([TestResult("c/p::a", Status.PASS),
                                          TestResult("c/p::b", Status.FAIL)])
            yield       # a generator, as the real one

    prog = GuestProgram("c/p", "c", PROG.source, ("a", "b", "c"), (), ("a", "b", "c"))
    out = results.Run(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        pipeline._run_programs(RunRequest(exitfirst=True), Session(), [prog], out,
                               progress.Progress("tests", live=False), [])
    assert [(t.test_id, t.status) for t in out.tests] == [("c/p::a", Status.PASS),
                                                          ("c/p::b", Status.FAIL)]
