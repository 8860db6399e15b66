"""Which lines of a kernel source file are RWP code.

An identifier is an RWP identifier when a word of it (split at "_") starts
with "rwp", or it contains "rwprotect", or it is PAGE_IS_ACCESSED:
userfaultfd_rwp, VM_UFFD_RWP, MM_CP_UFFD_RWP_RESOLVE, UFFD_FEATURE_RWP_ASYNC,
do_uffd_rwp, mrwprotect_range, a local `uffd_rwp`; not slab's `krwp`. A line
is an RWP line when, with comments and strings blanked out,
  - it names an RWP identifier (a condition on VM_UFFD_RWP, a call, a mask), or
  - it is in the body of a function whose name is an RWP identifier, or
  - it is in the statement or block an if/while/for/switch runs when its
    condition names an RWP identifier (the uffd PTE bit tested on an RWP
    path: `if (userfaultfd_rwp(vma) && pte_uffd(pte)) { ... }`).
The else branch of such a condition is not RWP code; the condition's own
branch counts show whether both ways were taken.
"""

import re
from pathlib import Path

_IDENT = re.compile(r"[A-Za-z_]\w*")
_RWP_WORD = re.compile(r"(?:^|_)rwp|rwprotect", re.I)
_EXTRA = {"PAGE_IS_ACCESSED"}
_CONTROL = re.compile(r"\b(if|while|for|switch)\s*\(")
_COMMENT_OR_STRING = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                                re.S)
_FUNC_NAME = re.compile(r"([A-Za-z_]\w*)\s*\($")


def is_rwp_identifier(name: str) -> bool:
    return name in _EXTRA or bool(_RWP_WORD.search(name))


def names_rwp(text: str) -> bool:
    return any(is_rwp_identifier(m.group(0)) for m in _IDENT.finditer(text))


def blank(source: str) -> str:
    """source with comments, strings and preprocessor lines replaced by spaces,
    newlines kept, so offsets and line numbers stay those of the file."""
    def spaces(m: re.Match) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))
    text = _COMMENT_OR_STRING.sub(spaces, source)
    return re.sub(r"(?m)^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", spaces, text)


def closing(text: str, i: int) -> int | None:
    """The offset of the ')' closing the '(' at i, None when it is not closed."""
    j = _match(text, i, "(", ")")
    return j if text[j:j + 1] == ")" else None


def _match(text: str, i: int, open_: str, close: str) -> int:
    """The offset of the bracket closing the one at i (or the text's end)."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def _statement_end(text: str, i: int) -> int:
    """The end of the statement starting at i: a block, or up to its ';'."""
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] == "{":
        return _match(text, i, "{", "}")
    depth = 0
    for j in range(i, len(text)):
        if text[j] in "({[":
            depth += 1
        elif text[j] in ")}]":
            depth -= 1
        elif text[j] == ";" and depth <= 0:
            return j
    return len(text) - 1


def _functions(text: str) -> list[tuple[str, int, int]]:
    """(name, start, end) offsets of the function bodies at file scope."""
    found, depth, header_from = [], 0, 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "{" and depth == 0:
            header = text[header_from:i].rstrip()
            end = _match(text, i, "{", "}")
            if header.endswith(")"):
                open_at = _open_paren(header)
                m = _FUNC_NAME.search(header[:open_at + 1])
                if m:
                    start = header_from + len(text[header_from:i]) - len(text[header_from:i].lstrip())
                    found.append((m.group(1), start, end))
            i, header_from = end + 1, end + 1
            continue
        if c in ";}" and depth == 0:
            header_from = i + 1
        i += 1
    return found


def _open_paren(header: str) -> int:
    """The offset of the '(' that the header's last ')' closes."""
    depth = 0
    for j in range(len(header) - 1, -1, -1):
        if header[j] == ")":
            depth += 1
        elif header[j] == "(":
            depth -= 1
            if depth == 0:
                return j
    return 0


def select(source: str) -> set[int]:
    """The 1-based numbers of source's RWP lines."""
    text = blank(source)
    starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def line_of(offset: int) -> int:
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def span(a: int, b: int) -> range:
        return range(line_of(a), line_of(b) + 1)

    lines: set[int] = set()
    for n, line in enumerate(text.split("\n"), 1):
        if names_rwp(line):
            lines.add(n)
    for name, start, end in _functions(text):
        if is_rwp_identifier(name):
            lines.update(span(start, end))
    for m in _CONTROL.finditer(text):
        close = _match(text, m.end() - 1, "(", ")")
        if names_rwp(text[m.end():close]):
            lines.update(span(m.start(), _statement_end(text, close + 1)))
    return lines


def select_file(path: Path) -> set[int]:
    return select(path.read_text(errors="replace"))
