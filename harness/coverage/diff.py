"""The lines a patch series adds or changes, as line numbers of the patched
tree: what diff coverage is measured on.

The numbers come from a diff of the tree as built against the tree before
the series (not from the patches' own hunks, whose numbers later patches
shift): `git diff BASE TIP` for a git range, else `git diff --no-index` of
each file the series touches.
"""

import re
from pathlib import Path

from harness.fetch.patches import Series
from harness.tools import capture

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)
_NEW_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.M)
_TOUCHED = re.compile(rb"^\+\+\+ b/(\S+)", re.M)


def added_lines(diff: str, strip: str = "") -> dict[str, set[int]]:
    """path -> new-side numbers of the lines a unified diff adds (with -U0 or not)."""
    found: dict[str, set[int]] = {}
    path, line = None, 0
    for raw in diff.splitlines():
        m = _NEW_FILE.match(raw)
        if m:
            path = m.group(1)
            if strip and path.startswith(strip):
                path = path[len(strip):]
            path = None if path == "/dev/null" else path
            continue
        m = _HUNK.match(raw)
        if m:
            line = int(m.group(1))
            continue
        if path is None or raw.startswith(("---", "diff ", "index ")):
            continue
        if raw.startswith("+"):
            found.setdefault(path, set()).add(line)
            line += 1
        elif raw.startswith(" "):
            line += 1
    return {p: s for p, s in found.items() if s}


def touched_files(series: Series) -> list[str]:
    names = set()
    for f in series.files:
        names.update(m.group(1).decode(errors="replace") for m in _TOUCHED.finditer(f.read_bytes()))
    return sorted(names)


def series_lines(series: Series, before: Path, tree: Path) -> dict[str, set[int]]:
    """The C lines series adds in tree (before: the source it was applied to)."""
    if series.kind == "git-range":
        diff = capture(["git", "-C", tree, "diff", "-U0", "--no-color", series.base,
                        series.tip, "--", "*.c", "*.h"]).stdout
        return added_lines(diff)
    found = {}
    for name in touched_files(series):
        if not name.endswith((".c", ".h")) or not (tree / name).is_file():
            continue
        old = before / name
        diff = capture(["git", "diff", "--no-index", "-U0", "--no-color",
                        old if old.is_file() else "/dev/null", tree / name]).stdout
        lines = added_lines(diff).values()
        found[name] = set().union(*lines) if lines else set()
    return {p: s for p, s in found.items() if s}
