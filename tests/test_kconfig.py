import pytest

from harness.errors import BadInput, ConfigError
from harness.kernel import kconfig

from helpers import make_fake_tree


def test_parse_set_unset_and_comments():
    cfg = kconfig.parse("# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n", "f")
    assert cfg.entries == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x y"'}


def test_parse_rejects_garbage_with_location():
    with pytest.raises(BadInput, match=r"frag:2: not a Kconfig line"):
        kconfig.parse("CONFIG_A=y\nUSERFAULTFD=y\n", "frag")


def test_later_fragment_wins_and_records_origin():
    a = kconfig.parse("CONFIG_A=y\nCONFIG_B=y\n", "a")
    b = kconfig.parse("# CONFIG_B is not set\n", "b")
    a.merge(b)
    assert a.entries["CONFIG_B"] == "n" and a.origin["CONFIG_B"] == "b"


def test_project_fragments_parse_and_request_the_suite_options():
    req = kconfig.requested(["debug"])
    for name in ("CONFIG_USERFAULTFD", "CONFIG_USERFAULTFD_RWP", "CONFIG_PTE_MARKER_UFFD_WP",
                 "CONFIG_TRANSPARENT_HUGEPAGE", "CONFIG_HUGETLBFS", "CONFIG_SHMEM",
                 "CONFIG_MEMFD_CREATE", "CONFIG_PROC_PAGE_MONITOR", "CONFIG_IDLE_PAGE_TRACKING",
                 "CONFIG_9P_FS", "CONFIG_KASAN", "CONFIG_DEBUG_VM"):
        assert req.entries.get(name) == "y", name
    # The trimmed base: what tinyconfig's olddefconfig would bring back is refused,
    # but ACPI stays: its MADT is how the guest finds its second CPU.
    assert req.entries.get("CONFIG_INET") == "n"
    assert req.entries.get("CONFIG_ACPI") == "y"
    assert "CONFIG_USERFAULTFD_RWP" in req.optional


def test_digest_depends_on_content_only():
    one = kconfig.parse("CONFIG_A=y\nCONFIG_B=y\n")
    two = kconfig.parse("CONFIG_B=y\nCONFIG_A=y\n")
    three = kconfig.parse("CONFIG_B=y\nCONFIG_A=n\n")
    assert one.digest() == two.digest() != three.digest()


def test_unknown_profile_is_bad_input():
    with pytest.raises(BadInput, match="unknown config profile"):
        kconfig.requested(["no-such-profile"])


def test_an_architectures_fragment_is_not_a_profile():
    # On an x86_64 build, arm64.config's options would all be dropped.
    with pytest.raises(BadInput, match="use --arch arm64"):
        kconfig.requested(["arm64"])
    assert "arm64" not in kconfig.profile_names() and "x86_64" not in kconfig.profile_names()


def test_check_names_every_dropped_option(tmp_path):
    tree = make_fake_tree(tmp_path / "src")
    req = kconfig.parse("CONFIG_USERFAULTFD=y\nCONFIG_KASAN=y\nCONFIG_X=m\n", "rwp.config")
    dot = tmp_path / ".config"
    dot.write_text("CONFIG_USERFAULTFD=y\n# CONFIG_KASAN is not set\nCONFIG_X=y\n")
    with pytest.raises(ConfigError) as e:
        kconfig.check(req, dot, tree)
    msg = str(e.value)
    assert "CONFIG_KASAN (wanted y, got n, from rwp.config)" in msg
    assert "CONFIG_X (wanted m, got y" in msg
    assert "CONFIG_USERFAULTFD " not in msg


def test_optional_option_absent_from_tree_is_a_note(tmp_path):
    tree = make_fake_tree(tmp_path / "src")
    req = kconfig.parse("CONFIG_USERFAULTFD=y\n# rwp-harness: optional\nCONFIG_NEWTHING=y\n")
    dot = tmp_path / ".config"
    dot.write_text("CONFIG_USERFAULTFD=y\n")
    assert kconfig.check(req, dot, tree) == ["CONFIG_NEWTHING does not exist in this kernel (optional)"]


def test_optional_option_that_the_tree_knows_must_survive(tmp_path):
    tree = make_fake_tree(tmp_path / "src")
    req = kconfig.parse("# rwp-harness: optional\nCONFIG_USERFAULTFD=y\n")
    dot = tmp_path / ".config"
    dot.write_text("# CONFIG_USERFAULTFD is not set\n")
    with pytest.raises(ConfigError, match="CONFIG_USERFAULTFD"):
        kconfig.check(req, dot, tree)


def test_dropped_option_names_the_tests_it_would_skip(tmp_path):
    tree = make_fake_tree(tmp_path / "src")
    req = kconfig.parse("# rwp-harness: needed-by __hugetlb __hugetlb_private\n"
                        "CONFIG_HUGETLBFS=y\n", "rwp.config")
    dot = tmp_path / ".config"
    dot.write_text("# CONFIG_HUGETLBFS is not set\n")
    with pytest.raises(ConfigError, match=r"tests that would skip: __hugetlb, __hugetlb_private"):
        kconfig.check(req, dot, tree)


def test_project_fragment_marks_survive_merging():
    req = kconfig.requested([])
    assert req.needed_by["CONFIG_HUGETLBFS"] == ["__hugetlb", "__hugetlb_private"]
    assert "CONFIG_USERFAULTFD_RWP" in req.optional
