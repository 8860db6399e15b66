"""The Python guest library and the C programs agree on the userfaultfd ABI.

guest/abi/uffd_abi.c is compiled against the built kernel's own UAPI headers
and prints every constant and layout that guest/py/uffd.py hard-codes;
guest/abi/uffd_abi.py prints what uffd.py has of them (tests/test_arm64_e2e.py
does the same on an arm64 guest).
"""

import subprocess
import sys

import pytest

from harness.run.guestprogs import GUEST_DIR

sys.path.insert(0, str(GUEST_DIR / "abi"))
import uffd_abi  # noqa: E402

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def c_abi(guest_session, tmp_path_factory):
    headers = guest_session.kernel().headers
    exe = tmp_path_factory.mktemp("abi") / "uffd_abi"
    subprocess.run(["gcc", "-isystem", str(headers), "-o", str(exe),
                    str(GUEST_DIR / "abi" / "uffd_abi.c")], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return uffd_abi.parse(out)


PY_CONSTANTS = uffd_abi.constants()
PY_SIZES = uffd_abi.layouts()


@pytest.mark.parametrize("name", sorted(PY_CONSTANTS))
def test_constant_matches_kernel_headers(c_abi, name):
    assert PY_CONSTANTS[name] == c_abi[name], f"{name}: python {PY_CONSTANTS[name]:#x}, C {c_abi[name]:#x}"


@pytest.mark.parametrize("name", sorted(PY_SIZES))
def test_layout_matches_kernel_headers(c_abi, name):
    assert PY_SIZES[name] == c_abi[name]


def test_every_printed_fact_is_checked(c_abi):
    assert set(c_abi) == set(PY_CONSTANTS) | set(PY_SIZES)
