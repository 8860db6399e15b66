"""Applying a patch series in a tree the harness owns.

A series is an mbox (applied with git am, one commit per patch) or a directory
of *.patch files ordered by its quilt 'series' file, or by name. The user's
tree is copied first; it is never written to.
"""

import hashlib
import mailbox
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import cache
from .errors import BadInput, PatchError
from .source import KernelSource
from .tools import require

DONE = ".rwp-harness-patched"
GIT_ID = ["-c", "user.name=rwp-harness", "-c", "user.email=rwp-harness@localhost",
          "-c", "commit.gpgsign=false"]


@dataclass(frozen=True)
class Series:
    kind: str                  # "mbox" or "quilt"
    files: tuple[Path, ...]    # patch files in order (one mbox file for "mbox")
    digest: str

    def describe(self) -> str:
        return f"{self.kind} series {self.digest} ({len(self.files)} file(s))"


def _is_mbox(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(5) == b"From "


def _quilt_order(directory: Path) -> list[Path]:
    series = directory / "series"
    if series.exists():
        names = []
        for line in series.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line.split()[0])
        files = [directory / n for n in names]
        for f in files:
            if not f.is_file():
                raise BadInput(f"{series} names {f.name}, which does not exist")
        return files
    return sorted(directory.glob("*.patch"))


def load(path: Path) -> Series:
    path = path.expanduser().resolve()
    if not path.exists():
        raise BadInput(f"patch series {path} does not exist")
    if path.is_dir():
        kind, files = "quilt", _quilt_order(path)
    else:
        kind, files = ("mbox" if _is_mbox(path) else "quilt"), [path]
    if not files:
        raise BadInput(f"patch series {path} holds no *.patch files")
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return Series(kind, tuple(files), h.hexdigest()[:16])


def _git(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *GIT_ID, "-C", str(tree), *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)


def _copy_tree(src: Path, dest: Path) -> None:
    require("rsync")
    res = subprocess.run(["rsync", "-a", "--delete", "--exclude=/.git", f"{src}/", f"{dest}/"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise PatchError(f"copying {src} failed: {res.stderr.strip()}")


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return (text.strip().splitlines() or ["unknown error"])[-1]


def _mbox_subjects(path: Path) -> list[str]:
    return [str(m.get("Subject", "?")) for m in mailbox.mbox(str(path))]


def _apply_mbox(tree: Path, mbox: Path) -> None:
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base", "--no-verify"]):
        res = _git(tree, *args)
        if res.returncode != 0:
            raise PatchError(f"preparing git tree for {mbox.name} failed: {res.stderr.strip()}")
    res = _git(tree, "am", "--quiet", str(mbox))
    if res.returncode != 0:
        cur = _git(tree, "am", "--show-current-patch=raw")
        subject = next((l[len("Subject: "):] for l in cur.stdout.splitlines()
                        if l.startswith("Subject: ")), "?")
        raise PatchError(f"patch '{subject}' from {mbox.name} does not apply: "
                         f"{_first_error(res.stderr + res.stdout)}")


def _apply_quilt(tree: Path, files: tuple[Path, ...]) -> None:
    for patch in files:
        res = subprocess.run(["git", "apply", "-p1", str(patch)], cwd=tree,
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise PatchError(f"patch {patch.name} does not apply: {_first_error(res.stderr)}")


def apply(source: KernelSource, series: Series) -> Path:
    """Return a tree holding source plus series, reusing a finished one."""
    require("git")
    dest = cache.subdir("trees") / f"{source.version}-{series.digest}"
    marker = dest / DONE
    # A tree the user may have edited since is copied again; a package's is final.
    if source.immutable and marker.exists() and marker.read_text().strip() == source.identity:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    _copy_tree(source.path, dest)
    try:
        if series.kind == "mbox":
            _apply_mbox(dest, series.files[0])
        else:
            _apply_quilt(dest, series.files)
    except PatchError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    marker.write_text(source.identity + "\n")
    return dest
