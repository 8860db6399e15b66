"""A kernel run as shipped instead of built: Debian's image packages of the
default source version (`--kernel-image debian`), or the user's own image
(`--kernel-image PATH`, modules with `--kernel-modules DIR`).

Debian splits a kernel into linux-binary-ABI (usr/lib/modules/REL/vmlinuz),
linux-modules-ABI and linux-base-ABI (the config, System.map); the guest
programs compile against linux-libc-dev of the same version. All four are
fetched with the private apt configuration and unpacked once into the cache;
virtme-ng finds the modules beside the image (it runs depmod) and loads the
ones the guest needs from its initramfs.
"""

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import cache
from harness.errors import BadInput, InfraError
from harness.fetch.apt import PrivateApt, source_package
from harness.tools import require, run_group

MARKER = ".rwp-harness-unpacked"


@dataclass(frozen=True)
class Prebuilt:
    root: Path               # where it was unpacked (the user's image: its directory)
    image: Path
    release: str             # uname -r
    config: Path | None      # the kernel's own .config, when known
    headers: Path | None     # UAPI headers matching it (None: the host's)
    identity: str
    origin: str              # "debian-image" or "image"
    version: str             # X.Y.Z


def _abi(apt: PrivateApt, version: str) -> str:
    """The ABI name of the generic amd64 flavour of a kernel version: the
    X.Y.Z+debNN part of linux-binary-X.Y.Z+debNN-amd64."""
    upstream = version.split("-")[0]
    res = run_group(["apt-cache", *apt.options(), "search", "--names-only",
                     rf"^linux-binary-{re.escape(upstream)}\+.*-amd64$"])
    names = sorted(line.split()[0] for line in res.stdout.splitlines() if line.strip())
    generic = [n for n in names if re.fullmatch(rf"linux-binary-{re.escape(upstream)}\+[^-]+-amd64", n)]
    if not generic:
        raise BadInput(f"no Debian linux-binary package for {upstream} on amd64 "
                       f"(found: {', '.join(names) or 'none'})")
    return generic[0][len("linux-binary-"):-len("-amd64")]


def _unpack(debs: list[Path], dest: Path) -> None:
    with cache.replacing(dest, ".unpack-") as tmp:
        for deb in debs:
            res = run_group(["dpkg-deb", "-x", str(deb), str(tmp)])
            if res.returncode != 0:
                raise InfraError(f"dpkg-deb -x {deb.name} failed: {res.stderr.strip()[-200:]}")
        _uapi_tree(tmp)
        (tmp / MARKER).write_text("ok\n")


def _uapi_tree(root: Path) -> None:
    """linux-libc-dev's multiarch layout as the one include directory
    headers_install makes (linux/, asm/, asm-generic/, ...)."""
    inc, hdr = root / "usr/include", root / "hdr/include"
    hdr.mkdir(parents=True)
    for d in inc.iterdir():
        if d.is_dir() and d.name != "x86_64-linux-gnu":
            (hdr / d.name).symlink_to(d)
    (hdr / "asm").symlink_to(inc / "x86_64-linux-gnu/asm")


def _found(root: Path, identity: str, version: str) -> Prebuilt:
    images = sorted(root.glob("usr/lib/modules/*/vmlinuz"))
    if len(images) != 1:
        raise InfraError(f"{root} holds {len(images)} kernel images, want one")
    rel = images[0].parent.name
    config = images[0].parent / "config"
    return Prebuilt(root, images[0], rel, config if config.exists() else None,
                    root / "hdr/include", identity, "debian-image", version)


def debian(series: str, suites: tuple[str, ...] | None = None, offline: bool = False,
           exact: str | None = None) -> Prebuilt:
    """Debian's generic amd64 image of the version `fetch` would take for
    linux-source-SERIES (the same suites, the highest version)."""
    require("apt-get", "apt-cache", "dpkg-deb")
    package = source_package(series)
    base = cache.subdir("prebuilt")
    if offline:
        hits = sorted(base.glob("linux-image_*"))
        hits = [h for h in hits if (h / MARKER).exists()
                and (exact is None or h.name.endswith(exact.replace("~", "_")))]
        if not hits:
            raise BadInput("--offline: no unpacked Debian kernel image in the cache; "
                           "run once without --offline")
        root = hits[-1]
        version = root.name.split("_", 1)[1].replace("_", "~")
        return _found(root, f"Debian linux-image {version}", version.split("-")[0])
    apt = PrivateApt(cache.subdir("apt"), **({"suites": suites} if suites else {}))
    apt.update()
    chosen = apt.choose(package, exact)
    if chosen is None:
        raise BadInput(f"no Debian package {package} in suites {', '.join(apt.suites)}")
    version, suite = chosen
    dest = base / f"linux-image_{version.replace('~', '_')}"
    identity = f"Debian linux-image {version}"
    if (dest / MARKER).exists():
        return _found(dest, identity, version.split("-")[0])
    abi = _abi(apt, version)
    names = [f"linux-binary-{abi}-amd64", f"linux-modules-{abi}-amd64",
             f"linux-base-{abi}-amd64", "linux-libc-dev"]
    print(f"[fetch] {', '.join(names)} {version} from {suite}", file=sys.stderr)
    debs_dir = cache.subdir("debs")
    debs = [apt.download(n, version, debs_dir) for n in names]
    _unpack(debs, dest)
    for deb in debs:
        deb.unlink(missing_ok=True)
    return _found(dest, identity, version.split("-")[0])


_RELEASE = re.compile(rb"(\d+\.\d+\.\d+[^ \0]*) \(")


def user_image(path: Path, modules: Path | None = None) -> Prebuilt:
    """The user's bzImage/vmlinuz, its release read from the image, its config
    from a `config` beside the modules or the image when there is one."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise BadInput(f"--kernel-image {path} is not a file")
    head = path.read_bytes()[:4 << 20]
    m = _RELEASE.search(head)
    if not m:
        raise BadInput(f"{path} does not look like a kernel image (no version string)")
    release = m.group(1).decode(errors="replace")
    if modules is not None and not (modules / "modules.order").exists() \
            and not (modules / "modules.dep").exists():
        raise BadInput(f"--kernel-modules {modules} holds no modules.order or modules.dep")
    config = next((c for c in ((modules / "config") if modules else None,
                               path.parent / "config", path.parent / ".config")
                   if c is not None and c.exists()), None)
    return Prebuilt(path.parent, path, release, config, None, str(path), "image",
                    release.split("-")[0].split("+")[0])
