"""rwp-harness: the command line. Each phase runs alone or chained by `check`.

  fetch   get the kernel source (Debian package, tarball or your tree) and patches
  config  write and check the .config in the build directory
  build   build bzImage and the UAPI headers
  boot    boot the built kernel and keep its console (alias: shell)
  run     run the guest tests on the built kernel
  check   all of the above
"""

import argparse
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

from . import build, guestprogs, hostinfo, ktap, patches, results, runner, source, splats, vm
from .errors import BadInput, ExitStatus, HarnessError
from .phases import phase


def _add_source_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("kernel source")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--kernel-src", type=Path, metavar="PATH",
                   help="your kernel tree or git checkout (only read, built out of tree)")
    x.add_argument("--kernel-tarball", type=Path, metavar="FILE",
                   help="a kernel source tarball")
    x.add_argument("--kernel-version", default="7.3", metavar="X.Y",
                   help="Debian linux-source-X.Y package to fetch (default: %(default)s)")
    g.add_argument("--debian-suite", action="append", metavar="SUITE",
                   help="suite to search for the package (repeatable; default: "
                        "trixie-backports, then sid)")
    g.add_argument("--offline", action="store_true",
                   help="use the package already in the cache; no apt access")
    g.add_argument("--patches", type=Path, metavar="PATH",
                   help="an mbox (git am) or a directory of *.patch (series file order)")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("kernel config and build")
    g.add_argument("--profile", action="append", default=[], metavar="NAME",
                   help="extra fragment from kernel-config/, e.g. debug (repeatable)")
    g.add_argument("--fragment", action="append", default=[], type=Path, metavar="FILE",
                   help="your own config fragment, merged last (repeatable)")
    g.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)


def _add_vm_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("virtual machine")
    g.add_argument("--cpus", type=int, default=2, help="guest CPUs (default: %(default)s)")
    g.add_argument("--memory", default="2G", help="guest memory (default: %(default)s)")
    g.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="auto probes whether KVM really boots, else TCG (default)")
    g.add_argument("--append", action="append", default=[], metavar="ARG",
                   help="extra kernel command-line argument (repeatable)")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tests")
    g.add_argument("-k", "--select", action="append", default=[], metavar="PATTERN",
                   help="run tests whose id (program::subtest) contains PATTERN (repeatable)")
    g.add_argument("--suite", action="append",
                   choices=(*guestprogs.ALL_SUITES, guestprogs.PEER_SUITE), metavar="SUITE",
                   help="guest suites to run: c, py (default: both), peer (the kernel tree's "
                        "own uffd-unit-tests, run whole), or selftest (provokes kernel faults "
                        "to test the harness; repeatable)")
    g.add_argument("--transport", choices=("auto", "shared", "push"), default="auto",
                   help="how programs reach the guest: the shared root filesystem, or "
                        "pushed over the console (auto: shared if visible)")
    g.add_argument("--test-timeout", type=float, default=runner.TEST_TIMEOUT_S, metavar="S",
                   help="deadline per test unless the test sets its own (default: %(default)s)")
    g.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run each test N times; one that passes only sometimes is flaky")
    g.add_argument("--allowlist", type=Path, metavar="FILE",
                   help="TOML file of known splats that do not fail a test until they expire")
    g.add_argument("--results-dir", type=Path, metavar="DIR",
                   help=f"parent of the run directory (default: ./{results.DEFAULT_RESULTS})")
    g.add_argument("--json", action="store_true",
                   help="print results.json on stdout (human output goes to stderr)")
    g.add_argument("--list", action="store_true", help="list the selected test ids and exit")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rwp-harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    layout = {
        "fetch": (_add_source_args,),
        "config": (_add_source_args, _add_config_args),
        "build": (_add_source_args, _add_config_args),
        "boot": (_add_source_args, _add_config_args, _add_vm_args),
        "shell": (_add_source_args, _add_config_args, _add_vm_args),
        "run": (_add_source_args, _add_config_args, _add_vm_args, _add_run_args),
        "check": (_add_source_args, _add_config_args, _add_vm_args, _add_run_args),
    }
    for name, adders in layout.items():
        p = sub.add_parser(name, help=name)
        for add in adders:
            add(p)
    return parser


# ---- phases ----

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
        series = patches.load(args.patches)
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


def _suites(args) -> tuple[str, ...]:
    return tuple(args.suite) if args.suite else guestprogs.DEFAULT_SUITES


def selected_programs(args) -> list[guestprogs.GuestProgram]:
    suites = _suites(args)
    progs = guestprogs.select(guestprogs.discover(suites), args.select)
    if not progs and guestprogs.PEER_SUITE not in suites:
        raise BadInput(f"test selection {args.select} matches no test in suites {list(suites)}")
    return progs


def _check_run_args(args) -> None:
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
        staged = guestprogs.stage(bres.headers, req.tree)
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
                for sub in prog.subtests:
                    res = runner.run_test(guest, prog, sub, prog.timeout(sub, args.test_timeout),
                                          allow, args.repeat)
                    run.manifest.update(reboots=guest.reboots, boot_seconds=guest.boot_seconds)
                    run.add(res)
                    _live_line(res)
            if guestprogs.PEER_SUITE in _suites(args):
                for res in runner.run_peer(guest, allow):
                    run.add(res)
                    _live_line(res)
        run.complete = True
    finally:
        guest.stop(now=not run.complete)
        run.manifest.update(reboots=guest.reboots, boot_seconds=guest.boot_seconds)
        run.save()
    return run


def _live_line(res: runner.TestResult) -> None:
    extra = f"  ({res.reason})" if res.reason and res.status != ktap.Status.PASS else ""
    print(f"  {res.status.value.upper():5} {res.test_id}  {res.duration:.1f}s{extra}",
          file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


# ---- commands ----

def cmd_fetch(args, timings) -> int:
    src, tree, series = fetch(args, timings)
    json.dump({"source": src.to_json(), "tree": str(tree), "series_hash": series},
              sys.stdout, indent=1)
    print()
    return ExitStatus.OK


def cmd_config(args, timings) -> int:
    req = build_request(args, timings)
    with phase("config", timings):
        dotconfig = build.configure(req)
    print(dotconfig)
    return ExitStatus.OK


def cmd_build(args, timings) -> int:
    build.print_result(do_build(build_request(args, timings), timings))
    return ExitStatus.OK


def cmd_boot(args, timings) -> int:
    bres = finished_build(build_request(args, timings))
    return vm.interactive(vm_request(args, bres, None))


def _finish(args, run: results.Run) -> int:
    if args.json:
        print(run.summary(), file=sys.stderr)
        json.dump(run.document(), sys.stdout, indent=1)
        print()
    else:
        print(run.summary())
    return ExitStatus.OK if run.ok else ExitStatus.TESTS_FAILED


def cmd_run(args, timings) -> int:
    if args.list:
        return _list(args)
    _check_run_args(args)
    req = build_request(args, timings)
    return _finish(args, run_tests(args, req, finished_build(req), timings))


def cmd_check(args, timings) -> int:
    if args.list:
        return _list(args)
    _check_run_args(args)
    req = build_request(args, timings)
    bres = do_build(req, timings)
    run = run_tests(args, req, bres, timings)
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()), file=sys.stderr)
    return _finish(args, run)


def _list(args) -> int:
    for prog in selected_programs(args):
        for tid in prog.test_ids():
            print(tid)
    if guestprogs.PEER_SUITE in _suites(args):
        print(f"{runner.PEER_PREFIX}::*  (its cases are known once it has run)")
    return ExitStatus.OK


COMMANDS = {"fetch": cmd_fetch, "config": cmd_config, "build": cmd_build, "boot": cmd_boot,
            "shell": cmd_boot, "run": cmd_run, "check": cmd_check}


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    timings: dict = {}
    try:
        return int(COMMANDS[args.command](args, timings))
    except HarnessError as e:
        first, _, rest = str(e).partition("\n")
        print(f"rwp-harness: error: {first}", file=sys.stderr)
        if rest:
            print(rest, file=sys.stderr)
        return int(e.status)
    except KeyboardInterrupt:
        print("rwp-harness: interrupted", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        # The reader (head, less) went away; nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.OK)


if __name__ == "__main__":
    sys.exit(main())
