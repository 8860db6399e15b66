"""What a uffd reports, checked: the Python twin of the checks in rwp_uffd.h.

The fault a blocked access raised (want_fault, reader_blocked), that no message
waits (want_quiet), an access that blocks until its page is resolved
(read_blocks_until_resolved), and a call refused with one errno (refused).
"""

import uffd
from memtypes import WAIT_S


def want_fault(u: uffd.Uffd, flags: int, address: int) -> uffd.Msg:
    """The next message is a page fault with flags at address."""
    msg = u.read_msg(WAIT_S)
    assert msg is not None, f"no fault message within {WAIT_S} s"
    assert msg.event == uffd.EVENT_PAGEFAULT, f"event {msg.event:#x}, want a page fault"
    assert (msg.flags, msg.address) == (flags, address), \
        f"fault flags {msg.flags:#x} at {msg.address:#x}, want {flags:#x} at {address:#x}"
    return msg


def want_quiet(u: uffd.Uffd, when: str) -> None:
    """No message may be waiting now."""
    msg = u.read_msg(0)
    assert msg is None, \
        f"{when}: unexpected message (event {msg.event:#x}, flags {msg.flags:#x} at {msg.address:#x})"


def reader_blocked(u: uffd.Uffd, addr: int, fault_addr: int) -> uffd.Accessor:
    """A thread reading addr, seen blocked on its RWP fault at fault_addr."""
    acc = uffd.Accessor(addr, False)
    acc.start()
    want_fault(u, uffd.PAGEFAULT_FLAG_RWP, fault_addr)
    assert not acc.done.is_set(), "the read finished while protected"
    return acc


def read_blocks_until_resolved(u: uffd.Uffd, addr: int, fault_addr: int, length: int,
                               want: int | None = None) -> None:
    """A read of addr blocks on an RWP fault at fault_addr; resolving the
    length-aligned block holding it lets the read finish, with want if given."""
    acc = reader_blocked(u, addr, fault_addr)
    u.rwprotect(fault_addr & ~(length - 1), length, 0)
    assert acc.done.wait(WAIT_S), "the reader did not resume after the resolve"
    assert want is None or acc.value == want, f"read {acc.value:#x}, want {want:#x}"


def refused(want: int, call, *args) -> None:
    """call(*args) fails with errno want."""
    try:
        call(*args)
    except OSError as e:
        assert e.errno == want, f"{call.__name__} failed with {uffd.errno_name(e.errno)}, " \
                                f"want {uffd.errno_name(want)}"
        return
    raise AssertionError(f"{call.__name__} succeeded, want {uffd.errno_name(want)}")
