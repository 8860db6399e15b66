# SPDX-License-Identifier: GPL-2.0
"""What guest/py/uffd.py believes of the userfaultfd ABI, one "name value" per
line in uffd_abi.c's names: run on the architecture under test (the host for
x86_64, the guest for another), so the syscall numbers are that machine's.
"""

import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import uffd  # noqa: E402


def constants() -> dict[str, int]:
    return {
        "UFFD_API": uffd.UFFD_API, "UFFDIO_API": uffd.UFFDIO_API,
        "UFFDIO_REGISTER": uffd.UFFDIO_REGISTER, "UFFDIO_UNREGISTER": uffd.UFFDIO_UNREGISTER,
        "UFFDIO_RWPROTECT": uffd.UFFDIO_RWPROTECT, "UFFDIO_SET_MODE": uffd.UFFDIO_SET_MODE,
        "UFFDIO_WAKE": uffd.UFFDIO_WAKE, "UFFDIO_ZEROPAGE": uffd.UFFDIO_ZEROPAGE,
        "UFFDIO_MOVE": uffd.UFFDIO_MOVE,
        "UFFD_FEATURE_EVENT_FORK": uffd.FEATURE_EVENT_FORK,
        "UFFD_FEATURE_MISSING_SHMEM": uffd.FEATURE_MISSING_SHMEM,
        "UFFD_FEATURE_MOVE": uffd.FEATURE_MOVE,
        "UFFD_FEATURE_RWP": uffd.FEATURE_RWP, "UFFD_FEATURE_RWP_ASYNC": uffd.FEATURE_RWP_ASYNC,
        "UFFD_FEATURE_EXACT_ADDRESS": uffd.FEATURE_EXACT_ADDRESS,
        "UFFD_FEATURE_THREAD_ID": uffd.FEATURE_THREAD_ID,
        "UFFDIO_REGISTER_MODE_MISSING": uffd.REGISTER_MODE_MISSING,
        "UFFDIO_REGISTER_MODE_WP": uffd.REGISTER_MODE_WP,
        "UFFDIO_REGISTER_MODE_MINOR": uffd.REGISTER_MODE_MINOR,
        "UFFDIO_REGISTER_MODE_RWP": uffd.REGISTER_MODE_RWP,
        "UFFDIO_RWPROTECT_MODE_RWP": uffd.RWPROTECT_MODE_RWP,
        "UFFDIO_RWPROTECT_MODE_DONTWAKE": uffd.RWPROTECT_MODE_DONTWAKE,
        "UFFD_EVENT_PAGEFAULT": uffd.EVENT_PAGEFAULT,
        "UFFD_PAGEFAULT_FLAG_WRITE": uffd.PAGEFAULT_FLAG_WRITE,
        "UFFD_PAGEFAULT_FLAG_WP": uffd.PAGEFAULT_FLAG_WP,
        "UFFD_PAGEFAULT_FLAG_MINOR": uffd.PAGEFAULT_FLAG_MINOR,
        "UFFD_PAGEFAULT_FLAG_RWP": uffd.PAGEFAULT_FLAG_RWP,
        "_UFFDIO_RWPROTECT": uffd._UFFDIO_RWPROTECT,
        "__NR_userfaultfd": uffd.NR_USERFAULTFD,
        "__NR_move_pages": uffd.NR_MOVE_PAGES,
    }


def layouts() -> dict[str, int]:
    return {
        "sizeof_uffdio_api": struct.calcsize(uffd.API_FMT),
        "sizeof_uffdio_register": struct.calcsize(uffd.REGISTER_FMT),
        "sizeof_uffdio_range": struct.calcsize(uffd.RANGE_FMT),
        "sizeof_uffdio_rwprotect": struct.calcsize(uffd.RWPROTECT_FMT),
        "sizeof_uffdio_set_mode": struct.calcsize(uffd.SET_MODE_FMT),
        "sizeof_uffd_msg": struct.calcsize(uffd.MSG_FMT),
        "sizeof_uffdio_zeropage": struct.calcsize(uffd.ZEROPAGE_FMT),
        "sizeof_uffdio_move": struct.calcsize(uffd.MOVE_FMT),
        "offsetof_uffdio_zeropage_zeropage": struct.calcsize("=QQQ"),
        "offsetof_uffdio_move_move": struct.calcsize("=QQQQ"),
        # Offsets follow from the formats: flags after the 8-byte header, and so on.
        "offsetof_uffd_msg_flags": struct.calcsize("=BBHI"),
        "offsetof_uffd_msg_address": struct.calcsize("=BBHIQ"),
        "offsetof_uffd_msg_ptid": struct.calcsize("=BBHIQQ"),
        "offsetof_uffdio_register_ioctls": struct.calcsize("=QQQ"),
        "offsetof_uffdio_rwprotect_mode": struct.calcsize("=QQ"),
    }


def parse(text: str) -> dict[str, int]:
    """uffd_abi.c's (or this program's) output as a dict."""
    return {k: int(v) for k, v in (line.split() for line in text.splitlines() if line.strip())}


if __name__ == "__main__":
    for name, value in sorted({**constants(), **layouts()}.items()):
        print(name, value)
