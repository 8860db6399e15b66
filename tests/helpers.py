"""Helpers shared by the unit tests."""

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
    """Every file's bytes and mode, to prove a tree was not written to."""
    snap = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        snap[str(p.relative_to(root))] = (st.st_mode, p.read_bytes() if p.is_file() else None)
    return snap


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout


def harness_argv(*args: str) -> list[str]:
    """The rwp-harness command line, run with this Python."""
    return [sys.executable, "-m", "harness.cli", *args]
