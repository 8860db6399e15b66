"""The pipeline's phases as functions of the typed request (requests.py).

fetch -> build request -> config and build -> stage, boot and run. The CLI
chains them per command; bisection calls them once per commit; the pytest
plugin opens the same Session.
"""

import hashlib
import sys
import time
from pathlib import Path
from typing import Iterator

from harness import progress
from harness.coverage import counters as counters_
from harness.coverage import profile, report
from harness.errors import BadInput, HarnessError
from harness.fetch import gittree, patches, source
from harness.fetch import guestroot
from harness.fetch import prebuilt as prebuilt_
from harness.kernel import build, kconfig
from harness.parse import splats
from harness.parse.verdicts import Status, TestResult, test_id
from harness.phases import phase
from harness.report import hostinfo, results
from harness.requests import KernelRequest, RunRequest, SourceRequest
from harness.run import batch, deadlines, guestprogs, runner
from harness.run.guest import PUSH_ROOT, Guest, cpus_online
from harness.vm import qemu


def fetch(req: SourceRequest, timings: dict
          ) -> tuple[source.KernelSource, Path, patches.Series | None]:
    """The source, the tree to build (patched copy or the source itself), the series."""
    with phase("fetch", timings):
        if req.kernel_src:
            src = source.from_tree(req.kernel_src)
        elif req.kernel_tarball:
            src = source.from_tarball(req.kernel_tarball)
        else:
            src = source.from_debian(req.series, req.debian_suites or None, offline=req.offline,
                                     exact=req.exact_version)
        print(f"[fetch] {src.origin}: {src.identity} (Linux {src.version})", file=sys.stderr)
        if not req.patches:
            return src, src.path, None
        series = patches.load(req.patches, req.kernel_src)
        tree = patches.apply(src, series)
        print(f"[fetch] applied {series.describe()} in {tree}", file=sys.stderr)
        return src, tree, series


def build_request(src_req: SourceRequest, kernel: KernelRequest,
                  timings: dict) -> build.BuildRequest:
    src, tree, series = fetch(src_req, timings)
    if kernel.coverage:
        profile.check_sources(kernel.coverage_objects, tree)
    return build.BuildRequest(src, tree, series.digest if series else "", kernel.profiles,
                              kernel.fragments, kernel.jobs, gcov_objects=kernel.coverage_objects,
                              series=series, arch=kernel.arch)


def prebuilt(src_req: SourceRequest, kernel: KernelRequest, timings: dict
             ) -> tuple[build.BuildRequest, build.BuildResult]:
    """--kernel-image: the kernel as shipped, as the build request and result
    the run phase takes."""
    with phase("fetch", timings):
        if kernel.image == "debian":
            pre = prebuilt_.debian(src_req.series, src_req.debian_suites or None,
                                   offline=src_req.offline, exact=src_req.exact_version)
        else:
            pre = prebuilt_.user_image(Path(kernel.image), kernel.image_modules)
        print(f"[fetch] {pre.identity}: {pre.image} ({pre.release})", file=sys.stderr)
    src = source.KernelSource(pre.root, pre.version, pre.origin, pre.identity, immutable=True)
    breq = build.BuildRequest(src, pre.root, prebuilt=pre)
    none = pre.root / ".none"
    # tsc=unstable: under TCG the clocksource watchdog marks the TSC unstable
    # after SMP is up, and the static key it flips in sched_clock_cpu() is
    # patched with int3 while the other vCPU runs it: QEMU 7.2 oopses the
    # distro kernel there. Marked unstable from the start, nothing is patched.
    bres = build.BuildResult(pre.root, pre.image, pre.headers or Path("/usr/include"),
                             pre.config or none, none, pre.release, False,
                             boot_args=("tsc=unstable",))
    return breq, bres


def kernel(src_req: SourceRequest, kernel: KernelRequest, timings: dict, build_it: bool
           ) -> tuple[build.BuildRequest, build.BuildResult]:
    """The kernel a run boots: a prebuilt one (--kernel-image), else the
    build of the source, made now (build_it) or found finished."""
    if kernel.image:
        return prebuilt(src_req, kernel, timings)
    breq = build_request(src_req, kernel, timings)
    return breq, do_build(breq, timings) if build_it else finished_build(breq)


def config_skips(req: build.BuildRequest) -> list[tuple[str, str]]:
    """(test id substring, reason) for what a prebuilt kernel's own config
    lacks of the options the suite needs (kernel-config's needed-by marks):
    those tests are skips that name the option, not failures."""
    pre = req.prebuilt
    if pre is None or pre.config is None:
        return []
    have = kconfig.parse(pre.config.read_text(errors="replace"), origin=str(pre.config))
    want = req.requested_config()
    skips = []
    for name, patterns in sorted(want.needed_by.items()):
        if want.entries.get(name) in ("y", "m") and have.entries.get(name) not in ("y", "m"):
            reason = f"the kernel's config lacks {name} ({pre.config})"
            skips += [("" if p.startswith("every-") else p, reason) for p in patterns]
    return skips


def do_build(req: build.BuildRequest, timings: dict) -> build.BuildResult:
    with phase("config", timings):
        build.configure(req)
    with phase("build", timings):
        res = build.build(req)
    verb = "built" if res.rebuilt else "up to date"
    print(f"[build] {verb}: {res.bzimage} ({res.kernel_release})", file=sys.stderr)
    return res


def finished_build(req: build.BuildRequest) -> build.BuildResult:
    """The build a `run` or `boot` uses: it must exist already."""
    bdir = req.build_dir()
    if not (bdir / "build.ok").exists():
        raise BadInput(f"no finished build for this source and config ({bdir}); "
                       "run 'rwp-harness build' first")
    return build.build(req)


def guest_root(run: RunRequest, bres: build.BuildResult) -> guestroot.GuestRoot | None:
    """A guest of the host's architecture runs on the host's root (None); another
    gets its own (fetch/guestroot.py), made on first use."""
    return None if bres.arch.native else guestroot.ensure(bres.arch, offline=run.offline)


def vm_request(run: RunRequest, bres: build.BuildResult, console_log: Path | None,
               staged: guestprogs.Staged | None = None,
               root: "guestroot.GuestRoot | None" = None) -> qemu.VMRequest:
    """The VM of a run; a guest on a root of its own gets the staged programs
    shared in at guestroot.PROGRAMS_MOUNT."""
    root = root or guest_root(run, bres)
    rodirs = ()
    if root is not None and staged is not None:
        rodirs = ((guestroot.PROGRAMS_MOUNT, staged.root),)
    return qemu.VMRequest(bres.bzimage, cpus=run.cpus, memory=run.memory, accel=run.accel,
                          append=(*bres.boot_args, *run.append), console_log=console_log,
                          arch=bres.arch, root=root.path if root else None, rodirs=rodirs)


def check_inputs(run: RunRequest) -> None:
    """What a run reads from the user, read before anything slow is done."""
    selected_programs(run)
    splats.Allowlist.load(run.allowlist)


def selected_programs(run: RunRequest) -> list[guestprogs.GuestProgram]:
    progs = guestprogs.select(guestprogs.discover(run.suites), list(run.select))
    if not progs and guestprogs.PEER_SUITE not in run.suites:
        raise BadInput(f"test selection {list(run.select)} matches no test in suites "
                       f"{list(run.suites)}")
    return progs


class Session:
    """One guest and what it runs: the CLI's run phase and the pytest plugin's
    items both go through here."""

    def __init__(self, run: RunRequest, bres: build.BuildResult, console_log: Path | None,
                 peer_tree: Path | None = None,
                 programs: list[guestprogs.GuestProgram] | None = None,
                 counters: "counters_.Counters | None" = None):
        self.run = run
        # A coverage kernel's counters, zeroed before and fetched after each program.
        self.counters = counters
        self.allow = splats.Allowlist.load(run.allowlist)
        self.staged = guestprogs.stage(bres.headers, peer_tree, programs, bres.arch)
        self.guest_root = guest_root(run, bres)
        vmreq = vm_request(run, bres, console_log, self.staged, self.guest_root)
        self.guest = Guest(lambda: qemu.boot(vmreq), self.staged, run.transport,
                           shared_at=Path(guestroot.PROGRAMS_MOUNT) if self.guest_root else None)

    def cpu_shortfall(self) -> str | None:
        """Why the guest has fewer CPUs than asked for, if it has: its race tests
        then interleave only at the scheduler's pace."""
        online = cpus_online(self.guest.capabilities)
        if online is None or online >= self.run.cpus:
            return None
        return (f"the guest has {online} CPU(s) online of the {self.run.cpus} asked for "
                f"(a kernel without ACPI finds no other CPU): race tests run on one CPU")

    def deadline_scale(self) -> float:
        """How much longer than the default this guest's tests may take (run/deadlines.py);
        known once the guest has booted."""
        if not self.run.scale_deadlines:
            return 1.0
        return deadlines.scale(self.guest.capabilities)

    def results(self, prog: guestprogs.GuestProgram, subs: list[str]) -> Iterator[TestResult]:
        if self.counters:
            self.counters.begin(self.guest)
        k = self.deadline_scale()
        yield from batch.run_program(self.guest, prog, subs,
                                     lambda sub: prog.timeout(sub, self.run.test_timeout) * k,
                                     self.allow, self.run.repeat, self.run.one_by_one,
                                     default_deadline=self.run.test_timeout * k)
        if self.counters:
            self.counters.end(self.guest, prog.name)

    def close(self, now: bool = False) -> None:
        self.guest.stop(now=now)


def run_tests(run: RunRequest, req: build.BuildRequest, bres: build.BuildResult,
              timings: dict) -> results.Run:
    progs = selected_programs(run)
    out = results.Run(results.new_run_dir(run.results_dir))
    out.keep_build_artifacts(bres.log, bres.dotconfig)
    out.planned = [t for p in progs for t in p.test_ids()]
    out.manifest.update(run_manifest(run, req, bres, timings))
    print(f"[run] results in {out.path}", file=sys.stderr)
    with phase("stage", timings):
        peer = guestprogs.PEER_SUITE in run.suites
        counters = counters_.Counters(out.path / "coverage" / "counters") \
            if req.gcov_objects else None
        session = Session(run, bres, out.console_log, req.tree if peer else None, progs, counters)
    guest = session.guest
    try:
        with phase("boot", timings):
            with progress.elapsed("boot"):
                guest.console()
        out.manifest.update(guest_manifest(session))
        if (short := session.cpu_shortfall()):
            print(f"[boot] warning: {short}", file=sys.stderr)
        with phase("tests", timings):
            bar = progress.Progress("tests")
            try:
                _run_programs(run, session, progs, out, bar, config_skips(req))
            finally:
                bar.close()
            peer = peer and not (run.exitfirst and any(t.failed for t in out.tests))
            if peer:
                for res in runner.run_peer(guest, session.allow):
                    out.add(res)
                    live_line(res)
        out.complete = True
    finally:
        session.close(now=not out.complete)
        guest_figures(out, guest)
        out.save()
    if counters is not None:
        with phase("coverage", timings):
            out.manifest["coverage"] = report.write(out.path / "coverage", counters, req, bres)
        out.save()
    return out


def run_manifest(run: RunRequest, req: build.BuildRequest, bres: build.BuildResult,
                 timings: dict) -> dict:
    """What a run directory records of its kernel and request before the guest
    boots (the CLI's runs and the pytest view's alike)."""
    return dict(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                source=req.source.to_json(), tree=str(req.tree),
                series_hash=req.series_hash,
                series=req.series.to_json() if req.series else None,
                guest_programs=guestprogs.sources_digest(),
                source_commit=_head_commit(req.source),
                profiles=list(req.profiles), kernel_release=bres.kernel_release,
                config_requested="" if req.prebuilt else req.requested_config().digest(),
                config_sha256=_sha256(bres.dotconfig), build_dir=str(bres.build_dir),
                timings=timings, host=hostinfo.describe(bres.arch), repeat=run.repeat,
                arch=_arch_manifest(bres),
                test_timeout=run.test_timeout, select=list(run.select), suites=list(run.suites))


def _arch_manifest(bres: build.BuildResult) -> dict:
    """The architecture, and what builds and emulates it when it is not the host's."""
    a = bres.arch
    return dict(name=a.name, qemu_machine=a.qemu_machine, cross_compiler=not a.native)


def guest_manifest(session: "Session") -> dict:
    """What a run directory records of the booted guest."""
    guest, scale = session.guest, session.deadline_scale()
    root = {"guest_root": session.guest_root.describe()} if session.guest_root else {}
    return dict(**root, accel=guest.machine.accel, vng=guest.machine.argv,
                cpus_online=cpus_online(guest.capabilities),
                guest_cmdline=guest.machine.cmdline(), guest_capabilities=guest.capabilities,
                deadline_scale=scale, test_timeout_effective=session.run.test_timeout * scale,
                transport="push" if guest.staged.root == PUSH_ROOT else "shared")


def _head_commit(src: source.KernelSource) -> str:
    """The commit a git tree of the user's had checked out ("" for a package,
    a tarball or a tree that is not a repository)."""
    if src.origin != "tree" or not gittree.is_repo(src.path):
        return ""
    try:
        top = gittree.git(src.path, "rev-parse", "--show-toplevel").stdout.strip()
        if Path(top).resolve() != src.path.resolve():
            return ""       # a plain tree inside someone's repository
        return gittree.resolve(src.path, "HEAD")
    except HarnessError:
        return ""


def _run_programs(run: RunRequest, session: "Session", progs, out: results.Run,
                  bar: progress.Progress, skips: list[tuple[str, str]]) -> None:
    total = len(out.planned)
    for prog in progs:
        subtests = []
        for sub in prog.subtests:
            tid = test_id(prog.name, sub)
            reason = next((why for pat, why in skips if pat in tid), None)
            if reason is None:
                subtests.append(sub)
            else:
                out.add(TestResult(tid, Status.SKIP, reason=reason))
        try:
            for res in session.results(prog, subtests) if subtests else ():
                out.add(res)
                live_line(res)
                c = out.counts()
                bad = c["fail"] + c["error"] + c["flaky"]
                bar.update(progress.Snapshot.of(len(out.tests), total, "tests",
                                                f"{c['pass']} pass, {bad} fail"))
                if run.exitfirst and res.failed:
                    break
        except batch.BatchInterrupted as e:
            for res in e.results:
                out.add(res)
                live_line(res)
            raise KeyboardInterrupt from None
        guest_figures(out, session.guest)
        if run.exitfirst and any(t.failed for t in out.tests):
            return


def guest_figures(out: results.Run, guest: Guest) -> None:
    out.manifest.update(reboots=guest.reboots, boot_seconds=guest.boot_seconds,
                        guest_seconds=round(guest.guest_seconds, 2),
                        quiet_vm_deaths=guest.quiet_deaths)


def live_line(res: TestResult) -> None:
    extra = f"  ({res.reason})" if res.reason and res.status != Status.PASS else ""
    print(f"  {res.status.value.upper():5} {res.test_id}  {res.duration:.1f}s{extra}",
          file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
