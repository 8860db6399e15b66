"""The config phase's data: Kconfig fragments, merging, and checking the result.

Like kunit_config: a fragment is a set of (symbol, value) entries; after
olddefconfig every requested entry must still hold, or the build would quietly
test something else than asked.
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.arch import ARCHES
from harness.errors import BadInput, ConfigError

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
# Marks the next entry as one that older kernels lack: it may be absent from
# the tree's Kconfig, but where the tree defines it, it must keep its value.
OPTIONAL_MARK = "# rwp-harness: optional"
# Names the tests (id substrings) that need the next entry, for the error
# that says what a dropped option would have turned into skips.
NEEDED_BY_MARK = "# rwp-harness: needed-by "

FRAGMENT_DIR = Path(__file__).resolve().parents[2] / "kernel-config"
# Each build also takes its architecture's fragment (arch.py), after base.
BASE_FRAGMENTS = ("base", "rwp", "selftest", "coverage")


@dataclass(frozen=True)
class Entry:
    name: str
    value: str   # "n" for "is not set"

    def line(self) -> str:
        if self.value == "n":
            return f"# {self.name} is not set"
        return f"{self.name}={self.value}"


@dataclass
class Kconfig:
    entries: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    optional: set[str] = field(default_factory=set)
    needed_by: dict[str, list[str]] = field(default_factory=dict)

    def add(self, entry: Entry, origin: str, optional: bool = False,
            needed_by: list[str] | None = None) -> None:
        self.entries[entry.name] = entry.value
        self.origin[entry.name] = origin
        if needed_by:
            self.needed_by[entry.name] = needed_by
        if optional:
            self.optional.add(entry.name)
        else:
            self.optional.discard(entry.name)

    def merge(self, other: "Kconfig") -> None:
        for name, value in other.entries.items():
            self.add(Entry(name, value), other.origin.get(name, "?"), name in other.optional,
                     other.needed_by.get(name))

    def text(self) -> str:
        return "".join(Entry(n, v).line() + "\n" for n, v in sorted(self.entries.items()))

    def digest(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()[:12]

    def missing_from(self, actual: "Kconfig") -> list[Entry]:
        """Requested entries whose value the final .config does not have."""
        lost = []
        for name, want in sorted(self.entries.items()):
            have = actual.entries.get(name, "n")
            if have != want:
                lost.append(Entry(name, have))
        return lost


def parse(text: str, origin: str = "?") -> Kconfig:
    cfg = Kconfig()
    optional, needed_by = False, None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _SET.match(line) or _UNSET.match(line)
        if m:
            value = m.group(2) if m.re is _SET else "n"
            cfg.add(Entry(m.group(1), value), origin, optional, needed_by)
            optional, needed_by = False, None
            continue
        if line.startswith(OPTIONAL_MARK):
            optional = True
            continue
        if line.startswith(NEEDED_BY_MARK):
            needed_by = line[len(NEEDED_BY_MARK):].split()
            continue
        if line.startswith("#"):
            continue
        raise BadInput(f"{origin}:{lineno}: not a Kconfig line: {line!r}")
    return cfg


def read_fragment(path: Path) -> Kconfig:
    try:
        text = path.read_text()
    except OSError as e:
        raise BadInput(f"cannot read config fragment {path}: {e.strerror}")
    except UnicodeDecodeError as e:
        raise BadInput(f"config fragment {path} is not UTF-8 text (byte {e.start})")
    return parse(text, origin=path.name)


def fragment_path(name: str) -> Path:
    """A profile name from kernel-config/ or a path to the user's fragment."""
    candidate = Path(name)
    if candidate.suffix == ".config" or "/" in name:
        return candidate
    return FRAGMENT_DIR / f"{name}.config"


def profile_names() -> list[str]:
    """The --profile names kernel-config/ offers: not the base fragments, not an
    architecture's own (--arch chooses that)."""
    return sorted(p.stem for p in FRAGMENT_DIR.glob("*.config")
                  if p.stem not in BASE_FRAGMENTS and p.stem not in ARCHES)


def requested(profiles: list[str], extra_fragments: list[Path] = (),
              arch_fragment: str = "x86_64") -> Kconfig:
    arch_named = [p for p in profiles if p in ARCHES]
    if arch_named:
        raise BadInput(f"'{arch_named[0]}' is an architecture's fragment, not a profile: "
                       f"use --arch {arch_named[0]}")
    cfg = Kconfig()
    for name in [BASE_FRAGMENTS[0], arch_fragment, *BASE_FRAGMENTS[1:], *profiles]:
        path = fragment_path(name)
        if not path.exists():
            raise BadInput(f"unknown config profile or fragment '{name}' (no {path})")
        cfg.merge(read_fragment(path))
    for path in extra_fragments:
        cfg.merge(read_fragment(Path(path)))
    return cfg


def describe_lost(lost: list[Entry], req: Kconfig) -> str:
    parts = []
    for e in lost:
        part = f"{e.name} (wanted {req.entries[e.name]}, got {e.value}, from {req.origin[e.name]}"
        if e.name in req.needed_by:
            part += "; tests that would skip: " + ", ".join(req.needed_by[e.name])
        parts.append(part + ")")
    return "olddefconfig dropped requested options: " + "; ".join(parts)


_DEFINED = re.compile(rb"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.M)


def defined_symbols(tree: Path) -> set[str]:
    """Every symbol the tree's Kconfig files define, as CONFIG_NAME."""
    names = set()
    for path in tree.rglob("Kconfig*"):
        if path.is_file():
            names.update("CONFIG_" + n.decode() for n in _DEFINED.findall(path.read_bytes()))
    return names


def check(req: Kconfig, dotconfig: Path, tree: Path) -> list[str]:
    """Raise if a requested option did not survive; return notes on optional ones."""
    actual = parse(dotconfig.read_text(), origin=".config")
    lost = req.missing_from(actual)
    notes = []
    if any(e.name in req.optional for e in lost):
        known = defined_symbols(tree)
        for e in [e for e in lost if e.name in req.optional and e.name not in known]:
            notes.append(f"{e.name} does not exist in this kernel (optional)")
            lost.remove(e)
    if lost:
        raise ConfigError(describe_lost(lost, req))
    return notes
