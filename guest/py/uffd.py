"""userfaultfd from Python with the standard library only (ctypes, fcntl, struct).

Structure layouts and ioctl numbers follow include/uapi/linux/userfaultfd.h of
Linux 7.3.
"""

import ctypes
import errno
import fcntl
import mmap
import os
import platform
import select
import struct
import threading

UFFD_API = 0xAA
_UFFDIO = 0xAA

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (_UFFDIO << 8) | nr


# Structure formats (native x86_64 alignment: all members are __u64 here).
API_FMT = "=QQQ"            # api, features, ioctls
REGISTER_FMT = "=QQQQ"      # range.start, range.len, mode, ioctls
RWPROTECT_FMT = "=QQQ"      # range.start, range.len, mode
SET_MODE_FMT = "=QQ"        # enable, disable
RANGE_FMT = "=QQ"           # start, len
ZEROPAGE_FMT = "=QQQq"      # range.start, range.len, mode, zeropage (bytes or -errno)
MOVE_FMT = "=QQQQq"         # dst, src, len, mode, move (bytes or -errno)
MSG_FMT = "=BBHIQQI4x"      # event, reserved1-3, pagefault.flags, .address, .feat.ptid

_UFFDIO_REGISTER, _UFFDIO_UNREGISTER, _UFFDIO_WAKE = 0x00, 0x01, 0x02
_UFFDIO_ZEROPAGE, _UFFDIO_MOVE = 0x04, 0x05
_UFFDIO_WRITEPROTECT, _UFFDIO_RWPROTECT, _UFFDIO_SET_MODE, _UFFDIO_API = 0x06, 0x09, 0x0A, 0x3F

RW = _IOC_READ | _IOC_WRITE
UFFDIO_API = _ioc(RW, _UFFDIO_API, struct.calcsize(API_FMT))
UFFDIO_REGISTER = _ioc(RW, _UFFDIO_REGISTER, struct.calcsize(REGISTER_FMT))
UFFDIO_UNREGISTER = _ioc(_IOC_READ, _UFFDIO_UNREGISTER, struct.calcsize(RANGE_FMT))
UFFDIO_RWPROTECT = _ioc(RW, _UFFDIO_RWPROTECT, struct.calcsize(RWPROTECT_FMT))
UFFDIO_SET_MODE = _ioc(_IOC_WRITE, _UFFDIO_SET_MODE, struct.calcsize(SET_MODE_FMT))
UFFDIO_WAKE = _ioc(_IOC_READ, _UFFDIO_WAKE, struct.calcsize(RANGE_FMT))
UFFDIO_ZEROPAGE = _ioc(RW, _UFFDIO_ZEROPAGE, struct.calcsize(ZEROPAGE_FMT))
UFFDIO_MOVE = _ioc(RW, _UFFDIO_MOVE, struct.calcsize(MOVE_FMT))

FEATURE_EXACT_ADDRESS = 1 << 11
FEATURE_THREAD_ID = 1 << 8
FEATURE_EVENT_FORK = 1 << 1
FEATURE_MISSING_SHMEM = 1 << 5
FEATURE_MOVE = 1 << 16
FEATURE_RWP = 1 << 17
FEATURE_RWP_ASYNC = 1 << 18

REGISTER_MODE_MISSING = 1 << 0
REGISTER_MODE_WP = 1 << 1
REGISTER_MODE_MINOR = 1 << 2
REGISTER_MODE_RWP = 1 << 3

RWPROTECT_MODE_RWP = 1 << 0
RWPROTECT_MODE_DONTWAKE = 1 << 1

EVENT_PAGEFAULT = 0x12
PAGEFAULT_FLAG_WRITE = 1 << 0
PAGEFAULT_FLAG_WP = 1 << 1
PAGEFAULT_FLAG_MINOR = 1 << 2
PAGEFAULT_FLAG_RWP = 1 << 3

# The syscalls Python's os module lacks, by guest architecture (uname -m):
# x86_64 has its own table, arm64 the generic one (include/uapi/asm-generic/unistd.h).
_SYSCALLS = {"x86_64": {"userfaultfd": 323, "move_pages": 279},
             "aarch64": {"userfaultfd": 282, "move_pages": 239}}
NR_USERFAULTFD = _SYSCALLS[platform.machine()]["userfaultfd"]
NR_MOVE_PAGES = _SYSCALLS[platform.machine()]["move_pages"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

PAGE_SIZE = mmap.PAGESIZE


class UffdError(OSError):
    pass


def _check(ret: int, what: str) -> int:
    if ret < 0:
        e = ctypes.get_errno()
        raise UffdError(e, f"{what}: {os.strerror(e)}")
    return ret


class Msg:
    def __init__(self, raw: bytes):
        (self.event, _, _, _, self.flags, self.address, self.ptid) = struct.unpack(MSG_FMT, raw)


class Uffd:
    """A userfaultfd; ioctls raise UffdError (an OSError with errno) on failure."""

    def __init__(self, flags: int = os.O_CLOEXEC | os.O_NONBLOCK):
        self.fd = _check(_libc.syscall(NR_USERFAULTFD, flags), "userfaultfd")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ioctl(self, request: int, fmt: str, *values: int) -> tuple:
        buf = bytearray(struct.pack(fmt, *values))
        fcntl.ioctl(self.fd, request, buf, True)
        return struct.unpack(fmt, buf)

    def api(self, features: int = 0) -> tuple[int, int]:
        """UFFDIO_API; returns (features, ioctls)."""
        _, feats, ioctls = self._ioctl(UFFDIO_API, API_FMT, UFFD_API, features, 0)
        return feats, ioctls

    def register(self, addr: int, length: int, mode: int) -> int:
        """UFFDIO_REGISTER; returns the ioctls mask the range supports."""
        return self._ioctl(UFFDIO_REGISTER, REGISTER_FMT, addr, length, mode, 0)[3]

    def unregister(self, addr: int, length: int) -> None:
        self._ioctl(UFFDIO_UNREGISTER, RANGE_FMT, addr, length)

    def rwprotect(self, addr: int, length: int, mode: int) -> None:
        self._ioctl(UFFDIO_RWPROTECT, RWPROTECT_FMT, addr, length, mode)

    def set_mode(self, enable: int = 0, disable: int = 0) -> None:
        self._ioctl(UFFDIO_SET_MODE, SET_MODE_FMT, enable, disable)

    def wake(self, addr: int, length: int) -> None:
        self._ioctl(UFFDIO_WAKE, RANGE_FMT, addr, length)

    def zeropage(self, addr: int, length: int) -> int:
        """UFFDIO_ZEROPAGE (and wake); returns the bytes mapped."""
        return self._ioctl(UFFDIO_ZEROPAGE, ZEROPAGE_FMT, addr, length, 0, 0)[3]

    def move(self, dst: int, src: int, length: int) -> int:
        """UFFDIO_MOVE (and wake); returns the bytes moved."""
        return self._ioctl(UFFDIO_MOVE, MOVE_FMT, dst, src, length, 0, 0)[4]

    def read_msg(self, timeout_s: float) -> Msg | None:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if not ready:
            return None
        return Msg(os.read(self.fd, struct.calcsize(MSG_FMT)))


def kernel_features() -> int:
    with Uffd() as u:
        return u.api(0)[0]


class Region:
    """An anonymous private mapping addressed by integers, as the ioctls want."""

    def __init__(self, npages: int):
        self.length = npages * PAGE_SIZE
        self.map = mmap.mmap(-1, self.length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._anchor = ctypes.c_char.from_buffer(self.map)
        self.addr = ctypes.addressof(self._anchor)

    def page(self, index: int) -> int:
        return self.addr + index * PAGE_SIZE

    def fill(self) -> None:
        for i in range(self.length // PAGE_SIZE):
            self.map[i * PAGE_SIZE:(i + 1) * PAGE_SIZE] = bytes([ord("a") + i]) * PAGE_SIZE


def peek(addr: int) -> int:
    """Read one byte with the GIL released, so the read may block in a fault."""
    out = ctypes.create_string_buffer(1)
    ctypes.memmove(out, addr, 1)
    return out.raw[0]


def poke(addr: int, value: int) -> None:
    """Write one byte with the GIL released."""
    ctypes.memmove(addr, bytes([value]), 1)


class Accessor(threading.Thread):
    """A thread that touches one byte; the test acts as the fault handler."""

    def __init__(self, addr: int, write: bool, value: int = 0):
        super().__init__(daemon=True)
        self.addr, self.write, self.value = addr, write, value
        self.done = threading.Event()

    def run(self) -> None:
        if self.write:
            poke(self.addr, self.value)
        else:
            self.value = peek(self.addr)
        self.done.set()


def errno_name(e: int) -> str:
    return errno.errorcode.get(e, str(e))
