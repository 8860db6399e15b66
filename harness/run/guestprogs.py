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
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import cache
from harness.arch import X86_64, Arch
from harness.errors import BuildError
from harness.parse.verdicts import selected_by, test_id
from harness.tools import run_group

GUEST_DIR = Path(__file__).resolve().parents[2] / "guest"
_C_TEST = re.compile(r"^RWP_TEST(_MEM)?\((\w+)\)", re.M)
_MEM_NAMES = re.compile(r'^#define RWP_MEM_NAMES "([^"]*)"', re.M)
# "rwp-harness: timeout SUBTEST SECONDS" in a comment overrides the deadline.
_TIMEOUT = re.compile(r"rwp-harness: timeout (\w+) (\d+)")
GUEST_PYTHON = "/usr/bin/python3"
DEFAULT_SUITES = ("c", "py")
# Programs that provoke kernel faults to test the harness itself; never run
# unless asked for with --suite selftest.
ALL_SUITES = (*DEFAULT_SUITES, "selftest")
# The kernel tree's own uffd-unit-tests, built from the same source (--suite peer).
PEER_SUITE = "peer"
PEER_DIR = Path("tools/testing/selftests/mm")
PEER_SOURCES = ("uffd-unit-tests.c", "uffd-common.c", "vm_util.c", "hugepage_settings.c")
PEER_BINARY = "peer/uffd-unit-tests"


@dataclass(frozen=True)
class TestRecord:
    """One test as its source declares it."""
    __test__ = False
    name: str                        # as declared; per_mem expands it to name__<type>
    per_mem: bool
    contract_ids: tuple[str, ...]    # behaviours (docs/contract.md) it names
    doc: str                         # the comment above it, or its docstring's first line

    def subtests(self) -> list[str]:
        return [f"{self.name}__{t}" for t in _mem_types()] if self.per_mem else [self.name]


@dataclass(frozen=True)
class GuestProgram:
    name: str                 # stable id prefix, e.g. c/rwp_basic or py/rwp_basic
    lang: str                 # "c" or "py"
    source: Path
    subtests: tuple[str, ...]              # the ones to run
    timeouts: tuple[tuple[str, int], ...] = ()
    # Every test the program declares, whatever was selected: run without
    # names, the program runs these.
    declared: tuple[str, ...] = ()
    records: tuple[TestRecord, ...] = ()

    def runs_all(self, subtests) -> bool:
        return tuple(subtests) == (self.declared or self.subtests)

    def timeout(self, subtest: str, default: float) -> float:
        return float(dict(self.timeouts).get(subtest, default))

    def function_of(self, subtest: str) -> str:
        """The source function a subtest runs: RWP_TEST_MEM's x for x__<type>."""
        return next((subtest[:-len(t) - 2] for t in _mem_types() if subtest.endswith("__" + t)),
                    subtest)

    def test_ids(self) -> list[str]:
        return [test_id(self.name, s) for s in self.subtests]


def _mem_types() -> list[str]:
    m = _MEM_NAMES.search((GUEST_DIR / "include" / "rwp_mem.h").read_text())
    return m.group(1).split() if m else []


# A behaviour id of docs/contract.md, e.g. C10.
_CONTRACT_ID = re.compile(r"\b([A-L]\d{1,2})\b")


def _comment_above(lines: list[str], i: int) -> str | None:
    """The text of the comment that ends on the line above line i (one line or
    a block), or None when there is none."""
    end = i - 1
    if end < 0 or not lines[end].strip().endswith("*/"):
        return None
    start = end
    while start > 0 and not lines[start].strip().startswith("/*"):
        start -= 1
    if not lines[start].strip().startswith("/*"):
        return None
    words = " ".join(line.strip().lstrip("/*").rstrip("*/").strip() for line in lines[start:end + 1])
    return " ".join(words.split())


def _c_records(path: Path) -> list[TestRecord]:
    """RWP_TEST(x) is one test; RWP_TEST_MEM(x) is x__<type> for every memory
    type. The comment right above (a line or a block) names the behaviours
    before its first colon: `/* C10, D7: ...`."""
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines):
        m = _C_TEST.match(line)
        if not m:
            continue
        above = _comment_above(lines, i)
        ids = tuple(_CONTRACT_ID.findall(above.split(":")[0])) if above is not None else ()
        records.append(TestRecord(m.group(2), bool(m.group(1)), ids, above or ""))
    return records


def _py_records(path: Path) -> list[TestRecord]:
    """@test f is one test; @test_mem f is f__<type> for every memory type;
    the docstring's first line names the behaviours."""
    tree = ast.parse(path.read_text(), filename=str(path))
    records = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
        if not decorators & {"test", "test_mem"}:
            continue
        first = (ast.get_docstring(node) or "").split("\n")[0]
        records.append(TestRecord(node.name, "test" not in decorators,
                                  tuple(_CONTRACT_ID.findall(first)), first))
    return records


def _program(suite: str, src: Path) -> GuestProgram | None:
    lang = "c" if src.suffix == ".c" else "py"
    records = tuple(_c_records(src) if lang == "c" else _py_records(src))
    subtests = tuple(s for r in records for s in r.subtests())
    if not subtests:
        return None
    timeouts = tuple((m.group(1), int(m.group(2))) for m in _TIMEOUT.finditer(src.read_text()))
    return GuestProgram(f"{suite}/{src.stem}", lang, src, subtests, timeouts, subtests, records)


def discover(suites: tuple[str, ...] = DEFAULT_SUITES,
             guest_dir: Path = GUEST_DIR) -> list[GuestProgram]:
    progs = []
    for suite in suites:
        for src in sorted([*(guest_dir / suite).glob("*.c"), *(guest_dir / suite).glob("*.py")]):
            prog = _program(suite, src)
            if prog is not None:
                progs.append(prog)
    return progs


def select(progs: list[GuestProgram], patterns: list[str]) -> list[GuestProgram]:
    """Keep programs and subtests whose id contains any of the patterns."""
    if not patterns:
        return progs
    chosen = []
    for p in progs:
        subs = tuple(s for s in p.subtests if selected_by(test_id(p.name, s), patterns))
        if subs:
            chosen.append(GuestProgram(p.name, p.lang, p.source, subs, p.timeouts, p.declared,
                                       p.records))
    return chosen


def _digest(paths: list[Path], headers: Path, arch: Arch = X86_64) -> str:
    h = hashlib.sha256()
    if arch != X86_64:
        h.update(arch.name.encode())
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
        """The guest shell command that runs prog's subtests, every word quoted.
        Names given are always passed: a program narrowed by -k to one
        subtest must run that one, not the whole program."""
        suite = prog.name.split("/")[0]
        if prog.lang == "c":
            argv = [str(self.binary(prog))]
        else:
            argv = [GUEST_PYTHON, str(self.root / suite / prog.source.name)]
        return shlex.join([*argv, *subtests])

    def binary(self, prog: GuestProgram) -> Path:
        """A C program's static binary, on the host."""
        return self.root / "bin" / Path(prog.name).name

    def helper_command(self, name: str) -> str:
        return shlex.join([GUEST_PYTHON, str(self.root / "harness" / name)])

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


def _peer_sources(tree: Path | None) -> list[Path]:
    if tree is None:
        return []
    paths = [tree / PEER_DIR / name for name in PEER_SOURCES]
    return paths if all(p.exists() for p in paths) else []


def _own_sources(progs: list[GuestProgram]) -> list[Path]:
    """What of guest/ a run of progs stages: their sources, the shared headers,
    the files copied as they are."""
    return [p.source for p in progs] + sorted((GUEST_DIR / "include").glob("*.h")) + _copied()


def _copied() -> list[Path]:
    """The guest files copied as they are: Python programs and harness scripts."""
    return [p for d in (*ALL_SUITES, "harness") for p in sorted((GUEST_DIR / d).glob("*"))
            if p.suffix in (".py", ".sh")]


def sources_digest() -> str:
    """A digest of every guest program, header and script: what a run's
    verdicts depend on besides the kernel, so that runs meant to differ only
    in the kernel (mutate's control and its mutants) can check it."""
    h = hashlib.sha256()
    for p in sorted(set(_own_sources(discover(ALL_SUITES)))):
        h.update(str(p.relative_to(GUEST_DIR)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


def stage(headers: Path, tree: Path | None = None,
          programs: list[GuestProgram] | None = None, arch: Arch = X86_64) -> Staged:
    """Compile the C programs (and the tree's uffd-unit-tests), copy the Python ones.

    programs narrows the C programs compiled to those a run selected (default:
    all). Reused when nothing changed.
    """
    wanted = None if programs is None else {p.source for p in programs}
    progs = [p for p in discover(ALL_SUITES) if wanted is None or p.source in wanted]
    copied = _copied()
    peer = _peer_sources(tree)
    peer_headers = sorted((tree / PEER_DIR).glob("*.h")) if peer else []
    sources = _own_sources(progs) + peer + peer_headers
    root = cache.subdir("guest") / _digest(sources, headers, arch)
    with cache.lock("stage"):
        if cache.read_marker(root / ".complete") != "ok\n":
            arch.require_compiler()
            _stage_into(root, progs, copied, headers, tree if peer else None, arch.gcc)
    return Staged(root)


def _stage_into(root: Path, progs: list[GuestProgram], copied: list[Path], headers: Path,
                peer_tree: Path | None, cc: str) -> None:
    (root / "bin").mkdir(parents=True, exist_ok=True)
    for prog in progs:
        if prog.lang == "c":
            _compile(prog, headers, Staged(root).binary(prog), cc)
    for path in copied:
        dest = root / path.parent.name / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    if peer_tree is not None:
        _compile_peer(peer_tree, headers, root / PEER_BINARY, cc)
    cache.write_atomic(root / ".complete", "ok\n")


def _compile_peer(tree: Path, headers: Path, out: Path, cc: str) -> None:
    """uffd-unit-tests, built the way its Makefile would, but static and out of tree."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = tree / PEER_DIR
    res = run_group(gcc_argv([src / n for n in PEER_SOURCES], out, headers,
                             [src.parent, tree / "tools/include"], strict=False,
                             extra=("-U_FORTIFY_SOURCE", "-no-pie", "-lrt", "-lm"), cc=cc))
    if res.returncode != 0:
        # The peer suite is the tree's, not ours: note why, and report it as skipped.
        (out.parent / "build-error.txt").write_text(res.stderr[-4000:])


def gcc_argv(sources: list[Path], out: Path, headers: Path, includes: list[Path] | None = None,
             strict: bool = True, extra: tuple[str, ...] = (), cc: str = "gcc") -> list[str]:
    """The one compiler line for guest programs: static, against the target's
    UAPI headers (first on the path), our shared headers; strict for ours."""
    warn = ["-Wall", "-Wextra", "-Werror"] if strict else ["-Wall"]
    incs = [a for d in (includes if includes is not None else [GUEST_DIR / "include"])
            for a in ("-I", str(d))]
    return [cc, "-static", "-O2", "-g", *warn, "-pthread", "-isystem", str(headers), *incs,
            "-o", str(out), *[str(s) for s in sources], *extra]


def _compile(prog: GuestProgram, headers: Path, out: Path, cc: str) -> None:
    res = run_group(gcc_argv([prog.source], out, headers, cc=cc))
    if res.returncode != 0:
        raise BuildError(f"compiling {prog.source.name} failed:\n{res.stderr.strip()[-2000:]}")
