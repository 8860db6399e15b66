"""First RWP behaviours, from Python: the same contract as guest/c/rwp_basic.c."""

import errno

import ktest
import uffd
from ktest import Skip, test
from faults import want_quiet
from memtypes import PFN_MASK, PRESENT, UFFD_BIT, WAIT_S, bit, pagemap
from uffd import PAGE_SIZE

NPAGES = 4


def require_rwp() -> int:
    features = uffd.kernel_features()
    if not features & uffd.FEATURE_RWP:
        raise Skip(ktest.NO_RWP_REASON)
    return features


def rwp_context(npages: int = 1) -> tuple[uffd.Uffd, uffd.Region]:
    """A page range and a uffd with RWP negotiated, nothing registered yet."""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP)
    return u, uffd.Region(npages)


def rwp_range(features: int = 0) -> tuple[uffd.Uffd, uffd.Region]:
    require_rwp()
    region = uffd.Region(NPAGES)
    region.fill()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP | features)
    u.register(region.addr, region.length, uffd.REGISTER_MODE_RWP)
    return u, region


@test
def api_advertises_rwp():
    """A1"""
    features = require_rwp()
    assert features & uffd.FEATURE_RWP_ASYNC, f"features {features:#x} lack RWP_ASYNC"


@test
def register_rwp():
    """B4"""
    u, region = rwp_context()
    ioctls = u.register(region.addr, region.length, uffd.REGISTER_MODE_RWP)
    assert ioctls & (1 << uffd._UFFDIO_RWPROTECT), f"ioctls {ioctls:#x} lack RWPROTECT"


@test
def rwprotect_populated_keeps_contents():
    """C1"""
    u, region = rwp_range()
    frames = [e & PFN_MASK for e in pagemap(region.addr, NPAGES)]
    assert all(frames), f"pages without a PFN: {frames}"
    u.rwprotect(region.addr, region.length, uffd.RWPROTECT_MODE_RWP)
    for i, e in enumerate(pagemap(region.addr, NPAGES)):
        assert bit(e, PRESENT) and bit(e, UFFD_BIT), f"protected page {i}: entry {e:#x}"
        assert e & PFN_MASK == frames[i], f"page {i} moved to another frame when protected"
    u.rwprotect(region.addr, region.length, 0)
    for i, e in enumerate(pagemap(region.addr, NPAGES)):
        got = region.map[i * PAGE_SIZE + 7]
        assert got == ord("a") + i, f"page {i} holds {got:#x} after protect and resolve"
        assert not bit(e, UFFD_BIT), f"resolved page {i} kept the uffd bit"
        assert e & PFN_MASK == frames[i], f"page {i} moved to another frame across protect and resolve"


def sync_fault(write: bool) -> None:
    u, region = rwp_range()
    target = region.page(2)
    u.rwprotect(region.addr, region.length, uffd.RWPROTECT_MODE_RWP)
    acc = uffd.Accessor(target + 100, write, ord("Z"))
    acc.start()
    msg = u.read_msg(WAIT_S)
    assert msg is not None, f"no fault message within {WAIT_S} s"
    want = uffd.PAGEFAULT_FLAG_RWP | (uffd.PAGEFAULT_FLAG_WRITE if write else 0)
    assert msg.event == uffd.EVENT_PAGEFAULT, f"event {msg.event:#x} is not PAGEFAULT"
    assert msg.flags == want, f"flags {msg.flags:#x}, want {want:#x}"
    assert msg.address == target, f"address {msg.address:#x}, want {target:#x}"
    assert not acc.done.is_set(), "the access completed while the page was protected"
    u.rwprotect(target, PAGE_SIZE, 0)
    assert acc.done.wait(WAIT_S), "the thread did not resume after resolve"
    if write:
        assert region.map[2 * PAGE_SIZE + 100] == ord("Z"), "write lost"
    else:
        assert acc.value == ord("c"), f"read {acc.value:#x}, want 'c'"
    want_quiet(u, "a second message was queued")


@test
def sync_read_fault():
    """D1"""
    sync_fault(write=False)


@test
def sync_write_fault():
    """D2"""
    sync_fault(write=True)


@test
def async_resolves_without_message():
    """E1"""
    u, region = rwp_range(uffd.FEATURE_RWP_ASYNC)
    u.rwprotect(region.addr, region.length, uffd.RWPROTECT_MODE_RWP)
    p1 = region.page(1)
    assert uffd.peek(p1 + 5) == ord("b"), "async read returned the wrong byte"
    uffd.poke(p1 + 6, ord("Q"))
    assert uffd.peek(p1 + 6) == ord("Q"), "async write lost"
    msg = u.read_msg(0)
    assert msg is None, f"async mode queued a message (event {msg.event:#x})"


@test
def register_wp_and_rwp_refused():
    """B2"""
    u, region = rwp_context()
    try:
        u.register(region.addr, region.length,
                   uffd.REGISTER_MODE_WP | uffd.REGISTER_MODE_RWP)
    except OSError as e:
        assert e.errno == errno.EINVAL, f"refused with {uffd.errno_name(e.errno)}, want EINVAL"
        return
    raise AssertionError("MODE_WP|MODE_RWP was accepted")


if __name__ == "__main__":
    ktest.main()
