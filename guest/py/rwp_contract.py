"""The RWP contract (docs/contract.md) from Python, through guest/py/uffd.py.

The same behaviours as guest/c/rwp_contract.c where they overlap, checked by
an independent implementation of the ABI; each test names its contract ids.
"""

import errno
import select

import ktest
import uffd
from memtypes import PAGE, Mem, is_huge, pattern, registered, require_rwp, scan, test_mem, uffd_bit
from memtypes import PFN_MASK, WAIT_S, PAGE_IS_ACCESSED, pagemap
from ktest import test

NUNITS = 4


def expect_errno(want: int, call, *args) -> None:
    try:
        call(*args)
    except OSError as e:
        assert e.errno == want, f"{call.__name__} failed with {uffd.errno_name(e.errno)}, " \
                                f"want {uffd.errno_name(want)}"
        return
    raise AssertionError(f"{call.__name__} succeeded, want {uffd.errno_name(want)}")


def protect(u: uffd.Uffd, m: Mem) -> None:
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)


def blocked_reader(u: uffd.Uffd, addr: int) -> uffd.Accessor:
    """A thread reading addr, seen blocked: its fault message has arrived."""
    acc = uffd.Accessor(addr, False)
    acc.start()
    assert u.read_msg(WAIT_S) is not None, "no fault message"
    return acc


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
    expect_errno(errno.EINVAL, uffd.Uffd().api, uffd.FEATURE_RWP)
    m = Mem("anon", 1)
    expect_errno(errno.EINVAL, probe.register, m.addr, PAGE, uffd.REGISTER_MODE_RWP)
    ioctls = probe.register(m.addr, PAGE, uffd.REGISTER_MODE_MISSING)
    assert not ioctls & (1 << uffd._UFFDIO_RWPROTECT), f"ioctls mask {ioctls:#x} names RWPROTECT"
    expect_errno(errno.EINVAL, probe.rwprotect, m.addr, PAGE, uffd.RWPROTECT_MODE_RWP)
    expect_errno(errno.EINVAL, probe.set_mode, uffd.FEATURE_RWP_ASYNC)
    expect_errno(errno.EINVAL, scan, m.addr, PAGE, PAGE_IS_ACCESSED)


@test
def api_rwp_async_without_rwp_refused():
    """A4"""
    require_rwp()
    u = uffd.Uffd()
    expect_errno(errno.EINVAL, u.api, uffd.FEATURE_RWP_ASYNC)
    u.api(uffd.FEATURE_RWP)


@test
def api_second_call_refused():
    """A7"""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    expect_errno(errno.EINVAL, u.api, 0)


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
    expect_errno(errno.EBUSY, u.register, m.addr, m.length, uffd.REGISTER_MODE_MISSING)
    assert uffd_bit(m.addr), "protection lost after the refused re-registration"


# ---- C. UFFDIO_RWPROTECT ----

@test
def rwprotect_mode_validation():
    """C2"""
    u, m = registered("anon", NUNITS)
    expect_errno(errno.EINVAL, u.rwprotect, m.addr, m.length, 1 << 2)
    expect_errno(errno.EINVAL, u.rwprotect, m.addr, m.length,
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
    expect_errno(errno.ENOENT, u.rwprotect, m.addr, 4 * PAGE, uffd.RWPROTECT_MODE_RWP)
    assert not uffd_bit(m.addr), "the RWP part was protected despite ENOENT"


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
    assert u.read_msg(0) is None, "a second message was queued"


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


# ---- E. async ----

@test_mem
def async_resolves_touched_unit_only(t):
    """E1, E2, E3, E4"""
    u, m = registered(t, NUNITS, uffd.FEATURE_RWP_ASYNC)
    protect(u, m)
    assert uffd.peek(m.at(1, 5)) == pattern(1), "async read"
    assert u.read_msg(0) is None, "async mode queued a message"
    assert not uffd_bit(m.at(1)), "the touched unit is still protected"
    assert uffd_bit(m.at(0)) and uffd_bit(m.at(2)), "untouched units lost protection"


# ---- F. UFFDIO_SET_MODE ----

@test
def set_mode_validation():
    """F1"""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    expect_errno(errno.EINVAL, u.set_mode, uffd.FEATURE_RWP_ASYNC, uffd.FEATURE_RWP_ASYNC)
    expect_errno(errno.EINVAL, u.set_mode, uffd.FEATURE_RWP, 0)
    plain = uffd.Uffd()
    plain.api(0)
    expect_errno(errno.EINVAL, plain.set_mode, uffd.FEATURE_RWP_ASYNC, 0)


@test_mem
def set_mode_async_releases_blocked_fault(t):
    """F6"""
    u, m = registered(t, NUNITS)
    protect(u, m)
    acc = blocked_reader(u, m.at(1))
    unread = uffd.Accessor(m.at(3), False)     # its message stays unread
    unread.start()
    assert select.select([u.fd], [], [], WAIT_S)[0], "the second reader's fault was not queued"
    u.set_mode(enable=uffd.FEATURE_RWP_ASYNC)
    assert acc.done.wait(WAIT_S), "enabling async did not release the blocked fault"
    assert acc.value == pattern(1), f"read {acc.value:#x}"
    assert unread.done.wait(WAIT_S), "enabling async did not release the waiter whose message was unread"
    assert unread.value == pattern(3), f"read {unread.value:#x}"
    assert u.read_msg(0) is None, "the unread message of a released waiter is still queued"
    assert not uffd_bit(m.at(1)) and not uffd_bit(m.at(3)), "a released waiter's unit is still protected"
    u.rwprotect(m.at(1), m.unit, 0)            # resolving the already-read fault is a no-op


# ---- G. PAGEMAP_SCAN ----

@test_mem
def scan_accessed_finds_touched_units(t):
    """G2"""
    u, m = registered(t, NUNITS, uffd.FEATURE_RWP_ASYNC)
    protect(u, m)
    uffd.peek(m.at(2))
    hot = scan(m.addr, m.length, PAGE_IS_ACCESSED)
    assert hot == [(m.at(2), m.at(3))], f"accessed regions {hot}, want unit 2 only"


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
    assert u.read_msg(0) is None, "a message after unregister"


@test
def unregister_wakes_blocked_thread():
    """H3: unregistering releases threads blocked on an RWP fault"""
    u, m = registered("anon", NUNITS, protect=True)
    acc = blocked_reader(u, m.at(0))
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
    acc = blocked_reader(u, m.at(0))
    u.close()
    assert acc.done.wait(WAIT_S), "close did not release the blocked thread"
    assert not uffd_bit(m.at(1)), "uffd bit survived the uffd"


if __name__ == "__main__":
    ktest.main()
