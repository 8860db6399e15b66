"""The coverage phase after a run: counters -> tracefiles -> the reports in
the run directory's coverage/:

  counters/NNN-PROGRAM/   the .gcda files each guest program left
  PROGRAM.info            its lcov tracefile (per-program attribution)
  total.info              all programs together
  html/                   the HTML report of total.info
  coverage.json           RWP lines, diff coverage, who executed each RWP line

and a summary on the terminal; results.json's manifest gets the summary.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

from harness.coverage import diff, gcovtool, summary, tracefile
from harness.coverage.counters import Counters, beside_notes
from harness.coverage.tracefile import Coverage
from harness.errors import InfraError


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
        (out / f"{prog.replace('/', '-')}.info").write_text(cov.text())
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
    rwp_rows = summary.restricted(total, rwp)
    doc = {"objects": list(breq.gcov_objects), "tool": gcovtool.describe(),
           "files": summary.to_json(summary.whole(total)),
           "rwp": summary.to_json(rwp_rows),
           "partial": sorted({d.program for d in counters.dumps if d.partial}),
           "errors": counters.errors, "html": str(html) if html else None,
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


def load(run_dir: Path) -> tuple[Coverage, Path | None]:
    """A finished run's total coverage, and the tree it was built from."""
    info = run_dir / "coverage" / "total.info"
    if not info.is_file():
        info = run_dir if run_dir.suffix == ".info" else info
    if not info.is_file():
        from harness.errors import BadInput
        raise BadInput(f"{run_dir} holds no coverage (coverage/total.info): was it run "
                       "with --coverage?")
    tree = None
    manifest = info.parent.parent / "results.json"
    if manifest.is_file():
        src = json.loads(manifest.read_text()).get("manifest", {}).get("tree")
        tree = Path(src) if src else None
    return tracefile.read(info), tree


def remove_counters(out: Path) -> None:
    shutil.rmtree(out / "counters", ignore_errors=True)
