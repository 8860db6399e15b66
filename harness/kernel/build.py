"""The config and build phases: an out-of-tree kernel build in the cache."""

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import cache, progress
from harness.arch import X86_64, Arch
from harness.errors import BuildError, ConfigError
from harness.coverage import profile
from harness.fetch.patches import Series
from harness.fetch.prebuilt import Prebuilt
from harness.fetch.source import KernelSource
from harness.kernel import kconfig
from harness.tools import log_tail, require, run_logged

BUILD_TOOLS = ("make", "gcc", "flex", "bison", "bc")


@dataclass(frozen=True)
class BuildRequest:
    source: KernelSource
    tree: Path                     # the tree make reads: the source, or a patched copy
    series_hash: str = ""          # empty when no patches
    profiles: tuple[str, ...] = ()
    fragments: tuple[Path, ...] = ()
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    # A fixed build directory (bisection), reused whatever the tree holds.
    build_root: Path | None = None
    # make bench times a cold build with an empty ccache of its own.
    ccache_dir: Path | None = None
    # A coverage build: these objects get gcov counters (coverage/profile.py).
    gcov_objects: tuple[str, ...] = ()
    # The series applied in tree, for diff coverage (its identity is series_hash).
    series: Series | None = field(default=None, compare=False)
    # --kernel-image: the kernel is run as shipped; nothing is configured or built.
    prebuilt: "Prebuilt | None" = field(default=None, compare=False)
    arch: Arch = X86_64

    def requested_config(self) -> kconfig.Kconfig:
        return kconfig.requested(list(self.profiles), list(self.fragments), self.arch.fragment)

    def build_dir(self) -> Path:
        if self.build_root is not None:
            return self.build_root
        # x86_64's key is what it was before there was another architecture.
        arch = [] if self.arch == X86_64 else [self.arch.name]
        key = "|".join([self.source.identity, self.series_hash,
                        self.requested_config().digest(), *self.gcov_objects, *arch])
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return cache.subdir("builds") / f"{self.source.version}-{digest}"


@dataclass(frozen=True)
class BuildResult:
    build_dir: Path
    bzimage: Path
    headers: Path                  # include directory from headers_install
    dotconfig: Path
    log: Path
    kernel_release: str
    rebuilt: bool
    boot_args: tuple[str, ...] = ()     # what this kernel needs on its command line
    arch: Arch = X86_64

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v.name if isinstance(v, Arch) else v)
                for k, v in self.__dict__.items()}


def _make_env(req: "BuildRequest") -> dict:
    env = dict(os.environ)
    env["CCACHE_DIR"] = str(req.ccache_dir or cache.subdir("ccache"))
    env.setdefault("KBUILD_BUILD_USER", "rwp-harness")
    env.setdefault("KBUILD_BUILD_HOST", "rwp-harness")
    return env


def _make(req: BuildRequest, bdir: Path, log: Path, *targets: str) -> int:
    argv = ["make", "-C", req.tree, f"O={bdir}", f"-j{req.jobs}"]
    if not req.arch.native:
        argv += [f"ARCH={req.arch.kernel_arch}", f"CROSS_COMPILE={req.arch.prefix}"]
    if shutil.which("ccache"):
        argv.append(f"CC=ccache {req.arch.gcc}")
    argv += profile.make_vars(req.gcov_objects)
    return run_logged([*argv, *targets], log, env=_make_env(req))


def configure(req: BuildRequest) -> Path:
    """Write and check bdir/.config: tinyconfig, our fragments, olddefconfig."""
    with cache.lock("build"):
        return _configure(req)[0]


def _configure(req: BuildRequest) -> tuple[Path, bool]:
    """The build directory's .config for req, and whether it was (re)made now."""
    require(*BUILD_TOOLS, req.arch.gcc)
    cache.require_space()
    want = req.requested_config()
    bdir = req.build_dir()
    bdir.mkdir(parents=True, exist_ok=True)
    stamp, dotconfig, log = bdir / "config.ok", bdir / ".config", bdir / "build.log"
    # A fixed build directory (bisection) outlives changes to the fragments.
    if dotconfig.exists() and (cache.read_marker(stamp) or "").strip() == want.digest():
        return dotconfig, False
    if _make(req, bdir, log, "tinyconfig") != 0:
        raise ConfigError(f"make tinyconfig failed:\n{log_tail(log)}")
    with open(dotconfig, "a") as f:
        f.write(want.text())
    if _make(req, bdir, log, "olddefconfig") != 0:
        raise ConfigError(f"make olddefconfig failed:\n{log_tail(log)}")
    for note in kconfig.check(want, dotconfig, req.tree):
        print(f"[config] {note}", file=sys.stderr)
    (bdir / "requested.config").write_text(want.text())
    cache.write_atomic(stamp, want.digest() + "\n")
    return dotconfig, True


def build(req: BuildRequest) -> BuildResult:
    # A finished build of an immutable source is final: a run of it need not
    # wait behind another configuration's build (the lock keeps builds one at a time).
    done = _finished(req)
    if done is not None:
        return done
    with cache.lock("build"):
        return _build(req)


def _outputs(bdir: Path, arch: Arch) -> tuple[Path, Path]:
    """The image and the UAPI headers a build directory holds once built."""
    return bdir / arch.image, bdir / "hdr/include"


def _complete(bdir: Path, arch: Arch) -> bool:
    bzimage, headers = _outputs(bdir, arch)
    return cache.read_marker(bdir / "build.ok") == "ok\n" and bzimage.exists() and headers.is_dir()


def _release(bdir: Path) -> str:
    return (cache.read_marker(bdir / "include/config/kernel.release") or "").strip()


def _finished(req: BuildRequest) -> BuildResult | None:
    bdir = req.build_dir()
    if not req.source.immutable or not _complete(bdir, req.arch) or not _release(bdir) or \
            (cache.read_marker(bdir / "config.ok") or "").strip() != req.requested_config().digest():
        return None
    bzimage, headers = _outputs(bdir, req.arch)
    return BuildResult(bdir, bzimage, headers, bdir / ".config", bdir / "build.log",
                       _release(bdir), False, arch=req.arch)


def _build(req: BuildRequest) -> BuildResult:
    dotconfig, configured = _configure(req)
    bdir = dotconfig.parent
    log, stamp = bdir / "build.log", bdir / "build.ok"
    bzimage, headers = _outputs(bdir, req.arch)
    done = _complete(bdir, req.arch)
    # A tree someone may edit is always handed to make, which rebuilds only
    # what changed; a package or tarball build that finished once is final.
    rebuilt = not (done and req.source.immutable)
    if rebuilt:
        stamp.unlink(missing_ok=True)
        if _make_counted(req, bdir, log, builds_all(bdir, configured)) != 0:
            raise BuildError(f"kernel build failed (log: {log}):\n{log_tail(log)}")
        if _make(req, bdir, log, "headers_install", f"INSTALL_HDR_PATH={bdir / 'hdr'}") != 0:
            raise BuildError(f"headers_install failed (log: {log}):\n{log_tail(log)}")
        # make re-runs syncconfig when the tree's Kconfig changed (a bisect
        # step, an edited tree): what was requested must still hold.
        for note in kconfig.check(req.requested_config(), dotconfig, req.tree):
            print(f"[config] {note}", file=sys.stderr)
        cache.write_atomic(stamp, "ok\n")
    release = _release(bdir)
    if not release:
        stamp.unlink(missing_ok=True)
        raise BuildError(f"the build in {bdir} has no include/config/kernel.release; "
                         "it is incomplete and will be rebuilt by the next build")
    return BuildResult(bdir, bzimage, headers, dotconfig, log, release, rebuilt, arch=req.arch)


# Kbuild prints one line per object it compiles or assembles.
_OBJECT_LINES = ("  CC ", "  AS ")
# What a cold build of the default config of 7.3.4 compiles (counted in its
# build.log; x86_64 with ACPI): the estimate of a machine that has built
# nothing yet.
DEFAULT_OBJECTS = {"x86_64": 1276, "arm64": 814}


def _objects_file(req: BuildRequest) -> Path:
    key = "|".join([req.requested_config().digest(), *req.gcov_objects])
    return cache.subdir("stats") / f"objects-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _expected_objects(req: BuildRequest) -> int:
    """What the last cold build of this config compiled, else the default's count."""
    try:
        return int((cache.read_marker(_objects_file(req)) or "").strip())
    except ValueError:
        return DEFAULT_OBJECTS[req.arch.name]


def builds_all(bdir: Path, configured: bool) -> bool:
    """Whether make will compile (nearly) every object: nothing built yet, or a
    config made afresh (fragments changed under a fixed bisection directory),
    which touches the autoconf header every object includes."""
    return configured or not (bdir / "vmlinux").exists()


def _make_counted(req: BuildRequest, bdir: Path, log: Path, cold: bool) -> int:
    """make the image with a live count of the objects compiled. A build of
    every object has a known total; an incremental one only counts."""
    counter = progress.LogCounter(log, _OBJECT_LINES)
    total = _expected_objects(req) if cold else None
    with progress.watch("build", lambda: progress.Snapshot.of(counter.poll(), total, "objects")):
        status = _make(req, bdir, log, req.arch.image_target)
    if status == 0 and cold:
        cache.write_atomic(_objects_file(req), f"{counter.poll()}\n")
    return status


def print_result(res: BuildResult) -> None:
    json.dump(res.to_json(), sys.stdout, indent=1)
    print()
