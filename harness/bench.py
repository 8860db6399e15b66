"""`make bench`: the fast-loop figures, each beside its baseline, and the RWP
micro-benchmarks.

Rows (each can be run alone with --rows):
  cold      cold build of the test kernel, empty ccache, vs what `vng --build`
            does with virtme-ng's default (defconfig-based) config of the same
            tree (make's default target, modules included), no ccache
  rebuild   rebuild after an edit of mm/userfaultfd.c (a real edit: ccache misses)
  warm      warm `rwp-harness check` with nothing to rebuild, vs the tests' own
            guest-side time plus one boot
  boot      boot to the first test command
  overhead  harness time per test vs the same program under a bare `vng -- cmd`
  parallel  the guest suite under pytest with -n 2 (two VMs) vs one VM
  micro     guest/bench/rwp_bench.c: RWP beside uffd-wp, mprotect+SIGSEGV and
            idle page tracking
  debug     the debug profile (KASAN, lockdep, DEBUG_VM): its cold build and the
            whole suite on it, beside the default kernel's cold build and suite,
            both measured in this invocation
  coverage  `check --coverage`: its build (the coverage build directory removed
            first; the default build's ccache warm) and the whole suite with
            per-program counters and the coverage phase, beside a warm `check`
  mutate    `rwp-harness mutate` of two mutants (one killed, one equivalent)
            over one program: seconds per mutant and its phases, beside the
            control run of the same selection
  arm64     the arm64 kernel (--arch arm64): its cold cross build, empty
            ccache, and its boot to a shell under TCG, beside the x86_64
            kernel's cold build and boot measured in this invocation
Writes bench.json, bench.md and bench.png in rwp-results/bench-<time>/.
Figures only: nothing here passes or fails on a time.
"""

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import arch, bisect, cache
from harness.coverage import profile
from harness.errors import BadInput, ExitStatus, HarnessError, InfraError
from harness.fetch import gittree, guestroot, source
from harness.kernel import build
from harness.report import results
from harness.run import guestprogs
from harness.tools import run_group
from harness.vm import qemu

ROWS = ("cold", "rebuild", "warm", "boot", "overhead", "parallel", "micro", "debug",
        "coverage", "mutate", "arm64")
TARGETS = {"cold": "<= 270 s and >= 4x faster than vng's default config",
           "rebuild": "<= 90 s", "warm": "<= 1.3x (guest test time + one boot)",
           "boot": "<= 5 s", "overhead": "<= 10 % over bare vng",
           "parallel": ">= 1.6x faster with -n 2"}
OVERHEAD_PROGRAM = "c/rwp_contract"
BARE_VNG_DEADLINE_S = 600.0
REPO = Path(__file__).resolve().parent.parent


def _timed(argv: list[str], cwd: Path | None = None, env: dict | None = None,
           timeout: float = 7200) -> tuple[float, subprocess.CompletedProcess]:
    began = time.monotonic()
    res = run_group(argv, cwd=cwd, env=env, timeout=timeout)
    return time.monotonic() - began, res


def _objects(bdir: Path) -> int:
    return sum(1 for _ in bdir.rglob("*.o"))


def _package(args) -> source.KernelSource:
    return source.from_debian(args.kernel_version.split("-")[0], offline=args.offline)


def _fresh_clone(repo: Path, name: str) -> Path:
    """A checkout of the package's base commit that the bench may build in."""
    dest = cache.subdir("bench") / name
    shutil.rmtree(dest, ignore_errors=True)
    gittree.git(dest.parent, "clone", "-q", "--shared", str(repo), str(dest))
    return dest


# ---- rows ----

def _cold_build(args, src: source.KernelSource, profiles: tuple[str, ...] = (),
                a: arch.Arch = arch.X86_64, boot: bool = False) -> dict:
    """A build from nothing, with an empty ccache of its own. It goes into the
    cache's own build directory when that is missing (so that a run after it
    reuses it), else into a scratch one that is removed."""
    with tempfile.TemporaryDirectory(prefix="ccache-", dir=cache.subdir("bench")) as empty:
        req = build.BuildRequest(src, src.path, profiles=profiles, jobs=args.jobs,
                                 ccache_dir=Path(empty), arch=a)
        keep = not (req.build_dir() / "build.ok").exists()
        if not keep:
            req = dataclasses.replace(req, build_root=cache.subdir("bench") / "cold-build")
        shutil.rmtree(req.build_dir(), ignore_errors=True)    # unfinished, or scratch: cold
        began = time.monotonic()
        res = build.build(req)
        took = time.monotonic() - began
    bdir = req.build_dir()
    row = {"seconds": round(took, 1), "objects": _objects(bdir)}
    if boot:
        row["boot_seconds"] = _boot_seconds(res, a, args.offline)
    if not keep:
        shutil.rmtree(bdir, ignore_errors=True)
    return row


def _boot_seconds(res: build.BuildResult, a: arch.Arch, offline: bool) -> float:
    """Seconds from starting vng to the guest's first shell prompt."""
    root = None if a.native else guestroot.ensure(a, offline=offline).path
    machine = qemu.boot(qemu.VMRequest(res.bzimage, arch=a, root=root))
    try:
        return round(machine.boot_seconds, 1)
    finally:
        machine.stop()


def row_arm64(args) -> dict:
    src = _package(args)
    row = _cold_build(args, src, a=arch.ARM64, boot=True)
    print(f"[bench] cold arm64 build: {row}", file=sys.stderr, flush=True)
    base = _cold_build(args, src, boot=True)
    row.update(baseline_seconds=base["seconds"], baseline_objects=base["objects"],
               baseline_boot_seconds=base["boot_seconds"],
               ratio=round(row["seconds"] / base["seconds"], 2),
               boot_ratio=round(row["boot_seconds"] / base["boot_seconds"], 2))
    return row


def row_cold(args) -> dict:
    src = _package(args)
    row = _cold_build(args, src)
    print(f"[bench] cold build of the test kernel: {row}", file=sys.stderr, flush=True)
    if args.skip_baseline:
        row["baseline"] = "not measured (--skip-baseline)"
        return row
    repo, _ = gittree.from_package(src)
    tree = _fresh_clone(repo, "vng-default")
    vng = qemu.vng_path()
    t_cfg, res = _timed([vng, "--kconfig"], cwd=tree, env=qemu.vng_env(vng))
    if res.returncode != 0:
        raise InfraError(f"vng --kconfig failed: {res.stderr.strip()[-300:]}")
    # What `vng --build` runs: make's default target, so modules too.
    env = dict(os.environ, CCACHE_DISABLE="1")
    t_make, res = _timed(["make", f"-j{args.jobs}", "LOCALVERSION=-virtme"], cwd=tree, env=env)
    if res.returncode != 0:
        raise InfraError(f"building vng's default config failed: {res.stderr.strip()[-300:]}")
    base = t_cfg + t_make
    row.update(baseline_seconds=round(base, 1), baseline_objects=_objects(tree),
               ratio=round(base / row["seconds"], 2))
    shutil.rmtree(tree, ignore_errors=True)
    return row


def row_rebuild(args) -> dict:
    src = _package(args)
    repo, tag = gittree.from_package(src)
    tree = bisect.workspace(repo)
    gittree.git(tree, "checkout", "-q", "--force", "--detach", tag)
    req = build.BuildRequest(bisect.step_source(tree, tag, "bench"), tree, jobs=args.jobs,
                             build_root=bisect.build_dir(tree))
    build.build(req)                      # up to date first, so only the edit is timed
    uffd_c = tree / "mm/userfaultfd.c"
    uffd_c.write_text(uffd_c.read_text() + f"/* make bench {time.time_ns()} */\n")
    try:
        began = time.monotonic()
        build.build(req)
        took = time.monotonic() - began
    finally:
        gittree.git(tree, "checkout", "-q", "--", "mm/userfaultfd.c")
    return {"seconds": round(took, 1)}


def _check(args, out: Path, *extra: str) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "harness.cli", "check", "--kernel-version",
            args.kernel_version, "--results-dir", str(out), "--json", *extra]
    if args.offline:
        argv.append("--offline")
    took, res = _timed(argv, cwd=REPO)
    if res.returncode not in (0, 1):
        raise InfraError(f"rwp-harness check failed ({res.returncode}): "
                         f"{res.stderr.strip()[-300:]}")
    return took, json.loads(res.stdout[res.stdout.index("{"):])


def row_warm(args, out: Path) -> dict:
    _check(args, out / "warm-prime")                 # builds whatever is missing
    took, doc = _check(args, out / "warm")
    # The programs' own run time in the guest, start-up included, as a bare
    # run would pay it; older runs only timed each test.
    guest = doc["manifest"].get("guest_seconds") \
        or sum(t.get("guest_seconds") or 0 for t in doc["tests"])
    boot = doc["manifest"]["timings"].get("boot", 0)
    return {"seconds": round(took, 1), "tests": len(doc["tests"]),
            "guest_test_seconds": round(guest, 1), "boot_seconds": boot,
            "ratio": round(took / (guest + boot), 2),
            "timings": doc["manifest"]["timings"], "_doc": doc}


def row_debug(args, out: Path, done: dict) -> dict:
    """The debug kernel beside the default one: cold builds and whole suites,
    all four in this invocation (a figure from another run is not a baseline)."""
    src = _package(args)
    default_cold = done.get("cold") or _cold_build(args, src)
    debug_cold = _cold_build(args, src, ("debug",))
    took, doc = _check(args, out / "debug-suite", "--profile", "debug")
    default = done.get("warm") or row_warm(args, out)
    man = doc["manifest"]
    counts = {s: sum(t["status"] == s for t in doc["tests"]) for s in
              ("pass", "fail", "error", "skip", "xfail")}
    return {"build_seconds": debug_cold["seconds"], "objects": debug_cold["objects"],
            "default_build_seconds": default_cold["seconds"],
            "build_ratio": round(debug_cold["seconds"] / default_cold["seconds"], 2),
            "suite_seconds": man["timings"].get("tests"), "check_seconds": round(took, 1),
            "default_suite_seconds": default["timings"].get("tests"),
            "suite_ratio": round(man["timings"].get("tests", 0)
                                 / max(default["timings"].get("tests", 1), 1e-9), 2),
            "deadline_scale": man.get("deadline_scale"),
            "calibration_s": (man.get("guest_capabilities") or {}).get("calibration_s"),
            "counts": counts}


def row_coverage(args, out: Path, done: dict) -> dict:
    if "warm" not in done:
        done["warm"] = row_warm(args, out)
    default = done["warm"]["_doc"]["manifest"]
    objects = ",".join(profile.DEFAULT_OBJECTS)
    src = _package(args)
    key = build.BuildRequest(src, src.path, gcov_objects=profile.DEFAULT_OBJECTS).build_dir()
    with cache.lock("build"):
        shutil.rmtree(key, ignore_errors=True)
    took, doc = _check(args, out / "coverage", "--coverage-objects", objects)
    man, t = doc["manifest"], doc["manifest"]["timings"]
    rwp = (man.get("coverage") or {}).get("rwp") or {}
    return {"seconds": round(took, 1), "build_seconds": round(t.get("config", 0) + t["build"], 1),
            "tests_seconds": t["tests"], "coverage_seconds": t.get("coverage"),
            "default_tests_seconds": default["timings"]["tests"],
            "tests_ratio": round(t["tests"] / default["timings"]["tests"], 2),
            "check_ratio": round(took / done["warm"]["seconds"], 2),
            "rwp_lines": f"{rwp.get('lines_hit')}/{rwp.get('lines')}",
            "rwp_percent": rwp.get("percent")}


MUTATE_SELECTION = "c/rwp_contract::rwprotect_"
BENCH_MUTANTS = """
[[mutant]]
id = "bench-killed"
file = "mm/userfaultfd.c"
find = "\tif (mode_rwp && mode_dontwake)\n\t\treturn -EINVAL;\n"
replace = "\n"
why = "RWPROTECT accepts MODE_RWP with MODE_DONTWAKE"

[[mutant]]
id = "bench-equivalent"
file = "mm/memory.c"
find = "/* Sync mode: unmap PTE and deliver to userfaultfd handler */"
replace = "/* Sync mode: the handler gets the fault */"
why = "a comment"
"""


def row_mutate(args, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-mutants.toml").write_text(BENCH_MUTANTS)
    argv = [sys.executable, "-m", "harness.cli", "mutate", "--kernel-version", args.kernel_version,
            "--mutations", str(out / "bench-mutants.toml"), "-k", MUTATE_SELECTION,
            "--results-dir", str(out / "mutate"), "--json"]
    if args.offline:
        argv.append("--offline")
    took, res = _timed(argv, cwd=REPO)
    if res.returncode != 0:
        raise InfraError(f"rwp-harness mutate failed ({res.returncode}): "
                         f"{res.stderr.strip()[-300:]}")
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    per = {m["id"]: {"verdict": m["verdict"], "seconds": round(m["seconds"], 1),
                     **{k: round(v, 1) for k, v in m["timings"].items()}} for m in doc["mutants"]}
    mean = sum(m["seconds"] for m in per.values()) / max(len(per), 1)
    return {"seconds": round(took, 1), "control_seconds": doc["control_seconds"],
            "tests": len(doc["control"]), "per_mutant": per,
            "seconds_per_mutant": round(mean, 1),
            "ratio_to_control": round(mean / max(doc["control_seconds"], 1e-9), 2)}


def row_boot(warm: dict) -> dict:
    man = warm["_doc"]["manifest"]
    return {"seconds": man["timings"].get("boot"), "shell_seconds": man["boot_seconds"][0],
            "accel": man.get("accel")}


def _bare_vng(bzimage: Path, command: str, expect: str) -> float:
    """Wall time of `vng -- command`; its output must show expect (vng's exit
    status means nothing without udev)."""
    # The trimmed kernel cannot power off: a reset ends QEMU (-no-reboot).
    req = qemu.VMRequest(bzimage, accel="auto")
    # Without udev vng's own output channel is missing: the program writes to
    # the console, which --verbose shows.
    argv = qemu.vng_argv(req, qemu.choose_accel(req))
    argv[1:1] = ["--verbose"]
    # The reset through sysrq: a minimal host root has no reboot(8), and a
    # halted guest would leave QEMU running.
    argv += ["--", "sh", "-c",
             f"{{ {command}; }} >/dev/console 2>&1; echo b > /proc/sysrq-trigger"]
    began = time.monotonic()
    # Its own session, so a run that never ends takes its QEMU down with it.
    proc = subprocess.Popen(argv, env=qemu.vng_env(argv[0]), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=BARE_VNG_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise InfraError(f"bare vng run of '{command[-60:]}' did not end within "
                         f"{BARE_VNG_DEADLINE_S:.0f}s")
    took = time.monotonic() - began
    if expect not in out:
        raise InfraError(f"bare vng run of '{command[-60:]}' did not print '{expect}': "
                         f"{out.strip()[-300:]}")
    return took


def row_overhead(args, out: Path) -> dict:
    took, doc = _check(args, out / "overhead", "-k", OVERHEAD_PROGRAM + "::")
    _, single = _check(args, out / "overhead-one-by-one", "-k", OVERHEAD_PROGRAM + "::",
                       "--one-by-one")
    one_by_one = single["manifest"]["timings"]["tests"]
    n = len(doc["tests"])
    harness_tests = doc["manifest"]["timings"]["tests"]
    bzimage = Path(doc["manifest"]["build_dir"]) / "arch/x86/boot/bzImage"
    staged = _staged_for(doc)
    binary = staged / "bin" / Path(OVERHEAD_PROGRAM).name
    setup = f"sh {staged / 'harness/setup.sh'} >/dev/null"
    try:
        bare_prog = _bare_vng(bzimage, f"{setup}; {binary}", f"1..{n}")
        bare_boot = _bare_vng(bzimage, f"{setup}; echo booted-and-set-up", "booted-and-set-up")
    except InfraError as e:
        # One baseline that cannot be taken must not cost the other rows.
        return {"tests": n, "harness_seconds": round(harness_tests, 1),
                "harness_per_test": round(harness_tests / n, 3),
                "one_by_one_seconds": round(one_by_one, 1), "unmeasured": str(e)}
    bare = max(bare_prog - bare_boot, 0.001)
    return {"tests": n, "harness_seconds": round(harness_tests, 1),
            "bare_seconds": round(bare, 1),
            "harness_per_test": round(harness_tests / n, 3),
            "bare_per_test": round(bare / n, 3),
            "one_by_one_seconds": round(one_by_one, 1),
            "one_by_one_percent": round(100 * (one_by_one / bare - 1), 1),
            "overhead_percent": round(100 * (harness_tests / bare - 1), 1)}


def _staged_for(doc: dict) -> Path:
    bdir = Path(doc["manifest"]["build_dir"])
    return guestprogs.stage(bdir / "hdr/include").root


def row_parallel(args) -> dict:
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "guest/",
            "--rwp-kernel-version", args.kernel_version]
    one, r1 = _timed(base, cwd=REPO)
    two, r2 = _timed(base + ["-n", "2"], cwd=REPO)
    summary = [(r.stdout.strip().splitlines() or ["?"])[-1] for r in (r1, r2)]
    return {"one_vm_seconds": round(one, 1), "two_vms_seconds": round(two, 1),
            "ratio": round(one / two, 2), "one_vm": summary[0], "two_vms": summary[1]}


_BENCH = re.compile(r"^@@BENCH (\{.*\})$", re.M)


def _compile_bench(headers: Path) -> Path:
    src = guestprogs.GUEST_DIR / "bench/rwp_bench.c"
    out = cache.subdir("bench") / "rwp_bench"
    res = run_group(guestprogs.gcc_argv([src], out, headers, extra=("-Wno-unused-function",)))
    if res.returncode != 0:
        raise InfraError(f"compiling rwp_bench.c failed: {res.stderr.strip()[-500:]}")
    return out


def row_micro(args) -> dict:
    src = _package(args)
    bres = build.build(build.BuildRequest(src, src.path, jobs=args.jobs))
    binary = _compile_bench(bres.headers)
    machine = qemu.boot(qemu.VMRequest(bres.bzimage, memory=args.micro_memory))
    try:
        res = machine.console.run(f"{binary} {args.mib} {args.iters} {args.async_mib}",
                                  timeout=1800)
    finally:
        machine.stop()
    if res.status != 0:
        raise InfraError(f"rwp_bench failed ({res.status}): {res.output.strip()[-500:]}")
    figures = [json.loads(m) for m in _BENCH.findall(res.output)]
    return {"accel": machine.accel, "mib": args.mib, "iters": args.iters,
            "figures": figures, "ratios": micro_ratios(figures)}


def micro_ratios(figures: list[dict]) -> dict:
    """Each alternative's figure over RWP's, per measure (higher is better for GiB/s)."""
    by = {}
    for f in figures:
        by.setdefault(f["name"], {})[f["method"]] = f.get("value")
    ratios = {}
    for name, methods in by.items():
        rwp = methods.get("rwp")
        if not rwp:
            continue
        ratios[name] = {m: (round(v / rwp, 2) if v else None)
                        for m, v in methods.items() if m != "rwp"}
    return ratios


# ---- report ----

def markdown(doc: dict) -> str:
    r = doc["rows"]
    lines = ["| loop | measured | baseline | ratio | target |", "|---|---|---|---|---|"]

    def add(key, measured, baseline="", ratio=""):
        lines.append(f"| {key} | {measured} | {baseline} | {ratio} | {TARGETS.get(key, '')} |")
    if "cold" in r:
        c = r["cold"]
        add("cold", f"{c['seconds']} s, {c['objects']} objects",
            f"{c.get('baseline_seconds', '-')} s, {c.get('baseline_objects', '-')} objects",
            f"{c.get('ratio', '-')}x")
    if "arm64" in r:
        a = r["arm64"]
        add("arm64 cold build", f"{a['seconds']} s, {a['objects']} objects",
            f"x86_64: {a['baseline_seconds']} s, {a['baseline_objects']} objects",
            f"{a['ratio']}x")
        add("arm64 boot", f"{a['boot_seconds']} s", f"x86_64: {a['baseline_boot_seconds']} s",
            f"{a['boot_ratio']}x")
    if "rebuild" in r:
        add("rebuild", f"{r['rebuild']['seconds']} s")
    if "warm" in r:
        w = r["warm"]
        add("warm", f"{w['seconds']} s ({w['tests']} tests)",
            f"{w['guest_test_seconds']} s guest + {w['boot_seconds']} s boot", f"{w['ratio']}x")
    if "boot" in r:
        add("boot", f"{r['boot']['seconds']} s to the first test "
                    f"({r['boot']['shell_seconds']} s to a shell, {r['boot']['accel']})")
    if "overhead" in r and "unmeasured" in r["overhead"]:
        o = r["overhead"]
        add("overhead", f"{o['harness_per_test']} s/test", f"not measured: {o['unmeasured']}")
    elif "overhead" in r:
        o = r["overhead"]
        add("overhead", f"{o['harness_per_test']} s/test ({o['one_by_one_seconds'] / o['tests']:.3f}"
                        " s/test --one-by-one)",
            f"{o['bare_per_test']} s/test bare", f"+{o['overhead_percent']} % "
            f"(+{o['one_by_one_percent']} % --one-by-one)")
    if "parallel" in r:
        p = r["parallel"]
        add("parallel", f"{p['two_vms_seconds']} s with -n 2", f"{p['one_vm_seconds']} s, one VM",
            f"{p['ratio']}x")
    if "debug" in r:
        d = r["debug"]
        c = d["counts"]
        add("debug", f"build {d['build_seconds']} s ({d['objects']} objects); suite "
                     f"{d['suite_seconds']} s, {c['pass']} pass, {c['fail']} fail, {c['error']} error, "
                     f"{c['xfail']} xfail, {c['skip']} skip; deadlines x{d['deadline_scale']}",
            f"default kernel: build {d['default_build_seconds']} s, suite "
            f"{d['default_suite_seconds']} s",
            f"build {d['build_ratio']}x, suite {d['suite_ratio']}x")
    if "coverage" in r:
        c = r["coverage"]
        add("coverage", f"build {c['build_seconds']} s; suite {c['tests_seconds']} s + "
                        f"coverage phase {c['coverage_seconds']} s; RWP lines {c['rwp_lines']}",
            f"warm check: suite {c['default_tests_seconds']} s",
            f"suite {c['tests_ratio']}x, check {c['check_ratio']}x")
    if "mutate" in r:
        m = r["mutate"]
        add("mutate", f"{m['seconds_per_mutant']} s per mutant ({m['tests']} tests): "
                      + "; ".join(f"{k} {v['verdict']} {v['seconds']} s" for k, v in
                                  m["per_mutant"].items()),
            f"control {m['control_seconds']} s", f"{m['ratio_to_control']}x")
    if "micro" in r:
        lines += ["", f"Micro-benchmarks ({r['micro']['accel']}; under TCG only the ratios "
                  "mean anything; ÷ RWP above 1 is slower for a time, faster for a GiB/s):", "",
                  "| measure | method | value | unit | ÷ RWP |",
                  "|---|---|---|---|---|"]
        ratios = r["micro"]["ratios"]
        for f in r["micro"]["figures"]:
            ratio = "1" if f["method"] == "rwp" else ratios.get(f["name"], {}).get(f["method"], "")
            value = f["value"] if f["value"] is not None else f"n/a: {f.get('unavailable')}"
            lines.append(f"| {f['name']} | {f['method']} | {value} | {f.get('unit', '')} "
                         f"| {ratio} |")
    return "\n".join(lines) + "\n"


def chart(doc: dict, path: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed (make bench installs it)"
    bars = []
    r = doc["rows"]
    if "cold" in r:
        bars.append(("cold build", r["cold"]["seconds"], r["cold"].get("baseline_seconds")))
    if "rebuild" in r:
        bars.append(("rebuild", r["rebuild"]["seconds"], None))
    if "warm" in r:
        for k, v in r["warm"]["timings"].items():
            bars.append((f"warm: {k}", v, None))
    if "parallel" in r:
        bars.append(("suite, -n 2", r["parallel"]["two_vms_seconds"],
                     r["parallel"]["one_vm_seconds"]))
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(bars) + 1.5))
    names = [b[0] for b in bars]
    ax.barh(names, [b[1] for b in bars], label="rwp-harness")
    ax.barh(names, [b[2] or 0 for b in bars], alpha=0.35, label="baseline")
    ax.set_xlabel("seconds")
    ax.invert_yaxis()
    ax.legend()
    ax.set_title("rwp-harness phase times (2 cores, TCG)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return str(path)


def ratios_text(doc: dict) -> str:
    r = doc["rows"]
    out = []
    for key, field, label in (("cold", "ratio", "cold"), ("warm", "ratio", "warm"),
                              ("parallel", "ratio", "parallel"),
                              ("debug", "build_ratio", "debug build"),
                              ("debug", "suite_ratio", "debug suite"),
                              ("coverage", "tests_ratio", "coverage suite"),
                              ("mutate", "ratio_to_control", "mutant/control")):
        if key in r and field in r[key]:
            out.append(f"{label}: {r[key][field]}x")
    if "overhead_percent" in r.get("overhead", {}):
        out.append(f"overhead: +{r['overhead']['overhead_percent']} %")
    return ", ".join(out)


def _boot_row(args, out: Path, done: dict) -> dict:
    # The boot figures come from the warm run; measure one if it has not run.
    if "warm" not in done:
        done["warm"] = row_warm(args, out)
    return row_boot(done["warm"])


# name -> how to measure it from (args, run directory, rows measured so far)
ROW_FUNCTIONS = {
    "cold": lambda args, out, done: row_cold(args),
    "rebuild": lambda args, out, done: row_rebuild(args),
    "warm": lambda args, out, done: row_warm(args, out),
    "boot": _boot_row,
    "overhead": lambda args, out, done: row_overhead(args, out),
    "parallel": lambda args, out, done: row_parallel(args),
    "micro": lambda args, out, done: row_micro(args),
    "debug": row_debug,
    "coverage": row_coverage,
    "mutate": lambda args, out, done: row_mutate(args, out / "mutate"),
    "arm64": lambda args, out, done: row_arm64(args),
}
assert tuple(ROW_FUNCTIONS) == ROWS


def run(args) -> Path:
    rows = args.rows.split(",") if args.rows else list(ROWS)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise BadInput(f"unknown bench rows {unknown}; known: {', '.join(ROWS)}")
    out = results.new_run_dir(args.results_dir, "bench")
    doc = {"host": {"cpus": os.cpu_count()}, "rows": {}}
    for name in rows:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        doc["rows"][name] = ROW_FUNCTIONS[name](args, out, doc["rows"])
        print(f"[bench] {name} done in {time.monotonic() - began:.0f}s", file=sys.stderr)
        _save(doc, out)
    _save(doc, out)
    print(markdown(_public(doc)))
    print(f"ratios: {ratios_text(doc)}")
    print(f"chart: {chart(_public(doc), out / 'bench.png')}")
    return out


def _public(doc: dict) -> dict:
    rows = {k: {f: v for f, v in r.items() if not f.startswith("_")}
            for k, r in doc["rows"].items()}
    return {**doc, "rows": rows}


def _save(doc: dict, out: Path) -> None:
    pub = _public(doc)
    (out / "bench.json").write_text(json.dumps(pub, indent=1))
    (out / "bench.md").write_text(markdown(pub))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", help=f"comma-separated subset of: {', '.join(ROWS)}")
    p.add_argument("--kernel-version", default="7.3")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--skip-baseline", action="store_true",
                   help="do not build virtme-ng's default config (about 18 min here)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--mib", type=int, default=1024, help="micro: region size (default 1024)")
    p.add_argument("--iters", type=int, default=2000, help="micro: round trips (default 2000)")
    p.add_argument("--async-mib", type=int, default=64, help="micro: async region (default 64)")
    p.add_argument("--micro-memory", default="3G", help="micro: guest memory (default 3G)")
    p.add_argument("--results-dir", type=Path)
    args = p.parse_args(argv)
    try:
        out = run(args)
    except HarnessError as e:
        print(f"bench: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return int(e.status)
    except subprocess.TimeoutExpired as e:
        print(f"bench: error: timed out: {e.cmd[:3]}", file=sys.stderr)
        return int(ExitStatus.INFRA_FAILED)
    except KeyboardInterrupt:
        return int(ExitStatus.INTERRUPTED)
    print(f"[bench] report in {out}", file=sys.stderr)
    return int(ExitStatus.OK)


if __name__ == "__main__":
    sys.exit(main())
