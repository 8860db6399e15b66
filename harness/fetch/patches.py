"""A patch series and how it is applied, always in a tree the harness owns.

Three kinds of series:
  mbox      as saved from a list archive, or the .mbx `b4 am` writes; a cover
            letter (a mail without a diff) is skipped; applied with git am,
            one commit per patch, trailers kept
  quilt     a directory of *.patch in its `series` file order, else by name
  git-range BASE..TIP in the git repository given as --kernel-src
The user's tree is copied (or cloned, sharing its objects) first; it is never
written to. The series' identity is a hash over its patches.
"""

import hashlib
import mailbox
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import cache
from harness.errors import BadInput, PatchError
from harness.fetch import gittree
from harness.fetch.source import KernelSource
from harness.tools import require, run_group

DONE = ".rwp-harness-patched"
_DIFF = re.compile(rb"^(diff --git |--- \S.*\n\+\+\+ \S)", re.M)


@dataclass(frozen=True)
class Series:
    kind: str                  # "mbox", "quilt" or "git-range"
    files: tuple[Path, ...]    # patch files in order (one mbox file for "mbox")
    digest: str
    mails: tuple[bytes, ...] = ()      # mbox: the patch mails, cover letters left out
    skipped: tuple[str, ...] = ()      # mbox: subjects of the mails without a diff
    repo: Path | None = None           # git-range: the repository
    base: str = ""                     # git-range: commit hashes of its ends
    tip: str = ""
    # The Message-Id of the mail that introduced the series (its cover letter,
    # else its first patch): KCIDB's checkout message_id.
    message_id: str = ""

    def patch_sha256(self) -> list[str]:
        """Each patch's sha256, in the order applied (mbox: each patch mail)."""
        blobs = self.mails if self.kind == "mbox" else [f.read_bytes() for f in self.files]
        return [hashlib.sha256(b).hexdigest() for b in blobs]

    def to_json(self) -> dict:
        return {"kind": self.kind, "digest": self.digest, "files": [str(f) for f in self.files],
                "patch_sha256": self.patch_sha256() if self.kind != "git-range" else [],
                "message_id": self.message_id, "base": self.base, "tip": self.tip,
                "describe": self.describe()}

    def describe(self) -> str:
        if self.kind == "git-range":
            return f"git range {self.base[:12]}..{self.tip[:12]} (series {self.digest})"
        count = len(self.mails) if self.kind == "mbox" else len(self.files)
        skipped = f", skipped {len(self.skipped)} without a diff" if self.skipped else ""
        return f"{self.kind} series {self.digest} ({count} patch(es){skipped})"


def _is_mbox(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(5) == b"From "


def _quilt_order(directory: Path) -> list[Path]:
    series = directory / "series"
    if series.exists():
        names = []
        try:
            text = series.read_text()
        except UnicodeDecodeError:
            raise BadInput(f"{series} is not UTF-8 text")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line.split()[0])
        files = [directory / n for n in names]
        for f in files:
            if not f.is_file():
                raise BadInput(f"{series} names {f.name}, which does not exist")
        return files
    return sorted(directory.glob("*.patch"))


def _split_mbox(path: Path) -> tuple[list[bytes], list[str], str]:
    """The mails that carry a diff, each with its From_ line; subjects of the
    others; the first mail's Message-Id."""
    box = mailbox.mbox(str(path), create=False)
    kept, skipped, first_id = [], [], ""
    for key in box.keys():
        if not first_id:
            first_id = str(box.get_message(key).get("Message-Id", "")).strip().strip("<>")
        raw = box.get_bytes(key)
        if _DIFF.search(raw):
            kept.append(f"From {box.get_message(key).get_from()}\n".encode() + raw)
        else:
            skipped.append(str(box.get_message(key).get("Subject", "?")))
    return kept, skipped, first_id


def _b4_output(directory: Path) -> Path | None:
    """`b4 am -o DIR` leaves one .mbx with the series (and a .cover beside it)."""
    mbx = sorted(directory.glob("*.mbx"))
    if len(mbx) > 1:
        raise BadInput(f"{directory} holds {len(mbx)} .mbx files; name the one to apply")
    return mbx[0] if mbx else None


def _load_mbox(path: Path) -> Series:
    try:
        mails, skipped, message_id = _split_mbox(path)
    except (UnicodeError, ValueError, LookupError, mailbox.Error) as e:
        raise BadInput(f"mbox {path} cannot be read as mail: {e}")
    if not mails:
        raise BadInput(f"mbox {path} holds no patch (no mail with a diff)")
    h = hashlib.sha256()
    for m in mails:
        h.update(m)
    return Series("mbox", (path,), h.hexdigest()[:16], tuple(mails), tuple(skipped),
                  message_id=message_id)


def _load_range(spec: str, repo: Path | None) -> Series:
    if repo is None or not gittree.is_repo(repo):
        raise BadInput(f"git range '{spec}' needs --kernel-src to be a git repository")
    base_ref, _, tip_ref = spec.partition("..")
    base = gittree.resolve(repo, base_ref or "HEAD")
    tip = gittree.resolve(repo, tip_ref or "HEAD")
    if gittree.git(repo, "merge-base", "--is-ancestor", base, tip, check=False).returncode:
        raise BadInput(f"git range '{spec}': {base_ref} is not an ancestor of {tip_ref}")
    text = gittree.git(repo, "format-patch", "--stdout", "--no-signature",
                       f"{base}..{tip}").stdout
    if not text:
        raise BadInput(f"git range '{spec}' holds no commit")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Series("git-range", (), digest, repo=repo.resolve(), base=base, tip=tip)


def load(spec: str | Path, repo: Path | None = None) -> Series:
    """The series named by a path (mbox, .mbx, b4 or quilt directory) or a git range."""
    path = Path(spec).expanduser()
    if not path.exists() and ".." in str(spec):
        return _load_range(str(spec), repo)
    path = path.resolve()
    if not path.exists():
        raise BadInput(f"patch series {path} does not exist")
    if path.is_dir():
        mbx = _b4_output(path)
        if mbx is not None:
            return _load_mbox(mbx)
        files = _quilt_order(path)
    elif _is_mbox(path):
        return _load_mbox(path)
    else:
        files = [path]
    if not files:
        raise BadInput(f"patch series {path} holds no *.patch files")
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return Series("quilt", tuple(files), h.hexdigest()[:16])


def _git(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return gittree.git(tree, *args, check=False)


def _copy_tree(src: Path, dest: Path) -> None:
    require("rsync")
    res = run_group(["rsync", "-a", "--delete", "--exclude=/.git", f"{src}/", f"{dest}/"])
    if res.returncode != 0:
        raise PatchError(f"copying {src} failed: {res.stderr.strip()}")


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return (text.strip().splitlines() or ["unknown error"])[-1]


def _commit_base(tree: Path) -> None:
    for args in (["init", "-q"], ["add", "-A", "-f"], ["commit", "-q", "-m", "base", "--no-verify"]):
        res = _git(tree, *args)
        if res.returncode != 0:
            raise PatchError(f"preparing a git tree in {tree} failed: {res.stderr.strip()}")


def am(tree: Path, series: Series) -> None:
    """Apply an mbox series as commits on the checked-out HEAD of the git tree."""
    mbox = tree / ".git" / "rwp-harness-series.mbox"
    mbox.write_bytes(b"".join(series.mails))
    res = _git(tree, "am", "--quiet", str(mbox))
    if res.returncode != 0:
        cur = _git(tree, "am", "--show-current-patch=raw")
        subject = next((l[len("Subject: "):] for l in cur.stdout.splitlines()
                        if l.startswith("Subject: ")), "?")
        _git(tree, "am", "--abort")
        raise PatchError(f"patch '{subject}' from {series.files[0].name} does not apply: "
                         f"{_first_error(res.stderr + res.stdout)}")


def _subject_of(patch: Path) -> str:
    for line in patch.read_text(errors="replace").splitlines():
        if line.startswith("Subject: "):
            return re.sub(r"^\[PATCH[^\]]*\]\s*", "", line[len("Subject: "):])
    return patch.stem


def apply_quilt(tree: Path, files: tuple[Path, ...], commit: bool = False) -> None:
    for patch in files:
        res = run_group(["git", "apply", "--index" if commit else "-p1", str(patch)], cwd=tree)
        if res.returncode != 0:
            raise PatchError(f"patch {patch.name} does not apply: {_first_error(res.stderr)}")
        if commit:
            res = _git(tree, "commit", "-q", "--no-verify", "-m", _subject_of(patch))
            if res.returncode != 0:
                raise PatchError(f"committing {patch.name} failed: {res.stderr.strip()}")


def commit_series(tree: Path, series: Series) -> None:
    """Apply an mbox or quilt series as one commit per patch in a git work tree."""
    if series.kind == "mbox":
        am(tree, series)
    elif series.kind == "quilt":
        apply_quilt(tree, series.files, commit=True)
    else:
        raise BadInput("a git range is already commits; pass its ends as --good and --bad")
    for subject in series.skipped:
        print(f"[patches] skipped (no diff): {subject}", file=sys.stderr)


def _clone_range(series: Series, dest: Path) -> None:
    gittree.git(dest.parent, "clone", "-q", "--shared", "--no-checkout",
                str(series.repo), str(dest))
    res = _git(dest, "checkout", "-q", "--detach", series.tip)
    if res.returncode != 0:
        raise PatchError(f"checking out {series.tip[:12]} failed: {_first_error(res.stderr)}")


def apply(source: KernelSource, series: Series) -> Path:
    """Return a tree holding source plus series, reusing a finished one."""
    require("git")
    dest = cache.subdir("trees") / f"{source.version}-{series.digest}"
    # Two runs applying the same series at once would delete each other's tree.
    with cache.lock(f"tree-{dest.name}"):
        return _apply(source, series, dest)


def _apply(source: KernelSource, series: Series, dest: Path) -> Path:
    marker = dest / DONE
    # A git range is named by commit hashes, so its tree is final too; a tree
    # the user may have edited since is copied again; a package's is final.
    final = source.immutable or series.kind == "git-range"
    if final and (cache.read_marker(marker) or "").strip() == source.identity:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    try:
        if series.kind == "git-range":
            _clone_range(series, dest)
        else:
            _copy_tree(source.path, dest)
            if series.kind == "mbox":
                _commit_base(dest)
                am(dest, series)
            else:
                apply_quilt(dest, series.files)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    cache.write_atomic(marker, source.identity + "\n")
    return dest
