"""Bisection without a kernel: git driving, step judging, the clone, exit codes.

The step is replaced by one that reads the checked-out tree: a commit whose
mm/userfaultfd.c says BROKEN is bad, one that says SYNTAX cannot be built.
"""

import json
import math

import pytest

from harness import bisect, cli
from harness.errors import BuildError, ExitStatus
from harness.fetch import gittree
from harness.parse import ktap
from harness.run.runner import TestResult

from helpers import git, make_fake_tree, tree_snapshot


def _series_repo(root, marks):
    """A fake kernel repo: base plus one commit per mark (text for userfaultfd.c)."""
    repo = make_fake_tree(root)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "tag", "base")
    for i, mark in enumerate(marks, 1):
        (repo / "mm/userfaultfd.c").write_text(f"int uffd; /* {mark} */\n")
        (repo / f"change{i}").write_text(str(i))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"commit {i}: {mark}")
    return repo


def _outcome_of(tree):
    text = (tree / "mm/userfaultfd.c").read_text()
    if "SYNTAX" in text:
        return bisect.Outcome.SKIP, "untestable: kernel build failed"
    if "BROKEN" in text:
        return bisect.Outcome.BAD, "c/x::y fail"
    return bisect.Outcome.GOOD, "1 selected test(s) passed"


@pytest.fixture
def fake_evaluate(monkeypatch):
    seen = []

    def evaluate(req, breq, run_parent, same_as=None):
        outcome, reason = _outcome_of(breq.tree)
        seen.append((gittree.resolve(breq.tree, "HEAD"), outcome))
        return outcome, reason, {"build": 0.5, "boot": 0.1, "tests": 0.1}, None
    monkeypatch.setattr(bisect, "evaluate", evaluate)
    return seen


def _commits(repo):
    return git(repo, "rev-list", "--reverse", "base..HEAD").split()


def _bisect(repo, tmp_path, *extra):
    code = cli.main(["bisect", "--kernel-src", str(repo), "--good", "base", "--bad", "HEAD",
                     "-k", "rwp_basic", "--results-dir", str(tmp_path / "res"), *extra])
    report = next((tmp_path / "res").glob("bisect-*/bisect.json"))
    return code, json.loads(report.read_text())


def test_names_the_breaking_commit_within_git_bound(tmp_path, cache_dir, fake_evaluate):
    marks = ["ok", "ok", "ok", "BROKEN", "BROKEN", "BROKEN", "BROKEN"]
    repo = _series_repo(tmp_path / "linux", marks)
    code, report = _bisect(repo, tmp_path)
    commits = _commits(repo)
    assert code == ExitStatus.OK
    assert report["first_bad"] == commits[3]
    assert report["first_bad_subject"] == "commit 4: BROKEN"
    assert len(report["steps"]) <= math.ceil(math.log2(len(commits))) + 1
    assert "# first bad commit: [" + commits[3] in report["log"]
    for step in report["steps"]:
        assert step["outcome"] == _outcome_of_mark(marks, commits, step["commit"])


def _outcome_of_mark(marks, commits, commit):
    mark = marks[commits.index(commit)]
    return "bad" if mark == "BROKEN" else "good"


def test_commit_that_does_not_build_is_skipped(tmp_path, cache_dir, fake_evaluate):
    # Six commits: git tests the third first, and it does not build.
    marks = ["ok", "ok", "SYNTAX", "ok", "BROKEN", "BROKEN"]
    repo = _series_repo(tmp_path / "linux", marks)
    code, report = _bisect(repo, tmp_path)
    commits = _commits(repo)
    assert code == ExitStatus.OK
    assert report["first_bad"] == commits[4]
    skipped = [s["commit"] for s in report["steps"] if s["outcome"] == "skip"]
    assert skipped == [commits[2]]
    assert f"git bisect skip {commits[2]}" in report["log"]


def test_skips_next_to_the_break_leave_candidates(tmp_path, cache_dir, fake_evaluate):
    marks = ["ok", "SYNTAX", "BROKEN", "BROKEN"]
    repo = _series_repo(tmp_path / "linux", marks)
    code, report = _bisect(repo, tmp_path)
    assert code == ExitStatus.BISECT_INCONCLUSIVE
    assert report["first_bad"] == ""
    commits = _commits(repo)
    assert set(report["candidates"]) == {commits[1], commits[2]}


def test_abort_stops_without_calling_anything_bad(tmp_path, cache_dir, monkeypatch):
    repo = _series_repo(tmp_path / "linux", ["ok", "BROKEN", "BROKEN"])
    monkeypatch.setattr(bisect, "evaluate", lambda req, breq, parent, same_as=None: (
        bisect.Outcome.ABORT, "could not test: VM did not start", {}, None))
    code, report = _bisect(repo, tmp_path)
    assert code == ExitStatus.INFRA_FAILED
    assert report["first_bad"] == "" and report["aborted"].startswith("could not test")
    assert [s["outcome"] for s in report["steps"]] == ["abort"]


def test_user_repository_is_untouched(tmp_path, cache_dir, fake_evaluate):
    repo = _series_repo(tmp_path / "linux", ["ok", "ok", "BROKEN", "BROKEN"])
    git(repo, "checkout", "-q", "HEAD~2")          # the user is somewhere else
    (repo / "wip.txt").write_text("uncommitted work\n")
    before = tree_snapshot(repo)
    code, report = _bisect(repo, tmp_path)
    assert code == ExitStatus.OK
    assert tree_snapshot(repo) == before
    src = bisect.workspace(repo)
    assert src.is_relative_to(cache_dir)
    assert not (src / "wip.txt").exists()


def test_series_is_applied_in_the_clone(tmp_path, cache_dir, fake_evaluate):
    repo = _series_repo(tmp_path / "linux", ["ok", "ok", "BROKEN", "BROKEN", "BROKEN"])
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", "--cover-letter", "base..HEAD"))
    git(repo, "checkout", "-q", "base")
    before = tree_snapshot(repo)
    code = cli.main(["bisect", "--kernel-src", str(repo), "--good", "base",
                     "--patches", str(mbox), "-k", "rwp_basic",
                     "--results-dir", str(tmp_path / "res")])
    report = json.loads(next((tmp_path / "res").glob("bisect-*/bisect.json")).read_text())
    assert code == ExitStatus.OK
    assert report["first_bad_subject"] == "commit 3: BROKEN"
    assert tree_snapshot(repo) == before


def test_clones_are_pruned(tmp_path, cache_dir):
    repos = [_series_repo(tmp_path / f"r{i}", ["ok"]) for i in range(bisect.KEEP_WORKSPACES + 1)]
    clones = [bisect.workspace(r) for r in repos]
    assert not clones[0].exists()
    assert all(c.exists() for c in clones[1:])


@pytest.mark.parametrize("statuses,outcome", [
    (["pass", "xfail"], bisect.Outcome.GOOD),
    (["pass", "fail"], bisect.Outcome.BAD),
    (["pass", "flaky"], bisect.Outcome.BAD),
    (["error"], bisect.Outcome.BAD),
    (["skip", "skip"], bisect.Outcome.SKIP),
    (["skip", "pass"], bisect.Outcome.GOOD),
    ([], bisect.Outcome.SKIP),
])
def test_judge(statuses, outcome):
    tests = [TestResult(f"c/p::t{i}", ktap.Status(s), reason="r") for i, s in enumerate(statuses)]
    assert bisect.judge(tests)[0] == outcome


def test_build_failure_is_skip(monkeypatch, tmp_path):
    def fail(req, timings):
        raise BuildError("kernel build failed (log: x)")
    monkeypatch.setattr(bisect.pipeline, "do_build", fail)
    outcome, reason, _, run = bisect.evaluate(None, None, tmp_path)
    assert (outcome, run) == (bisect.Outcome.SKIP, None)
    assert "kernel build failed" in reason


def test_bisect_step_speaks_git_bisect_run(tmp_path, cache_dir, monkeypatch):
    tree = make_fake_tree(tmp_path / "linux")
    monkeypatch.chdir(tree)
    for outcome, code in ((bisect.Outcome.GOOD, 0), (bisect.Outcome.BAD, 1),
                          (bisect.Outcome.SKIP, 125), (bisect.Outcome.ABORT, 128)):
        monkeypatch.setattr(bisect, "evaluate",
                            lambda a, r, p, o=outcome: (o, "why", {}, None))
        assert cli.main(["bisect-step", "-k", "rwp_basic"]) == code
    # Bad input must abort a `git bisect run`, not mark the commit bad.
    assert cli.main(["bisect-step", "-k", "no-such-test"]) == 128


def test_bisect_needs_a_repository(tmp_path, cache_dir, capsys):
    tree = make_fake_tree(tmp_path / "linux")
    assert cli.main(["bisect", "--kernel-src", str(tree), "--good", "x", "-k", "rwp"]) == 2
    assert "is not one" in capsys.readouterr().err


def test_unknown_ref_is_bad_input(tmp_path, cache_dir, capsys, fake_evaluate):
    repo = _series_repo(tmp_path / "linux", ["ok"])
    assert cli.main(["bisect", "--kernel-src", str(repo), "--good", "v0.0",
                     "-k", "rwp_basic"]) == 2
    assert "'v0.0' names no commit" in capsys.readouterr().err


def test_package_becomes_one_tagged_commit(tmp_path, cache_dir, monkeypatch):
    from harness.fetch import source
    tree = make_fake_tree(tmp_path / "pkg")
    (tree / ".gitignore").write_text("*.o\n")
    (tree / "shipped.o").write_text("a file the tarball ships although .gitignore names it\n")
    (tree / source.MARKER).write_text("{}")
    src = source.KernelSource(tree, "7.3.4", "debian", "linux-source-7.3 7.3.4-1~bpo13+1", True)
    repo, tag = gittree.from_package(src)
    assert tag == "v7.3.4" and repo.is_relative_to(cache_dir)
    files = git(repo, "ls-tree", "-r", "--name-only", tag).split()
    assert "shipped.o" in files and "mm/userfaultfd.c" in files
    assert source.MARKER not in files
    assert git(repo, "rev-list", "--count", tag).strip() == "1"
    again = gittree.from_package(src)
    assert again == (repo, tag)
    # Fixed dates: the same package gives the same commit in another cache.
    monkeypatch.setenv("RWP_HARNESS_CACHE", str(tmp_path / "other-cache"))
    other, _ = gittree.from_package(src)
    assert other != repo
    assert gittree.resolve(other, tag) == gittree.resolve(repo, tag)
