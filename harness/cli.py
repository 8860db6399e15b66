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
  mutate  apply deliberate kernel breakages in turn; which do the tests miss
  coverage
          a --coverage run's RWP line coverage, or two runs' compared
  compare what changed from a baseline run to a new one (exit 1: a regression)
  report  write a saved run in another format (--kcidb)
"""

import argparse
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from harness import arch, bisect, cache, mutate, pipeline, requests
from harness.coverage import profile, summary
from harness.coverage import report as coverage_report
from harness.errors import BadInput, ExitStatus, HarnessError
from harness.fetch import gittree
from harness.kernel import build
from harness.mutants import catalog, operators
from harness.phases import phase
from harness.report import compare, kcidb, results
from harness.requests import Request
from harness.run import guestprogs, runner
from harness.vm import qemu


def _add_source_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("kernel source")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--kernel-src", type=Path, metavar="PATH",
                   help="your kernel tree or git checkout (only read, built out of tree)")
    x.add_argument("--kernel-tarball", type=Path, metavar="FILE",
                   help="a kernel source tarball")
    x.add_argument("--kernel-version", default="7.3", metavar="X.Y",
                   help="Debian linux-source-X.Y package to fetch, its newest version "
                        "across the suites, or an exact version such as 7.3.4-1~bpo13+1 "
                        "(default: %(default)s)")
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
    g.add_argument("--arch", choices=tuple(arch.ARCHES), default=arch.DEFAULT,
                   help="the kernel's architecture; another than the host's is cross-built "
                        "and boots under TCG on a Debian root of its own (default: "
                        "%(default)s)")
    g.add_argument("--coverage", action="store_true",
                   help="a gcov kernel (its own build directory) for the objects RWP lives "
                        "in; a run then reports which RWP lines and which lines of the "
                        "series the tests executed")
    g.add_argument("--coverage-objects", metavar="LIST",
                   help="comma-separated objects to profile instead of the default "
                        "(mm/userfaultfd.o,mm/memory.o,...; implies --coverage)")


def _add_image_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("prebuilt kernel")
    g.add_argument("--kernel-image", metavar="debian|PATH",
                   help="run a kernel as shipped instead of building one: 'debian' for "
                        "Debian's image of the source version (linux-image, its modules "
                        "and linux-libc-dev), or your bzImage/vmlinuz")
    g.add_argument("--kernel-modules", type=Path, metavar="DIR",
                   help="the modules directory (lib/modules/RELEASE) of --kernel-image PATH")


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
    g.add_argument("--test-timeout", type=float, default=None, metavar="S",
                   help="deadline per test, in the guest and on the host, unless the test "
                        f"sets its own (default: {requests.TEST_TIMEOUT_S:g}, multiplied by the "
                        "guest's measured slowdown; a value given here is used as given)")
    g.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run each test N times; one that passes only sometimes is flaky")
    g.add_argument("--one-by-one", action="store_true",
                   help="run each test as its own guest command instead of each program "
                        "as one (slower; a batch falls back to this by itself when it "
                        "cannot judge a test)")
    g.add_argument("-x", "--exitfirst", action="store_true",
                   help="stop at the first test that fails; the rest are listed as not run")
    g.add_argument("--allowlist", type=Path, metavar="FILE",
                   help="TOML file of known splats that do not fail a test until they expire")
    g.add_argument("--results-dir", type=Path, metavar="DIR",
                   help=f"parent of the run directory (default: ./{results.DEFAULT_RESULTS})")
    g.add_argument("--json", action="store_true",
                   help="print results.json on stdout (human output goes to stderr)")
    g.add_argument("--list", action="store_true", help="list the selected test ids and exit")


def _add_report_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reports")
    g.add_argument("--baseline", type=Path, metavar="RUN",
                   help="an earlier run (directory, results.json or junit.xml) to compare "
                        "this one with at the end, as `rwp-harness compare` does")
    g.add_argument("--kcidb", type=Path, metavar="FILE",
                   help="also write the run as a KernelCI (KCIDB v5) JSON document")
    _add_kcidb_origin(g)


def _add_kcidb_origin(g) -> None:
    g.add_argument("--kcidb-origin", default=kcidb.DEFAULT_ORIGIN, metavar="NAME",
                   help="the KCIDB origin, prefix of every object id (default: %(default)s)")


def _add_compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", type=Path, metavar="BASE",
                   help="the baseline: a run directory, its results.json, or a junit.xml")
    p.add_argument("new", type=Path, metavar="NEW", help="the run to judge, likewise")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--timing-ratio", type=float, default=2.0, metavar="R",
                   help="report a duration that moved by more than R times "
                        "(default: %(default)s)")
    p.add_argument("--min-seconds", type=float, default=1.0, metavar="S",
                   help="... when the longer of the two is at least S seconds "
                        "(default: %(default)s)")


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
    g.add_argument("--failure", choices=("any", "same"), default="any",
                   help="which failure makes a step bad: any selected test failing "
                        "(default), or only one of the tests that fail at --bad, which is "
                        "run first (another failure makes the step a skip)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rwp-harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, text, adders) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        for add in adders:
            add(p)
        if name == "fetch":
            p.add_argument("--git", action="store_true",
                           help="also commit the package or tarball into a git repository "
                                "in the cache, tagged v<version>, for series and bisection")
    return parser


# ---- commands ----

def cmd_fetch(args, req: Request, timings) -> int:
    src, tree, series = pipeline.fetch(req.source, timings)
    out = {"source": src.to_json(), "tree": str(tree), "series_hash": series.digest if series else ""}
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


def cmd_config(args, req: Request, timings) -> int:
    breq = pipeline.build_request(req.source, req.kernel, timings)
    with phase("config", timings):
        dotconfig = build.configure(breq)
    print(dotconfig)
    return ExitStatus.OK


def cmd_build(args, req: Request, timings) -> int:
    breq = pipeline.build_request(req.source, req.kernel, timings)
    build.print_result(pipeline.do_build(breq, timings))
    return ExitStatus.OK


def cmd_boot(args, req: Request, timings) -> int:
    bres = pipeline.finished_build(pipeline.build_request(req.source, req.kernel, timings))
    return qemu.interactive(pipeline.vm_request(req.run, bres, None))


def _baseline(req: Request) -> compare.RunView | None:
    """Read before the run, so that an unreadable baseline fails in a second,
    not after a build."""
    return compare.load(req.report.baseline) if req.report.baseline is not None else None


def _finish(req: Request, run: results.Run, baseline: compare.RunView | None) -> int:
    human = sys.stderr if req.run.json else sys.stdout
    print(run.summary(), file=human)
    if baseline is not None:
        print(compare.text(compare.compare(baseline, compare.load(run.path))), file=human)
    if req.report.kcidb is not None:
        kcidb.write(run.path, req.report.kcidb, req.report.kcidb_origin)
        print(f"KCIDB document: {req.report.kcidb}", file=human)
    if req.run.json:
        json.dump(run.document(), sys.stdout, indent=1)
        print()
    return ExitStatus.OK if run.ok else ExitStatus.TESTS_FAILED


def _tests(args, req: Request, timings, build_it: bool) -> int:
    """run and check are one pipeline: check builds the kernel, run boots the
    one already built."""
    if args.list:
        return _list(req)
    pipeline.check_inputs(req.run)
    baseline = _baseline(req)
    breq, bres = pipeline.kernel(req.source, req.kernel, timings, build_it=build_it)
    run = pipeline.run_tests(req.run, breq, bres, timings)
    if build_it:
        print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
              file=sys.stderr)
    return _finish(req, run, baseline)


def cmd_run(args, req: Request, timings) -> int:
    return _tests(args, req, timings, build_it=False)


def cmd_check(args, req: Request, timings) -> int:
    return _tests(args, req, timings, build_it=True)


def cmd_bisect(args, req: Request, timings) -> int:
    pipeline.check_inputs(req.run)
    result, out = bisect.run_bisection(req)
    print(bisect.summary(result))
    if req.run.json:
        json.dump(result.to_json(), sys.stdout, indent=1)
        print()
    if result.aborted:
        return ExitStatus.INFRA_FAILED
    return ExitStatus.OK if result.first_bad else ExitStatus.BISECT_INCONCLUSIVE


def cmd_bisect_step(args, req: Request, timings) -> int:
    """Exit statuses follow git bisect run: anything but a clean good, bad or
    skip aborts it (128), a harness error included."""
    try:
        outcome, reason, run = bisect.step_here(req)
    except HarnessError as e:
        _error(str(e).splitlines()[0])
        return bisect.STEP_EXIT[bisect.Outcome.ABORT]
    where = f" ({run.path})" if run else ""
    print(f"{outcome.value}: {reason}{where}")
    return bisect.STEP_EXIT[outcome]


def _list(req: Request) -> int:
    for prog in pipeline.selected_programs(req.run):
        for tid in prog.test_ids():
            print(tid)
    if guestprogs.PEER_SUITE in req.run.suites:
        print(f"{runner.PEER_PREFIX}::*  (its cases are known once it has run)")
    return ExitStatus.OK


def _add_mutate_args(p: argparse.ArgumentParser) -> None:
    which = p.add_argument_group("mutation: which mutants")
    which.add_argument("--mutations", action="append", type=Path, metavar="PATH",
                       help="a TOML file of mutants, or a directory of *.toml and one-hunk "
                            "*.patch files (repeatable; default: kernel-mutations/curated.toml)")
    which.add_argument("--only", action="append", default=[], metavar="ID",
                       help="run only the mutants whose id contains ID (repeatable)")
    which.add_argument("--generate", type=Path, metavar="FILE|DIR",
                       help="write candidate mutants of the source's RWP lines and exit: to "
                            "FILE.toml, or as one-hunk patches into a new directory FILE; see "
                            "harness/mutants/operators.py")
    how = p.add_argument_group("mutation: how they run")
    how.add_argument("--base", metavar="REF",
                     help="the commit to mutate in the git repository given as --kernel-src "
                          "(default: its HEAD; a package: its own commit)")
    how.add_argument("--coverage-run", type=Path, metavar="DIR",
                     help="a run directory of `check --coverage` on the same tree: each "
                          "mutant then says whether the tests executed its lines")
    how.add_argument("--by-coverage", action="store_true",
                     help="with --coverage-run: run each mutant with only the programs whose "
                          "counters executed its lines; one no program executed survives "
                          "without a run")
    how.add_argument("--resume", type=Path, metavar="DIR",
                     help="go on with the mutate-* report in DIR: the mutants it judged are "
                          "kept, the others run (the same tree, the same selection)")


def _add_coverage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="a run directory of --coverage (or its coverage/total.info); "
                        "two: the lines one executed and the other did not")
    p.add_argument("--all-lines", action="store_true",
                   help="compare every line, not only the RWP lines")


def cmd_mutate(args, req: Request, timings) -> int:
    mreq = req.mutate
    if mreq.generate:
        if mreq.generate.exists():
            raise BadInput(f"--generate {mreq.generate} exists; it is not overwritten")
        src, tree, _ = pipeline.fetch(req.source, timings)
        found = operators.candidates(tree, [o[:-2] + ".c" for o in profile.DEFAULT_OBJECTS])
        operators.write(found, tree, mreq.generate)
        print(f"{len(found)} candidate mutant(s) in {mreq.generate}")
        return ExitStatus.OK
    if req.kernel.coverage:
        raise BadInput("mutate does not build coverage kernels; give a coverage run of the "
                       "same tree as --coverage-run")
    pipeline.check_inputs(req.run)
    chosen = [m for m in catalog.load(list(mreq.mutations) or [mutate.DEFAULT_SET])
              if not mreq.only or any(o in m.id for o in mreq.only)]
    if not chosen:
        raise BadInput(f"no mutant matches --only {list(mreq.only)}")
    result, out = mutate.run_mutations(req, chosen,
                                       progress=lambda s: print(s, file=sys.stderr, flush=True))
    print(mutate.table(result))
    print(f"report: {out}")
    if req.run.json:
        json.dump(result.to_json(), sys.stdout, indent=1)
        print()
    return ExitStatus.INFRA_FAILED if result.stopped else ExitStatus.OK


def cmd_compare(args, req: Request, timings) -> int:
    """Exit 1 on a regression; else 6 when the new run stopped before every
    test ran (it cannot say there is none); else 0."""
    if args.timing_ratio <= 1.0 or args.min_seconds < 0:
        raise BadInput("--timing-ratio must be above 1 and --min-seconds not negative")
    c = compare.compare(compare.load(args.base), compare.load(args.new), args.timing_ratio,
                        args.min_seconds)
    if args.json:
        json.dump(c.to_json(), sys.stdout, indent=1)
        print()
    else:
        print(compare.text(c))
    if c.regressed:
        return ExitStatus.TESTS_FAILED
    return ExitStatus.INFRA_FAILED if c.incomplete else ExitStatus.OK


def cmd_report(args, req: Request, timings) -> int:
    if req.report.kcidb is None:
        raise BadInput("report: say what to write (--kcidb FILE)")
    kdoc = kcidb.write(args.run, req.report.kcidb, req.report.kcidb_origin)
    print(f"{req.report.kcidb}: KCIDB v{kcidb.SCHEMA_VERSION['major']}."
          f"{kcidb.SCHEMA_VERSION['minor']}, {len(kdoc['tests'])} test(s)")
    return ExitStatus.OK


def _add_saved_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="a run directory or its results.json")
    p.add_argument("--kcidb", type=Path, metavar="FILE", required=True,
                   help="write the run as a KernelCI (KCIDB v5) JSON document")
    _add_kcidb_origin(p)


def cmd_coverage(args, req: Request, timings) -> int:
    if len(args.runs) > 2:
        raise BadInput("coverage takes one run (its summary) or two (compared)")
    loaded = [coverage_report.load(r) for r in args.runs]
    tree = next((t for _, t in loaded if t is not None and t.is_dir()), None)
    selection = None
    if not args.all_lines:
        if tree is None:
            raise BadInput("the runs do not name a kernel tree that still exists; "
                           "use --all-lines")
        selection = summary.rwp_selection(loaded[0][0], tree)
    if len(loaded) == 1:
        cov = loaded[0][0]
        rows = summary.restricted(cov, selection) if selection is not None else summary.whole(cov)
        print(summary.table(rows, "coverage:"))
        print(summary.uncovered_text(rows, "never executed:"))
        return ExitStatus.OK
    diffs = summary.compare(loaded[0][0], loaded[1][0], selection)
    print(summary.compare_text(diffs, str(args.runs[0].name), str(args.runs[1].name)))
    return ExitStatus.OK


# name: (function, help, option groups)
_FULL = (_add_source_args, _add_config_args, _add_vm_args, _add_run_args)
_RUN = (*_FULL, _add_image_args, _add_report_args)
SUBCOMMANDS = {
    "fetch": (cmd_fetch, "get the kernel source and apply --patches", (_add_source_args,)),
    "config": (cmd_config, "write and check the .config in the build directory",
               (_add_source_args, _add_config_args)),
    "build": (cmd_build, "build bzImage and the UAPI headers",
              (_add_source_args, _add_config_args)),
    "boot": (cmd_boot, "boot the built kernel with your terminal as its console",
             (_add_source_args, _add_config_args, _add_vm_args)),
    "shell": (cmd_boot, "the same as boot", (_add_source_args, _add_config_args, _add_vm_args)),
    "run": (cmd_run, "run the guest tests on the built kernel", _RUN),
    "check": (cmd_check, "fetch, config, build, boot and run", _RUN),
    "bisect": (cmd_bisect, "find the commit that broke the selected tests", (*_FULL,
               _add_bisect_args)),
    "bisect-step": (cmd_bisect_step, "judge the checked-out commit for git bisect run "
                    "(0 good, 1 bad, 125 skip, 128 abort)", (*_FULL, _add_step_args)),
    "mutate": (cmd_mutate, "apply each deliberate kernel breakage in turn and report which "
               "the tests miss", (*_FULL, _add_mutate_args)),
    "compare": (cmd_compare, "what changed from a baseline run to a new one: regressions "
                "(exit 1), fixes, new and vanished tests, splats, durations, manifests",
                (_add_compare_args,)),
    "report": (cmd_report, "write a saved run in another format: KCIDB",
               (_add_saved_run_args,)),
    "coverage": (cmd_coverage, "a --coverage run's RWP line coverage, or two runs compared",
                 (_add_coverage_args,)),
}


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def _error(message: str) -> None:
    first, _, rest = message.partition("\n")
    print(f"rwp-harness: error: {first}", file=sys.stderr)
    if rest:
        print(rest, file=sys.stderr)


def _internal_error(command: str) -> int:
    """An error the harness did not foresee: one line naming the log that
    holds the traceback, and a status no test verdict uses."""
    exc = sys.exc_info()[1]
    log = None
    try:
        log = cache.subdir("logs") / time.strftime(f"internal-%Y%m%d-%H%M%S-{os.getpid()}.log")
        log.write_text(traceback.format_exc())
    except Exception:      # the cache itself may be what is broken
        log = None
    where = f"; traceback in {log}" if log else ""
    print(f"rwp-harness: internal error in '{command}': {type(exc).__name__}: "
          f"{str(exc).splitlines()[0] if str(exc) else ''}{where}", file=sys.stderr)
    if command == "bisect-step":
        return bisect.STEP_EXIT[bisect.Outcome.ABORT]
    return int(ExitStatus.INTERNAL_ERROR)


def _detach_stdin() -> None:
    """Only `boot`/`shell` read the user's terminal; every other command runs
    with /dev/null as its stdin, so nothing it starts can read (or stop on)
    the caller's. A guard, not a proven fix: a run started under pytest's
    capture once reached the guest prompt and got no typed line through."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.command not in ("boot", "shell"):
        _detach_stdin()
    timings: dict = {}
    step = args.command == "bisect-step"
    try:
        req = requests.from_args(args)
        return int(SUBCOMMANDS[args.command][0](args, req, timings))
    except HarnessError as e:
        _error(str(e))
        return bisect.STEP_EXIT[bisect.Outcome.ABORT] if step else int(e.status)
    except KeyboardInterrupt:
        print("rwp-harness: interrupted", file=sys.stderr)
        return bisect.STEP_EXIT[bisect.Outcome.ABORT] if step else int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        # The reader (head, less) went away; nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.OK)
    except Exception:
        return _internal_error(args.command)


if __name__ == "__main__":
    sys.exit(main())
