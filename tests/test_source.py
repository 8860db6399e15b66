import tarfile

import pytest

from harness.errors import BadInput
from harness.fetch import apt, source

from helpers import make_fake_tree, tree_snapshot


def test_tree_is_read_in_place_and_not_written(tmp_path, cache_dir):
    tree = make_fake_tree(tmp_path / "linux")
    before = tree_snapshot(tree)
    src = source.from_tree(tree)
    assert (src.path, src.version, src.origin, src.immutable) == (tree, "7.3.4", "tree", False)
    assert tree_snapshot(tree) == before


@pytest.mark.parametrize("breakage, message", [
    (lambda t: t.rename(t.parent / "gone"), "does not exist"),
    (lambda t: (t / "Kconfig").unlink(), r"is not a kernel tree \(no Kconfig\)"),
    (lambda t: (t / "Makefile").write_text("all:\n"), r"Makefile has no VERSION"),
    (lambda t: (t / ".config").write_text("CONFIG_A=y\n"), "has been built in place"),
])
def test_bad_trees_are_bad_input(tmp_path, cache_dir, breakage, message):
    tree = make_fake_tree(tmp_path / "linux")
    breakage(tree)
    with pytest.raises(BadInput, match=message):
        source.from_tree(tree)


def test_extraversion_is_part_of_the_version(tmp_path):
    tree = make_fake_tree(tmp_path / "linux")
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 4\nSUBLEVEL = 0\nEXTRAVERSION = -rc2\n")
    assert source.makefile_version(tree) == "7.4.0-rc2"


def test_tarball_unpacked_once_into_the_cache(tmp_path, cache_dir):
    tree = make_fake_tree(tmp_path / "linux-7.3.4")
    tarball = tmp_path / "linux-7.3.4.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(tree, arcname="linux-7.3.4")
    first = source.from_tarball(tarball)
    assert first.path.is_relative_to(cache_dir) and first.version == "7.3.4"
    assert (first.path / "mm/userfaultfd.c").read_text() == "int uffd;\n"
    marker = first.path / source.MARKER
    stamp = marker.stat().st_mtime_ns
    again = source.from_tarball(tarball)
    assert again == first and marker.stat().st_mtime_ns == stamp


def test_corrupt_tarball_is_bad_input(tmp_path, cache_dir):
    bad = tmp_path / "linux.tar.xz"
    bad.write_bytes(b"\xfd7zXZ\x00 this is not an xz stream")
    with pytest.raises(BadInput, match="cannot unpack"):
        source.from_tarball(bad)
    assert not list((cache_dir / "src").glob("tarball-*"))


def test_tarball_without_a_kernel_is_bad_input(tmp_path, cache_dir):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "README").write_text("hi")
    tarball = tmp_path / "x.tar"
    with tarfile.open(tarball, "w") as tf:
        tf.add(tmp_path / "x", arcname="x")
    with pytest.raises(BadInput, match="is not a kernel tree"):
        source.from_tarball(tarball)


def test_missing_tarball_is_bad_input(tmp_path, cache_dir):
    with pytest.raises(BadInput, match="does not exist"):
        source.from_tarball(tmp_path / "nope.tar.xz")


def test_private_apt_never_reads_system_sources(tmp_path):
    papt = apt.PrivateApt(tmp_path / "apt", suites=("trixie-backports", "sid"))
    papt.prepare()
    opts = papt.options()
    pairs = dict(o.split("=", 1) for o in opts[1::2])
    assert pairs["Dir::Etc::SourceParts"] == "/dev/null"
    assert pairs["Dir::Etc::SourceList"] == str(tmp_path / "apt" / "sources.list")
    assert pairs["Dir::State::Lists"].startswith(str(tmp_path))
    assert pairs["Dir::Cache"].startswith(str(tmp_path))
    lines = (tmp_path / "apt" / "sources.list").read_text().splitlines()
    assert [l.split()[-2] for l in lines] == ["trixie-backports", "sid"]


@pytest.mark.parametrize("bad", ["7", "7.3.4", "latest", "7.x"])
def test_kernel_version_must_be_major_minor(bad):
    with pytest.raises(BadInput, match="must look like 7.3"):
        apt.source_package(bad)


def test_offline_without_cached_package_is_bad_input(cache_dir):
    with pytest.raises(BadInput, match="no unpacked linux-source-9.9"):
        source.from_debian("9.9", offline=True)
