"""The fetch phase: a kernel source tree the harness can build out of tree.

Three origins: Debian's linux-source-X.Y package (default), a tarball, or the
user's own tree. Package and tarball are unpacked once into the cache; the
user's tree is only ever read.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from . import cache
from .apt import PrivateApt, source_package
from .errors import BadInput, InfraError
from .tools import require

MARKER = ".rwp-harness-source.json"


@dataclass(frozen=True)
class KernelSource:
    path: Path
    version: str          # from the tree's Makefile, e.g. 7.3.4
    origin: str           # "debian", "tarball" or "tree"
    identity: str         # exact package version, tarball hash, or the tree's path
    immutable: bool       # True when nobody edits it, so a finished build is final

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def makefile_version(tree: Path) -> str:
    try:
        text = (tree / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        raise BadInput(f"{tree} is not a kernel tree (no readable Makefile)")
    fields = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
        m = re.search(rf"^{key}\s*=[ \t]*(\S*)", text, re.M)
        if m is None:
            raise BadInput(f"{tree} is not a kernel tree (Makefile has no {key})")
        fields[key] = m.group(1)
    version = f"{fields['VERSION']}.{fields['PATCHLEVEL']}.{fields['SUBLEVEL'] or 0}"
    return version + fields["EXTRAVERSION"]


def check_kernel_tree(tree: Path) -> str:
    if not tree.exists():
        raise BadInput(f"kernel source {tree} does not exist")
    if not tree.is_dir():
        raise BadInput(f"kernel source {tree} is not a directory")
    for needed in ("Kconfig", "arch/x86", "mm", "include/uapi/linux"):
        if not (tree / needed).exists():
            raise BadInput(f"{tree} is not a kernel tree (no {needed})")
    return makefile_version(tree)


def from_tree(path: Path) -> KernelSource:
    tree = path.expanduser().resolve()
    version = check_kernel_tree(tree)
    # Out-of-tree builds refuse a source tree that has been configured in place,
    # and cleaning it would be writing into the user's tree.
    if (tree / ".config").exists() or (tree / "include/config").exists():
        raise BadInput(f"{tree} has been built in place (.config present); "
                       "run 'make mrproper' there or pass a clean tree")
    return KernelSource(tree, version, "tree", str(tree), immutable=False)


def _unpack_tarball(tarball: Path, dest: Path) -> Path:
    """Unpack into dest atomically; return the kernel tree's top directory."""
    require("tar")
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        res = subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp)],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            first = (res.stderr.strip().splitlines() or ["unknown error"])[0]
            raise BadInput(f"cannot unpack {tarball}: {first}")
        entries = [p for p in tmp.iterdir()]
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        check_kernel_tree(top)
        top.rename(dest)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cached(dest: Path) -> KernelSource | None:
    marker = dest / MARKER
    if not marker.exists():
        return None
    d = json.loads(marker.read_text())
    d["path"] = Path(d["path"])
    return KernelSource(**d)


def _newest_cached(src_dir: Path, package: str) -> KernelSource | None:
    for cand in sorted(src_dir.glob(f"{package}_*"), reverse=True):
        hit = _cached(cand)
        if hit:
            return hit
    return None


def _record(src: KernelSource) -> KernelSource:
    (src.path / MARKER).write_text(json.dumps(src.to_json(), indent=1))
    return src


def from_tarball(tarball: Path) -> KernelSource:
    tarball = tarball.expanduser().resolve()
    if not tarball.is_file():
        raise BadInput(f"kernel tarball {tarball} does not exist")
    digest = _sha256(tarball)[:16]
    dest = cache.subdir("src") / f"tarball-{digest}"
    found = _cached(dest)
    if found:
        return found
    if dest.exists():
        shutil.rmtree(dest)
    _unpack_tarball(tarball, dest)
    return _record(KernelSource(dest, makefile_version(dest), "tarball",
                                f"{tarball.name} sha256:{digest}", immutable=True))


def from_debian(kernel_version: str, suites: tuple[str, ...] | None = None,
                offline: bool = False) -> KernelSource:
    package = source_package(kernel_version)
    src_dir = cache.subdir("src")
    if offline:
        hit = _newest_cached(src_dir, package)
        if hit is None:
            raise BadInput(f"--offline: no unpacked {package} in the cache")
        return hit
    require("apt-get", "dpkg-deb", "tar")
    apt = PrivateApt(cache.subdir("apt"), **({"suites": suites} if suites else {}))
    try:
        apt.update()
    except InfraError as e:
        hit = _newest_cached(src_dir, package)
        if hit is None:
            raise
        print(f"[fetch] {e}; using the cached {hit.identity}", file=sys.stderr)
        return hit
    version = apt.candidate_version(package)
    if version is None:
        raise BadInput(f"no Debian package {package} in suites {', '.join(apt.suites)}")
    dest = src_dir / f"{package}_{version.replace('~', '_')}"
    found = _cached(dest)
    if found:
        return found
    deb = apt.download(package, version, cache.subdir("debs"))
    with tempfile.TemporaryDirectory(prefix=".deb-", dir=src_dir) as tmp:
        tarball = _tarball_from_deb(deb, package, Path(tmp))
        if dest.exists():
            shutil.rmtree(dest)
        _unpack_tarball(tarball, dest)
    deb.unlink()
    return _record(KernelSource(dest, makefile_version(dest), "debian",
                                f"{package} {version}", immutable=True))


def _tarball_from_deb(deb: Path, package: str, tmp: Path) -> Path:
    res = subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], capture_output=True,
                         text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise InfraError(f"dpkg-deb -x {deb.name} failed: {res.stderr.strip()}")
    tars = sorted((tmp / "usr/src").glob(f"{package}.tar.*"))
    if not tars:
        raise InfraError(f"{deb.name} holds no usr/src/{package}.tar.*")
    return tars[0]
