"""Live progress of a long phase: fetch, build, boot, tests.

On a terminal, one line redrawn in place (rich) with what is done of what is
expected and an estimate of the time left; without one (a CI log, a pipe),
a plain line at most every PLAIN_EVERY_S. The `[phase] ...` and `[phase]
done` lines of phases.py are printed either way: logs keep their shape.

A phase either reports its own progress (`update`) or hands a poll function
to `watch`, which a thread calls every POLL_S while the phase's work runs in
the caller (a make or an apt-get download the harness only waits on).
"""

import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, TextIO

PLAIN_EVERY_S = 30.0
POLL_S = 1.0


def live_terminal(stream: TextIO) -> bool:
    """Redraw in place only for a person at a terminal: not under CI, not
    into a dumb terminal, not when NO_COLOR-style opt-outs ask for plain text."""
    if os.environ.get("CI") or os.environ.get("RWP_HARNESS_PLAIN_PROGRESS"):
        return False
    if os.environ.get("TERM", "") in ("", "dumb"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Snapshot:
    done: int
    total: int | None = None      # None: not known (an incremental build)
    unit: str = ""
    note: str = ""                # e.g. "12 pass, 1 fail"

    @classmethod
    def of(cls, done: int, total: int | None, unit: str = "", note: str = "") -> "Snapshot":
        """A total that done has outrun was an estimate that was wrong: drop it."""
        return cls(done, total if total and done <= total else None, unit, note)


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def describe(name: str, snap: Snapshot, elapsed: float) -> str:
    """The plain line; also what the live line says."""
    if snap.total:
        what = f"{snap.done}/{snap.total} {snap.unit}".rstrip()
        left = ""
        if 0 < snap.done < snap.total:
            left = f", ~{_duration(elapsed / snap.done * (snap.total - snap.done))} left"
        text = f"{what} ({min(100, snap.done * 100 // snap.total)}%), {_duration(elapsed)}{left}"
    elif snap.unit:
        text = f"{snap.done} {snap.unit}, {_duration(elapsed)}"
    else:                   # a phase that only has its time
        text = _duration(elapsed)
    return f"[{name}] {text}" + (f"; {snap.note}" if snap.note else "")


def _count(snap: Snapshot) -> str:
    """The live line's count: "done/total unit", "done unit", or nothing for a
    phase that only has its time."""
    if not snap.unit:
        return ""
    return f"{snap.done}/{snap.total} {snap.unit}" if snap.total else f"{snap.done} {snap.unit}"


class Progress:
    def __init__(self, name: str, stream: TextIO | None = None, live: bool | None = None):
        self.name = name
        self.stream = stream or sys.stderr
        self.live = live_terminal(self.stream) if live is None else live
        self.started = time.monotonic()
        self._printed_at = self.started
        self._last: Snapshot | None = None
        self._lock = threading.Lock()
        self._rich = None
        if self.live:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            console = Console(file=self.stream, force_terminal=True)
            # Not markup: "[build]" would be read as a style tag and vanish.
            self._rich = RichProgress(TextColumn(f"[{name}]", markup=False), BarColumn(),
                                      TextColumn("{task.fields[count]}", markup=False),
                                      TimeElapsedColumn(), TimeRemainingColumn(),
                                      TextColumn("{task.fields[note]}", markup=False),
                                      console=console, transient=True)
            self._task = self._rich.add_task(name, total=None, count="", note="")
            self._rich.start()

    def update(self, snap: Snapshot) -> None:
        with self._lock:
            self._last = snap
            now = time.monotonic()
            if self._rich is not None:
                self._rich.update(self._task, completed=snap.done, total=snap.total,
                                  count=_count(snap), note=snap.note)
            elif now - self._printed_at >= PLAIN_EVERY_S:
                self._printed_at = now
                print(describe(self.name, snap, now - self.started), file=self.stream,
                      flush=True)

    def close(self) -> None:
        with self._lock:
            if self._rich is not None:
                self._rich.stop()
                self._rich = None


@contextmanager
def watch(name: str, poll: Callable[[], Snapshot], stream: TextIO | None = None,
          live: bool | None = None, every: float = POLL_S):
    """Show poll()'s progress while the body runs; a poll that fails says
    nothing (progress is a courtesy, never a reason to stop a build)."""
    bar = Progress(name, stream, live)
    stop = threading.Event()

    def loop():
        while not stop.wait(every):
            try:
                bar.update(poll())
            except Exception:
                pass

    thread = threading.Thread(target=loop, name=f"progress-{name}", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join(timeout=every + 1)
        bar.close()


@contextmanager
def elapsed(name: str, stream: TextIO | None = None, live: bool | None = None):
    """The line of a phase that says nothing as it goes: only its time."""
    began = time.monotonic()
    with watch(name, lambda: Snapshot(int(time.monotonic() - began), None, ""), stream, live):
        yield


class LogCounter:
    """Counts lines of a growing log that start with one of prefixes, from the
    offset it had when made (what one make invocation compiled)."""

    def __init__(self, path, prefixes: tuple[str, ...]):
        self.path, self.prefixes = path, prefixes
        try:
            self.offset = os.path.getsize(path)
        except OSError:
            self.offset = 0
        self.count = 0
        self._partial = b""

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return self.count
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        wanted = tuple(p.encode() for p in self.prefixes)
        self.count += sum(1 for line in lines if line.startswith(wanted))
        return self.count
