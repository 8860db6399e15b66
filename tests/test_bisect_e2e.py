"""Bisection on the real 7.3 tree: series of our own, real builds, real VMs.

Each series sits on the package's base commit. One commit in it breaks a
behaviour the suite checks: UFFDIO_RWPROTECT stops refusing MODE_RWP together
with MODE_DONTWAKE, which c/rwp_contract::rwprotect_mode_validation tests.
"""

import json
import math
import subprocess

import pytest

from harness.fetch import gittree, source

from helpers import git, harness_argv, tree_snapshot

pytestmark = pytest.mark.vm

TEST_ID = "c/rwp_contract::rwprotect_mode_validation"
UFFD_C = "mm/userfaultfd.c"
DOC = "Documentation/admin-guide/mm/userfaultfd.rst"
ANCHOR = "static int userfaultfd_rwprotect(struct userfaultfd_ctx *ctx,\n"
CHECK = "\tif (mode_rwp && mode_dontwake)\n\t\treturn -EINVAL;\n\n"
SYNTAX_ERROR = "this line is not C;\n"


def _doc(n):
    return ("docs: userfaultfd: note " + str(n),
            lambda t: _append(t, DOC, f"\n.. rwp-harness test series, note {n}\n"))


def _comment(n):
    return ("mm/userfaultfd: comment " + str(n),
            lambda t: _edit(t, UFFD_C, ANCHOR, f"/* rwp-harness test series {n} */\n" + ANCHOR))


BREAK = ("mm/userfaultfd: let RWPROTECT take MODE_RWP with MODE_DONTWAKE",
         lambda t: _edit(t, UFFD_C, CHECK, ""))
NO_BUILD = ("mm/userfaultfd: a change that does not compile",
            lambda t: _edit(t, UFFD_C, ANCHOR, SYNTAX_ERROR + ANCHOR))
FIX_BUILD = ("mm/userfaultfd: make it compile again",
             lambda t: _edit(t, UFFD_C, SYNTAX_ERROR, ""))

# Seven commits, the break in the middle.
SERIES_BREAK = [_doc(1), _comment(1), _doc(2), BREAK, _comment(2), _doc(3), _comment(3)]
# Six commits: git bisect tests the third first, and it does not compile.
SERIES_NO_BUILD = [_doc(4), _comment(4), NO_BUILD, FIX_BUILD, BREAK, _doc(5)]


def _edit(tree, rel, old, new):
    path = tree / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel} changed: the series no longer applies"
    path.write_text(text.replace(old, new))


def _append(tree, rel, extra):
    path = tree / rel
    path.write_text(path.read_text() + extra)


def _commit_series(repo, base, branch, series):
    git(repo, "checkout", "-q", "-b", branch, base)
    for subject, change in series:
        change(repo)
        git(repo, "commit", "-qam", subject)
    return git(repo, "rev-list", "--reverse", f"{base}..{branch}").split()


@pytest.fixture(scope="module")
def package_repo():
    src = source.from_debian("7.3")
    return gittree.from_package(src)


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory, package_repo):
    """A developer's clone of the package repo with both series on branches."""
    repo_path, tag = package_repo
    user = tmp_path_factory.mktemp("dev") / "linux"
    git(user.parent, "clone", "-q", "--shared", str(repo_path), str(user))
    commits = {"break": _commit_series(user, tag, "rwp-break", SERIES_BREAK),
               "no-build": _commit_series(user, tag, "rwp-no-build", SERIES_NO_BUILD)}
    git(user, "checkout", "-q", "rwp-break")
    return user, tag, commits


def _bisect(tmp_path, *args):
    res = subprocess.run(harness_argv("bisect", "-k", TEST_ID, "--results-dir", str(tmp_path),
                                      "--json", *args),
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout[res.stdout.index("{"):]), res.stderr


def test_bisect_names_the_breaking_commit(tmp_path, user_repo):
    user, tag, commits = user_repo
    before = tree_snapshot(user)
    report, stderr = _bisect(tmp_path, "--kernel-src", str(user), "--good", tag,
                             "--bad", "rwp-break")
    series = commits["break"]
    assert report["first_bad"] == series[3], stderr[-2000:]
    assert report["first_bad_subject"] == BREAK[0]
    assert len(report["steps"]) <= math.ceil(math.log2(len(series))) + 1
    for step in report["steps"]:
        want = "bad" if series.index(step["commit"]) >= 3 else "good"
        assert step["outcome"] == want, step
        assert step["run_dir"] and step["timings"]["build"] > 0
    assert "step 1:" in stderr and "more after this" in stderr
    # Every file of the user's clone, its HEAD, index and refs: byte for byte.
    assert tree_snapshot(user) == before


def test_commit_that_does_not_compile_is_skipped(tmp_path, user_repo):
    """The series comes as a list mbox (cover letter and all) on the default package source."""
    user, tag, commits = user_repo
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(user, "format-patch", "--stdout", "--cover-letter",
                        f"{tag}..rwp-no-build"))
    report, stderr = _bisect(tmp_path, "--patches", str(mbox))
    subjects = [s for s, _ in SERIES_NO_BUILD]
    assert report["first_bad_subject"] == BREAK[0], stderr[-2000:]
    steps = {st["subject"]: st for st in report["steps"]}
    assert steps[NO_BUILD[0]]["outcome"] == "skip"
    assert "build failed" in steps[NO_BUILD[0]]["reason"]
    assert "git bisect skip" in report["log"]
    assert len(report["steps"]) <= math.ceil(math.log2(len(subjects))) + 2
