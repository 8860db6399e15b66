"""What a coverage run says: RWP line and branch coverage per file, the RWP
lines never executed, the diff coverage of a series, two runs side by side,
and which programs executed a line. Plain data (JSON-ready) and text tables.
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.coverage import rwp_lines
from harness.coverage.tracefile import Coverage, FileCoverage


@dataclass
class FileSummary:
    path: str
    lines_hit: int
    lines: int
    branches_taken: int
    branches: int
    uncovered: list[int] = field(default_factory=list)     # executable, never executed

    @property
    def percent(self) -> float:
        return 100.0 * self.lines_hit / self.lines if self.lines else 100.0

    @property
    def branch_percent(self) -> float:
        return 100.0 * self.branches_taken / self.branches if self.branches else 100.0


def summarise(fc: FileCoverage, path: str, lines: set[int] | None) -> FileSummary:
    hit, total = fc.covered(lines)
    taken, branches = fc.branches_taken(lines)
    uncovered = sorted(ln for ln, n in fc.lines.items() if n == 0 and (lines is None or ln in lines))
    return FileSummary(path, hit, total, taken, branches, uncovered)


def rwp_selection(cov: Coverage, tree: Path) -> dict[str, set[int]]:
    """path -> RWP lines (rwp_lines.py) of every covered file that has any."""
    chosen = {}
    for path in sorted(cov.files):
        src = tree / path
        if src.is_file():
            lines = rwp_lines.select_file(src)
            if lines:
                chosen[path] = lines
    return chosen


def restricted(cov: Coverage, selection: dict[str, set[int]]) -> list[FileSummary]:
    """One summary per selected file (a file the run has no data for has no lines)."""
    return [summarise(cov.files.get(path, FileCoverage()), path, lines)
            for path, lines in sorted(selection.items())]


def whole(cov: Coverage) -> list[FileSummary]:
    return [summarise(fc, path, None) for path, fc in sorted(cov.files.items())]


def total(rows: list[FileSummary]) -> FileSummary:
    t = FileSummary("total", 0, 0, 0, 0)
    for r in rows:
        t.lines_hit += r.lines_hit
        t.lines += r.lines
        t.branches_taken += r.branches_taken
        t.branches += r.branches
    return t


def table(rows: list[FileSummary], title: str) -> str:
    width = max([len(r.path) for r in rows] + [len("total"), 4])
    out = [title, f"  {'file':{width}}  {'lines':>13}  {'branches':>13}"]
    for r in [*rows, total(rows)]:
        out.append(f"  {r.path:{width}}  {r.lines_hit:5}/{r.lines:<5} {r.percent:5.1f}%"
                   f"  {r.branches_taken:5}/{r.branches:<5} {r.branch_percent:5.1f}%")
    return "\n".join(out)


def ranges(lines: list[int]) -> str:
    """3,4,5,9 -> '3-5, 9'."""
    parts, start, prev = [], None, None
    for n in sorted(lines):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(parts)


def uncovered_text(rows: list[FileSummary], title: str) -> str:
    out = [title]
    for r in rows:
        if r.uncovered:
            out.append(f"  {r.path}: {ranges(r.uncovered)}")
    return "\n".join(out) if len(out) > 1 else f"{title} none"


def to_json(rows: list[FileSummary]) -> dict:
    t = total(rows)
    return {"files": [asdict(r) | {"percent": round(r.percent, 1),
                                   "branch_percent": round(r.branch_percent, 1)} for r in rows],
            "total": asdict(t) | {"percent": round(t.percent, 1)}}


@dataclass
class Difference:
    path: str
    only_a: list[int]
    only_b: list[int]


def compare(a: Coverage, b: Coverage, selection: dict[str, set[int]] | None = None
            ) -> list[Difference]:
    """Per file, the lines one run executed and the other did not (of the
    selection, when given)."""
    out = []
    for path in sorted(set(a.files) | set(b.files)):
        la, lb = a.files.get(path, FileCoverage()).lines, b.files.get(path, FileCoverage()).lines
        keep = selection.get(path) if selection is not None else None
        if selection is not None and keep is None:
            continue
        hit_a = {ln for ln, n in la.items() if n and (keep is None or ln in keep)}
        hit_b = {ln for ln, n in lb.items() if n and (keep is None or ln in keep)}
        if hit_a != hit_b:
            out.append(Difference(path, sorted(hit_a - hit_b), sorted(hit_b - hit_a)))
    return out


def compare_text(diffs: list[Difference], a: str, b: str) -> str:
    if not diffs:
        return f"{a} and {b} executed the same lines"
    out = [f"lines executed by one run only ({a} | {b}):"]
    for d in diffs:
        out.append(f"  {d.path}: only {a}: {ranges(d.only_a) or '-'}; "
                   f"only {b}: {ranges(d.only_b) or '-'}")
    return "\n".join(out)


def who_executed(per_program: dict[str, Coverage], selection: dict[str, set[int]]
                 ) -> dict[str, dict[int, list[str]]]:
    """path -> line -> the programs whose run executed it (of the selection)."""
    out: dict[str, dict[int, list[str]]] = {}
    for prog, cov in sorted(per_program.items()):
        for path, lines in selection.items():
            fc = cov.files.get(path)
            for ln in sorted(lines & {l for l, n in (fc.lines if fc else {}).items() if n}):
                out.setdefault(path, {}).setdefault(ln, []).append(prog)
    return out
