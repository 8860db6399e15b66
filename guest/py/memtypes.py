"""Memory types for the Python RWP tests, and the page-table views of RWP state.

The same types as guest/include/rwp_mem.h (a host test keeps the two lists
equal). Mappings are made with libc's mmap through ctypes, so that an anon
THP can be placed on a 2 MiB boundary, and are addressed by integers.
"""

import ctypes
import fcntl
import mmap
import os
import struct
import time

import ktest
import uffd
from ktest import Skip, test

MEM_TYPES = ("anon", "anon_thp", "shmem", "shmem_private", "hugetlb", "hugetlb_private")
HPAGE = 2 << 20
# A test's usual range: the unit it touches has a neighbour on each side, and one more.
NUNITS = 4
PAGE = mmap.PAGESIZE
MFD_HUGETLB = 0x4
MADV_DONTNEED, MADV_HUGEPAGE, MADV_PAGEOUT = 4, 14, 21
PRESENT, SWAPPED, UFFD_BIT = 63, 62, 57     # pagemap bits
PFN_MASK = (1 << 55) - 1                    # pagemap bits 0-54
# A positive wait (for something that should happen): ample on a guest several times slower.
WAIT_S = 5.0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
MAP_FAILED = ctypes.c_void_p(-1).value
MAP_FIXED = 0x10


def test_mem(fn):
    """Register fn(mem_type) as one test per memory type, named fn__<type>."""
    for t in MEM_TYPES:
        def bound(t=t):
            fn(t)
        bound.__name__ = f"{fn.__name__}__{t}"
        test(bound)
    return fn


def is_huge(t: str) -> bool:
    return t.startswith("hugetlb")


def free_huge_blocks() -> int:
    """Free memory in blocks of 2 MiB or more, counted in 2 MiB blocks (/proc/buddyinfo)."""
    n = 0
    with open("/proc/buddyinfo") as f:
        for line in f:
            counts = line.split()[4:]
            n += sum(int(c) << (order - 9) for order, c in enumerate(counts) if order >= 9)
    return n


def huge_page_missing(what: str) -> None:
    """A huge page did not come although compaction was tried: a skip naming the
    precondition only when memory is really short, a failure otherwise."""
    free = free_huge_blocks()
    if free == 0:
        raise Skip(f"precondition: memory is short (no free 2 MiB block after compaction): {what}")
    raise AssertionError(f"{what} although {free} free 2 MiB blocks remain")


def pattern(i: int) -> int:
    return ord("a") + i % 26


class Mem:
    """n units of one memory type, each unit filled with its own byte."""

    def __init__(self, t: str, n: int):
        self.type = t
        self.unit = HPAGE if (is_huge(t) or t == "anon_thp") else PAGE
        self.length = n * self.unit
        self.addr = self._map()
        for i in range(n):
            ctypes.memset(self.addr + i * self.unit, pattern(i), self.unit)
        if t == "anon_thp" and not anon_thp_at(self.addr):
            # Retry once after compaction; then skip only when memory is really short.
            with open("/proc/sys/vm/compact_memory", "w") as f:
                f.write("1")
            if _libc.madvise(self.addr, self.length, MADV_DONTNEED) != 0:
                raise OSError(ctypes.get_errno(), "madvise(MADV_DONTNEED)")
            for i in range(n):
                ctypes.memset(self.addr + i * self.unit, pattern(i), self.unit)
            if not anon_thp_at(self.addr):
                huge_page_missing(f"no PMD-mapped THP at {self.addr:#x} after MADV_HUGEPAGE")

    def _map(self) -> int:
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        if self.type in ("anon", "anon_thp"):
            extra = HPAGE if self.type == "anon_thp" else 0
            raw = self._mmap(self.length + extra, prot,
                             mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1)
            if self.type == "anon":
                return raw
            addr = (raw + HPAGE - 1) & ~(HPAGE - 1)
            if _libc.madvise(addr, self.length, MADV_HUGEPAGE) != 0:
                raise OSError(ctypes.get_errno(), "madvise(MADV_HUGEPAGE)")
            return addr
        flags = mmap.MAP_SHARED if self.type in ("shmem", "hugetlb") else mmap.MAP_PRIVATE
        fd = os.memfd_create(self.type, os.MFD_CLOEXEC | (MFD_HUGETLB if is_huge(self.type) else 0))
        os.ftruncate(fd, self.length)
        try:
            return self._mmap(self.length, prot, flags, fd)
        except OSError:
            if is_huge(self.type):
                raise AssertionError("no hugetlb pages: is vm.nr_hugepages set?")
            raise
        finally:
            os.close(fd)

    @staticmethod
    def _mmap(length: int, prot: int, flags: int, fd: int) -> int:
        addr = _libc.mmap(None, length, prot, flags, fd, 0)
        if addr in (None, MAP_FAILED):
            raise OSError(ctypes.get_errno(), "mmap")
        return addr

    def at(self, unit: int, offset: int = 0) -> int:
        return self.addr + unit * self.unit + offset


def aligned_memfd(name: str, length: int = HPAGE) -> int:
    """A shared memfd mapping at a 2 MiB boundary, so that shmem can map it with a PMD."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, length)
        raw = Mem._mmap(length + HPAGE, 0, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1)  # PROT_NONE
        addr = (raw + HPAGE - 1) & ~(HPAGE - 1)
        got = _libc.mmap(addr, length, mmap.PROT_READ | mmap.PROT_WRITE,
                         mmap.MAP_SHARED | MAP_FIXED, fd, 0)
        if got != addr:
            raise OSError(ctypes.get_errno(), "mmap the memfd at a 2 MiB boundary")
        return addr
    finally:
        os.close(fd)


def smaps_field(addr: int, key: str) -> list[str] | None:
    """The words after "key:" in /proc/self/smaps for the VMA holding addr,
    or None when there is no such VMA or field."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and line.startswith(key + ":"):
                return line.split()[1:]
    return None


def anon_thp_at(addr: int) -> bool:
    words = smaps_field(addr, "AnonHugePages")
    return words is not None and int(words[0]) >= 2048


def pagemap(addr: int, n: int = 1) -> list[int]:
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(addr // PAGE * 8)
        return list(struct.unpack(f"={n}Q", f.read(8 * n)))


def bit(entry: int, b: int) -> bool:
    return bool(entry >> b & 1)


def uffd_bit(addr: int) -> bool:
    """pagemap bit 57: the PTE carries the uffd bit (RWP-protected here)."""
    return bit(pagemap(addr)[0], UFFD_BIT)


def vmstat(name: str) -> int | None:
    """An event counter, or None without CONFIG_VM_EVENT_COUNTERS: the tests
    then rest on pagemap and move_pages() status, which prove the same per page."""
    with open("/proc/vmstat") as f:
        for line in f:
            key, value = line.split()
            if key == name:
                return int(value)
    return None


def grew(name: str, before: int | None) -> bool:
    now = vmstat(name)
    if before is None or now is None:
        ktest.diag(f"/proc/vmstat has no {name} (CONFIG_VM_EVENT_COUNTERS off)")
        return True
    return now > before


def require_swap() -> None:
    with open("/proc/swaps") as f:
        if len(f.read().splitlines()) < 2:
            raise Skip("no active swap device (/proc/swaps is empty)")


def madvise(addr: int, length: int, advice: int) -> int:
    """0, or the errno."""
    return 0 if _libc.madvise(addr, length, advice) == 0 else ctypes.get_errno()


def wait_until(cond, timeout_s: float = WAIT_S, step_s: float = 0.001) -> bool:
    """Polls cond() until it holds or timeout_s of wall-clock time passed."""
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() >= end:
            return bool(cond())
        time.sleep(step_s)
    return True


def page_out(addr: int, length: int) -> None:
    """Every page of the range in swap (pagemap bit 62), and pswpout grew. One
    MADV_PAGEOUT skips a page still in a CPU's LRU-add batch, so it is
    repeated for up to WAIT_S; a page still present then fails the precondition."""
    out0 = vmstat("pswpout")

    def all_out() -> bool:
        assert madvise(addr, length, MADV_PAGEOUT) == 0, "MADV_PAGEOUT"
        return all(bit(e, SWAPPED) for e in pagemap(addr, length // PAGE))

    if not wait_until(all_out):
        first = next(i for i, e in enumerate(pagemap(addr, length // PAGE)) if not bit(e, SWAPPED))
        raise AssertionError(f"precondition: page {first} is not in swap after {WAIT_S} s of "
                             f"MADV_PAGEOUT (entry {pagemap(addr + first * PAGE)[0]:#x})")
    assert grew("pswpout", out0), "pswpout did not grow"


PAGEMAP_SCAN = (3 << 30) | (96 << 16) | (ord("f") << 8) | 16
PAGE_IS_ACCESSED = 1 << 9
_SCAN_FMT = "=12Q"
_REGION_FMT = "=3Q"


def scan(addr: int, length: int, category: int, inverted: bool = False) -> list[tuple[int, int]]:
    """PAGEMAP_SCAN for one category; the matching [start, end) regions."""
    nvec = 16
    vec = ctypes.create_string_buffer(struct.calcsize(_REGION_FMT) * nvec)
    arg = bytearray(struct.pack(_SCAN_FMT, struct.calcsize(_SCAN_FMT), 0, addr, addr + length,
                                0, ctypes.addressof(vec), nvec, 0,
                                category if inverted else 0, category, 0, category))
    with open("/proc/self/pagemap", "rb") as f:
        n = fcntl.ioctl(f.fileno(), PAGEMAP_SCAN, arg, True)
    regions = []
    for i in range(n):
        start, end, _ = struct.unpack_from(_REGION_FMT, vec, i * struct.calcsize(_REGION_FMT))
        regions.append((start, end))
    return regions


def require_rwp() -> None:
    if not uffd.kernel_features() & uffd.FEATURE_RWP:
        raise Skip("kernel does not advertise UFFD_FEATURE_RWP")


def registered(t: str, n: int, features: int = 0, mode: int = uffd.REGISTER_MODE_RWP,
               flags: int | None = None, protect: bool = False) -> tuple[uffd.Uffd, Mem]:
    """n units of type t on a new uffd with RWP|features, registered with mode;
    with protect, all of it RWP-protected. The one helper for a registered
    mapping (guest/include/rwp_mem.h's mem_rwp())."""
    require_rwp()
    mem = Mem(t, n)
    u = uffd.Uffd() if flags is None else uffd.Uffd(flags)
    u.api(uffd.FEATURE_RWP | features)
    u.register(mem.addr, mem.length, mode)
    if protect:
        u.rwprotect(mem.addr, mem.length, uffd.RWPROTECT_MODE_RWP)
    return u, mem
