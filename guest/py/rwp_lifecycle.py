"""The RWP contract over a mapping's life, from Python (docs/contract.md areas I, K, L).

An independent check, through guest/py/uffd.py and ctypes, of a subset of
what guest/c/rwp_lifecycle.c tests: mremap, fork, MOVE, kernel-mode accesses and
unprivileged use. Each test names its contract ids in its docstring.
"""

import ctypes
import errno
import mmap
import os
import select
import signal
import threading

import ktest
import uffd
from ktest import test
from faults import want_fault, want_quiet
from memtypes import HPAGE, MADV_DONTNEED, NUNITS, PAGE, SWAPPED, WAIT_S, Mem, bit, is_huge, page_out
from memtypes import madvise, pagemap, pattern, registered, require_rwp, require_swap, test_mem, uffd_bit
from memtypes import wait_until

USER_MODE_ONLY = 1
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
NOBODY = 65534
SYSCTL = "/proc/sys/vm/unprivileged_userfaultfd"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.mremap.restype = ctypes.c_void_p
_libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int,
                         ctypes.c_void_p]
_libc.read.restype = ctypes.c_ssize_t
_libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
_libc.write.restype = ctypes.c_ssize_t
_libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]


def present(addr: int) -> bool:
    """pagemap bit 63: a page is mapped at addr."""
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(addr // uffd.PAGE_SIZE * 8)
        return bool(int.from_bytes(f.read(8), "little") >> 63 & 1)


def fault_address(m: Mem, addr: int) -> int:
    return addr & ~((HPAGE if is_huge(m.type) else uffd.PAGE_SIZE) - 1)


class Call(threading.Thread):
    """A libc call made from another thread (ctypes drops the GIL), so it may block in a fault."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.ret, self.err = None, 0
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        self.ret = self.fn(*self.args)
        self.err = ctypes.get_errno()
        self.done.set()


@test_mem
def mremap_without_event_unprotects(t: str):
    """I8: without EVENT_REMAP the moved pages arrive unprotected and unregistered"""
    u, m = registered(t, NUNITS, protect=True)
    raw = _libc.mmap(None, m.length + HPAGE, 0,  # PROT_NONE
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert raw not in (None, ctypes.c_void_p(-1).value), "reserve address space"
    to = (raw + HPAGE - 1) & ~(HPAGE - 1)
    got = _libc.mremap(m.addr, m.length, m.length, MREMAP_MAYMOVE | MREMAP_FIXED, to)
    assert got == to, f"mremap returned {got}, errno {ctypes.get_errno()}"
    for i in range(NUNITS):
        assert not uffd_bit(to + i * m.unit), f"unit {i} kept the uffd bit"
        assert uffd.peek(to + i * m.unit + 3) == pattern(i), f"unit {i} contents"
    want_quiet(u, "accesses after the move")
    try:
        u.rwprotect(to, m.length, uffd.RWPROTECT_MODE_RWP)
    except OSError as e:
        assert e.errno == errno.ENOENT, f"RWPROTECT of the moved range: {uffd.errno_name(e.errno)}"
    else:
        raise AssertionError("RWPROTECT of the moved (unregistered) range succeeded")


@test_mem
def fork_without_event_child_unaffected(t: str):
    """I1, I2: a child forked without EVENT_FORK reads freely; the parent stays protected"""
    u, m = registered(t, NUNITS, protect=True)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if t in ("shmem", "hugetlb") and present(m.at(1)):
                code = 4    # I2: shared mappings' page tables are not copied
            elif uffd_bit(m.at(1)):
                code = 2
            elif uffd.peek(m.at(1, 5)) != pattern(1):
                code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        f"child status {status:#x} (exit 2: uffd bit; 3: data; 4: page tables copied)"
    want_quiet(u, "the child's access")
    assert uffd_bit(m.at(1)), "the parent lost its protection"
    acc = uffd.Accessor(m.at(1), False)
    acc.start()
    want_fault(u, uffd.PAGEFAULT_FLAG_RWP, fault_address(m, m.at(1)))
    u.rwprotect(m.at(1), m.unit, 0)
    assert acc.done.wait(WAIT_S), "the parent's reader did not resume"


@test_mem
def pipe_read_into_protected_buffer_waits(t: str):
    """K2: read() from a pipe into a protected buffer waits on an RWP write fault until resolved"""
    u, m = registered(t, NUNITS, protect=True)
    r, w = os.pipe()
    os.write(w, b"pipedata")
    call = Call(_libc.read, r, m.at(2, 8), 8)
    want_fault(u, uffd.PAGEFAULT_FLAG_RWP | uffd.PAGEFAULT_FLAG_WRITE,
                 fault_address(m, m.at(2)))
    assert not call.done.wait(0.1), "read() completed into a protected buffer"
    u.rwprotect(m.at(2), m.unit, 0)
    assert call.done.wait(WAIT_S), "read() did not return after the resolve"
    assert call.ret == 8, f"read returned {call.ret} ({uffd.errno_name(call.err)})"
    assert ctypes.string_at(m.at(2, 8), 8) == b"pipedata", "data read from the pipe"


@test_mem
def user_mode_only_kernel_write_efaults(t: str):
    """K3: with UFFD_USER_MODE_ONLY, write() from a protected buffer is EFAULT at once"""
    u, m = registered(t, NUNITS, flags=USER_MODE_ONLY | os.O_CLOEXEC | os.O_NONBLOCK,
                      protect=True)
    r, w = os.pipe()
    call = Call(_libc.write, w, m.at(1), 16)
    assert call.done.wait(WAIT_S), "write() blocked on a user-mode-only uffd"
    assert call.ret == -1 and call.err == errno.EFAULT, \
        f"write returned {call.ret} ({uffd.errno_name(call.err)}), want EFAULT"
    want_quiet(u, "kernel-mode access")
    assert uffd_bit(m.at(1)), "the failed kernel access unprotected the unit"


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
    want_quiet(u, "the read of the moved page raised a message")
    ktest.finding("I17: move_swap_pte() keeps the source's swap-PTE uffd bit "
                  "(uffd.c:1449-1455), so the page lands in a non-RWP VMA still marked",
                  not marked, "the swapped page arrived with the uffd bit in a non-RWP VMA")


def as_nobody(fn, sysctl_value: int) -> int:
    """Run fn as uid/gid 65534 with the sysctl set; restore it; return the exit status."""
    with open(SYSCTL) as f:
        old = f.read().strip()
    with open(SYSCTL, "w") as f:
        f.write(f"{sysctl_value}\n")
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(10)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                fn()
                code = 0
            except AssertionError as e:
                ktest.diag(f"unprivileged child: {e}")
            finally:
                os._exit(code)
        return os.waitpid(pid, 0)[1]
    finally:
        with open(SYSCTL, "w") as f:
            f.write(f"{old}\n")


def _unprivileged_checks() -> None:
    try:
        uffd.Uffd(os.O_CLOEXEC)
    except OSError as e:
        assert e.errno == errno.EPERM, f"userfaultfd(O_CLOEXEC): {uffd.errno_name(e.errno)}"
    else:
        raise AssertionError("unprivileged userfaultfd(O_CLOEXEC) succeeded with the sysctl at 0")
    u = uffd.Uffd(USER_MODE_ONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    u.api(uffd.FEATURE_RWP)
    region = uffd.Region(1)
    region.fill()
    u.register(region.addr, region.length, uffd.REGISTER_MODE_RWP)
    u.rwprotect(region.addr, region.length, uffd.RWPROTECT_MODE_RWP)
    acc = uffd.Accessor(region.addr, False)
    acc.start()
    want_fault(u, uffd.PAGEFAULT_FLAG_RWP, region.addr)
    u.rwprotect(region.addr, region.length, 0)
    assert acc.done.wait(WAIT_S) and acc.value == ord("a"), "the reader did not resume"


@test
def unprivileged_only_user_mode():
    """L1, L2: without privilege (sysctl 0) only UFFD_USER_MODE_ONLY uffds are allowed, and RWP works on them"""
    require_rwp()
    if not os.path.exists(SYSCTL):
        raise ktest.Skip(f"no {SYSCTL}")
    with open(SYSCTL) as f:
        before = f.read()
    status = as_nobody(_unprivileged_checks, 0)
    with open(SYSCTL) as f:
        assert f.read() == before, "the sysctl was not restored"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        f"unprivileged child status {status:#x}"


@test
def fork_event_abandoned_leaves_child_clean():
    """I5: a fork event abandoned by closing the uffd must not leave RWP state in the child"""
    require_rwp()
    u = uffd.Uffd()
    u.api(uffd.FEATURE_RWP | uffd.FEATURE_EVENT_FORK)
    helper = os.fork()          # nothing is registered yet: no event for this fork
    if helper == 0:
        # Holds the only other reference, and closes it once the fork event is pending.
        signal.alarm(10)
        ready = select.select([u.fd], [], [], WAIT_S)[0]
        os.close(u.fd)
        os._exit(0 if ready else 2)
    m = Mem("anon", 2)
    u.register(m.addr, m.length, uffd.REGISTER_MODE_RWP)
    u.rwprotect(m.addr, m.length, uffd.RWPROTECT_MODE_RWP)
    u.close()
    pid = os.fork()             # returns once the helper's close abandons the event
    if pid == 0:
        signal.alarm(5)         # a fault loop on a stale PTE dies of SIGALRM
        before = uffd_bit(m.addr)
        good = uffd.peek(m.addr) == pattern(0)
        after = uffd_bit(m.addr)
        os._exit((1 if before else 0) | (2 if after else 0) | (0 if good else 4))
    _, hstatus = os.waitpid(helper, 0)
    assert os.WIFEXITED(hstatus) and os.WEXITSTATUS(hstatus) == 0, \
        f"the helper saw no event to abandon (status {hstatus:#x})"
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"the child's access to its copy did not complete ({status:#x})"
    code = os.WEXITSTATUS(status)
    assert not code & 4, "the child read the wrong data"
    assert not uffd_bit(m.addr), "the parent's range is still protected after the uffd's release"
    ktest.diag(f"child: uffd bit before access {code & 1}, after access {code >> 1 & 1}")
    ktest.finding("I5: userfaultfd_event_wait_completion() hands the child's new ctx to "
                  "userfaultfd_release_new(), which only resets the VMAs' ctx; the PTEs copied "
                  "as PAGE_NONE plus the uffd bit keep it in a VMA that is no longer registered",
                  not code & 1, "the child's unregistered copy carries the uffd bit")
    assert not code & 2, "the uffd bit survived the child's access"


if __name__ == "__main__":
    ktest.main()
