"""What the user asked for, typed and checked once (as kunit.py does).

The CLI and the pytest plugin each build these from their own options; every
phase takes the part it needs and nothing reads the argparse namespace.
Bisection derives its step requests with dataclasses.replace.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness import arch as arch_
from harness.arch import X86_64, Arch
from harness.coverage import profile
from harness.errors import BadInput
from harness.report.kcidb import DEFAULT_ORIGIN as KCIDB_ORIGIN

DEFAULT_KERNEL = "7.3"
DEFAULT_SUITES = ("c", "py")
# The default deadline of one test, in the guest and on the host; a test may
# set its own ("rwp-harness: timeout NAME SECONDS" in its source).
TEST_TIMEOUT_S = 20.0
# A Debian suite or codename as apt writes it into a sources list.
_SUITE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")
# X.Y (the newest linux-source-X.Y) or an exact package version of it.
_KERNEL = re.compile(r"(\d+)\.(\d+)(?:[.\-~+][0-9A-Za-z.+~\-]*)?")


@dataclass(frozen=True)
class SourceRequest:
    kernel_src: Path | None = None
    kernel_tarball: Path | None = None
    kernel_version: str = DEFAULT_KERNEL
    debian_suites: tuple[str, ...] = ()
    offline: bool = False
    patches: str | None = None

    def check(self) -> None:
        if not _KERNEL.fullmatch(self.kernel_version):
            raise BadInput(f"--kernel-version must look like 7.3 or a Debian version of it "
                           f"(7.3.4-1~bpo13+1), got '{self.kernel_version}'")
        for s in self.debian_suites:
            if not _SUITE.fullmatch(s):
                raise BadInput(f"--debian-suite {s!r} is not a Debian suite name")

    @property
    def series(self) -> str:
        """X.Y: which linux-source-X.Y package."""
        m = _KERNEL.fullmatch(self.kernel_version)
        return f"{m.group(1)}.{m.group(2)}"

    @property
    def exact_version(self) -> str | None:
        """The package version asked for, when more than X.Y was given."""
        return None if self.kernel_version == self.series else self.kernel_version


@dataclass(frozen=True)
class KernelRequest:
    profiles: tuple[str, ...] = ()
    fragments: tuple[Path, ...] = ()
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    # --coverage: the objects that get gcov counters; empty for a normal build.
    coverage_objects: tuple[str, ...] = ()
    # --kernel-image: "debian" (the distro's image of the source version) or a
    # path to the user's image; the kernel is then run as it is, not built.
    image: str | None = None
    image_modules: Path | None = None
    # The kernel's architecture; the run follows the kernel it boots.
    arch: Arch = X86_64

    @property
    def coverage(self) -> bool:
        return bool(self.coverage_objects)


@dataclass(frozen=True)
class RunRequest:
    select: tuple[str, ...] = ()
    suites: tuple[str, ...] = DEFAULT_SUITES
    transport: str = "auto"
    test_timeout: float = TEST_TIMEOUT_S
    # The default deadlines scale with the guest's measured speed (run/deadlines.py);
    # a --test-timeout the user gave is kept as given.
    scale_deadlines: bool = True
    repeat: int = 1
    one_by_one: bool = False
    # Stop at the first test that fails (the rest are listed as not run).
    exitfirst: bool = False
    allowlist: Path | None = None
    results_dir: Path | None = None
    json: bool = False
    cpus: int = 2
    memory: str = "2G"
    accel: str = "auto"
    append: tuple[str, ...] = ()
    # --offline: nothing of the run reaches the network either (a guest root).
    offline: bool = False

    def check(self) -> None:
        if self.repeat < 1:
            raise BadInput(f"--repeat must be at least 1, got {self.repeat}")
        if self.test_timeout <= 0:
            raise BadInput(f"--test-timeout must be positive, got {self.test_timeout}")
        if self.cpus < 1:
            raise BadInput(f"--cpus must be at least 1, got {self.cpus}")
        if not re.fullmatch(r"\d+[KMGT]?", self.memory):
            raise BadInput(f"--memory must look like 2G or 2048M, got '{self.memory}'")
        if self.results_dir is not None and self.results_dir.exists() \
                and not self.results_dir.is_dir():
            raise BadInput(f"--results-dir {self.results_dir} exists and is not a directory")


@dataclass(frozen=True)
class BisectRequest:
    good: str | None = None
    bad: str | None = None
    boot_panic: str = "skip"
    # "any": a failure of any selected test is bad; "same": only one of the
    # tests that failed at --bad (another failure makes the step a skip).
    failure: str = "any"


@dataclass(frozen=True)
class MutateRequest:
    mutations: tuple[Path, ...] = ()     # empty: kernel-mutations/
    only: tuple[str, ...] = ()
    generate: Path | None = None
    coverage_run: Path | None = None
    base: str | None = None
    resume: Path | None = None           # a mutate-* report directory to go on with
    # Run each mutant with only the programs the coverage run saw execute its lines.
    by_coverage: bool = False


@dataclass(frozen=True)
class ReportRequest:
    """What a run writes or prints besides its run directory."""
    baseline: Path | None = None         # check --baseline: compared at the end
    kcidb: Path | None = None            # --kcidb FILE: the run as a KCIDB document
    kcidb_origin: str = KCIDB_ORIGIN

    def check(self) -> None:
        if self.baseline is not None and not self.baseline.exists():
            raise BadInput(f"--baseline {self.baseline} does not exist")
        if self.kcidb is not None and not self.kcidb.parent.is_dir():
            raise BadInput(f"--kcidb {self.kcidb}: {self.kcidb.parent} is not a directory")
        if not re.fullmatch(r"[a-z0-9_]+", self.kcidb_origin):
            raise BadInput(f"--kcidb-origin must be lowercase letters, digits and _, "
                           f"got '{self.kcidb_origin}'")


@dataclass(frozen=True)
class Request:
    source: SourceRequest = SourceRequest()
    kernel: KernelRequest = KernelRequest()
    run: RunRequest = RunRequest()
    bisect: BisectRequest = BisectRequest()
    mutate: MutateRequest = MutateRequest()
    report: ReportRequest = ReportRequest()


def check_accel(kernel: KernelRequest, run: RunRequest) -> None:
    if run.accel == "kvm" and not kernel.arch.native:
        raise BadInput(f"KVM cannot run an {kernel.arch.name} guest on this host; "
                       "it runs under TCG (accel auto or tcg)")


def _get(args, name, default=None):
    value = getattr(args, name, None)
    return default if value is None else value


def from_args(args) -> Request:
    """The typed request of a parsed command line, checked."""
    source = SourceRequest(
        kernel_src=_get(args, "kernel_src"), kernel_tarball=_get(args, "kernel_tarball"),
        kernel_version=_get(args, "kernel_version", DEFAULT_KERNEL),
        debian_suites=tuple(_get(args, "debian_suite", ())), offline=_get(args, "offline", False),
        patches=_get(args, "patches"))
    objects = ()
    if _get(args, "coverage", False) or _get(args, "coverage_objects"):
        objects = profile.parse_objects(_get(args, "coverage_objects")) \
            if _get(args, "coverage_objects") else profile.DEFAULT_OBJECTS
    kernel = KernelRequest(tuple(_get(args, "profile", ())), tuple(_get(args, "fragment", ())),
                           _get(args, "jobs", os.cpu_count() or 1), objects,
                           _get(args, "kernel_image"), _get(args, "kernel_modules"),
                           arch_.get(_get(args, "arch", arch_.DEFAULT)))
    if kernel.image and kernel.arch != X86_64:
        raise BadInput("--kernel-image runs an x86_64 kernel; another --arch needs a build")
    if kernel.image and (kernel.coverage or kernel.profiles or kernel.fragments
                         or source.patches or source.kernel_src or source.kernel_tarball):
        raise BadInput("--kernel-image runs a kernel as it was built: it takes no --patches, "
                       "--kernel-src, --kernel-tarball, --profile, --fragment or --coverage")
    if kernel.image_modules and not kernel.image:
        raise BadInput("--kernel-modules goes with --kernel-image PATH")
    run = RunRequest(
        select=tuple(_get(args, "select", ())), suites=tuple(_get(args, "suite", DEFAULT_SUITES)),
        transport=_get(args, "transport", "auto"),
        test_timeout=_get(args, "test_timeout", TEST_TIMEOUT_S),
        scale_deadlines=getattr(args, "test_timeout", None) is None, repeat=_get(args, "repeat", 1),
        one_by_one=_get(args, "one_by_one", False), exitfirst=_get(args, "exitfirst", False),
        allowlist=_get(args, "allowlist"),
        results_dir=_get(args, "results_dir"), json=_get(args, "json", False),
        cpus=_get(args, "cpus", 2), memory=_get(args, "memory", "2G"),
        accel=_get(args, "accel", "auto"), append=tuple(_get(args, "append", ())),
        offline=_get(args, "offline", False))
    bis = BisectRequest(_get(args, "good"), _get(args, "bad"), _get(args, "boot_panic", "skip"),
                        _get(args, "failure", "any"))
    mut = MutateRequest(tuple(_get(args, "mutations", ())), tuple(_get(args, "only", ())),
                        _get(args, "generate"), _get(args, "coverage_run"), _get(args, "base"),
                        _get(args, "resume"), _get(args, "by_coverage", False))
    if mut.by_coverage and mut.coverage_run is None:
        raise BadInput("--by-coverage needs the coverage run it selects by (--coverage-run DIR)")
    if mut.by_coverage and run.select:
        raise BadInput("--by-coverage chooses each mutant's tests itself: give no -k selection")
    if kernel.jobs < 1:
        raise BadInput(f"--jobs must be at least 1, got {kernel.jobs}")
    report = ReportRequest(_get(args, "baseline"), _get(args, "kcidb"),
                           _get(args, "kcidb_origin", KCIDB_ORIGIN))
    check_accel(kernel, run)
    source.check()
    run.check()
    report.check()
    return Request(source, kernel, run, bis, mut, report)
