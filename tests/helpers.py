"""Helpers shared by the unit tests."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"


def make_fake_tree(root: Path, version=("7", "3", "4")) -> Path:
    """A directory shaped like a kernel tree, enough for the source checks."""
    root.mkdir(parents=True, exist_ok=True)
    v, p, s = version
    (root / "Makefile").write_text(
        f"# SPDX\nVERSION = {v}\nPATCHLEVEL = {p}\nSUBLEVEL = {s}\nEXTRAVERSION =\n")
    (root / "Kconfig").write_text("mainmenu \"Linux\"\n")
    for d in ("arch/x86", "mm", "include/uapi/linux"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "mm" / "Kconfig").write_text("config USERFAULTFD\n\tbool \"uffd\"\n")
    (root / "mm" / "userfaultfd.c").write_text("int uffd;\n")
    return root


def tree_snapshot(root: Path) -> dict:
    """Every file's bytes, mode and mtime, to prove a tree was not written to.

    Git refreshes the mtime of an object file when a repository borrowing it
    (a clone sharing its objects) writes the same object again; the object's
    bytes do not change, so object files are compared by content only.
    """
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        mtime = None if rel.startswith(".git/objects/") else st.st_mtime_ns
        snap[rel] = (st.st_mode, mtime, digest)
    return snap


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout


def harness_argv(*args: str) -> list[str]:
    """The rwp-harness command line, run with this Python."""
    return [sys.executable, "-m", "harness.cli", *args]
