"""The pipeline's phases as functions of the parsed command line.

fetch -> build request -> config and build -> stage, boot and run. The CLI
chains them per command; bisection calls them once per commit.
"""

import hashlib
import sys
from pathlib import Path

from . import batch, build, guestprogs, hostinfo, ktap, patches, results, runner, source, splats, vm
from .errors import BadInput
from .phases import phase


def fetch(args, timings: dict) -> tuple[source.KernelSource, Path, str]:
    """The source, the tree to build (patched copy or the source itself), series hash."""
    with phase("fetch", timings):
        if args.kernel_src:
            src = source.from_tree(args.kernel_src)
        elif args.kernel_tarball:
            src = source.from_tarball(args.kernel_tarball)
        else:
            suites = tuple(args.debian_suite) if args.debian_suite else None
            src = source.from_debian(args.kernel_version, suites, offline=args.offline)
        print(f"[fetch] {src.origin}: {src.identity} (Linux {src.version})", file=sys.stderr)
        if not args.patches:
            return src, src.path, ""
        series = patches.load(args.patches, args.kernel_src)
        tree = patches.apply(src, series)
        print(f"[fetch] applied {series.describe()} in {tree}", file=sys.stderr)
        return src, tree, series.digest


def build_request(args, timings: dict) -> build.BuildRequest:
    src, tree, series = fetch(args, timings)
    return build.BuildRequest(src, tree, series, tuple(args.profile), tuple(args.fragment),
                              args.jobs)


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


def vm_request(args, bres: build.BuildResult, console_log: Path | None) -> vm.VMRequest:
    return vm.VMRequest(bres.bzimage, cpus=args.cpus, memory=args.memory, accel=args.accel,
                        append=tuple(args.append), console_log=console_log)


def suites(args) -> tuple[str, ...]:
    return tuple(args.suite) if args.suite else guestprogs.DEFAULT_SUITES


def selected_programs(args) -> list[guestprogs.GuestProgram]:
    chosen = suites(args)
    progs = guestprogs.select(guestprogs.discover(chosen), args.select)
    if not progs and guestprogs.PEER_SUITE not in chosen:
        raise BadInput(f"test selection {args.select} matches no test in suites {list(chosen)}")
    return progs


def check_run_args(args) -> None:
    if args.repeat < 1:
        raise BadInput(f"--repeat must be at least 1, got {args.repeat}")
    if args.test_timeout <= 0:
        raise BadInput(f"--test-timeout must be positive, got {args.test_timeout}")


def run_tests(args, req: build.BuildRequest, bres: build.BuildResult,
              timings: dict) -> results.Run:
    progs = selected_programs(args)
    allow = splats.Allowlist.load(args.allowlist)
    run = results.Run(results.new_run_dir(args.results_dir))
    run.keep_build_artifacts(bres.log, bres.dotconfig)
    run.manifest.update(source=req.source.to_json(), series_hash=req.series_hash,
                        profiles=list(req.profiles), kernel_release=bres.kernel_release,
                        config_requested=req.requested_config().digest(),
                        config_sha256=_sha256(bres.dotconfig), build_dir=str(bres.build_dir),
                        timings=timings, host=hostinfo.describe(), repeat=args.repeat)
    print(f"[run] results in {run.path}", file=sys.stderr)
    with phase("stage", timings):
        peer_tree = req.tree if guestprogs.PEER_SUITE in suites(args) else None
        staged = guestprogs.stage(bres.headers, peer_tree, progs)
    vmreq = vm_request(args, bres, run.console_log)
    guest = runner.Guest(lambda: vm.boot(vmreq), staged, args.transport)
    try:
        with phase("boot", timings):
            guest.console()
        run.manifest.update(accel=guest.machine.accel, vng=guest.machine.argv,
                            guest_cmdline=guest.machine.cmdline(),
                            guest_capabilities=guest.capabilities,
                            transport="shared" if guest.staged == staged else "push")
        with phase("tests", timings):
            for prog in progs:
                for res in batch.run_program(guest, prog, list(prog.subtests),
                                             lambda sub: prog.timeout(sub, args.test_timeout),
                                             allow, args.repeat, args.one_by_one):
                    run.add(res)
                    live_line(res)
                run.manifest.update(reboots=guest.reboots, boot_seconds=guest.boot_seconds,
                                    guest_seconds=round(guest.guest_seconds, 2))
            if guestprogs.PEER_SUITE in suites(args):
                for res in runner.run_peer(guest, allow):
                    run.add(res)
                    live_line(res)
        run.complete = True
    finally:
        guest.stop(now=not run.complete)
        run.manifest.update(reboots=guest.reboots, boot_seconds=guest.boot_seconds,
                            guest_seconds=round(guest.guest_seconds, 2))
        run.save()
    return run


def live_line(res: runner.TestResult) -> None:
    extra = f"  ({res.reason})" if res.reason and res.status != ktap.Status.PASS else ""
    print(f"  {res.status.value.upper():5} {res.test_id}  {res.duration:.1f}s{extra}",
          file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
