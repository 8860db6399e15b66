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

import ktest
import uffd
from ktest import Skip, test
from faults import read_blocks_until_resolved, want_quiet
from memtypes import HPAGE, PAGE, PRESENT, SWAPPED, WAIT_S, Mem, anon_thp_at, bit, grew, madvise
from memtypes import page_out, pagemap, pattern, registered, require_rwp, require_swap, smaps_field
from memtypes import MADV_PAGEOUT, aligned_memfd, uffd_bit, vmstat, wait_until

MADV_COLLAPSE = 25
MPOL_MF_MOVE = 1 << 1
SPLIT_CTL = "/sys/kernel/debug/split_huge_pages"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def still_protected(u: uffd.Uffd, addr: int, want: int, what: str) -> bool:
    """Reads addr from a thread: is its page still protected, i.e. did it have
    the uffd bit and did the read raise an RWP fault there? The read must
    finish and return want either way (the fault is resolved). The twin of
    rwp_mm.c's still_protected()."""
    base = addr & ~(PAGE - 1)
    had_bit = uffd_bit(addr)
    acc = uffd.Accessor(addr, False)
    acc.start()
    msg = u.read_msg(WAIT_S)
    if msg is not None:
        u.rwprotect(base, PAGE, 0)
    assert acc.done.wait(WAIT_S), f"{what}: the reader did not finish"
    assert acc.value == want, f"{what}: read {acc.value:#x}, want {want:#x}"
    ktest.diag(f"{what}: uffd bit {had_bit}, message {msg is not None}")
    return had_bit and msg is not None and (msg.flags, msg.address) == (uffd.PAGEFAULT_FLAG_RWP, base)


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
    read_blocks_until_resolved(u, m.at(1, 17), m.at(1), PAGE, ord("b"))
    assert grew("pswpin", in0), "pswpin did not grow"
    e = pagemap(m.at(1))[0]
    assert bit(e, PRESENT) and not bit(e, SWAPPED), f"page 1 not swapped in: {e:#x}"
    assert bit(pagemap(m.at(2))[0], SWAPPED) and uffd_bit(m.at(2)), "page 2 changed"
    want_quiet(u, "after the resolved fault")


@test
def swap_async_resolves_silently():
    """J1: with RWP_ASYNC a swapped protected page is swapped in and resolved without a message"""
    require_swap()
    u, m = registered("anon", 4, uffd.FEATURE_RWP_ASYNC)
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)
    page_out(m.addr, m.length)
    assert uffd_bit(m.at(3)), "swap entry lost the uffd bit"
    assert uffd.peek(m.at(3, 1)) == ord("d"), "contents after swap-in"
    want_quiet(u, "async access")
    e = pagemap(m.at(3))[0]
    assert bit(e, PRESENT) and not bit(e, 57), f"page 3 after the access: {e:#x}"
    assert uffd_bit(m.at(2)), "an untouched page lost its protection"


@test
def swap_unprotected_page_silent():
    """J2: a resolved page goes through swap with no uffd bit and no message"""
    require_swap()
    u, m = registered("anon", 2, protect=True)
    u.rwprotect(m.addr, m.length, 0)
    assert not uffd_bit(m.addr) and not uffd_bit(m.at(1)), "UNRWP left the uffd bit"
    page_out(m.addr, m.length)
    assert not uffd_bit(m.addr) and not uffd_bit(m.at(1)), "swap entries gained the uffd bit"
    uffd.poke(m.at(1), ord("Z"))
    assert uffd.peek(m.addr) == ord("a"), "contents after swap-in"
    want_quiet(u, "accesses to unprotected swapped pages")


@test
def swap_out_drops_protection_shmem():
    """J5: a protected shmem page reclaimed to swap should still fault when it comes back"""
    require_swap()
    u, m = registered("shmem", 4, protect=True)
    out0 = vmstat("pswpout")

    def in_swap() -> bool:
        assert madvise(m.addr, m.length, MADV_PAGEOUT) == 0, "MADV_PAGEOUT"
        return int(smaps_field(m.addr, "Swap")[0]) >= 16

    # A reclaimed shmem page leaves no PTE: smaps' Swap line tells it is out.
    assert wait_until(in_swap), \
        f"precondition: smaps shows {smaps_field(m.addr, 'Swap')[0]} kB of the memfd in swap " \
        f"after {WAIT_S} s of MADV_PAGEOUT, want 16"
    assert grew("pswpout", out0), "pswpout did not grow"
    assert not any(bit(e, PRESENT) for e in pagemap(m.addr, 4)), "a reclaimed page is still mapped"
    ktest.finding("J5: try_to_unmap_one() clears file PTEs and only uffd-wp gets a marker "
                  "(memory.c:1705-1724, rmap.c:2340-2345); rst 386-389 says protection is "
                  "preserved across reclaim",
                  still_protected(u, m.at(1, 5), pattern(1), "reclaimed page 1"),
                  "reclaimed page 1 is no longer protected")


@test
def collapse_drops_protection_shmem():
    """J8: MADV_COLLAPSE over protected shmem PTEs should keep them protected"""
    require_rwp()
    c0, huge0 = vmstat("thp_collapse_alloc"), meminfo_kb("ShmemHugePages")
    p = aligned_memfd("j8")
    for i in range(HPAGE // PAGE):
        uffd.poke(p + i * PAGE, ord("A") + i % 26)
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    u.register(p, HPAGE, uffd.REGISTER_MODE_RWP)
    u.rwprotect(p, HPAGE, uffd.RWPROTECT_MODE_RWP)
    err = madvise(p, HPAGE, MADV_COLLAPSE)
    # collapse_file() replaced the page cache before the PMD install was refused.
    assert err == errno.EINVAL, f"MADV_COLLAPSE: {uffd.errno_name(err) if err else 'success'}, want EINVAL"
    assert grew("thp_collapse_alloc", c0), "thp_collapse_alloc did not grow"
    assert meminfo_kb("ShmemHugePages") >= huge0 + 2048, \
        "ShmemHugePages did not grow by 2 MiB: the page cache was not collapsed"
    ktest.finding("J8: collapse_file() (khugepaged.c:2437-2439) try_to_unmap()s the protected "
                  "shmem PTEs and installs no marker; the uffd bit and the RWP fault are lost",
                  still_protected(u, p + 3 * PAGE, ord("A") + 3, "page 3 after the collapse"),
                  "page 3 is no longer protected after the collapse")


def meminfo_kb(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"/proc/meminfo has no {key}")


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
    assert _libc.syscall(uffd.NR_MOVE_PAGES, 0, 2, pages, None, status, 0) == 0, "move_pages query"
    assert min(status) >= 0, f"node query: {list(status)}"
    nodes = (ctypes.c_int * 2)(*[int(not s) for s in status])
    mig0 = vmstat("pgmigrate_success")
    r = _libc.syscall(uffd.NR_MOVE_PAGES, 0, 2, pages, nodes, status, MPOL_MF_MOVE)
    assert r == 0, f"move_pages returned {r} ({uffd.errno_name(ctypes.get_errno())})"
    assert list(status) == list(nodes), f"nodes after the move {list(status)}, want {list(nodes)}"
    assert grew("pgmigrate_success", mig0), "pgmigrate_success did not grow"
    for i in range(2):
        assert bit(pagemap(m.at(i))[0], PRESENT) and uffd_bit(m.at(i)), f"page {i} after migration"
    read_blocks_until_resolved(u, m.at(0, 3), m.addr, PAGE, ord("a"))


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
    read_blocks_until_resolved(u, m.at(0, 9 * PAGE), m.at(0, 9 * PAGE), PAGE, ord("a"))
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
