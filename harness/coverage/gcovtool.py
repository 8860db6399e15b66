"""gcov counters -> an lcov tracefile and an HTML report, with gcovr (PyPI,
pinned in pyproject's "coverage" extra, so Debian 12 and 13 give the same
output) driving the compiler's own gcov.

gcovr rather than lcov: on the same counters of a whole suite run it was
measured the faster one (docs/test-power.md), its output does not depend on the
distro's lcov version (1.16 on Debian 12, 2.x on 13), and it installs with pip.
"""

import os
import shutil
import sys
from pathlib import Path

from harness.coverage import tracefile
from harness.coverage.tracefile import Coverage
from harness.errors import InfraError, MissingTool
from harness.tools import capture


def _gcovr() -> list[str]:
    here = Path(sys.executable).parent / "gcovr"
    if here.exists():
        return [str(here)]
    found = shutil.which("gcovr")
    if found:
        return [found]
    raise MissingTool("'gcovr' not found; install the coverage extra "
                      "(pip install -e '.[coverage]', which make setup does)")


def _gcov() -> str:
    found = shutil.which("gcov")
    if not found:
        raise MissingTool("'gcov' not found; install it (gcc) or run 'make setup'")
    return found


def describe() -> str:
    res = capture([*_gcovr(), "--version"])
    return (res.stdout.splitlines() or ["gcovr ?"])[0].strip()


def convert(shadow: Path, tree: Path, build_dir: Path, json_out: Path) -> Coverage:
    """The coverage of the .gcda/.gcno pairs under shadow; gcovr's own JSON of it
    goes to json_out (what html() adds up)."""
    lcov = shadow / "gcovr.info"
    res = capture([*_gcovr(), "--root", tree, "--gcov-executable", _gcov(),
                   "-j", str(os.cpu_count() or 1), "--lcov", lcov, "--json", json_out, shadow],
                  cwd=build_dir)
    if res.returncode != 0 or not lcov.is_file():
        raise InfraError(f"gcovr failed ({res.returncode}): {(res.stderr or res.stdout)[-400:]}")
    return tracefile.read(lcov, roots=[tree, build_dir])


def html(json_files: list[Path], tree: Path, out: Path) -> Path | None:
    """An HTML report of gcovr's JSON files added up (None when gcovr fails:
    the tracefiles are the report, the HTML a view of them)."""
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    added = [a for j in json_files for a in ("--add-tracefile", j)]
    res = capture([*_gcovr(), "--root", tree, *added, "--html-details", index], cwd=tree)
    return index if res.returncode == 0 and index.is_file() else None
