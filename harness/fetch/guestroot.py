"""A root filesystem for a guest of another architecture than the host's.

An x86_64 guest runs on the host's own / (shared over 9p); an arm64 guest
cannot, so it gets a small Debian root of its own: enough for virtme-ng's
bash init (bash, su and PAM, util-linux, coreutils), the harness's guest
scripts, and Python 3 with its standard library. Its packages are fetched
with the private apt configuration (never the system's) and unpacked without
running a maintainer script (no binfmt, no chroot): the few files those
scripts would have made are written here. A finished root is final; the
packages it holds are listed in its manifest.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import cache
from harness.arch import Arch
from harness.errors import BadInput, InfraError
from harness.fetch.apt import PrivateApt, _last_line
from harness.tools import require, run_group

# Debian 13: the suite the guest root comes from, whatever the host runs.
SUITE = "trixie"
# What the root is grown from; their Depends and Pre-Depends come along.
SEEDS = ("base-files", "base-passwd", "bash", "dash", "coreutils", "util-linux", "mount",
         "grep", "sed", "findutils", "procps", "python3", "libpam-modules", "libpam-runtime")
# Declared dependencies nothing in the guest runs: the package manager and
# the configuration database the maintainer scripts would have used.
LEFT_OUT = frozenset({"dpkg", "debconf", "debconf-2.0", "cdebconf", "perl-base",
                      "install-info", "sensible-utils", "libdebconfclient0", "tzdata",
                      "tzdata-legacy", "usr-is-merged", "init-system-helpers"})
# What virtme-ng's init and the harness's guest scripts call: a root without
# one of them would boot to no shell or fail later for a reason hard to see.
COMMANDS = ("bash", "sh", "su", "setsid", "mount", "mountpoint", "stty", "id", "base64",
            "sed", "grep", "dmesg", "mkswap", "swapon", "sleep", "date", "cat", "python3")
MARKER = ".rwp-harness-root"
MANIFEST = "packages.json"
# Bumped when the fix-ups below change: a root made by older code is remade.
LAYOUT = 1
# The mount point of the staged guest programs (vng --rodir): a read-only root
# cannot have it made at boot.
PROGRAMS_MOUNT = "/rwp-programs"
# ELF e_machine of each architecture's binaries.
_ELF_MACHINE = {"aarch64": 0xB7, "x86_64": 0x3E}


@dataclass(frozen=True)
class GuestRoot:
    path: Path
    arch: str
    suite: str
    packages: dict[str, str]     # name -> version

    def describe(self) -> dict:
        return {"root": str(self.path), "arch": self.arch, "suite": self.suite,
                "packages": self.packages}


def root_dir(arch: Arch) -> Path:
    return cache.subdir("roots") / f"{arch.debian}-{SUITE}-v{LAYOUT}"


def ensure(arch: Arch, offline: bool = False) -> GuestRoot:
    """The cached root of arch, made first if there is none."""
    dest = root_dir(arch)
    done = _read(dest, arch)
    if done is not None:
        return done
    if offline:
        raise BadInput(f"--offline: no {arch.debian} guest root in the cache ({dest}); "
                       "run once without --offline")
    require("apt-get", "apt-cache", "dpkg-deb", "tar")
    with cache.lock(f"root-{arch.debian}"):
        done = _read(dest, arch)
        if done is not None:
            return done
        cache.sweep(dest.parent, f".{dest.name}.*")
        return _make(arch, dest)


def _read(dest: Path, arch: Arch) -> GuestRoot | None:
    if cache.read_marker(dest / MARKER) != "ok\n":
        return None
    try:
        packages = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(packages, dict):
        return None
    return GuestRoot(dest, arch.debian, SUITE, packages)


def _make(arch: Arch, dest: Path) -> GuestRoot:
    apt = PrivateApt(cache.subdir(f"apt-{arch.debian}"), suites=(SUITE,), arch=arch.debian)
    print(f"[root] {arch.debian} guest root from Debian {SUITE} ...", file=sys.stderr, flush=True)
    apt.update()
    stanza_of = functools.lru_cache(maxsize=None)(lambda name: _stanza(apt, name))
    chosen = resolve(SEEDS, stanza_of, lambda name: _providers(apt, name))
    debs = _download(apt, chosen, cache.subdir(f"debs-{arch.debian}"))
    with cache.replacing(dest, f".{dest.name}.") as tmp:
        for d in ("usr/bin", "usr/sbin", "usr/lib"):
            (tmp / d).mkdir(parents=True)
        for link in ("bin", "sbin", "lib"):
            (tmp / link).symlink_to(f"usr/{link}")
        for deb in debs:
            _unpack(deb, tmp)
        _fix_up(tmp)
        _check(tmp, arch)
        (tmp / MANIFEST).write_text(json.dumps(chosen, indent=1, sort_keys=True) + "\n")
        (tmp / MARKER).write_text("ok\n")
    for deb in debs:
        deb.unlink(missing_ok=True)
    print(f"[root] {len(chosen)} packages in {dest}", file=sys.stderr, flush=True)
    return GuestRoot(dest, arch.debian, SUITE, chosen)


_DEP = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9]+)?\s*(?:\(.*\))?\s*(?:\[.*\])?\s*$")


def dependencies(stanza: dict[str, str]) -> list[list[str]]:
    """Depends and Pre-Depends as groups of alternatives (names only)."""
    groups = []
    for field in ("Pre-Depends", "Depends"):
        for group in filter(None, (g.strip() for g in stanza.get(field, "").split(","))):
            names = [m.group(1) for m in map(_DEP.match, group.split("|")) if m]
            if names:
                groups.append(names)
    return groups


def resolve(seeds, stanza_of, providers_of) -> dict[str, str]:
    """The closure of seeds under Depends and Pre-Depends: name -> version.
    An alternative already chosen wins, else the first real package; a
    virtual one is its first provider. LEFT_OUT names are never taken."""
    chosen: dict[str, str] = {}
    todo = list(seeds)
    while todo:
        name = todo.pop(0)
        if name in chosen or name in LEFT_OUT:
            continue
        stanza = stanza_of(name)
        if stanza is None:
            provider = next((p for p in providers_of(name) if p not in LEFT_OUT), None)
            if provider is None:
                raise InfraError(f"Debian {SUITE} has no package {name} for the guest root")
            todo.insert(0, provider)
            continue
        chosen[name] = stanza["Version"]
        for group in dependencies(stanza):
            if any(n in chosen or n in LEFT_OUT for n in group):
                continue
            real = next((n for n in group if stanza_of(n) is not None), None)
            todo.append(real or next((n for n in group if providers_of(n)), group[0]))
    return chosen


def _stanza(apt: PrivateApt, name: str) -> dict[str, str] | None:
    res = run_group(["apt-cache", *apt.options(), "show", "--no-all-versions", name])
    return parse_stanza(res.stdout) if res.returncode == 0 else None


def parse_stanza(text: str) -> dict[str, str] | None:
    """The first package stanza of apt-cache show's output."""
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and last:
            fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key
            fields[key] = value.strip()
    return fields if "Package" in fields and "Version" in fields else None


def _providers(apt: PrivateApt, name: str) -> list[str]:
    res = run_group(["apt-cache", *apt.options(), "showpkg", name])
    text = res.stdout.split("Reverse Provides:", 1)
    if len(text) < 2:
        return []
    return [line.split()[0] for line in text[1].splitlines() if line.strip()]


def _download(apt: PrivateApt, chosen: dict[str, str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    res = run_group(["apt-get", *apt.options(), "-q", "download",
                     *(f"{n}={v}" for n, v in sorted(chosen.items()))], cwd=dest)
    if res.returncode != 0:
        raise InfraError("apt-get download of the guest root's packages failed: "
                         + _last_line(res.stderr or res.stdout))
    debs = []
    for name, version in sorted(chosen.items()):
        # apt names a .deb name_version_arch.deb, with an epoch's colon as %3a.
        hits = sorted(dest.glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
        if len(hits) != 1:
            raise InfraError(f"apt-get download left {len(hits)} .deb files of {name} "
                             f"{version} in {dest}")
        debs.append(hits[0])
    return debs


def _unpack(deb: Path, root: Path) -> None:
    # tar, not dpkg-deb -x: the usr-merge links made above must stay links.
    dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    tar = subprocess.run(["tar", "-x", "-C", str(root), "--keep-directory-symlink",
                           "--same-owner" if os.geteuid() == 0 else "--no-same-owner"],
                         stdin=dpkg.stdout, capture_output=True, text=True)
    dpkg.stdout.close()
    err = dpkg.stderr.read().decode(errors="replace")
    if dpkg.wait() != 0 or tar.returncode != 0:
        raise InfraError(f"unpacking {deb.name} failed: {(err or tar.stderr).strip()[-200:]}")


# PAM for su from root to root (virtme-ng's init starts the shell with it):
# pam-auth-update writes these in a real install.
_PAM = {"common-auth": "auth\tsufficient\tpam_rootok.so\nauth\trequired\tpam_permit.so\n",
        "common-account": "account\trequired\tpam_permit.so\n",
        "common-session": "session\trequired\tpam_permit.so\n",
        "common-session-noninteractive": "session\trequired\tpam_permit.so\n",
        "common-password": "password\trequired\tpam_permit.so\n"}


def _fix_up(root: Path) -> None:
    """What the maintainer scripts would have made, and what a read-only root
    cannot make at boot."""
    sh = root / "usr/bin/sh"
    if not sh.exists() and not sh.is_symlink():
        sh.symlink_to("dash")
    for name in ("passwd", "group"):
        master = root / f"usr/share/base-passwd/{name}.master"
        if not (root / "etc" / name).exists():
            shutil.copyfile(master, root / "etc" / name)
    (root / "etc/shadow").write_text("root:*:20000:0:99999:7:::\n")
    (root / "etc/shadow").chmod(0o640)
    for name, text in _PAM.items():
        (root / "etc/pam.d" / name).write_text(text)
    (root / "etc/default").mkdir(exist_ok=True)
    (root / "etc/default/locale").touch()
    (root / "etc/fstab").touch()
    (root / "etc/hostname").write_text("rwp-guest\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost rwp-guest\n")
    for d in ("proc", "sys", "dev", "run", "root", "mnt", "var/tmp", PROGRAMS_MOUNT.lstrip("/")):
        (root / d).mkdir(parents=True, exist_ok=True)
    # virtme-ng's init mounts no tmpfs on /tmp; /run is one.
    tmp = root / "tmp"
    if tmp.is_dir() and not tmp.is_symlink():
        tmp.rmdir()
    tmp.symlink_to("run/tmp")


def _inside(root: Path, path: str) -> Path | None:
    """path resolved inside root (absolute links point into root, not the host)."""
    cur = root
    parts = [p for p in path.split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        nxt = cur / part
        if nxt.is_symlink():
            hops += 1
            if hops > 40:
                return None
            target = str(nxt.readlink())
            parts = [p for p in target.split("/") if p] + parts
            if target.startswith("/"):
                cur = root
            continue
        if part == "..":
            cur = cur.parent if cur != root else root
            continue
        cur = nxt
    return cur if cur.exists() else None


def _check(root: Path, arch: Arch) -> None:
    missing = [c for c in COMMANDS
               if not any(_inside(root, f"{d}/{c}") for d in ("usr/bin", "usr/sbin"))]
    if missing:
        raise InfraError(f"the {arch.debian} guest root lacks {', '.join(missing)}")
    elf = _inside(root, "usr/bin/bash")
    head = elf.read_bytes()[:20] if elf else b""
    want = _ELF_MACHINE.get(arch.machine)
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != want:
        raise InfraError(f"the guest root's bash is not an {arch.machine} program")
