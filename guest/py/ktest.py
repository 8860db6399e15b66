"""KTAP runner for guest Python tests: one forked child per test, with a deadline.

A test is a function decorated with @test; it passes by returning, fails by
raising (an AssertionError's message becomes the diagnostic, with the test's
own line) and skips by raising Skip. finding() is the one check of a test at
which the kernel is known to break the contract (rwp_ktap.h's FINDING).
Forking keeps a stuck fault or leaked uffd state out of the next test.
"""

import os
import signal
import sys
import time
import traceback

# The default deadline of a test; the host passes its own (harness/parse/protocol.py).
DEADLINE_S = 20
# The child's alarm cannot end a task stuck in the kernel; the parent's can.
PARENT_GRACE_S = 10
# Batch mode (the host sets RWP_MARKS to a token): each test is bracketed in
# the kernel log and reports its taint and run time, so that the host can
# judge every test of one program run as precisely as one run per test.
MARKS = os.environ.get("RWP_MARKS")
EXIT_PASS, EXIT_FAIL, EXIT_SKIP, EXIT_XFAIL = 0, 1, 4, 5
NO_RWP_REASON = "kernel does not advertise UFFD_FEATURE_RWP"

_tests = []


class Skip(Exception):
    pass


class _Expected(BaseException):
    """A finding's check failed; BaseException so that no test's except clause eats it."""


# The findings whose check held in this test child: a pass then fails.
_held: list[str] = []


def _where(depth: int) -> str:
    frame = sys._getframe(depth + 1)
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def finding(text: str, holds: bool, message: str) -> None:
    """The one check at which the kernel is known to break the contract (a
    finding, docs/contract.md). It failing is the expected failure: the test
    stops and reports XFAIL with the finding and this line. Any other failure
    of the test is FAIL. It holding is noted, and a test that then passes
    fails with "the finding looks fixed", so that a fix is noticed."""
    where = _where(1)
    if not holds:
        diag(f"{where}: {message}")
        raise _Expected(f"{text} ({where})")
    _held.append(f"{where}: {text}")


def test(fn):
    _tests.append(fn)
    return fn


def diag(message: str) -> None:
    for line in str(message).splitlines() or [""]:
        print(f"# {line}", flush=True)


def deadline_of(name: str) -> int:
    """RWP_DEADLINES "name=s,..." names a test's own deadline; RWP_DEADLINE_S the default."""
    for item in os.environ.get("RWP_DEADLINES", "").split(","):
        key, _, value = item.partition("=")
        if key == name and value.isdigit() and int(value) > 0:
            return int(value)
    value = os.environ.get("RWP_DEADLINE_S", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEADLINE_S


def _test_line(fn, tb) -> str:
    """Where in the test itself a failure happened: the test's own line, and
    the helper's line under it when a helper failed."""
    frames = traceback.extract_tb(tb)
    own = [f for f in frames if f.name == fn.__name__ and f.filename == fn.__code__.co_filename]
    at = [f"{os.path.basename(f.filename)}:{f.lineno}" for f in (own[-1:] + frames[-1:])]
    return at[0] if len(at) == 1 or at[0] == at[1] else f"{at[0]} (in {frames[-1].name} at {at[1]})"


def _child(fn, reason_w: int, deadline: int) -> None:
    signal.alarm(deadline)
    code = EXIT_FAIL
    try:
        fn()
        if _held:
            diag(f"the expected failure did not happen, the finding looks fixed: {_held[0]}")
        else:
            code = EXIT_PASS
    except Skip as e:
        os.write(reason_w, str(e).encode()[:200])
        code = EXIT_SKIP
    except _Expected as e:
        os.write(reason_w, str(e).encode()[:1000])
        code = EXIT_XFAIL
    except AssertionError as e:
        diag(f"{_test_line(fn, e.__traceback__)}: assertion failed: {e}")
    except BaseException:
        diag(traceback.format_exc())
    sys.stdout.flush()
    os._exit(code)


def _kmsg(what: str, name: str) -> None:
    if MARKS:
        try:
            with open("/dev/kmsg", "w") as f:
                f.write(f"rwp-harness: {what} {MARKS}/{name}\n")
        except OSError:
            pass


def _taint() -> int:
    try:
        with open("/proc/sys/kernel/tainted") as f:
            return int(f.read())
    except (OSError, ValueError):
        return -1


class _Overdue(Exception):
    pass


def _overdue(signum, frame):
    raise _Overdue()


def _sysrq(key: str) -> None:
    try:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write(key)
    except OSError:
        pass


def _wait(pid: int, name: str, deadline: int) -> int:
    """The child's wait status; if it outlives its deadline, dump the task
    stacks, say so and end the program: later tests would run in a kernel
    that may still hold the stuck task's locks."""
    deadline += PARENT_GRACE_S
    old = signal.signal(signal.SIGALRM, _overdue)
    signal.alarm(deadline)
    try:
        return os.waitpid(pid, 0)[1]
    except _Overdue:
        print(f"@@RWPTIMEOUT {deadline} {name}", flush=True)
        _sysrq("w")
        _sysrq("t")
        os.kill(pid, signal.SIGKILL)
        os._exit(3)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run_one(index: int, fn) -> bool:
    name = fn.__name__
    taint0, t0 = _taint(), time.monotonic_ns()
    reason_r, reason_w = os.pipe()
    deadline = deadline_of(name)
    _kmsg("test-begin", name)
    if MARKS:
        print(f"@@RWPSTART {name}")
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(reason_r)
        _child(fn, reason_w, deadline)
    os.close(reason_w)
    status = _wait(pid, name, deadline)
    reason = os.read(reason_r, 1024).decode(errors="replace")
    os.close(reason_r)
    _kmsg("test-end", name)
    if MARKS:
        print(f"@@RWPSUB {name} {taint0} {_taint()} {time.monotonic_ns() - t0}", flush=True)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_PASS:
        print(f"ok {index} {name}", flush=True)
        return True
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_SKIP:
        print(f"ok {index} {name} # SKIP {reason}", flush=True)
        return True
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_XFAIL and reason:
        print(f"not ok {index} {name} # XFAIL {reason}", flush=True)
        return True
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        what = "deadline expired" if sig == signal.SIGALRM else signal.Signals(sig).name
        diag(f"child killed: {what}")
    print(f"not ok {index} {name}", flush=True)
    return False


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--list"]:
        for fn in _tests:
            print(fn.__name__)
        return
    chosen = [fn for fn in _tests if not args or fn.__name__ in args]
    print("KTAP version 1")
    print(f"1..{len(chosen)}", flush=True)
    results = [_run_one(i, fn) for i, fn in enumerate(chosen, 1)]
    sys.exit(0 if all(results) else 1)
