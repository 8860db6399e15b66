"""A private apt configuration for downloading Debian's linux-source packages.

The system's sources list is never read or changed: the suites we need live in
our own sources list, with their own lists and cache directories inside the
harness cache, so fetching a kernel cannot upgrade the host.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput, InfraError
from .tools import capture, require

MIRROR = "http://deb.debian.org/debian"
# Searched in this order; the first suite carrying linux-source-X.Y wins.
DEFAULT_SUITES = ("trixie-backports", "sid")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class PrivateApt:
    root: Path
    suites: tuple[str, ...] = DEFAULT_SUITES
    mirror: str = MIRROR

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
        ]

    def prepare(self) -> None:
        sources, lists, cache = self._paths()
        for d in (lists / "partial", cache / "archives" / "partial"):
            d.mkdir(parents=True, exist_ok=True)
        signed = f" [signed-by={KEYRING}]" if Path(KEYRING).exists() else ""
        text = "".join(f"deb{signed} {self.mirror} {s} main\n" for s in self.suites)
        if not sources.exists() or sources.read_text() != text:
            sources.write_text(text)

    def update(self) -> None:
        require("apt-get")
        self.prepare()
        res = capture(["apt-get", *self.options(), "-q", "update"])
        if res.returncode != 0:
            raise InfraError("apt-get update (private configuration) failed: "
                             + _last_line(res.stderr or res.stdout))

    def candidate_version(self, package: str) -> str | None:
        res = capture(["apt-cache", *self.options(), "policy", package])
        m = re.search(r"Candidate:\s*(\S+)", res.stdout)
        if not m or m.group(1) == "(none)":
            return None
        return m.group(1)

    def download(self, package: str, version: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        res = capture(["apt-get", *self.options(), "-q", "download", f"{package}={version}"],
                      cwd=dest)
        if res.returncode != 0:
            raise InfraError(f"apt-get download {package}={version} failed: "
                             + _last_line(res.stderr or res.stdout))
        debs = sorted(dest.glob(f"{package}_*.deb"))
        if not debs:
            raise InfraError(f"apt-get download {package} produced no .deb in {dest}")
        return debs[-1]


def source_package(kernel_version: str) -> str:
    if not re.fullmatch(r"\d+\.\d+", kernel_version):
        raise BadInput(f"--kernel-version must look like 7.3, got '{kernel_version}'")
    return f"linux-source-{kernel_version}"


def _last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "(no output)"
