"""The Python guest library and the C programs agree on the userfaultfd ABI.

guest/abi/uffd_abi.c is compiled against the built kernel's own UAPI headers
and prints every constant and layout that guest/py/uffd.py hard-codes.
"""

import struct
import subprocess
import sys

import pytest

from harness.run.guestprogs import GUEST_DIR

sys.path.insert(0, str(GUEST_DIR / "py"))
import uffd  # noqa: E402

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def c_abi(guest_session, tmp_path_factory):
    headers = guest_session.kernel().headers
    exe = tmp_path_factory.mktemp("abi") / "uffd_abi"
    subprocess.run(["gcc", "-isystem", str(headers), "-o", str(exe),
                    str(GUEST_DIR / "abi" / "uffd_abi.c")], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


PY_CONSTANTS = {
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
}

PY_SIZES = {
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


@pytest.mark.parametrize("name", sorted(PY_CONSTANTS))
def test_constant_matches_kernel_headers(c_abi, name):
    assert PY_CONSTANTS[name] == c_abi[name], f"{name}: python {PY_CONSTANTS[name]:#x}, C {c_abi[name]:#x}"


@pytest.mark.parametrize("name", sorted(PY_SIZES))
def test_layout_matches_kernel_headers(c_abi, name):
    assert PY_SIZES[name] == c_abi[name]


def test_every_printed_fact_is_checked(c_abi):
    assert set(c_abi) == set(PY_CONSTANTS) | set(PY_SIZES)
