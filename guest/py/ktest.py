"""KTAP runner for guest Python tests: one forked child per test, with a deadline.

A test is a function decorated with @test; it passes by returning, fails by
raising (an AssertionError's message becomes the diagnostic) and skips by
raising Skip. Forking keeps a stuck fault or leaked uffd state out of the
next test.
"""

import os
import signal
import sys
import traceback

DEADLINE_S = 20
EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 4
NO_RWP_REASON = "kernel does not advertise UFFD_FEATURE_RWP"

_tests = []


class Skip(Exception):
    pass


def test(fn):
    _tests.append(fn)
    return fn


def diag(message: str) -> None:
    for line in str(message).splitlines() or [""]:
        print(f"# {line}", flush=True)


def _child(fn, reason_w: int) -> None:
    signal.alarm(DEADLINE_S)
    code = EXIT_FAIL
    try:
        fn()
        code = EXIT_PASS
    except Skip as e:
        os.write(reason_w, str(e).encode()[:200])
        code = EXIT_SKIP
    except AssertionError as e:
        diag(f"assertion failed: {e}")
    except BaseException:
        diag(traceback.format_exc())
    sys.stdout.flush()
    os._exit(code)


def _run_one(index: int, fn) -> bool:
    reason_r, reason_w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(reason_r)
        _child(fn, reason_w)
    os.close(reason_w)
    _, status = os.waitpid(pid, 0)
    reason = os.read(reason_r, 256).decode(errors="replace")
    os.close(reason_r)
    name = fn.__name__
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_PASS:
        print(f"ok {index} {name}", flush=True)
        return True
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_SKIP:
        print(f"ok {index} {name} # SKIP {reason}", flush=True)
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
