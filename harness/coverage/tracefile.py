"""lcov tracefiles (.info): the one coverage format the harness reads, adds
and writes, whichever tool turned the gcov counters into it.

Only the records the reports use are kept: SF (the source), DA (a line and
its count), BRDA (a branch and how often it was taken, None for "-": its
block never ran), FN/FNDA (functions). Paths are kept relative to the kernel
tree, so runs of two build directories or two clones compare line by line.
"""

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BadInput

Branch = tuple[int, str, str]          # (line, block, branch) as gcov numbers them


@dataclass
class FileCoverage:
    lines: dict[int, int] = field(default_factory=dict)
    branches: dict[Branch, int | None] = field(default_factory=dict)
    functions: dict[str, int] = field(default_factory=dict)        # name -> first line
    function_hits: dict[str, int] = field(default_factory=dict)

    def add(self, other: "FileCoverage") -> None:
        for line, n in other.lines.items():
            self.lines[line] = self.lines.get(line, 0) + n
        for br, n in other.branches.items():
            mine = self.branches.get(br)
            self.branches[br] = n if mine is None else mine + (n or 0)
        self.functions.update(other.functions)
        for name, n in other.function_hits.items():
            self.function_hits[name] = self.function_hits.get(name, 0) + n

    def covered(self, lines: set[int] | None = None) -> tuple[int, int]:
        """(executed, executable) lines, of `lines` when given."""
        found = [n for ln, n in self.lines.items() if lines is None or ln in lines]
        return sum(1 for n in found if n > 0), len(found)

    def branches_taken(self, lines: set[int] | None = None) -> tuple[int, int]:
        found = [n for (ln, _, _), n in self.branches.items() if lines is None or ln in lines]
        return sum(1 for n in found if n), len(found)


@dataclass
class Coverage:
    files: dict[str, FileCoverage] = field(default_factory=dict)

    def add(self, other: "Coverage") -> None:
        for path, fc in other.files.items():
            self.files.setdefault(path, FileCoverage()).add(fc)

    def text(self) -> str:
        out = []
        for path in sorted(self.files):
            fc = self.files[path]
            out += ["TN:", f"SF:{path}"]
            for name, line in sorted(fc.functions.items(), key=lambda kv: kv[1]):
                out.append(f"FN:{line},{name}")
            for name in sorted(fc.functions):
                out.append(f"FNDA:{fc.function_hits.get(name, 0)},{name}")
            out += [f"FNF:{len(fc.functions)}",
                    f"FNH:{sum(1 for n in fc.functions if fc.function_hits.get(n, 0))}"]
            for (line, block, branch), n in sorted(fc.branches.items(),
                                                   key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
                out.append(f"BRDA:{line},{block},{branch},{'-' if n is None else n}")
            taken, total = fc.branches_taken()
            out += [f"BRF:{total}", f"BRH:{taken}"]
            for line in sorted(fc.lines):
                out.append(f"DA:{line},{fc.lines[line]}")
            hit, total = fc.covered()
            out += [f"LF:{total}", f"LH:{hit}", "end_of_record"]
        return "\n".join(out) + "\n"


def relative_to_tree(path: str, roots: list[Path]) -> str:
    """A source path as the tree names it; tools write absolute paths, or paths
    relative to the build directory (../src/mm/memory.c) as kbuild gave them."""
    p = Path(path)
    for root in roots:
        try:
            return str(p.resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return path


def parse(text: str, origin: str = "tracefile", roots: list[Path] | None = None) -> Coverage:
    cov, fc = Coverage(), None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        key, _, value = line.partition(":")
        try:
            if key == "SF":
                path = relative_to_tree(value, roots or [])
                fc = cov.files.setdefault(path, FileCoverage())
            elif key == "end_of_record":
                fc = None
            elif fc is None:
                continue
            elif key == "DA":
                ln, n = value.split(",")[:2]
                fc.lines[int(ln)] = fc.lines.get(int(ln), 0) + int(n)
            elif key == "BRDA":
                ln, block, branch, n = value.split(",")[:4]
                br = (int(ln), block, branch)
                taken = None if n == "-" else int(n)
                old = fc.branches.get(br)
                fc.branches[br] = taken if old is None else old + (taken or 0)
            elif key == "FN":
                ln, name = value.split(",", 1)[0], value.split(",")[-1]
                fc.functions[name] = int(ln)
            elif key == "FNDA":
                n, name = value.split(",", 1)
                fc.function_hits[name] = fc.function_hits.get(name, 0) + int(n)
        except ValueError:
            raise BadInput(f"{origin}:{lineno}: not an lcov record: {line[:80]!r}")
    return cov


def read(path: Path, roots: list[Path] | None = None) -> Coverage:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read coverage tracefile {path}: {e}")
    return parse(text, str(path), roots)
