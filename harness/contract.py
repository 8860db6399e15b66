"""docs/contract.md's test references, derived from the tests themselves.

A C test names the behaviours it checks in the comment right above its
RWP_TEST line (`/* C10, D7: ... */`); a Python test in its docstring. This
module collects those ids and rewrites every entry's "Tests:" line and the
status paragraph, so the document cannot drift from the suite:
`python -m harness.contract` rewrites it, and a unit test fails when it is
out of date.
"""

import re
import sys
from pathlib import Path

from harness.parse.verdicts import test_id
from harness.run import guestprogs

DOC = Path(__file__).resolve().parent.parent / "docs" / "contract.md"
_ENTRY = re.compile(r"(?m)^\*\*([A-L]\d+) —")
_TESTS_LINE = re.compile(r"(?m)^- \*\*Tests:\*\*.*$")
_STRAY_TESTS_LINE = re.compile(r"(?m)^- \*\*Tests:\*\*.*\n")
_STATUS = re.compile(r"Status of this document: .*?\)\.", re.S)


def references() -> dict[str, list[str]]:
    """Behaviour id -> the test ids (with __<type> for per-memory-type tests) checking it."""
    refs: dict[str, list[str]] = {}
    for prog in guestprogs.discover():
        for rec in prog.records:
            name = test_id(prog.name, rec.name) + ("__<type>" if rec.per_mem else "")
            for bid in rec.contract_ids:
                refs.setdefault(bid, []).append(name)
    return refs


def _with_tests_line(body: str, line: str) -> str:
    """The entry's Tests line replaced, or added at its end if it has none: the
    next Tests line below belongs to another entry."""
    entry, sep, rest = body.partition("\n## ")
    # A Tests line under a section heading belongs to no entry.
    rest = _STRAY_TESTS_LINE.sub("", rest)
    if _TESTS_LINE.search(entry):
        return _TESTS_LINE.sub(line, entry, count=1) + sep + rest
    stripped = entry.rstrip("\n")
    return stripped + "\n" + line + entry[len(stripped):] + sep + rest


def render(text: str, refs: dict[str, list[str]]) -> str:
    parts = _ENTRY.split(text)
    out, ids, covered = [parts[0]], [], []
    for i in range(1, len(parts), 2):
        bid, body = parts[i], parts[i + 1]
        ids.append(bid)
        tests = refs.get(bid)
        line = "- **Tests:** " + (", ".join(f"`{t}`" for t in tests) if tests else "none yet")
        if tests:
            covered.append(bid)
        out.append(f"**{bid} —" + _with_tests_line(body, line))
    status = (f"Status of this document: {len(ids)} behaviours, {len(covered)} of them checked\n"
              f"by tests so far ({', '.join(covered)}).")
    return _STATUS.sub(lambda _: status, "".join(out), count=1)


def main() -> int:
    text = DOC.read_text()
    new = render(text, references())
    unknown = sorted(set(references()) - set(_ENTRY.findall(text)))
    if unknown:
        print(f"tests name behaviours the contract does not have: {unknown}", file=sys.stderr)
        return 2
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
