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
from memtypes import PAGE, registered, require_rwp, scan, smaps_field, PAGE_IS_ACCESSED, uffd_bit

WAIT_S = 5.0

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
    assert not waiters[1].done.wait(0.3), "the thread on P2 was woken by P1's resolve"
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


if __name__ == "__main__":
    ktest.main()
