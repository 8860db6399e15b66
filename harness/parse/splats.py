"""Kernel splats in a log: detection, extraction, and the allowlist that may excuse one.

A splat is a kernel report that means something went wrong: a WARNING, BUG,
Oops, sanitizer report, lockdep report, RCU stall, hung task, lockup, general
protection fault or panic. Each is cut out whole: from its "cut here" line (or
its first line) to its end-of-trace marker, or to the next splat.
"""

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput

# (kind, pattern of the line that starts the report), checked in order.
_STARTS = [
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("kasan", re.compile(r"BUG: KASAN: ")),
    ("kfence", re.compile(r"BUG: KFENCE: ")),
    ("ubsan", re.compile(r"UBSAN: ")),
    ("lockdep", re.compile(r"WARNING: (possible circular locking|possible recursive locking|"
                           r"inconsistent lock state|suspicious RCU usage|.*lock held)")),
    ("rcu-stall", re.compile(r"rcu: INFO: .*detected stall|INFO: rcu_\w+ (self-)?detected stall")),
    ("hung-task", re.compile(r"INFO: task .+ blocked for more than \d+ seconds")),
    ("soft-lockup", re.compile(r"watchdog: BUG: soft lockup")),
    ("hard-lockup", re.compile(r"(watchdog: )?Watchdog detected hard LOCKUP|NMI watchdog: .*hard LOCKUP")),
    ("gpf", re.compile(r"general protection fault")),
    ("oops", re.compile(r"Oops: |BUG: unable to handle|BUG: kernel NULL pointer")),
    ("bug", re.compile(r"kernel BUG at |BUG: ")),
    ("warning", re.compile(r"WARNING: ")),
]
_CUT_HERE = re.compile(r"-+\[ cut here \]-+")
_END = re.compile(r"---\[ end (trace|Kernel panic)[^\]]*\]---")
_TIMESTAMP = re.compile(r"^\s*(<\d+>)?\[\s*\d+\.\d+\]\s?")


@dataclass(frozen=True)
class Splat:
    kind: str
    title: str     # the line that names it, without timestamp
    text: str      # the whole report

    def to_json(self) -> dict:
        return {"kind": self.kind, "title": self.title, "text": self.text}


def _kind(line: str) -> str | None:
    for kind, pattern in _STARTS:
        if pattern.search(line):
            return kind
    return None


def find(log: str) -> list[Splat]:
    lines = log.replace("\r", "").splitlines()
    splats: list[Splat] = []
    i = 0
    while i < len(lines):
        start = i
        if _CUT_HERE.search(lines[i]) and i + 1 < len(lines):
            i += 1
        kind = _kind(lines[i])
        if kind is None:
            i += 1
            continue
        title = _TIMESTAMP.sub("", lines[i]).strip()
        end = i + 1
        while end < len(lines):
            if _END.search(lines[end]):
                end += 1
                break
            if _CUT_HERE.search(lines[end]):
                break
            if _kind(lines[end]) and not _continues(kind, lines[end], end - i):
                break
            end += 1
        splats.append(Splat(kind, title, "\n".join(lines[start:end])))
        i = end
    return splats


def _continues(kind: str, line: str, offset: int) -> bool:
    # A report's header often spans lines that look like starts of their own
    # ("kernel BUG at" then "Oops:"); a panic quotes the oops that caused it.
    return offset <= 3 or kind in ("panic", "lockdep", "hung-task")


@dataclass(frozen=True)
class AllowEntry:
    pattern: re.Pattern
    reason: str
    expires: dt.date

    def excuses(self, splat: Splat, today: dt.date) -> bool:
        return today <= self.expires and bool(self.pattern.search(splat.text))


class Allowlist:
    """Known splats that do not fail a test until their entry expires.

    The file is TOML: [[allow]] tables with pattern (a regex searched in the
    whole splat), reason and expires (a date).
    """

    def __init__(self, entries: list[AllowEntry] = ()):
        self.entries = list(entries)

    @classmethod
    def load(cls, path: Path | None) -> "Allowlist":
        if path is None:
            return cls()
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise BadInput(f"cannot read splat allowlist {path}: {e}")
        allow = doc.get("allow", [])
        if not isinstance(allow, list):
            raise BadInput(f"{path}: 'allow' must be an array of tables ([[allow]])")
        entries = []
        for n, item in enumerate(allow, 1):
            try:
                expires = item["expires"]
                if not isinstance(expires, dt.date):
                    expires = dt.date.fromisoformat(str(expires))
                entries.append(AllowEntry(re.compile(item["pattern"]), item["reason"], expires))
            except KeyError as e:
                raise BadInput(f"{path}: allow entry {n} has no {e}")
            except (ValueError, TypeError, AttributeError, re.error) as e:
                raise BadInput(f"{path}: allow entry {n} is invalid: {e}")
        return cls(entries)

    def excuse(self, splat: Splat, today: dt.date | None = None) -> AllowEntry | None:
        today = today or dt.date.today()
        return next((e for e in self.entries if e.excuses(splat, today)), None)
