"""Bad input: one line on stderr, a distinct exit status, no traceback."""

import subprocess
import sys

import pytest

from harness.errors import ExitStatus

from helpers import make_fake_tree, tree_snapshot


def rwp(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture
def env(cache_dir):
    import os
    return dict(os.environ)


def _assert_one_line_error(res, status, fragment):
    assert res.returncode == status, res.stderr
    assert "Traceback" not in res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("rwp-harness: error:")]
    assert len(errors) == 1 and fragment in errors[0], res.stderr


def test_missing_kernel_tree(tmp_path, env):
    res = rwp("build", "--kernel-src", str(tmp_path / "nope"), env=env)
    _assert_one_line_error(res, ExitStatus.BAD_INPUT, "does not exist")


def test_not_a_kernel_tree(tmp_path, env):
    (tmp_path / "notes").mkdir()
    res = rwp("build", "--kernel-src", str(tmp_path / "notes"), env=env)
    _assert_one_line_error(res, ExitStatus.BAD_INPUT, "is not a kernel tree")


def test_corrupt_tarball(tmp_path, env):
    bad = tmp_path / "linux.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08garbage")
    res = rwp("fetch", "--kernel-tarball", str(bad), env=env)
    _assert_one_line_error(res, ExitStatus.BAD_INPUT, "cannot unpack")


def test_selection_matching_nothing(env):
    res = rwp("run", "--list", "-k", "no_such_test_anywhere", env=env)
    _assert_one_line_error(res, ExitStatus.BAD_INPUT, "matches no test")


def test_listing_gives_stable_ids(env):
    res = rwp("run", "--list", "-k", "rwp_basic::sync_read", env=env)
    assert res.returncode == 0
    assert res.stdout.split() == ["c/rwp_basic::sync_read_fault", "py/rwp_basic::sync_read_fault"]
    mem = rwp("run", "--list", "-k", "c/rwp_contract::sync_read_fault__", env=env)
    assert mem.stdout.split() == [f"c/rwp_contract::sync_read_fault__{t}" for t in
                                  ("anon", "anon_thp", "shmem", "shmem_private", "hugetlb",
                                   "hugetlb_private")]


def test_patch_that_does_not_apply_has_its_own_status(tmp_path, env):
    tree = make_fake_tree(tmp_path / "linux")
    before = tree_snapshot(tree)
    patch = tmp_path / "0001-broken.patch"
    patch.write_text("--- a/mm/userfaultfd.c\n+++ b/mm/userfaultfd.c\n@@ -1 +1 @@\n"
                     "-int nothing_like_this;\n+int uffd = 1;\n")
    res = rwp("fetch", "--kernel-src", str(tree), "--patches", str(patch), env=env)
    _assert_one_line_error(res, ExitStatus.PATCH_FAILED, "patch 0001-broken.patch does not apply")
    assert tree_snapshot(tree) == before


def test_unknown_profile(tmp_path, env):
    tree = make_fake_tree(tmp_path / "linux")
    res = rwp("config", "--kernel-src", str(tree), "--profile", "turbo", env=env)
    _assert_one_line_error(res, ExitStatus.BAD_INPUT, "unknown config profile")


def test_run_before_build(tmp_path, env):
    tree = make_fake_tree(tmp_path / "linux")
    res = rwp("run", "--kernel-src", str(tree), env=env)
    _assert_one_line_error(res, ExitStatus.BAD_INPUT, "run 'rwp-harness build' first")


def test_exit_statuses_are_distinct():
    values = [s.value for s in ExitStatus]
    assert len(values) == len(set(values))


def test_not_enough_disk_space(tmp_path, cache_dir, monkeypatch):
    import shutil
    from collections import namedtuple

    from harness.errors import BadInput
    from harness.fetch import source
    from harness.kernel import build
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 * 2**30, 9 * 2**30, 2**29))
    src = source.from_tree(make_fake_tree(tmp_path / "linux"))
    with pytest.raises(BadInput, match=r"not enough disk space in the cache .*: 0.5 GiB free"):
        build.configure(build.BuildRequest(src, src.path))
    assert not (cache_dir / "builds").exists() or not list((cache_dir / "builds").iterdir())


@pytest.mark.parametrize("args, fragment", [
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--test-timeout", "-1"], "--test-timeout must be positive"),
])
def test_bad_run_options(env, args, fragment):
    res = rwp("run", *args, env=env)
    _assert_one_line_error(res, ExitStatus.BAD_INPUT, fragment)
