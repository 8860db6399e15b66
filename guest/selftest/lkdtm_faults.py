"""Kernel faults on purpose, to test the harness itself (run with --suite selftest).

Each fault is provoked through lkdtm's debugfs interface between ordinary
tests, so the harness must charge each report to the right test, survive the
panic and the hang, and still run the tests after them.

rwp-harness: timeout hung_task 15
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ktest  # noqa: E402
from ktest import Skip, test  # noqa: E402

DEBUGFS = "/sys/kernel/debug"
DIRECT = DEBUGFS + "/provoke-crash/DIRECT"


def provoke(what: str) -> None:
    if not os.path.exists(DIRECT):
        if not os.path.ismount(DEBUGFS):
            os.system(f"mount -t debugfs none {DEBUGFS}")
        if not os.path.exists(DIRECT):
            raise Skip("lkdtm is not built into this kernel (CONFIG_LKDTM)")
    with open(DIRECT, "w") as f:
        f.write(what)


@test
def healthy_before():
    assert os.getpid() > 1


@test
def warning():
    provoke("WARNING")


@test
def healthy_after_warning():
    assert open("/proc/sys/kernel/tainted").read().strip() != ""


@test
def bug():
    provoke("BUG")


@test
def panic():
    provoke("PANIC")


@test
def healthy_after_panic():
    assert int(open("/proc/uptime").read().split()[0].split(".")[0]) >= 0


@test
def hung_task():
    with open("/proc/sys/kernel/hung_task_timeout_secs", "w") as f:
        f.write("3")
    provoke("HUNG_TASK")


@test
def healthy_after_hang():
    assert os.path.exists("/proc/self")


@test
def sleeper():
    """A slow healthy test, for the interrupt test to stop the harness in."""
    time.sleep(15)


if __name__ == "__main__":
    ktest.main()
