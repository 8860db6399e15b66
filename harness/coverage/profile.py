"""What a coverage build is: the objects that get gcov counters (the gcov
runtime is in every test kernel: kernel-config/coverage.config).

kbuild profiles an object when GCOV_PROFILE_<stem>.o is y. Given on make's
command line the variable reaches every directory's Makefile, so the tree is
not edited. It is keyed by the file's stem alone, and arch/x86/boot/memory.o
must not get counters (the real-mode setup code has no gcov runtime and does
not link), so its value is a make expression of the directory being built
($(obj)), expanded there: y in mm/ for memory.o, n everywhere else.
"""

import re
from pathlib import Path

from harness.errors import BadInput

# Where RWP lives in 7.3 (fs/userfaultfd.c moved into mm/userfaultfd.c), and
# the paths its pages take through the mm (swap, migration, THP, rmap, GUP).
DEFAULT_OBJECTS = (
    "mm/userfaultfd.o", "mm/memory.o", "mm/mprotect.o", "mm/huge_memory.o", "mm/hugetlb.o",
    "mm/khugepaged.o", "mm/gup.o", "mm/migrate.o", "mm/swapfile.o", "mm/rmap.o",
    "mm/mremap.o", "mm/shmem.o", "fs/proc/task_mmu.o",
)
_OBJECT = re.compile(r"(?:[A-Za-z0-9_-]+/)+[A-Za-z0-9_-]+\.o")


def parse_objects(text: str) -> tuple[str, ...]:
    """--coverage-objects: comma-separated objects as kbuild names them."""
    objs = tuple(o.strip() for o in text.split(",") if o.strip())
    bad = [o for o in objs if not _OBJECT.fullmatch(o)]
    if bad or not objs:
        raise BadInput(f"--coverage-objects wants paths such as mm/memory.o, got {text!r}")
    return objs


def check_sources(objects: tuple[str, ...], tree: Path) -> None:
    missing = [o for o in objects if not (tree / o).with_suffix(".c").is_file()]
    if missing:
        raise BadInput(f"--coverage-objects: no source in {tree} for " + ", ".join(missing))


def make_vars(objects: tuple[str, ...]) -> list[str]:
    dirs: dict[str, list[str]] = {}
    for o in objects:
        dirs.setdefault(Path(o).name, []).append(str(Path(o).parent))
    return [f"GCOV_PROFILE_{name}=$(if $(filter {' '.join(sorted(d))},$(obj)),y,n)"
            for name, d in sorted(dirs.items())]


def notes_of(build_dir: Path, objects: tuple[str, ...]) -> list[Path]:
    """The .gcno files the build wrote for the objects (one each, once built)."""
    return [build_dir / Path(o).with_suffix(".gcno") for o in objects
            if (build_dir / Path(o).with_suffix(".gcno")).is_file()]
