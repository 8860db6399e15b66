"""Guest programs: discovery, compilation against the target's UAPI headers, delivery.

C programs are compiled statically on the host with the built kernel's
installed headers first on the include path, so they see the target's UAPI,
not the host's. Python programs use only the standard library and run with
the guest's python3. Both reach the guest through the root filesystem that
virtme-ng shares, or, failing that, pushed over the console.
"""

import ast
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import cache
from .errors import BuildError
from .tools import require

GUEST_DIR = Path(__file__).resolve().parent.parent / "guest"
_C_TEST = re.compile(r"^RWP_TEST\((\w+)\)", re.M)
GUEST_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class GuestProgram:
    name: str                 # stable id prefix, e.g. c/rwp_basic or py/rwp_basic
    lang: str                 # "c" or "py"
    source: Path
    subtests: tuple[str, ...]

    def test_ids(self) -> list[str]:
        return [f"{self.name}::{s}" for s in self.subtests]


def _c_subtests(path: Path) -> tuple[str, ...]:
    return tuple(_C_TEST.findall(path.read_text()))


def _py_subtests(path: Path) -> tuple[str, ...]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Name) and d.id == "test" for d in node.decorator_list):
            names.append(node.name)
    return tuple(names)


def discover(guest_dir: Path = GUEST_DIR) -> list[GuestProgram]:
    progs = []
    for src in sorted((guest_dir / "c").glob("*.c")):
        progs.append(GuestProgram(f"c/{src.stem}", "c", src, _c_subtests(src)))
    for src in sorted((guest_dir / "py").glob("*.py")):
        subtests = _py_subtests(src)
        if subtests:
            progs.append(GuestProgram(f"py/{src.stem}", "py", src, subtests))
    return progs


def select(progs: list[GuestProgram], patterns: list[str]) -> list[GuestProgram]:
    """Keep programs and subtests whose id contains any of the patterns."""
    if not patterns:
        return progs
    chosen = []
    for p in progs:
        subs = tuple(s for s in p.subtests
                     if any(pat in f"{p.name}::{s}" for pat in patterns))
        if subs:
            chosen.append(GuestProgram(p.name, p.lang, p.source, subs))
    return chosen


def _digest(paths: list[Path], headers: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode() + p.read_bytes())
    version_h = headers / "linux/userfaultfd.h"
    if version_h.exists():
        h.update(version_h.read_bytes())
    h.update(str(headers).encode())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Staged:
    """Where the programs of one run live on the host (and, shared, in the guest)."""
    root: Path

    def command(self, prog: GuestProgram, subtests: tuple[str, ...] = ()) -> str:
        args = " ".join(subtests) if subtests != prog.subtests else ""
        if prog.lang == "c":
            return f"{self.root / 'bin' / Path(prog.name).name} {args}".strip()
        script = self.root / "py" / prog.source.name
        return f"{GUEST_PYTHON} {script} {args}".strip()

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


def stage(headers: Path) -> Staged:
    """Compile every C program and copy the Python ones; reused when nothing changed."""
    progs = discover()
    sources = ([p.source for p in progs] + sorted((GUEST_DIR / "include").glob("*.h"))
               + sorted((GUEST_DIR / "py").glob("*.py")))
    root = cache.subdir("guest") / _digest(sources, headers)
    done = root / ".complete"
    if done.exists():
        return Staged(root)
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "py").mkdir(parents=True, exist_ok=True)
    for prog in progs:
        if prog.lang == "c":
            _compile(prog, headers, root / "bin" / Path(prog.name).name)
    for py in (GUEST_DIR / "py").glob("*.py"):
        shutil.copy2(py, root / "py" / py.name)
    done.write_text("ok\n")
    return Staged(root)


def _compile(prog: GuestProgram, headers: Path, out: Path) -> None:
    require("gcc")
    argv = ["gcc", "-static", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread",
            "-isystem", str(headers), "-I", str(GUEST_DIR / "include"),
            "-o", str(out), str(prog.source)]
    res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise BuildError(f"compiling {prog.source.name} failed:\n{res.stderr.strip()[-2000:]}")
