"""The fetch phase: a kernel source tree the harness can build out of tree.

Three origins: Debian's linux-source-X.Y package (default), a tarball, or the
user's own tree. Package and tarball are unpacked once into the cache; the
user's tree is only ever read.
"""

import hashlib
import json
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import cache, progress
from harness.errors import BadInput, InfraError
from harness.fetch.apt import MirrorUnreachable, PrivateApt, source_package
from harness.tools import require, run_group

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


# What a killed fetch leaves in the cache's src/ and debs/ (swept under the lock).
_LEFTOVERS = (".unpack-*", ".deb-*")


def _unpack_tarball(tarball: Path, dest: Path) -> Path:
    """Unpack into dest atomically; return the kernel tree's top directory."""
    require("tar")
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with progress.elapsed("unpack"):
            res = run_group(["tar", "-xf", str(tarball), "-C", str(tmp)])
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
    """The source unpacked at dest, or None if absent or its marker is torn
    (the caller then unpacks it again)."""
    text = cache.read_marker(dest / MARKER)
    if text is None:
        return None
    try:
        d = json.loads(text)
        d["path"] = Path(d["path"])
        src = KernelSource(**d)
    except (ValueError, TypeError, KeyError):
        return None
    return src if src.path == dest and dest.is_dir() else None


def _newest_cached(src_dir: Path, package: str, exact: str | None = None) -> KernelSource | None:
    for cand in sorted(src_dir.glob(f"{package}_*"), reverse=True):
        hit = _cached(cand)
        if hit and (exact is None or hit.identity == f"{package} {exact}"):
            return hit
    return None


def _record(src: KernelSource) -> KernelSource:
    cache.write_atomic(src.path / MARKER, json.dumps(src.to_json(), indent=1))
    return src


def _sweep(src_dir: Path) -> None:
    for pattern in _LEFTOVERS:
        for p in cache.sweep(src_dir, pattern):
            print(f"[fetch] removed {p.name}, left by an interrupted fetch", file=sys.stderr)


def from_tarball(tarball: Path) -> KernelSource:
    tarball = tarball.expanduser().resolve()
    if not tarball.is_file():
        raise BadInput(f"kernel tarball {tarball} does not exist")
    digest = _sha256(tarball)[:16]
    src_dir = cache.subdir("src")
    dest = src_dir / f"tarball-{digest}"
    with cache.lock("fetch"):
        found = _cached(dest)
        if found:
            return found
        _sweep(src_dir)
        if dest.exists():
            shutil.rmtree(dest)
        _unpack_tarball(tarball, dest)
        return _record(KernelSource(dest, makefile_version(dest), "tarball",
                                    f"{tarball.name} sha256:{digest}", immutable=True))


def from_debian(series: str, suites: tuple[str, ...] | None = None, offline: bool = False,
                exact: str | None = None) -> KernelSource:
    """Debian's linux-source-SERIES: the highest version the suites offer (or
    exactly `exact`), unpacked once. An archive that cannot be reached falls
    back to the cached source, with a notice."""
    package = source_package(series)
    src_dir = cache.subdir("src")
    if offline:
        hit = _newest_cached(src_dir, package, exact)
        if hit is None:
            raise BadInput(f"--offline: no unpacked {package} {exact or ''} in the cache".replace(
                "  ", " "))
        return hit
    require("apt-get", "apt-cache", "dpkg-deb", "tar")
    with cache.lock("fetch"):
        return _from_debian(package, src_dir, suites, exact)


def _from_debian(package: str, src_dir: Path, suites, exact) -> KernelSource:
    apt = PrivateApt(cache.subdir("apt"), **({"suites": suites} if suites else {}))
    try:
        apt.update()
    except MirrorUnreachable as e:
        hit = _newest_cached(src_dir, package, exact)
        if hit is None:
            raise InfraError(f"{e}; no cached {package} to use instead (a later "
                             "'--offline' uses one once fetched)")
        print(f"[fetch] notice: {e}; using the cached {hit.identity}", file=sys.stderr)
        return hit
    chosen = apt.choose(package, exact)
    if chosen is None:
        raise BadInput(f"no Debian package {package} in suites {', '.join(apt.suites)}")
    version, suite = chosen
    print(f"[fetch] {package} {version} from {suite}", file=sys.stderr)
    dest = src_dir / f"{package}_{version.replace('~', '_')}"
    found = _cached(dest)
    if found:
        return found
    older = _newest_cached(src_dir, package)
    if older is not None:
        print(f"[fetch] notice: the archive now offers {version}; the cache holds "
              f"{older.identity} (pass --kernel-version {older.identity.split()[-1]} to "
              "keep testing that one)", file=sys.stderr)
    _sweep(src_dir)
    debs = cache.subdir("debs")
    cache.sweep(debs, f"{package}_*.deb")
    deb = apt.download(package, version, debs)
    with tempfile.TemporaryDirectory(prefix=".deb-", dir=src_dir) as tmp:
        tarball = _tarball_from_deb(deb, package, Path(tmp))
        if dest.exists():
            shutil.rmtree(dest)
        _unpack_tarball(tarball, dest)
    deb.unlink()
    return _record(KernelSource(dest, makefile_version(dest), "debian",
                                f"{package} {version}", immutable=True))


def _tarball_from_deb(deb: Path, package: str, tmp: Path) -> Path:
    res = run_group(["dpkg-deb", "-x", str(deb), str(tmp)])
    if res.returncode != 0:
        raise InfraError(f"dpkg-deb -x {deb.name} failed: {res.stderr.strip()}")
    tars = sorted((tmp / "usr/src").glob(f"{package}.tar.*"))
    if not tars:
        raise InfraError(f"{deb.name} holds no usr/src/{package}.tar.*")
    return tars[0]
