"""The RWP contract against the kernel's memory management, from Python (docs/contract.md area J).

An independent check, through guest/py/uffd.py and ctypes, of a subset of
what guest/c/rwp_mm.c tests: swap, migration, THP split and collapse. Each
test first proves from pagemap or /proc/vmstat that the kernel really did
what it was asked, and fails if not. Each test names its contract ids in its
docstring.
"""

import ctypes
import errno
import os
import struct

import ktest
import uffd
from ktest import Skip, test
from memtypes import HPAGE, PAGE, Mem, anon_thp_at, registered, require_rwp, uffd_bit

WAIT_S = 5.0
MADV_PAGEOUT, MADV_COLLAPSE = 21, 25
NR_MOVE_PAGES = 279         # x86_64
MPOL_MF_MOVE = 1 << 1
SPLIT_CTL = "/sys/kernel/debug/split_huge_pages"
PRESENT, SWAPPED = 63, 62

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long


def pagemap(addr: int, n: int = 1) -> list[int]:
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(addr // PAGE * 8)
        return list(struct.unpack(f"={n}Q", f.read(8 * n)))


def bit(entry: int, b: int) -> bool:
    return bool(entry >> b & 1)


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


def page_out(addr: int, length: int) -> None:
    """MADV_PAGEOUT; fails unless every page is now a swap entry."""
    out0 = vmstat("pswpout")
    assert madvise(addr, length, MADV_PAGEOUT) == 0, "MADV_PAGEOUT"
    for i, e in enumerate(pagemap(addr, length // PAGE)):
        assert bit(e, SWAPPED), f"page {i} not swapped after MADV_PAGEOUT (entry {e:#x})"
    assert grew("pswpout", out0), "pswpout did not grow"


def read_faults(u: uffd.Uffd, addr: int, base: int, want: int) -> None:
    """A read of addr raises an RWP fault at base; after resolving 4K it reads want."""
    acc = uffd.Accessor(addr, False)
    acc.start()
    msg = u.read_msg(WAIT_S)
    assert msg is not None, f"no fault message within {WAIT_S} s"
    assert (msg.event, msg.flags, msg.address) == (uffd.EVENT_PAGEFAULT, uffd.PAGEFAULT_FLAG_RWP, base), \
        f"event {msg.event:#x} flags {msg.flags:#x} at {msg.address:#x}, want an RWP fault at {base:#x}"
    assert not acc.done.is_set(), "the read finished before the resolve"
    u.rwprotect(base, PAGE, 0)
    assert acc.done.wait(WAIT_S), "the reader did not resume"
    assert acc.value == want, f"read {acc.value:#x}, want {want:#x}"


def quiet(u: uffd.Uffd, when: str) -> None:
    msg = u.read_msg(0)
    assert msg is None, f"{when}: unexpected message (flags {msg.flags:#x} at {msg.address:#x})"


@test
def swap_round_trip_keeps_protection():
    """J1: a protected anon page goes to swap with its uffd bit and faults when swapped back in"""
    require_swap()
    u, m = registered("anon", 4)
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)
    page_out(m.addr, m.length)
    for i, e in enumerate(pagemap(m.addr, 4)):
        assert bit(e, 57) and not bit(e, PRESENT), f"swapped page {i}: entry {e:#x}"
    in0 = vmstat("pswpin")
    read_faults(u, m.at(1, 17), m.at(1), ord("b"))
    assert grew("pswpin", in0), "pswpin did not grow"
    e = pagemap(m.at(1))[0]
    assert bit(e, PRESENT) and not bit(e, SWAPPED), f"page 1 not swapped in: {e:#x}"
    assert bit(pagemap(m.at(2))[0], SWAPPED) and uffd_bit(m.at(2)), "page 2 changed"
    quiet(u, "after the resolved fault")


@test
def swap_async_resolves_silently():
    """J1: with RWP_ASYNC a swapped protected page is swapped in and resolved without a message"""
    require_swap()
    u, m = registered("anon", 4, uffd.FEATURE_RWP_ASYNC)
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)
    page_out(m.addr, m.length)
    assert uffd_bit(m.at(3)), "swap entry lost the uffd bit"
    assert uffd.peek(m.at(3, 1)) == ord("d"), "contents after swap-in"
    quiet(u, "async access")
    e = pagemap(m.at(3))[0]
    assert bit(e, PRESENT) and not bit(e, 57), f"page 3 after the access: {e:#x}"
    assert uffd_bit(m.at(2)), "an untouched page lost its protection"


@test
def swap_unprotected_page_silent():
    """J2: a resolved page goes through swap with no uffd bit and no message"""
    require_swap()
    u, m = registered("anon", 2)
    page_out(m.addr, m.length)
    assert not uffd_bit(m.addr) and not uffd_bit(m.at(1)), "swap entries gained the uffd bit"
    uffd.poke(m.at(1), ord("Z"))
    assert uffd.peek(m.addr) == ord("a"), "contents after swap-in"
    quiet(u, "accesses to unprotected swapped pages")


@test
def migration_keeps_protection():
    """J4: move_pages() of protected anon pages to the other node keeps the uffd bit and the fault"""
    with open("/sys/devices/system/node/online") as f:
        online = f.read().strip()
    if online == "0":
        raise Skip("needs 2 NUMA nodes (online nodes: 0)")
    u, m = registered("anon", 2)
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)
    pages = (ctypes.c_void_p * 2)(m.addr, m.at(1))
    status = (ctypes.c_int * 2)()
    assert _libc.syscall(NR_MOVE_PAGES, 0, 2, pages, None, status, 0) == 0, "move_pages query"
    assert min(status) >= 0, f"node query: {list(status)}"
    nodes = (ctypes.c_int * 2)(*[int(not s) for s in status])
    mig0 = vmstat("pgmigrate_success")
    r = _libc.syscall(NR_MOVE_PAGES, 0, 2, pages, nodes, status, MPOL_MF_MOVE)
    assert r == 0, f"move_pages returned {r} ({uffd.errno_name(ctypes.get_errno())})"
    assert list(status) == list(nodes), f"nodes after the move {list(status)}, want {list(nodes)}"
    assert grew("pgmigrate_success", mig0), "pgmigrate_success did not grow"
    for i in range(2):
        assert bit(pagemap(m.at(i))[0], PRESENT) and uffd_bit(m.at(i)), f"page {i} after migration"
    read_faults(u, m.at(0, 3), m.addr, ord("a"))


@test
def thp_split_keeps_protection():
    """J6: a protected THP split through debugfs leaves 512 protected PTEs, each faulting alone"""
    if not os.access(SPLIT_CTL, os.W_OK):
        raise Skip(f"no {SPLIT_CTL}")
    require_rwp()
    m = Mem("anon_thp", 1)
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    u.register(m.addr, m.length, uffd.REGISTER_MODE_RWP)
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)
    with open(SPLIT_CTL, "w") as f:
        f.write(f"{os.getpid()},{m.addr:#x},{m.addr + m.length:#x}")
    assert not anon_thp_at(m.addr), "still PMD-mapped after the split request"
    entries = pagemap(m.addr, HPAGE // PAGE)
    bad = [i for i, e in enumerate(entries) if not (bit(e, PRESENT) and bit(e, 57))]
    assert not bad, f"{len(bad)} pages lost presence or the uffd bit, first {bad[0]}"
    read_faults(u, m.at(0, 9 * PAGE), m.at(0, 9 * PAGE), ord("a"))
    assert uffd_bit(m.at(0, 10 * PAGE)), "resolving one page resolved its neighbour"


@test
def collapse_refused_over_protected():
    """J7: MADV_COLLAPSE over protected PTEs fails with EINVAL and leaves them protected"""
    require_rwp()
    m = Mem("anon", 2 * HPAGE // PAGE)
    base = (m.addr + HPAGE - 1) & ~(HPAGE - 1)
    for i in range(HPAGE // PAGE):
        uffd.poke(base + i * PAGE, 1)
    assert not anon_thp_at(base), "the region got a THP at fault time"
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    u.register(base, HPAGE, uffd.REGISTER_MODE_RWP)
    u.rwprotect(base, 4 * PAGE, uffd.RWPROTECT_MODE_RWP)
    err = madvise(base, HPAGE, MADV_COLLAPSE)
    assert err == errno.EINVAL, f"MADV_COLLAPSE: {uffd.errno_name(err) if err else 'success'}, want EINVAL"
    assert not anon_thp_at(base), "a THP appeared"
    assert all(uffd_bit(base + i * PAGE) for i in range(4)), "protected pages lost the uffd bit"
    assert not uffd_bit(base + 4 * PAGE), "an unprotected page has the uffd bit"


if __name__ == "__main__":
    ktest.main()
