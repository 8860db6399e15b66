"""Print the guest's userfaultfd capabilities and memory set-up as one JSON line."""

import json
import mmap
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import uffd  # noqa: E402


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f"unavailable: {e.strerror}"


# The calibration: kernel-heavy work (page faults, zeroing, freeing) with little
# interpreted code, so that it slows down as a slower guest slows the tests:
# a debug kernel (KASAN, lockdep), another architecture under TCG, a loaded host.
CALIBRATION_ROUNDS, CALIBRATION_BYTES = 8, 8 << 20


def calibration_s() -> float:
    chunk = b"x" * mmap.PAGESIZE * 256
    t0 = time.monotonic()
    for _ in range(CALIBRATION_ROUNDS):
        m = mmap.mmap(-1, CALIBRATION_BYTES)
        for off in range(0, CALIBRATION_BYTES, len(chunk)):
            m[off:off + len(chunk)] = chunk
        m.close()
    return round(time.monotonic() - t0, 3)


def main() -> None:
    caps = {}
    try:
        with uffd.Uffd() as u:
            features, ioctls = u.api(0)
        caps["uffd_features"] = hex(features)
        caps["uffd_ioctls"] = hex(ioctls)
        caps["rwp"] = bool(features & uffd.FEATURE_RWP)
    except OSError as e:
        caps["uffd_error"] = str(e)
    meminfo = dict(line.split(":", 1) for line in read("/proc/meminfo").splitlines() if ":" in line)
    caps["hugepages_total"] = meminfo.get("HugePages_Total", "").strip()
    caps["hugepage_size"] = meminfo.get("Hugepagesize", "").strip()
    caps["thp_enabled"] = read("/sys/kernel/mm/transparent_hugepage/enabled")
    caps["numa_nodes"] = read("/sys/devices/system/node/online")
    # A race test on one CPU only interleaves at the scheduler's pace.
    caps["cpus_online"] = read("/sys/devices/system/cpu/online")
    caps["swap"] = read("/proc/swaps").splitlines()[1:]
    caps["unprivileged_userfaultfd"] = read("/proc/sys/vm/unprivileged_userfaultfd")
    caps["kernel"] = os.uname().release
    caps["calibration_s"] = calibration_s()
    print("@@RWPCAPS " + json.dumps(caps, sort_keys=True))


if __name__ == "__main__":
    main()
