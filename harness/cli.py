"""rwp-harness: the command line. Each phase runs alone or chained by `check`.

  fetch   get the kernel source (Debian package, tarball or your tree) and patches
  config  write and check the .config in the build directory
  build   build bzImage and the UAPI headers
  boot    boot the built kernel and keep its console (alias: shell)
  run     run the guest tests on the built kernel
  check   all of the above
  bisect  find the commit that broke the selected tests (git bisect in a clone)
  bisect-step
          judge the checked-out commit, for `git bisect run` (0 good, 1 bad,
          125 skip, 128 abort)
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from . import bisect, build, gittree, guestprogs, patches, pipeline, results, runner, vm
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
    g.add_argument("--patches", metavar="SERIES",
                   help="an mbox (git am; a cover letter is skipped), the .mbx or output "
                        "directory of `b4 am`, a directory of *.patch (series file order), "
                        "or BASE..TIP in the git repository given as --kernel-src")


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
    g.add_argument("--one-by-one", action="store_true",
                   help="run each test as its own guest command instead of each program "
                        "as one (slower; a batch falls back to this by itself when it "
                        "cannot judge a test)")
    g.add_argument("--allowlist", type=Path, metavar="FILE",
                   help="TOML file of known splats that do not fail a test until they expire")
    g.add_argument("--results-dir", type=Path, metavar="DIR",
                   help=f"parent of the run directory (default: ./{results.DEFAULT_RESULTS})")
    g.add_argument("--json", action="store_true",
                   help="print results.json on stdout (human output goes to stderr)")
    g.add_argument("--list", action="store_true", help="list the selected test ids and exit")


def _add_step_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("bisection")
    g.add_argument("--boot-panic", choices=("skip", "bad"),
                   default=bisect.BOOT_PANIC_DEFAULT.value,
                   help="how a commit whose kernel panics while booting counts "
                        "(default: %(default)s: it cannot run the selected tests)")


def _add_bisect_args(p: argparse.ArgumentParser) -> None:
    _add_step_args(p)
    g = p.add_argument_group("bisection range")
    g.add_argument("--good", metavar="REF",
                   help="a commit where the selected tests pass (default with --patches "
                        "on a package: its base commit)")
    g.add_argument("--bad", metavar="REF",
                   help="a commit where they fail (default: the series' tip, else HEAD)")


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
        "bisect": (_add_source_args, _add_config_args, _add_vm_args, _add_run_args,
                   _add_bisect_args),
        "bisect-step": (_add_source_args, _add_config_args, _add_vm_args, _add_run_args,
                        _add_step_args),
    }
    for name, adders in layout.items():
        p = sub.add_parser(name, help=name)
        for add in adders:
            add(p)
        if name == "fetch":
            p.add_argument("--git", action="store_true",
                           help="also commit the package or tarball into a git repository "
                                "in the cache, tagged v<version>, for series and bisection")
    return parser


# ---- commands ----

def cmd_fetch(args, timings) -> int:
    src, tree, series = pipeline.fetch(args, timings)
    out = {"source": src.to_json(), "tree": str(tree), "series_hash": series}
    if args.git:
        if not src.immutable:
            raise BadInput("--git turns a package or tarball into a git repository; "
                           "your tree is used as it is")
        with phase("git tree", timings):
            repo, tag = gittree.from_package(src)
        out.update(git=str(repo), tag=tag)
    json.dump(out, sys.stdout, indent=1)
    print()
    return ExitStatus.OK


def cmd_config(args, timings) -> int:
    req = pipeline.build_request(args, timings)
    with phase("config", timings):
        dotconfig = build.configure(req)
    print(dotconfig)
    return ExitStatus.OK


def cmd_build(args, timings) -> int:
    build.print_result(pipeline.do_build(pipeline.build_request(args, timings), timings))
    return ExitStatus.OK


def cmd_boot(args, timings) -> int:
    bres = pipeline.finished_build(pipeline.build_request(args, timings))
    return vm.interactive(pipeline.vm_request(args, bres, None))


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
    pipeline.check_run_args(args)
    req = pipeline.build_request(args, timings)
    return _finish(args, pipeline.run_tests(args, req, pipeline.finished_build(req), timings))


def cmd_check(args, timings) -> int:
    if args.list:
        return _list(args)
    pipeline.check_run_args(args)
    req = pipeline.build_request(args, timings)
    bres = pipeline.do_build(req, timings)
    run = pipeline.run_tests(args, req, bres, timings)
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()), file=sys.stderr)
    return _finish(args, run)


def _bisect_repo(args) -> tuple[Path, str, str]:
    """The repository to bisect in, the origin's name, and the default good ref."""
    if args.kernel_src:
        repo = args.kernel_src.expanduser().resolve()
        if not repo.is_dir() or not gittree.is_repo(repo):
            raise BadInput(f"bisect needs a git repository; {repo} is not one")
        return repo, str(repo), ""
    src, _, _ = pipeline.fetch(argparse.Namespace(**{**vars(args), "patches": None}), {})
    with phase("git tree"):
        repo, tag = gittree.from_package(src)
    print(f"[bisect] {src.identity} is commit {tag} in {repo}", file=sys.stderr)
    return repo, src.identity, tag


def _bisect_range(args, repo: Path, src: Path, base_default: str) -> tuple[str, str, str]:
    """(good, bad, series digest) as commit hashes, the series applied if given."""
    def named(ref):
        return gittree.resolve(repo, ref)
    if not args.patches:
        if not args.good:
            raise BadInput("bisect needs --good REF (and --bad REF, default HEAD)")
        return named(args.good), named(args.bad or "HEAD"), ""
    series = patches.load(args.patches, repo)
    if series.kind == "git-range":
        return series.base, series.tip, series.digest
    base = named(args.good or base_default or "HEAD")
    with phase("series"):
        tip = bisect.apply_series(src, base, series)
    print(f"[bisect] applied {series.describe()} on {base[:12]}: tip {tip[:12]}",
          file=sys.stderr)
    return base, (gittree.resolve(src, args.bad) if args.bad else tip), series.digest


def cmd_bisect(args, timings) -> int:
    pipeline.check_run_args(args)
    pipeline.selected_programs(args)
    repo, origin, base_default = _bisect_repo(args)
    src = bisect.workspace(repo)
    good, bad, digest = _bisect_range(args, repo, src, base_default)
    out = bisect.output_dir(args.results_dir)
    print(f"[bisect] good {good[:12]}, bad {bad[:12]}; clone {src}; report in {out}",
          file=sys.stderr)

    def progress(n, commit, subject, left):
        more = f", about {left} more after this" if left is not None else ""
        print(f"[bisect] step {n}: {commit[:12]} {subject}{more}", file=sys.stderr, flush=True)

    def step(commit, left):
        req = build.BuildRequest(bisect.step_source(src, commit, origin), src, digest,
                                 tuple(args.profile), tuple(args.fragment), args.jobs,
                                 build_root=bisect.build_dir(src))
        outcome, reason, times, run = bisect.evaluate(args, req, out / "steps")
        st = bisect.Step(commit, gittree.subject(src, commit), outcome, reason, times,
                         run.counts() if run else {}, str(run.path) if run else "", left)
        print(f"[bisect] {commit[:12]} is {outcome.value}: {reason}", file=sys.stderr, flush=True)
        return st

    result = bisect.drive(src, good, bad, step, progress)
    bisect.write_report(result, out)
    print(bisect.summary(result))
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=1)
        print()
    if result.aborted:
        return ExitStatus.INFRA_FAILED
    return ExitStatus.OK if result.first_bad else ExitStatus.BISECT_INCONCLUSIVE


def cmd_bisect_step(args, timings) -> int:
    """Exit statuses follow git bisect run, so every failure to test aborts it."""
    try:
        pipeline.check_run_args(args)
        pipeline.selected_programs(args)
        if not (args.kernel_src or args.kernel_tarball):
            args.kernel_src = Path.cwd()
        req = pipeline.build_request(args, timings)
        outcome, reason, _, run = bisect.evaluate(args, req, args.results_dir)
    except HarnessError as e:
        print(f"rwp-harness: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return bisect.STEP_EXIT[bisect.Outcome.ABORT]
    where = f" ({run.path})" if run else ""
    print(f"{outcome.value}: {reason}{where}")
    return bisect.STEP_EXIT[outcome]


def _list(args) -> int:
    for prog in pipeline.selected_programs(args):
        for tid in prog.test_ids():
            print(tid)
    if guestprogs.PEER_SUITE in pipeline.suites(args):
        print(f"{runner.PEER_PREFIX}::*  (its cases are known once it has run)")
    return ExitStatus.OK


COMMANDS = {"fetch": cmd_fetch, "config": cmd_config, "build": cmd_build, "boot": cmd_boot,
            "shell": cmd_boot, "run": cmd_run, "check": cmd_check, "bisect": cmd_bisect,
            "bisect-step": cmd_bisect_step}


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
