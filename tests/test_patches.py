import pytest

from harness.errors import BadInput, PatchError
from harness.fetch import patches, source

from helpers import git, make_fake_tree, tree_snapshot


def _series_repo(tmp_path):
    """A git copy of the fake tree with three commits, as a developer's series."""
    repo = make_fake_tree(tmp_path / "dev")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    for i, text in enumerate(["int uffd = 1;\n", "int uffd = 2;\n", "int uffd = 3;\n"], 1):
        (repo / "mm/userfaultfd.c").write_text(text)
        git(repo, "commit", "-qam", f"mm: step {i}")
    return repo


@pytest.fixture
def user_tree(tmp_path):
    return make_fake_tree(tmp_path / "user")


def test_mbox_applied_in_a_copy_as_commits(tmp_path, cache_dir, user_tree):
    repo = _series_repo(tmp_path)
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", "HEAD~3"))
    before = tree_snapshot(user_tree)
    src = source.from_tree(user_tree)
    series = patches.load(mbox)
    assert series.kind == "mbox"
    tree = patches.apply(src, series)
    assert tree.is_relative_to(cache_dir)
    assert (tree / "mm/userfaultfd.c").read_text() == "int uffd = 3;\n"
    log = git(tree, "log", "--format=%s")
    assert log.splitlines() == ["mm: step 3", "mm: step 2", "mm: step 1", "base"]
    assert tree_snapshot(user_tree) == before


def test_quilt_directory_follows_series_file(tmp_path, cache_dir, user_tree):
    repo = _series_repo(tmp_path)
    out = tmp_path / "quilt"
    git(repo, "format-patch", "-q", "-o", str(out), "HEAD~3")
    names = sorted(p.name for p in out.glob("*.patch"))
    # Only the first two, in that order: the series file rules, not the names.
    (out / "series").write_text(f"# comment\n{names[0]}\n{names[1]} -p1\n")
    tree = patches.apply(source.from_tree(user_tree), patches.load(out))
    assert (tree / "mm/userfaultfd.c").read_text() == "int uffd = 2;\n"


def test_quilt_directory_without_series_uses_name_order(tmp_path, cache_dir, user_tree):
    repo = _series_repo(tmp_path)
    out = tmp_path / "quilt"
    git(repo, "format-patch", "-q", "-o", str(out), "HEAD~3")
    tree = patches.apply(source.from_tree(user_tree), patches.load(out))
    assert (tree / "mm/userfaultfd.c").read_text() == "int uffd = 3;\n"


def test_patch_that_does_not_apply_is_named(tmp_path, cache_dir, user_tree):
    repo = _series_repo(tmp_path)
    out = tmp_path / "quilt"
    git(repo, "format-patch", "-q", "-o", str(out), "HEAD~3")
    first = sorted(out.glob("*.patch"))[0]
    (out / "series").write_text(f"{first.name}\n{first.name}\n")
    with pytest.raises(PatchError) as e:
        patches.apply(source.from_tree(user_tree), patches.load(out))
    assert f"patch {first.name} does not apply" in str(e.value)
    assert "mm/userfaultfd.c" in str(e.value)
    assert not list((cache_dir / "trees").iterdir())


def test_mbox_that_does_not_apply_names_the_subject(tmp_path, cache_dir, user_tree):
    repo = _series_repo(tmp_path)
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", "HEAD~1"))
    with pytest.raises(PatchError, match=r"patch '\[PATCH\] mm: step 3' from series.mbox"):
        patches.apply(source.from_tree(user_tree), patches.load(mbox))


def test_series_identity_changes_with_content(tmp_path):
    a = tmp_path / "a.patch"
    a.write_text("one")
    d1 = patches.load(a).digest
    a.write_text("two")
    assert patches.load(a).digest != d1


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "holds no"),
    (lambda d: (d.mkdir(), (d / "series").write_text("missing.patch\n")), "names missing.patch"),
])
def test_bad_series_is_bad_input(tmp_path, setup, message):
    target = tmp_path / "series-dir"
    setup(target)
    with pytest.raises(BadInput, match=message):
        patches.load(target)


def _list_mbox(repo, count=3):
    """format-patch output with a cover letter and trailers, as a list archive has it."""
    text = git(repo, "format-patch", "--stdout", "--cover-letter", "-s", f"HEAD~{count}")
    return text.replace("Signed-off-by: t <t@t>",
                        "Signed-off-by: t <t@t>\nReviewed-by: Some One <some@one>")


def test_cover_letter_is_skipped_and_trailers_kept(tmp_path, cache_dir, user_tree):
    repo = _series_repo(tmp_path)
    mbox = tmp_path / "thread.mbox"
    mbox.write_text(_list_mbox(repo))
    series = patches.load(mbox)
    assert len(series.mails) == 3
    assert series.skipped == ("[PATCH 0/3] *** SUBJECT HERE ***",)
    tree = patches.apply(source.from_tree(user_tree), series)
    assert (tree / "mm/userfaultfd.c").read_text() == "int uffd = 3;\n"
    assert "Reviewed-by: Some One <some@one>" in git(tree, "log", "-1", "--format=%B")
    # The identity is over the patches: the cover letter's text does not count.
    other = tmp_path / "other.mbox"
    other.write_text(_list_mbox(repo).replace("*** BLURB HERE ***", "different blurb"))
    assert patches.load(other).digest == series.digest


def test_b4_am_output_directory(tmp_path, cache_dir, user_tree):
    """`b4 am -o DIR` writes the series as one .mbx and the cover letter as .cover."""
    repo = _series_repo(tmp_path)
    out = tmp_path / "b4"
    out.mkdir()
    text = _list_mbox(repo)
    cover, _, rest = text.partition("\nFrom ")
    (out / "20261127_someone_rwp_fixes.cover").write_text(cover + "\n")
    (out / "v2_20261127_someone_rwp_fixes.mbx").write_text("From " + rest)
    series = patches.load(out)
    assert series.kind == "mbox" and len(series.mails) == 3 and not series.skipped
    tree = patches.apply(source.from_tree(user_tree), series)
    assert (tree / "mm/userfaultfd.c").read_text() == "int uffd = 3;\n"


def test_mbox_without_any_patch_is_bad_input(tmp_path):
    mbox = tmp_path / "cover-only.mbox"
    mbox.write_text("From x Mon Sep 17 00:00:00 2001\nSubject: [PATCH 0/2] cover\n\nblurb\n")
    with pytest.raises(BadInput, match="holds no patch"):
        patches.load(mbox)


def test_git_range_in_the_users_repository(tmp_path, cache_dir):
    repo = _series_repo(tmp_path)
    git(repo, "branch", "series")
    git(repo, "checkout", "-q", "HEAD~3")      # the user's checkout is elsewhere
    before = tree_snapshot(repo)
    series = patches.load("HEAD..series", repo)
    assert series.kind == "git-range"
    tree = patches.apply(source.from_tree(repo), series)
    assert (tree / "mm/userfaultfd.c").read_text() == "int uffd = 3;\n"
    assert tree_snapshot(repo) == before
    assert patches.load(f"{series.base}..{series.tip}", repo).digest == series.digest


@pytest.mark.parametrize("spec,message", [
    ("HEAD~1..HEAD", "needs --kernel-src to be a git repository"),
    ("nosuch..HEAD", "'nosuch' names no commit"),
    ("HEAD..HEAD~1", "is not an ancestor"),
])
def test_bad_git_range(tmp_path, spec, message):
    repo = _series_repo(tmp_path)
    where = tmp_path if "needs" in message else repo
    with pytest.raises(BadInput, match=message):
        patches.load(spec, where)


def _apply_in_child(tree, series_dir, cache_root, out):
    import os
    os.environ["RWP_HARNESS_CACHE"] = str(cache_root)
    try:
        dest = patches.apply(source.from_tree(tree), patches.load(series_dir))
        out.put((dest / "mm/userfaultfd.c").read_text())
    except BaseException as e:      # the parent asserts on what comes back
        out.put(f"error: {type(e).__name__}: {e}")


def test_two_runs_applying_one_series_at_once_both_get_it(tmp_path, cache_dir, user_tree):
    """pytest -n on a cold cache: neither deletes the other's tree."""
    import multiprocessing
    repo = _series_repo(tmp_path)
    out_dir = tmp_path / "quilt"
    git(repo, "format-patch", "-q", "-o", str(out_dir), "HEAD~3")
    for i in range(300):                  # a tree big enough for the copies to overlap
        (user_tree / "mm" / f"f{i}.c").write_text("x" * 5000)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_apply_in_child, args=(user_tree, out_dir, cache_dir, q))
             for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    assert got == ["int uffd = 3;\n"] * 2, got
