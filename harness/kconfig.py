"""The config phase's data: Kconfig fragments, merging, and checking the result.

Like kunit_config: a fragment is a set of (symbol, value) entries; after
olddefconfig every requested entry must still hold, or the build would quietly
test something else than asked.
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput, ConfigError

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")

FRAGMENT_DIR = Path(__file__).resolve().parent.parent / "kernel-config"
BASE_FRAGMENTS = ("base", "rwp")


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

    def add(self, entry: Entry, origin: str) -> None:
        self.entries[entry.name] = entry.value
        self.origin[entry.name] = origin

    def merge(self, other: "Kconfig") -> None:
        for name, value in other.entries.items():
            self.add(Entry(name, value), other.origin.get(name, "?"))

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
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _SET.match(line)
        if m:
            cfg.add(Entry(m.group(1), m.group(2)), origin)
            continue
        m = _UNSET.match(line)
        if m:
            cfg.add(Entry(m.group(1), "n"), origin)
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
    return parse(text, origin=path.name)


def fragment_path(name: str) -> Path:
    """A profile name from kernel-config/ or a path to the user's fragment."""
    candidate = Path(name)
    if candidate.suffix == ".config" or "/" in name:
        return candidate
    return FRAGMENT_DIR / f"{name}.config"


def requested(profiles: list[str], extra_fragments: list[Path] = ()) -> Kconfig:
    cfg = Kconfig()
    for name in [*BASE_FRAGMENTS, *profiles]:
        path = fragment_path(name)
        if not path.exists():
            raise BadInput(f"unknown config profile or fragment '{name}' (no {path})")
        cfg.merge(read_fragment(path))
    for path in extra_fragments:
        cfg.merge(read_fragment(Path(path)))
    return cfg


def describe_lost(lost: list[Entry], req: Kconfig) -> str:
    parts = [f"{e.name} (wanted {req.entries[e.name]}, got {e.value}, from {req.origin[e.name]})"
             for e in lost]
    return "olddefconfig dropped requested options: " + "; ".join(parts)


def check(req: Kconfig, dotconfig: Path) -> None:
    actual = parse(dotconfig.read_text(), origin=".config")
    lost = req.missing_from(actual)
    if lost:
        raise ConfigError(describe_lost(lost, req))
