"""A mutant is one small change to one kernel source file, either

  - an entry of a TOML file (kernel-mutations/*.toml):
        [[mutant]]
        id = "D-sync-fault-flag-wp"
        area = "D"                      # the contract area it attacks
        file = "mm/userfaultfd.c"
        find = "exact text, found exactly once in the file"
        replace = "what it becomes"
        why = "the bug it simulates"
    (text rather than line numbers, so a set outlives edits elsewhere in the
    file), or
  - a one-hunk patch in a directory of *.patch (its id the file's stem, its
    description the Subject: or first line).

apply() changes the work tree of a git checkout the harness owns; revert()
restores the file from the index.
"""

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput
from harness.fetch import gittree

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


class NotApplicable(Exception):
    """The mutant does not apply to this tree (its text is gone or ambiguous)."""


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    why: str
    area: str = ""
    find: str | None = None
    replace: str | None = None
    patch: Path | None = None

    def apply(self, tree: Path) -> None:
        if self.patch is not None:
            res = gittree.git(tree, "apply", str(self.patch.resolve()), check=False)
            if res.returncode != 0:
                raise NotApplicable(f"the patch does not apply: {res.stderr.strip()[:200]}")
            return
        path = tree / self.file
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise NotApplicable(f"cannot read {self.file}: {e}")
        count = text.count(self.find)
        if count != 1:
            raise NotApplicable(f"its text occurs {count} times in {self.file}, not once")
        path.write_text(text.replace(self.find, self.replace, 1))

    def revert(self, tree: Path) -> None:
        files = [self.file] if self.patch is None else _patched_files(self.patch)
        gittree.git(tree, "checkout", "-q", "--", *files)

    def lines(self, tree: Path) -> set[int]:
        """The lines of the unmutated file the mutant changes (for coverage)."""
        if self.patch is not None:
            return _patch_lines(self.patch)
        text = (tree / self.file).read_text(errors="replace")
        at = text.find(self.find)
        if at < 0:
            return set()
        first = text.count("\n", 0, at) + 1
        return set(range(first, first + self.find.count("\n") + 1))


def _patched_files(patch: Path) -> list[str]:
    text = patch.read_text(errors="replace")
    return sorted(set(re.findall(r"^\+\+\+ b/(\S+)", text, re.M))) or ["."]


def _patch_lines(patch: Path) -> set[int]:
    """The old-side lines a patch removes or changes."""
    lines, line = set(), 0
    for raw in patch.read_text(errors="replace").splitlines():
        m = re.match(r"^@@ -(\d+)", raw)
        if m:
            line = int(m.group(1))
        elif raw.startswith("-") and not raw.startswith("---"):
            lines.add(line)
            line += 1
        elif raw.startswith(" "):
            line += 1
    return lines


def _from_toml(path: Path) -> list[Mutant]:
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"mutation file {path}: {e}")
    out = []
    for i, entry in enumerate(doc.get("mutant", []), 1):
        missing = [k for k in ("id", "file", "find", "replace") if not isinstance(entry.get(k), str)]
        if missing:
            raise BadInput(f"{path}: mutant {i} lacks {', '.join(missing)}")
        if entry["find"] == entry["replace"]:
            raise BadInput(f"{path}: mutant {entry['id']} changes nothing")
        out.append(Mutant(entry["id"], entry["file"], entry.get("why", ""), entry.get("area", ""),
                          entry["find"], entry["replace"]))
    if not out:
        raise BadInput(f"mutation file {path} holds no [[mutant]]")
    return out


def _from_patch(path: Path) -> Mutant:
    text = path.read_text(errors="replace")
    files = re.findall(r"^\+\+\+ b/(\S+)", text, re.M)
    if len(files) != 1 or len(re.findall(r"^@@ ", text, re.M)) != 1:
        raise BadInput(f"{path}: a mutant patch changes one hunk of one file")
    subject = re.search(r"^Subject: (?:\[[^]]*\] )?(.*)$", text, re.M)
    why = subject.group(1) if subject else text.splitlines()[0]
    return Mutant(path.stem, files[0], why.strip(), patch=path)


def load(paths: list[Path]) -> list[Mutant]:
    """Mutants from TOML files and directories (of *.toml and *.patch), in order."""
    out: list[Mutant] = []
    for path in paths:
        if path.is_dir():
            files = sorted(path.glob("*.toml")) + sorted(path.glob("*.patch"))
            if not files:
                raise BadInput(f"{path} holds no *.toml or *.patch mutation")
        elif path.is_file():
            files = [path]
        else:
            raise BadInput(f"no mutation file or directory {path}")
        for f in files:
            out += [_from_patch(f)] if f.suffix == ".patch" else _from_toml(f)
    seen: set[str] = set()
    for m in out:
        if not _ID.fullmatch(m.id):
            raise BadInput(f"mutant id {m.id!r} is not a plain name")
        if m.id in seen:
            raise BadInput(f"mutant id {m.id} is given twice")
        seen.add(m.id)
    return out
