"""The coverage phase after a run: counters -> tracefiles -> the reports in
the run directory's coverage/:

  counters/NNN-PROGRAM/   the .gcda files each guest program left
  PROGRAM.info            its lcov tracefile (per-program attribution)
  total.info              all programs together
  shown.info, html/       the HTML report of the profiled sources and the
                          headers with RWP lines (not every header they inline)
  coverage.json           RWP lines, diff coverage, who executed each RWP line
  summary.txt             the tables printed on the terminal

and a summary on the terminal; results.json's manifest gets the summary.
"""

import json
import sys
import tempfile
from pathlib import Path

from harness.coverage import diff, gcovtool, summary, tracefile
from harness.coverage.counters import Counters, beside_notes
from harness.coverage.tracefile import Coverage
from harness.errors import BadInput, InfraError


def info_name(program: str) -> str:
    """The tracefile of one guest program in a run's coverage/."""
    return program.replace("/", "-") + ".info"


def tracefiles(counters: Counters, build_dir: Path, tree: Path, out: Path) -> dict[str, Coverage]:
    """program -> its coverage, each written as out/PROGRAM.info."""
    per_program: dict[str, Coverage] = {}
    with tempfile.TemporaryDirectory(prefix="rwp-gcov-") as tmp:
        for i, dump in enumerate(counters.dumps):
            shadow = Path(tmp) / str(i)
            if not beside_notes(dump.directory, build_dir, shadow):
                counters.errors.append(f"{dump.program}: no counters of a profiled object")
                continue
            cov = gcovtool.convert(shadow, tree, build_dir)
            per_program.setdefault(dump.program, Coverage()).add(cov)
    for prog, cov in per_program.items():
        (out / info_name(prog)).write_text(cov.text())
    return per_program


def _absolute(cov: Coverage, tree: Path) -> Coverage:
    return Coverage({str(tree / p): fc for p, fc in cov.files.items()})


def write(out: Path, counters: Counters, breq, bres) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    tree = Path(breq.tree)
    per_program = tracefiles(counters, bres.build_dir, tree, out)
    if not per_program:
        raise InfraError("coverage: no counters came back from the guest ("
                         + "; ".join(counters.errors or ["no program ran"]) + ")")
    total = Coverage()
    for cov in per_program.values():
        total.add(cov)
    (out / "total.info").write_text(total.text())
    rwp = summary.rwp_selection(total, tree)
    # The HTML shows the profiled sources and the headers with RWP lines, not
    # every header the objects inline (158 files, 70 MB).
    shown = {o[:-2] + ".c" for o in breq.gcov_objects} | set(rwp)
    view = Coverage({p: fc for p, fc in total.files.items() if p in shown})
    (out / "shown.info").write_text(_absolute(view, tree).text())
    html, why = gcovtool.html(out / "shown.info", tree, out / "html")
    if why:
        counters.errors.append(why)
    # A header whose RWP lines are all macros or declarations has nothing to run.
    rwp_rows = [r for r in summary.restricted(total, rwp) if r.lines]
    doc = {"objects": list(breq.gcov_objects), "tool": gcovtool.describe(),
           "files": summary.to_json(summary.whole(total)),
           "rwp": summary.to_json(rwp_rows),
           "partial": sorted({d.program for d in counters.dumps if d.partial}),
           "errors": counters.errors, "html": str(html) if html else None,
           "programs": {p: info_name(p) for p in sorted(per_program)},
           "executed_by": {p: {str(ln): progs for ln, progs in lines.items()}
                           for p, lines in summary.who_executed(per_program, rwp).items()}}
    text = [summary.table(rwp_rows, "coverage of the RWP lines:"),
            summary.uncovered_text(rwp_rows, "RWP lines never executed:")]
    if breq.series is not None:
        changed = diff.series_lines(breq.series, Path(breq.source.path), tree)
        diff_rows = summary.restricted(total, changed)
        doc["series"] = summary.to_json(diff_rows)
        text += [summary.table(diff_rows, "coverage of the lines the series adds:"),
                 summary.uncovered_text(diff_rows, "lines of the series never executed:")]
    for e in counters.errors:
        text.append(f"coverage: {e}")
    (out / "coverage.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "summary.txt").write_text("\n".join(text) + "\n")
    print("\n".join(text), file=sys.stderr)
    return {"dir": str(out), "rwp": doc["rwp"]["total"], "series": doc.get("series", {}).get("total"),
            "partial": doc["partial"], "errors": counters.errors}


def load_programs(run: Path) -> tuple[dict[str, Coverage], set[str]]:
    """A coverage run's coverage of each guest program (a run directory), and
    the programs whose counters a reboot cut short."""
    out = run / "coverage"
    try:
        doc = json.loads((out / "coverage.json").read_text())
        names, partial = doc["programs"], set(doc["partial"])
    except (OSError, ValueError, KeyError) as e:
        raise BadInput(f"{run} holds no per-program coverage (coverage/coverage.json: {e})")
    return {prog: tracefile.read(out / name) for prog, name in names.items()}, partial


def load(run: Path) -> tuple[Coverage, Path | None]:
    """A coverage run's total coverage (a run directory or a tracefile), and
    the tree it was built from when its results.json names one."""
    info = run if run.suffix == ".info" else run / "coverage" / "total.info"
    if not info.is_file():
        raise BadInput(f"{run} holds no coverage/total.info: was it run with --coverage?")
    tree = None
    manifest = info.parent.parent / "results.json"
    try:
        named = json.loads(manifest.read_text()).get("manifest", {}).get("tree")
        tree = Path(named) if named else None
    except (OSError, ValueError):
        pass
    return tracefile.read(info), tree
