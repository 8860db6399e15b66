import pytest

from harness import patches, source
from harness.errors import BadInput, PatchError

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
