"""A private apt configuration for downloading Debian's linux-source packages.

The system's sources list is never read or changed: the suites we need live in
our own sources list, with their own lists and cache directories inside the
harness cache, so fetching a kernel cannot upgrade the host.
"""

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness import progress
from harness.errors import BadInput, InfraError
from harness.tools import capture, require

MIRROR = "http://deb.debian.org/debian"
# A local mirror or a stand-in for tests.
MIRROR_ENV = "RWP_HARNESS_DEBIAN_MIRROR"
# Searched in this order; the first suite carrying linux-source-X.Y wins.
DEFAULT_SUITES = ("trixie-backports", "sid")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class PrivateApt:
    root: Path
    suites: tuple[str, ...] = DEFAULT_SUITES
    mirror: str = field(default_factory=lambda: os.environ.get(MIRROR_ENV) or MIRROR)
    # Binary packages of another architecture (a guest root): apt then reads
    # an empty status of its own, not the host's installed packages.
    arch: str | None = None

    def _paths(self):
        return (self.root / "sources.list", self.root / "lists", self.root / "cache")

    def options(self) -> list[str]:
        sources, lists, cache = self._paths()
        return [
            "-o", f"Dir::Etc::SourceList={sources}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::Etc::Preferences=/dev/null",
            "-o", "Dir::Etc::PreferencesParts=/dev/null",
            "-o", f"Dir::State::Lists={lists}",
            "-o", f"Dir::Cache={cache}",
            "-o", "APT::Sandbox::User=root",
            # Snapshot mirrors keep serving Release files past their
            # Valid-Until date; the signatures are still verified.
            "-o", "Acquire::Check-Valid-Until=false",
            "-o", "Debug::NoLocking=1",
        ] + ([] if self.arch is None else [
            "-o", f"APT::Architecture={self.arch}",
            "-o", f"APT::Architectures={self.arch}",
            "-o", f"Dir::State::status={self.root / 'status'}",
        ])

    def prepare(self) -> None:
        if not _MIRROR_URL.fullmatch(self.mirror):
            raise BadInput(f"Debian mirror {self.mirror!r} ({MIRROR_ENV}) is not an http, "
                           "https or file URL")
        sources, lists, cache = self._paths()
        for d in (lists / "partial", cache / "archives" / "partial"):
            d.mkdir(parents=True, exist_ok=True)
        if self.arch is not None:
            (self.root / "status").touch()
        opts = ([f"arch={self.arch}"] if self.arch else []) + \
            ([f"signed-by={KEYRING}"] if Path(KEYRING).exists() else [])
        signed = f" [{' '.join(opts)}]" if opts else ""
        text = "".join(f"deb{signed} {self.mirror} {s} main\n" for s in self.suites)
        if not sources.exists() or sources.read_text() != text:
            sources.write_text(text)

    def update(self) -> None:
        """Refresh the lists; MirrorUnreachable when any suite's index could
        not be had (apt-get itself exits 0 on a failed fetch)."""
        require("apt-get")
        self.prepare()
        res = capture(["apt-get", *self.options(), "-q", "update"])
        text = (res.stderr or "") + (res.stdout or "")
        failed = _FETCH_FAILED.search(text)
        if res.returncode != 0 or failed:
            raise MirrorUnreachable("apt-get update (private configuration) could not reach "
                                    f"{self.mirror}: " + _last_line(failed.group(0) if failed
                                                                    else text))
        missing = [s for s in self.suites if not self._has_release(s)]
        if missing:
            raise MirrorUnreachable(f"apt-get update left no Release file for "
                                    f"{', '.join(missing)} from {self.mirror}")

    def _has_release(self, suite: str) -> bool:
        lists = self._paths()[1]
        return any(lists.glob(f"*_dists_{suite}_InRelease")) or \
            any(lists.glob(f"*_dists_{suite}_Release"))

    def versions(self, package: str) -> list[tuple[str, str]]:
        """(version, suite) of every package version the suites offer."""
        res = capture(["apt-cache", *self.options(), "madison", package])
        found = []
        for line in res.stdout.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 3 and parts[0] == package:
                where = parts[2].split()
                found.append((parts[1], where[1].split("/")[0] if len(where) > 1 else "?"))
        return found

    def choose(self, package: str, exact: str | None = None) -> tuple[str, str] | None:
        """The highest version across the suites (not apt's pin policy, which
        prefers a lower version from a suite that is not NotAutomatic), or
        exactly the one asked for: (version, suite), or None if none."""
        offered = self.versions(package)
        if exact is not None:
            hits = [v for v in offered if v[0] == exact]
            if not hits:
                have = ", ".join(v for v, _ in offered) or "none"
                raise BadInput(f"{package} {exact} is not in suites {', '.join(self.suites)} "
                               f"(offered: {have})")
            return hits[0]
        if not offered:
            return None
        return max(offered, key=functools.cmp_to_key(lambda a, b: compare_versions(a[0], b[0])))

    def size(self, package: str, version: str) -> int | None:
        """The .deb's size in bytes, from the index (None if it does not say)."""
        res = capture(["apt-cache", *self.options(), "show", f"{package}={version}"])
        m = re.search(r"^Size: (\d+)$", res.stdout, re.M)
        return int(m.group(1)) if m else None

    def download(self, package: str, version: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        total = self.size(package, version)

        def poll() -> progress.Snapshot:
            # apt-get writes the .deb into dest (or partial/) as it arrives.
            got = sum(p.stat().st_size for p in [*dest.glob(f"{package}_*"),
                                                  *dest.glob(f"partial/{package}_*")])
            return progress.Snapshot.of(got >> 20, total >> 20 if total else None, "MiB")
        with progress.watch("fetch", poll):
            res = capture(["apt-get", *self.options(), "-q", "download",
                           f"{package}={version}"], cwd=dest)
        if res.returncode != 0:
            raise InfraError(f"apt-get download {package}={version} failed: "
                             + _last_line(res.stderr or res.stdout))
        debs = sorted(dest.glob(f"{package}_*.deb"))
        if not debs:
            raise InfraError(f"apt-get download {package} produced no .deb in {dest}")
        return debs[-1]


# What may be written into a sources list line as the mirror.
_MIRROR_URL = re.compile(r"(https?|file):/[A-Za-z0-9._~:/%+@=-]*")


class MirrorUnreachable(InfraError):
    """The archive could not be reached: a cached source may stand in."""


# apt-get update reports a failed index fetch as a warning and exits 0.
_FETCH_FAILED = re.compile(r"^(W|E): (Failed to fetch|Some index files failed|"
                           r"Could not (connect|resolve)|Temporary failure).*$", re.M)


def compare_versions(a: str, b: str) -> int:
    """Debian version order, as dpkg has it."""
    if a == b:
        return 0
    res = capture(["dpkg", "--compare-versions", a, "lt", b])
    return -1 if res.returncode == 0 else 1


def source_package(series: str) -> str:
    if not re.fullmatch(r"\d+\.\d+", series):
        raise BadInput(f"--kernel-version must look like 7.3, got '{series}'")
    return f"linux-source-{series}"


def _last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "(no output)"
