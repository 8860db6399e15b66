"""The guest's gcov counters, per guest program: zeroed before a program runs,
fetched over the console after it, unpacked on the host beside the build's
notes (.gcno) so that gcov can read them.

A reboot in the middle of a program (a hang, a panic) loses what the counters
held until then: the program's coverage is then partial, and says so.
"""

import io
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.parse import protocol
from harness.run.guest import Guest

HELPER = "gcov.py"


@dataclass
class Dump:
    program: str
    directory: Path          # the .gcda files, laid out as in the build directory
    partial: bool = False    # the guest rebooted while the program ran


@dataclass
class Counters:
    """What one run collects; Session calls begin() and end() around each program."""
    root: Path
    dumps: list[Dump] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _reboots: int = 0

    def begin(self, guest: Guest) -> None:
        console = guest.console()
        res = console.run(guest.staged.helper_command(HELPER) + " reset", timeout=60)
        if res.status != 0:
            self.errors.append(f"could not reset the counters: {res.output.strip()[-200:]}")
        self._reboots = guest.reboots

    def end(self, guest: Guest, program: str) -> None:
        partial = guest.reboots != self._reboots
        console = guest.console()
        res = console.run(guest.staged.helper_command(HELPER) + " dump", timeout=300)
        data = protocol.gcov_archive(res.output)
        if data is None:
            self.errors.append(f"{program}: no counters came back: {res.output.strip()[-200:]}")
            return
        where = self.root / f"{len(self.dumps):03d}-{_safe(program)}"
        unpack(data, where)
        self.dumps.append(Dump(program, where, partial))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def unpack(data: bytes, where: Path) -> None:
    """The archive's .gcda files under where; names are the guest's debugfs
    paths (the build directory's absolute path), kept as they are."""
    where.mkdir(parents=True, exist_ok=True)
    # By hand, not extractall(filter="data"): Debian 12's Python 3.11.2 has no
    # extraction filters. Only regular files inside where are written.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if not member.isfile() or name.is_absolute() or ".." in name.parts:
                continue
            dest = where / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(member).read())


def beside_notes(dump_dir: Path, build_dir: Path, shadow: Path) -> list[Path]:
    """Lay a dump's counters out as gcov wants them: each .gcda in shadow at its
    object's path, next to a copy of the build's .gcno. Returns the .gcda files
    placed; a counter file whose notes the build does not have is left out."""
    placed = []
    for gcda in sorted(dump_dir.rglob("*.gcda")):
        rel = _object_path(gcda.relative_to(dump_dir), build_dir)
        if rel is None or not (notes := build_dir / rel.with_suffix(".gcno")).is_file():
            continue
        dest = shadow / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(gcda, dest)
        shutil.copyfile(notes, dest.with_suffix(".gcno"))
        placed.append(dest)
    return placed


def _object_path(guest_path: Path, build_dir: Path) -> Path | None:
    """mm/memory.gcda from root/.cache/.../builds/X/mm/memory.gcda: the guest
    names counters by the absolute path the object was compiled at."""
    parts = guest_path.parts
    want = build_dir.resolve().parts[1:]
    if parts[:len(want)] == want:
        return Path(*parts[len(want):])
    # Compiled elsewhere (a build directory that moved): the longest tail that
    # names a note file of this build.
    for i in range(len(parts)):
        tail = Path(*parts[i:])
        if (build_dir / tail.with_suffix(".gcno")).is_file():
            return tail
    return None
