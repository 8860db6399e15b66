"""Edges of the RWP contract, from Python (docs/contract.md areas A, D, E, F, G).

An independent check, through guest/py/uffd.py and ctypes, of a subset of
guest/c/rwp_edges.c: fdinfo and API errors, which waiter a resolve wakes,
SET_MODE on a ctx without RWP, kernel writes into async-protected pages and
smaps VmFlags. Each test names its contract ids in its docstring.
"""

import ctypes
import errno
import fcntl
import os
import struct

import ktest
import uffd
from ktest import test
from memtypes import HPAGE, PAGE, PAGE_IS_ACCESSED, SWAPPED, WAIT_S, Mem, aligned_memfd, bit
from memtypes import huge_page_missing, madvise, page_out, pagemap, registered, require_rwp
from memtypes import require_swap, scan, smaps_field, uffd_bit, wait_until

MADV_DONTNEED, MADV_REMOVE, MADV_HUGEPAGE = 4, 9, 14

_libc = ctypes.CDLL(None, use_errno=True)
_libc.read.restype = ctypes.c_ssize_t
_libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]


def fdinfo_api(fd: int) -> str:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("API:\t"):
                return line[5:].strip()
    raise AssertionError(f"fdinfo of fd {fd} has no API line")


def vmflags(addr: int) -> set[str]:
    words = smaps_field(addr, "VmFlags")
    assert words is not None, f"no VMA at {addr:#x}"
    return set(words)


@test
def api_features_in_fdinfo():
    """A2, A3: fdinfo shows the negotiated RWP features with the INITIALIZED bit"""
    require_rwp()
    with uffd.Uffd() as u:
        u.api(uffd.FEATURE_RWP)
        got = fdinfo_api(u.fd)
        assert got == "aa:80020000:80000000000007ff", f"RWP alone: {got!r}"
    with uffd.Uffd() as u:
        u.api(uffd.FEATURE_RWP | uffd.FEATURE_RWP_ASYNC)
        got = fdinfo_api(u.fd)
        assert got == "aa:80060000:80000000000007ff", f"RWP|RWP_ASYNC: {got!r}"


@test
def api_wrong_number_refused():
    """A6: UFFDIO_API with api 0xAB is EINVAL and zeroes the struct"""
    require_rwp()
    with uffd.Uffd() as u:
        buf = bytearray(struct.pack(uffd.API_FMT, 0xAB, uffd.FEATURE_RWP, 7))
        try:
            fcntl.ioctl(u.fd, uffd.UFFDIO_API, buf, True)
        except OSError as e:
            assert e.errno == errno.EINVAL, f"errno {uffd.errno_name(e.errno)}"
        else:
            raise AssertionError("UFFDIO_API with api 0xAB succeeded")
        assert struct.unpack(uffd.API_FMT, buf) == (0, 0, 0), \
            f"struct not zeroed: {struct.unpack(uffd.API_FMT, buf)}"
        u.api(uffd.FEATURE_RWP)


@test
def resolve_wakes_only_its_page():
    """D9: resolving P1 resumes the thread blocked on P1, not the one blocked on P2"""
    u, r = registered("anon", 4)
    u.rwprotect(r.addr, r.length, uffd.RWPROTECT_MODE_RWP)
    waiters = []
    for i in (1, 2):
        acc = uffd.Accessor(r.at(i), False)
        acc.start()
        msg = u.read_msg(WAIT_S)
        assert msg is not None and (msg.flags, msg.address) == (uffd.PAGEFAULT_FLAG_RWP, r.at(i)), \
            f"page {i}: no RWP fault message"
        waiters.append(acc)
    u.rwprotect(r.at(1), PAGE, 0)
    assert waiters[0].done.wait(WAIT_S), "the thread on P1 did not resume"
    assert waiters[0].value == ord("b"), f"P1 read {waiters[0].value:#x}"
    # A wrongly woken thread on P2 faults again at once: its second message shows it.
    again = u.read_msg(0.5)
    assert again is None, f"P1's resolve woke the thread on P2 (a new fault at {again.address:#x})"
    assert not waiters[1].done.is_set(), "the thread on P2 finished while P2 was protected"
    u.rwprotect(r.at(2), PAGE, 0)
    assert waiters[1].done.wait(WAIT_S), "the thread on P2 did not resume"


@test
def set_mode_disable_without_rwp():
    """F2: SET_MODE(disable=RWP_ASYNC) on a ctx without RWP is accepted and changes nothing"""
    require_rwp()
    with uffd.Uffd() as u:
        u.api(0)
        before = fdinfo_api(u.fd)
        u.set_mode(disable=uffd.FEATURE_RWP_ASYNC)
        assert fdinfo_api(u.fd) == before, f"fdinfo changed: {before!r} -> {fdinfo_api(u.fd)!r}"


@test
def async_pipe_read_into_protected_page():
    """E7: in async mode the kernel's write into a protected page (read from a pipe) resolves it"""
    u, r = registered("anon", 4, uffd.FEATURE_RWP_ASYNC)
    u.rwprotect(r.addr, r.length, uffd.RWPROTECT_MODE_RWP)
    rd, wr = os.pipe()
    os.write(wr, b"PIPEDATA")
    n = _libc.read(rd, r.at(1), 8)
    assert n == 8, f"read(pipe, page 1) returned {n}, errno {ctypes.get_errno()}"
    assert ctypes.string_at(r.at(1), 9) == b"PIPEDATAb", "page 1 contents"
    assert not uffd_bit(r.at(1)), "page 1 is still protected"
    assert uffd_bit(r.at(2)), "page 2 lost its protection"
    assert scan(r.addr, r.length, PAGE_IS_ACCESSED) == [(r.at(1), r.at(2))], \
        "ACCESSED is not exactly page 1"
    assert u.read_msg(0) is None, "a message in async mode"


@test
def smaps_vmflags():
    """G11: VmFlags show ur for RWP, um ur for MISSING|RWP, neither after unregister"""
    require_rwp()
    a, b = uffd.Region(2), uffd.Region(2)
    with uffd.Uffd() as u:
        u.api(uffd.FEATURE_RWP)
        u.register(a.addr, a.length, uffd.REGISTER_MODE_RWP)
        u.register(b.addr, b.length, uffd.REGISTER_MODE_MISSING | uffd.REGISTER_MODE_RWP)
        assert {"ur"} <= vmflags(a.addr) and "um" not in vmflags(a.addr), vmflags(a.addr)
        assert {"ur", "um"} <= vmflags(b.addr), vmflags(b.addr)
        u.unregister(a.addr, a.length)
        u.unregister(b.addr, b.length)
        assert not {"ur", "um"} & (vmflags(a.addr) | vmflags(b.addr)), "flags after UNREGISTER"


SHMEM_THP = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"


@test
def shmem_thp_protect_keeps_protection():
    """C16: RWPROTECT of a PMD-mapped shmem THP must leave it protected"""
    require_rwp()
    try:
        with open(SHMEM_THP) as f:
            mode = f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        raise ktest.Skip(f"no {SHMEM_THP} (no shmem THP)")
    if mode in ("never", "deny"):
        with open(SHMEM_THP, "w") as f:
            f.write("advise")
    try:
        _shmem_thp_body()
    finally:
        if mode in ("never", "deny"):
            with open(SHMEM_THP, "w") as f:
                f.write(mode)


def _shmem_thp_body() -> None:
    p = aligned_memfd("c16")
    assert madvise(p, HPAGE, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE"
    ctypes.memset(p, ord("T"), HPAGE)
    if int(smaps_field(p, "ShmemPmdMapped")[0]) < 2048:
        with open("/proc/sys/vm/compact_memory", "w") as f:
            f.write("1")
        assert madvise(p, HPAGE, MADV_REMOVE) == 0, "MADV_REMOVE to retry the THP"
        ctypes.memset(p, ord("T"), HPAGE)
    if int(smaps_field(p, "ShmemPmdMapped")[0]) < 2048:
        huge_page_missing(f"the memfd did not get a PMD-mapped THP "
                          f"(ShmemPmdMapped {smaps_field(p, 'ShmemPmdMapped')[0]} kB)")
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    u.register(p, HPAGE, uffd.REGISTER_MODE_RWP)
    u.rwprotect(p, HPAGE, uffd.RWPROTECT_MODE_RWP)
    acc = uffd.Accessor(p + PAGE, False)
    acc.start()
    msg = u.read_msg(WAIT_S)
    if msg is not None:
        u.rwprotect(p, HPAGE, 0)
    assert acc.done.wait(WAIT_S), "the reader did not finish"
    assert acc.value == ord("T"), f"read {acc.value:#x}"
    ktest.finding("C16: change_pmd_range() splits (zaps) a file PMD for RWP "
                  "(mprotect.c:446-455, huge_memory.c:3210-3239) and installs nothing, so "
                  "the next access refaults through shmem_fault without an RWP fault",
                  msg is not None and msg.flags == uffd.PAGEFAULT_FLAG_RWP,
                  "a read of the protected shmem THP raised no RWP fault")


@test
def rwprotect_via_other_uffd():
    """C17: RWPROTECT through a uffd that did not register the range is refused"""
    u2, m = registered("anon", 4)
    u1 = uffd.Uffd()
    u1.api(uffd.FEATURE_RWP)
    try:
        u1.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)
        took = True
    except OSError:
        took = False
    if took:
        assert uffd_bit(m.addr), "the other uffd's RWPROTECT returned 0 but did not protect"
        u1.rwprotect(m.addr, m.length, 0)
    assert u2.read_msg(0) is None, "the owner's uffd got a message"
    ktest.finding("C17: mrwprotect_range() checks only userfaultfd_rwp(vma) "
                  "(uffd.c:1198-1199), never that the VMA's ctx is the caller's",
                  not took, "RWPROTECT via another uffd on its range returned 0")


@test
def set_mode_async_wakes_missing_waiter():
    """F7: SET_MODE(async) leaves a MISSING waiter alone: no second message"""
    u, m = registered("anon", 4, mode=uffd.REGISTER_MODE_MISSING | uffd.REGISTER_MODE_RWP)
    assert madvise(m.at(1), PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED page 1"
    acc = uffd.Accessor(m.at(1), False)
    acc.start()
    msg = u.read_msg(WAIT_S)
    assert msg is not None and (msg.flags, msg.address) == (0, m.at(1)), \
        "no MISSING fault for the dropped page"
    u.set_mode(enable=uffd.FEATURE_RWP_ASYNC)
    dup = u.read_msg(WAIT_S)
    assert not acc.done.is_set(), "the MISSING waiter finished without a fill"
    u.zeropage(m.at(1), PAGE)
    assert acc.done.wait(WAIT_S), "the reader did not resume after ZEROPAGE"
    assert acc.value == 0, f"the zero-filled page reads {acc.value:#x}"
    ktest.finding("F7: SET_MODE wakes every waiter with range.len = 0 (uffd.c:4410-4419), "
                  "so a MISSING waiter refaults and queues a duplicate MISSING message",
                  dup is None, "SET_MODE(async) produced a duplicate message for the MISSING waiter")


@test
def move_out_of_rwp_source():
    """I17: a protected swapped page MOVEd into a non-RWP VMA arrives without the uffd bit"""
    require_swap()
    if not uffd.kernel_features() & uffd.FEATURE_MOVE:
        raise ktest.Skip("kernel does not advertise UFFD_FEATURE_MOVE")
    u, src = registered("anon", 2, uffd.FEATURE_MOVE, protect=True)
    dst = Mem("anon", 2)
    assert madvise(dst.addr, dst.length, MADV_DONTNEED) == 0, "MADV_DONTNEED dst"
    # MOVE wants its destination registered with the same uffd: MISSING, not RWP.
    u.register(dst.addr, dst.length, uffd.REGISTER_MODE_MISSING)
    page_out(src.at(1), PAGE)
    assert uffd_bit(src.at(1)), "the swapped source page lost its uffd bit"
    moved = 0

    def try_move() -> bool:
        nonlocal moved
        try:
            moved = u.move(dst.at(1), src.at(1), PAGE)
        except OSError as e:
            if e.errno in (errno.EBUSY, errno.EAGAIN):
                return False     # still in the swap cache for a while
            raise
        return True

    assert wait_until(try_move), "MOVE of the swapped page stayed EBUSY"
    assert moved == PAGE, f"moved {moved}"
    assert bit(pagemap(dst.at(1))[0], SWAPPED), f"dst page 1 is not a swap entry ({pagemap(dst.at(1))[0]:#x})"
    marked = uffd_bit(dst.at(1))
    assert uffd.peek(dst.at(1)) == ord("b"), "dst page 1 contents"
    assert u.read_msg(0) is None, "the read of the moved page raised a message"
    ktest.finding("I17: move_swap_pte() keeps the source's swap-PTE uffd bit "
                  "(uffd.c:1449-1455), so the page lands in a non-RWP VMA still marked",
                  not marked, "the swapped page arrived with the uffd bit in a non-RWP VMA")


@test
def scan_inverted_includes_unpopulated():
    """G4: an inverted ACCESSED scan reports the protected pages and every unpopulated one"""
    u, m = registered("anon", 8)
    assert madvise(m.at(4), 4 * PAGE, MADV_DONTNEED) == 0, "DONTNEED pages 4-7"
    u.rwprotect(m.addr, 2 * PAGE, uffd.RWPROTECT_MODE_RWP)
    assert scan(m.addr, 8 * PAGE, PAGE_IS_ACCESSED) == [(m.at(2), m.at(4))], \
        f"ACCESSED regions {scan(m.addr, 8 * PAGE, PAGE_IS_ACCESSED)}, want pages 2-3"
    cold = scan(m.addr, 8 * PAGE, PAGE_IS_ACCESSED, inverted=True)
    ktest.diag(f"inverted scan (page ranges): "
               f"{[((a - m.addr) // PAGE, (b - m.addr) // PAGE) for a, b in cold]}")
    assert cold and cold[0][0] == m.addr and cold[0][1] >= m.at(2), \
        f"the inverted scan does not start with the 2 protected pages: {cold}"
    ktest.finding("G4: pte_none entries and pte holes have no ACCESSED bit "
                  "(task_mmu.c:2442-2454, 3083-3104), so the inverted scan reports every "
                  "unpopulated page; rst 445-446 says it reports only the still-protected PTEs "
                  "and rst 449 that pte_none pages never appear",
                  cold == [(m.addr, m.at(2))], "the inverted scan reports unpopulated pages too")


_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmdt.argtypes = [ctypes.c_void_p]
_libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
IPC_PRIVATE, IPC_CREAT, IPC_RMID, SHM_HUGETLB = 0, 0o1000, 0, 0o4000


def sysv_attach(length: int, flags: int) -> int:
    """A new SysV segment, attached and marked for removal, filled with 'a'."""
    shmid = _libc.shmget(IPC_PRIVATE, length, IPC_CREAT | 0o600 | flags)
    if shmid < 0 and ctypes.get_errno() == errno.ENOSYS:
        raise ktest.Skip("the kernel has no SysV IPC (CONFIG_SYSVIPC)")
    assert shmid >= 0, f"shmget({length}, {flags:#o}): {uffd.errno_name(ctypes.get_errno())}" + \
        (": is vm.nr_hugepages set?" if flags & SHM_HUGETLB else "")
    addr = _libc.shmat(shmid, None, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value), "shmat"
    assert _libc.shmctl(shmid, IPC_RMID, None) == 0, "shmctl(IPC_RMID)"
    ctypes.memset(addr, ord("a"), length)
    return addr


@test
def register_sysv_shm_refused():
    """B10: plain SysV SHM has never been registrable: RWP and MISSING are refused"""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP | uffd.FEATURE_MISSING_SHMEM)
    ctl = Mem("shmem", 1)
    u.register(ctl.addr, ctl.length, uffd.REGISTER_MODE_RWP)     # the ctx takes memfd shmem
    addr = sysv_attach(4 * PAGE, 0)
    for mode, name in ((uffd.REGISTER_MODE_RWP, "RWP"), (uffd.REGISTER_MODE_MISSING, "MISSING")):
        try:
            u.register(addr, 4 * PAGE, mode)
        except OSError as e:
            assert e.errno == errno.EINVAL, f"REG({name}) on SysV SHM: {uffd.errno_name(e.errno)}"
        else:
            raise AssertionError(f"REG({name}) on SysV SHM succeeded")
    assert not {"um", "ur"} & vmflags(addr), f"a refused REG left VmFlags {vmflags(addr)}"


@test
def register_sysv_shm_hugetlb():
    """B10: SHM_HUGETLB segments are hugetlbfs VMAs, registrable for MISSING before the vm_uffd_ops conversion"""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    ctl = Mem("hugetlb", 1)
    u.register(ctl.addr, ctl.length, uffd.REGISTER_MODE_RWP)     # the ctx takes memfd hugetlb
    addr = sysv_attach(HPAGE, SHM_HUGETLB)
    try:
        u.register(addr, HPAGE, uffd.REGISTER_MODE_MISSING)
        refused = 0
    except OSError as e:
        refused = e.errno
    # Anything but the known EINVAL is a new behaviour, not the finding.
    assert refused in (0, errno.EINVAL), f"REG(MISSING): {uffd.errno_name(refused)}"
    ktest.finding("B10: shm_vm_ops (ipc/shm.c:683-693) has no .uffd_ops, so vma_can_userfault() "
                  "refuses a SHM_HUGETLB VMA that is_vm_hugetlb_page() accepted before the "
                  "vm_uffd_ops conversion (uffd.c:83-88, 2221-2223); rst 105-107 and 319-320 "
                  "promise hugetlbfs",
                  refused == 0, "REG(MISSING) on a SHM_HUGETLB segment was refused")


if __name__ == "__main__":
    ktest.main()
