"""`rwp-harness mutate --generate`: candidate mutants for the RWP lines of the
profiled sources (coverage/rwp_lines.py), one per operator and place:

  negate     if (COND) -> if (!(COND))        an RWP condition inverted
  and-or     A && B -> A || B, A || B -> A && B   one connective of an RWP line
  drop-flag  X | RWP_FLAG -> X                an RWP flag left out of a mask
  drop-call  f(...); -> ;                     a call statement on an RWP line dropped
  boundary   < <-> <=, > <-> >=               an off-by-one on an RWP comparison

Operators see the line with comments and strings blanked, so they never edit
a comment. Each candidate's `find` is its line, grown by the lines above it
until it is unique in the file, so the TOML it is written as applies as is.
Whether a candidate compiles or changes behaviour is what running it tells.
"""

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.coverage import rwp_lines
from harness.mutants.catalog import Mutant

OPERATORS = ("negate", "and-or", "drop-flag", "drop-call", "boundary")
_CALL = re.compile(r"^\s*[A-Za-z_]\w*\s*\(.*\)\s*;\s*$")
_KEYWORD = re.compile(r"^\s*(?:return|if|while|for|switch|else|do|case|goto|sizeof)\b")
_OR = r"(?<!\|)\|(?![|=])"        # a bitwise or, not || or |=
# A flag after an or, or before one (two patterns: one `|` serves either side).
_FLAGS = (re.compile(rf"\s*{_OR}\s*([A-Z][A-Z0-9_]*)\b"), re.compile(rf"\b([A-Z][A-Z0-9_]*)\s*{_OR}\s*"))
_CMP = re.compile(r"(?<![<>=!-])(<=|>=|<|>)(?![<>=])")


@dataclass(frozen=True)
class Edit:
    op: str
    start: int        # offsets in the line
    end: int
    text: str


def _balanced(s: str) -> bool:
    return s.count("(") == s.count(")")


def edits(line: str, blanked: str) -> list[Edit]:
    """Every operator's edit of one RWP line (blanked: the same line, comments
    and strings spaced out)."""
    out = []
    m = re.search(r"\bif\s*\(", blanked)
    if m:
        close = rwp_lines.closing(blanked, m.end() - 1)
        if close is not None:
            cond = line[m.end():close]
            out.append(Edit("negate", m.end(), close, f"!({cond})"))
    for m in re.finditer(r"&&|\|\|", blanked):
        out.append(Edit("and-or", m.start(), m.end(), "||" if m.group(0) == "&&" else "&&"))
    dropped = set()
    for pattern in _FLAGS:
        for m in pattern.finditer(blanked):
            if rwp_lines.is_rwp_identifier(m.group(1)) and m.group(1) not in dropped:
                dropped.add(m.group(1))
                out.append(Edit("drop-flag", m.start(), m.end(), ""))
    # Not a macro (VMA_ITERATOR declares, VM_WARN_ON is debug-only) or a guard.
    if _CALL.match(blanked) and not _KEYWORD.match(blanked) and "=" not in blanked \
            and _balanced(blanked) and not re.match(r"\s*(?:[A-Z][A-Z0-9_]*|guard|scoped_guard)\b",
                                                   blanked):
        indent = len(line) - len(line.lstrip())
        out.append(Edit("drop-call", indent, len(line.rstrip()), ";"))
    for m in _CMP.finditer(blanked.replace("->", "  ")):
        flipped = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}[m.group(1)]
        out.append(Edit("boundary", m.start(), m.end(), flipped))
    return out


def candidates(tree: Path, files: list[str], operators: tuple[str, ...] = OPERATORS
               ) -> list[Mutant]:
    out = []
    for rel in files:
        source = (tree / rel).read_text(errors="replace")
        lines = source.split("\n")
        blanked = rwp_lines.blank(source).split("\n")
        for n in sorted(rwp_lines.select(source)):
            line = lines[n - 1]
            for k, e in enumerate(x for x in edits(line, blanked[n - 1]) if x.op in operators):
                new = line[:e.start] + e.text + line[e.end:]
                find, replace = _unique(lines, n, line, new, source)
                if find is None:
                    continue
                stem = Path(rel).stem
                out.append(Mutant(f"gen-{stem}-{n}-{e.op}-{k}", rel,
                                  f"{e.op} at {rel}:{n}: {line.strip()[:70]}",
                                  find=find, replace=replace))
    return out


def _unique(lines: list[str], n: int, old: str, new: str, source: str
            ) -> tuple[str | None, str | None]:
    for above in range(0, 6):
        ctx = lines[n - 1 - above:n - 1]
        find = "\n".join([*ctx, old])
        if source.count(find) == 1:
            return find, "\n".join([*ctx, new])
    return None, None


def to_patch(m: Mutant, tree: Path) -> str:
    """The mutant as a one-hunk patch of tree (git apply, or a quilt series)."""
    old = (tree / m.file).read_text(errors="replace")
    new = old.replace(m.find, m.replace, 1)
    hunk = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                f"a/{m.file}", f"b/{m.file}", n=3)
    return f"Subject: [PATCH] {m.why}\n\n---\n" + "".join(hunk)


def write(mutants: list[Mutant], tree: Path, dest: Path) -> None:
    """dest.toml: one TOML file; any other name: a new directory of patches."""
    if dest.suffix == ".toml":
        dest.write_text(to_toml(mutants))
        return
    dest.mkdir(parents=True)
    for m in mutants:
        (dest / f"{m.id}.patch").write_text(to_patch(m, tree))


def _toml_string(s: str) -> str:
    if "'''" not in s:
        return "'''" + ("\n" if s.startswith("\n") else "") + s + "'''"
    return '"""' + s.replace("\\", "\\\\").replace('"', '\\"') + '"""'


def to_toml(mutants: list[Mutant]) -> str:
    parts = ["# Generated by rwp-harness mutate --generate: candidates, not a curated set.\n"]
    for m in mutants:
        why = m.why.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'[[mutant]]\nid = "{m.id}"\nfile = "{m.file}"\n'
                     f"find = {_toml_string(m.find)}\nreplace = {_toml_string(m.replace)}\n"
                     f'why = "{why}"\n')
    return "\n".join(parts)
