"""Git repositories the harness reads or owns.

A Debian source package is not a git repository; series and bisection need
one, so the package is committed once, as a single tagged base commit, into a
bare repository in the cache. The user's repositories are only read: the
harness works in clones of them that share their objects.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from harness import cache
from harness.errors import BadInput, InfraError
from harness.fetch.source import MARKER, KernelSource
from harness.tools import require, run_group

IDENTITY = ["-c", "user.name=rwp-harness", "-c", "user.email=rwp-harness@localhost",
            "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
# Fixed dates make the base commit of a package the same hash on every machine.
FIXED_DATE = "2000-01-01T00:00:00Z"


def git(repo: Path, *args: str, check: bool = True, env: dict | None = None,
        git_dir: bool = False) -> subprocess.CompletedProcess:
    where = ["--git-dir", str(repo)] if git_dir else ["-C", str(repo)]
    res = run_group(["git", *IDENTITY, *where, *args], env=env)
    if check and res.returncode != 0:
        first = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise InfraError(f"git {args[0]} in {repo} failed: {first}")
    return res


def is_repo(path: Path) -> bool:
    return run_group(["git", "-C", str(path), "rev-parse", "--git-dir"]).returncode == 0


def resolve(repo: Path, ref: str) -> str:
    """The commit hash ref names in repo, or a one-line BadInput."""
    res = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if res.returncode != 0:
        raise BadInput(f"'{ref}' names no commit in {repo}")
    return res.stdout.strip()


def subject(repo: Path, commit: str) -> str:
    return git(repo, "log", "-1", "--format=%s", commit).stdout.strip()


def version_tag(version: str) -> str:
    return "v" + re.sub(r"[^0-9A-Za-z._+-]", "_", version)


def from_package(src: KernelSource) -> tuple[Path, str]:
    """A bare repository whose one commit is the unpacked source; (path, tag)."""
    require("git")
    name = re.sub(r"[^0-9A-Za-z._+-]", "_", src.identity)
    repo = cache.subdir("git") / f"{name}.git"
    tag = version_tag(src.version)
    with cache.lock("git-import"):
        return _import(src, repo, tag)


def _import(src: KernelSource, repo: Path, tag: str) -> tuple[Path, str]:
    if cache.read_marker(repo / "rwp-harness.ok") == src.identity + "\n":
        return repo, tag
    if repo.exists():
        shutil.rmtree(repo)
    tmp = repo.with_name(repo.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    git(tmp.parent, "init", "-q", "--bare", str(tmp))
    env = dict(os.environ, GIT_WORK_TREE=str(src.path), GIT_DIR=str(tmp),
               GIT_AUTHOR_DATE=FIXED_DATE, GIT_COMMITTER_DATE=FIXED_DATE)
    # -f: a release tarball may hold files its own .gitignore names; the
    # commit must be exactly what was unpacked. Level 1: this is a cache.
    git(src.path, "-c", "core.compression=1", "add", "-A", "-f", "--",
        ".", f":!{MARKER}", env=env)
    git(src.path, "commit", "-q", "--no-verify", "-m",
        f"{src.version}: {src.origin} {src.identity}", env=env)
    git(src.path, "tag", "-a", tag, "-m", f"{src.identity}", env=env)
    tmp.rename(repo)
    cache.write_atomic(repo / "rwp-harness.ok", src.identity + "\n")
    return repo, tag
