"""The RWP contract (docs/contract.md) areas A-H from Python, through guest/py/uffd.py.

The same behaviours as guest/c/rwp_contract.c where they overlap, checked by
an independent implementation of the ABI, in the order of the contract:
negotiation and fdinfo (A), registration and SysV SHM (B), RWPROTECT (C),
sync faults and who is woken (D), async resolution (E), SET_MODE (F),
PAGEMAP_SCAN and smaps (G) and teardown (H). Each test names its contract ids
in its docstring.
"""

import ctypes
import errno
import fcntl
import os
import select
import struct

import ktest
import uffd
from faults import reader_blocked, refused, want_quiet
from ktest import test
from memtypes import HPAGE, MADV_DONTNEED, MADV_HUGEPAGE, NUNITS, PAGE, PAGE_IS_ACCESSED, PFN_MASK
from memtypes import WAIT_S, Mem, aligned_memfd, huge_page_missing, is_huge, madvise, pagemap
from memtypes import pattern, registered, require_rwp, scan, smaps_field, test_mem, uffd_bit

MADV_REMOVE = 9
SHMEM_THP = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
IPC_PRIVATE, IPC_CREAT, IPC_RMID, SHM_HUGETLB = 0, 0o1000, 0, 0o4000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.read.restype = ctypes.c_ssize_t
_libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.shmdt.argtypes = [ctypes.c_void_p]
_libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]


def protect(u: uffd.Uffd, m: Mem) -> None:
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)


# ---- A. negotiation ----

@test
def rwp_refused_when_not_advertised():
    """A12: a kernel without RWP refuses the feature, the register mode, the
    new ioctls and the ACCESSED scan category (runs only there)."""
    probe = uffd.Uffd()
    features, _ = probe.api(0)
    if features & uffd.FEATURE_RWP:
        raise ktest.Skip("kernel advertises UFFD_FEATURE_RWP: the refusal path does not apply")
    assert not features & uffd.FEATURE_RWP_ASYNC, "RWP_ASYNC advertised without RWP"
    refused(errno.EINVAL, uffd.Uffd().api, uffd.FEATURE_RWP)
    m = Mem("anon", 1)
    refused(errno.EINVAL, probe.register, m.addr, PAGE, uffd.REGISTER_MODE_RWP)
    ioctls = probe.register(m.addr, PAGE, uffd.REGISTER_MODE_MISSING)
    assert not ioctls & (1 << uffd._UFFDIO_RWPROTECT), f"ioctls mask {ioctls:#x} names RWPROTECT"
    refused(errno.EINVAL, probe.rwprotect, m.addr, PAGE, uffd.RWPROTECT_MODE_RWP)
    refused(errno.EINVAL, probe.set_mode, uffd.FEATURE_RWP_ASYNC)
    refused(errno.EINVAL, scan, m.addr, PAGE, PAGE_IS_ACCESSED)


@test
def api_rwp_async_without_rwp_refused():
    """A4"""
    require_rwp()
    u = uffd.Uffd()
    refused(errno.EINVAL, u.api, uffd.FEATURE_RWP_ASYNC)
    u.api(uffd.FEATURE_RWP)


@test
def api_second_call_refused():
    """A7"""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    refused(errno.EINVAL, u.api, 0)


def fdinfo_api(fd: int) -> str:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("API:\t"):
                return line[5:].strip()
    raise AssertionError(f"fdinfo of fd {fd} has no API line")

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


# ---- B. registration ----

@test_mem
def register_offers_rwprotect(t):
    """B4, B6, B7"""
    require_rwp()
    m = Mem(t, NUNITS)
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    ioctls = u.register(m.addr, m.length, uffd.REGISTER_MODE_RWP)
    assert ioctls & (1 << uffd._UFFDIO_RWPROTECT), f"ioctls {ioctls:#x} lack RWPROTECT"


@test_mem
def reregister_dropping_rwp_is_ebusy(t):
    """B18"""
    u, m = registered(t, NUNITS)
    protect(u, m)
    refused(errno.EBUSY, u.register, m.addr, m.length, uffd.REGISTER_MODE_MISSING)
    assert uffd_bit(m.addr), "protection lost after the refused re-registration"


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
        missing_errno = 0
    except OSError as e:
        missing_errno = e.errno
    # Anything but the known EINVAL is a new behaviour, not the finding.
    assert missing_errno in (0, errno.EINVAL), f"REG(MISSING): {uffd.errno_name(missing_errno)}"
    ktest.finding("B10: shm_vm_ops (ipc/shm.c:683-693) has no .uffd_ops, so vma_can_userfault() "
                  "refuses a SHM_HUGETLB VMA that is_vm_hugetlb_page() accepted before the "
                  "vm_uffd_ops conversion (uffd.c:83-88, 2221-2223); rst 105-107 and 319-320 "
                  "promise hugetlbfs",
                  missing_errno == 0, "REG(MISSING) on a SHM_HUGETLB segment was refused")


# ---- C. UFFDIO_RWPROTECT ----

@test
def rwprotect_mode_validation():
    """C2"""
    u, m = registered("anon", NUNITS)
    refused(errno.EINVAL, u.rwprotect, m.addr, m.length, 1 << 2)
    refused(errno.EINVAL, u.rwprotect, m.addr, m.length,
                 uffd.RWPROTECT_MODE_RWP | uffd.RWPROTECT_MODE_DONTWAKE)


@test_mem
def rwprotect_sets_and_clears_uffd_bit(t):
    """C1, G9"""
    u, m = registered(t, NUNITS)
    assert not uffd_bit(m.addr), "uffd bit set before protection"
    protect(u, m)
    assert uffd_bit(m.at(NUNITS - 1)), "uffd bit clear after protection"
    u.rwprotect(m.addr, m.length, 0)
    assert not uffd_bit(m.addr), "uffd bit set after resolve"
    assert uffd.peek(m.at(1, 3)) == pattern(1), "contents changed"


@test
def rwprotect_prescan_is_all_or_nothing():
    """C3"""
    require_rwp()
    m = Mem("anon", 4)
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    u.register(m.addr, 2 * PAGE, uffd.REGISTER_MODE_RWP)
    refused(errno.ENOENT, u.rwprotect, m.addr, 4 * PAGE, uffd.RWPROTECT_MODE_RWP)
    assert not uffd_bit(m.addr), "the RWP part was protected despite ENOENT"


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
    want_quiet(u2, "the owner's uffd got a message")
    ktest.finding("C17: mrwprotect_range() checks only userfaultfd_rwp(vma) "
                  "(uffd.c:1198-1199), never that the VMA's ctx is the caller's",
                  not took, "RWPROTECT via another uffd on its range returned 0")


# ---- D. sync faults ----

def sync_fault(t: str, write: bool, features: int = 0) -> None:
    u, m = registered(t, NUNITS, features)
    offset = 0x1234 & (m.unit - 1)
    target = m.at(2, offset)
    exact = bool(features & uffd.FEATURE_EXACT_ADDRESS)
    align = m.unit if is_huge(t) else PAGE
    want_addr = target if exact else target & ~(align - 1)
    frame = pagemap(target)[0] & PFN_MASK
    assert frame, "the target page has no PFN"
    protect(u, m)
    acc = uffd.Accessor(target, write, ord("Z"))
    acc.start()
    msg = u.read_msg(WAIT_S)
    assert msg is not None, f"no fault message within {WAIT_S} s"
    want = uffd.PAGEFAULT_FLAG_RWP | (uffd.PAGEFAULT_FLAG_WRITE if write else 0)
    assert msg.event == uffd.EVENT_PAGEFAULT and msg.flags == want, \
        f"event {msg.event:#x} flags {msg.flags:#x}, want PAGEFAULT {want:#x}"
    assert msg.address == want_addr, f"address {msg.address:#x}, want {want_addr:#x}"
    if features & uffd.FEATURE_THREAD_ID:
        assert msg.ptid == acc.native_id, f"ptid {msg.ptid}, want {acc.native_id}"
    assert not acc.done.is_set(), "the access completed while protected"
    u.rwprotect(m.at(2), m.unit, 0)
    assert acc.done.wait(WAIT_S), "the thread did not resume after resolve"
    got = uffd.peek(target)
    assert got == (ord("Z") if write else pattern(2)), f"byte {got:#x} after resolve"
    assert pagemap(target)[0] & PFN_MASK == frame, "the access landed in another frame"
    assert not uffd_bit(target), "the resolved unit kept the uffd bit"
    want_quiet(u, "a second message was queued")


@test_mem
def sync_read_fault(t):
    """D1, D5, D6"""
    sync_fault(t, write=False)


@test_mem
def sync_write_fault(t):
    """D2, D5, D6"""
    sync_fault(t, write=True)


@test_mem
def sync_fault_exact_address_and_thread_id(t):
    """D3, D4"""
    sync_fault(t, write=False,
               features=uffd.FEATURE_EXACT_ADDRESS | uffd.FEATURE_THREAD_ID)


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


# ---- E. async ----

@test_mem
def async_resolves_touched_unit_only(t):
    """E1, E2, E3, E4"""
    u, m = registered(t, NUNITS, uffd.FEATURE_RWP_ASYNC)
    protect(u, m)
    assert uffd.peek(m.at(1, 5)) == pattern(1), "async read"
    want_quiet(u, "async mode queued a message")
    assert not uffd_bit(m.at(1)), "the touched unit is still protected"
    assert uffd_bit(m.at(0)) and uffd_bit(m.at(2)), "untouched units lost protection"


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
    want_quiet(u, "a message in async mode")


# ---- F. UFFDIO_SET_MODE ----

@test
def set_mode_validation():
    """F1"""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    refused(errno.EINVAL, u.set_mode, uffd.FEATURE_RWP_ASYNC, uffd.FEATURE_RWP_ASYNC)
    refused(errno.EINVAL, u.set_mode, uffd.FEATURE_RWP, 0)
    plain = uffd.Uffd()
    plain.api(0)
    refused(errno.EINVAL, plain.set_mode, uffd.FEATURE_RWP_ASYNC, 0)


@test_mem
def set_mode_async_releases_blocked_fault(t):
    """F6"""
    u, m = registered(t, NUNITS)
    protect(u, m)
    acc = reader_blocked(u, m.at(1), m.at(1))
    unread = uffd.Accessor(m.at(3), False)     # its message stays unread
    unread.start()
    assert select.select([u.fd], [], [], WAIT_S)[0], "the second reader's fault was not queued"
    u.set_mode(enable=uffd.FEATURE_RWP_ASYNC)
    assert acc.done.wait(WAIT_S), "enabling async did not release the blocked fault"
    assert acc.value == pattern(1), f"read {acc.value:#x}"
    assert unread.done.wait(WAIT_S), "enabling async did not release the waiter whose message was unread"
    assert unread.value == pattern(3), f"read {unread.value:#x}"
    want_quiet(u, "the unread message of a released waiter is still queued")
    assert not uffd_bit(m.at(1)) and not uffd_bit(m.at(3)), "a released waiter's unit is still protected"
    u.rwprotect(m.at(1), m.unit, 0)            # resolving the already-read fault is a no-op


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


# ---- G. PAGEMAP_SCAN ----

@test_mem
def scan_accessed_finds_touched_units(t):
    """G2"""
    u, m = registered(t, NUNITS, uffd.FEATURE_RWP_ASYNC)
    protect(u, m)
    uffd.peek(m.at(2))
    hot = scan(m.addr, m.length, PAGE_IS_ACCESSED)
    assert hot == [(m.at(2), m.at(3))], f"accessed regions {hot}, want unit 2 only"


def vmflags(addr: int) -> set[str]:
    words = smaps_field(addr, "VmFlags")
    assert words is not None, f"no VMA at {addr:#x}"
    return set(words)

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


# ---- H. teardown ----

@test_mem
def unregister_restores_access(t):
    """H1"""
    u, m = registered(t, NUNITS)
    protect(u, m)
    u.unregister(m.addr, m.length)
    assert not uffd_bit(m.addr), "uffd bit left after unregister"
    acc = uffd.Accessor(m.at(1), False)
    acc.start()
    assert acc.done.wait(WAIT_S), "access blocked after unregister"
    want_quiet(u, "a message after unregister")


@test
def unregister_wakes_blocked_thread():
    """H3: unregistering releases threads blocked on an RWP fault"""
    u, m = registered("anon", NUNITS, protect=True)
    acc = reader_blocked(u, m.at(0), m.at(0))
    u.unregister(m.addr, m.length)
    woke = acc.done.wait(WAIT_S)
    if not woke:
        u.wake(m.addr, m.length)
        assert acc.done.wait(WAIT_S), "not even UFFDIO_WAKE released the thread"
    assert acc.value == pattern(0), f"the released reader read {acc.value:#x}"
    ktest.finding("H3: UFFDIO_UNREGISTER of an RWP-only range resolves the PTEs but wakes "
                  "no waiter (mm/userfaultfd.c wakes only MISSING ranges)",
                  woke, "the thread stayed blocked after UNREGISTER until UFFDIO_WAKE")


@test_mem
def close_restores_access_and_wakes(t):
    """H6"""
    u, m = registered(t, NUNITS)
    protect(u, m)
    acc = reader_blocked(u, m.at(0), m.at(0))
    u.close()
    assert acc.done.wait(WAIT_S), "close did not release the blocked thread"
    assert not uffd_bit(m.at(1)), "uffd bit survived the uffd"


if __name__ == "__main__":
    ktest.main()
