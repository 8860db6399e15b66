"""gcov counters -> an lcov tracefile (fastcov, PyPI, pinned in pyproject's
"coverage" extra, driving the compiler's own gcov), and the HTML report of a
tracefile (genhtml, Debian's lcov).

Measured on the counters of one suite program (13 profiled kernel objects,
158 source files): fastcov 0.36 s, lcov's geninfo 2.83 s, gcovr 6.8 s (7.7 s
with its JSON). fastcov and geninfo report the same lines (19759, 5622
executed); gcovr reports fewer (17941). So fastcov converts, and genhtml,
which reads any lcov tracefile, draws.
"""

import os
import re
import shutil
import sys
from pathlib import Path

from harness.coverage import tracefile
from harness.coverage.tracefile import Coverage
from harness.errors import InfraError, MissingTool
from harness.tools import capture


def _fastcov() -> list[str]:
    here = Path(sys.executable).parent / "fastcov"
    if here.exists():
        return [str(here)]
    found = shutil.which("fastcov")
    if found:
        return [found]
    raise MissingTool("'fastcov' not found; install the coverage extra "
                      "(pip install -e '.[coverage]', which make setup does)")


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        raise MissingTool(f"'{name}' not found; install it ({package}) or run 'make setup'")
    return found


def describe() -> str:
    res = capture([*_fastcov(), "--version"])
    return (res.stdout.strip().splitlines() or ["fastcov ?"])[-1]


def convert(shadow: Path, tree: Path, build_dir: Path) -> Coverage:
    """The coverage of the .gcda/.gcno pairs under shadow, paths relative to tree."""
    out = shadow / "fastcov.info"
    res = capture([*_fastcov(), "--gcov", _tool("gcov", "gcc"), "--search-directory", shadow,
                   "--branch-coverage", "--lcov", "--output", out, "--quiet",
                   "--jobs", str(os.cpu_count() or 1)], cwd=build_dir)
    if res.returncode != 0 or not out.is_file():
        raise InfraError(f"fastcov failed ({res.returncode}): {(res.stderr or res.stdout)[-400:]}")
    return tracefile.read(out, roots=[tree, build_dir])


def _lcov_major(genhtml: str) -> int:
    m = re.search(r"version (\d+)", capture([genhtml, "--version"]).stdout)
    return int(m.group(1)) if m else 1


def html(info: Path, tree: Path, out: Path) -> tuple[Path | None, str]:
    """genhtml's report of a tracefile whose paths are relative to tree; (index,
    "") or (None, why): the tracefiles are the report, the HTML a view of them."""
    genhtml = _tool("genhtml", "lcov")
    argv = [genhtml, "--quiet", "--branch-coverage", "--prefix", tree, "--output-directory", out,
            info]
    if _lcov_major(genhtml) >= 2:
        # lcov 2 (Debian 13) stops on a kernel's usual quirks (a function's end
        # line before its start in macro-generated code); 1.16 only warns.
        argv[1:1] = ["--ignore-errors", "inconsistent,range,unmapped,source,unused"]
    res = capture(argv, cwd=tree)
    index = out / "index.html"
    if res.returncode != 0 or not index.is_file():
        return None, f"genhtml failed ({res.returncode}): {(res.stderr or res.stdout).strip()[-300:]}"
    return index, ""
