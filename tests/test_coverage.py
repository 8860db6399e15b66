"""Coverage on the host: RWP line selection, tracefiles, diffs, the gcov
counters' round trip, and fastcov and genhtml on counters of a real (host) program."""

import base64
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.coverage import counters, diff, gcovtool, profile, rwp_lines, summary, tracefile
from harness.errors import BadInput
from harness.parse import protocol

DATA = Path(__file__).parent / "data" / "coverage"


def test_rwp_lines_of_a_source():
    lines = rwp_lines.select_file(DATA / "fake_mm.c")
    # the function named userfaultfd_rwp, the if bodies on it, not the else
    # branch, not krwp, not a comment or a #define naming RWP
    assert {10, 11, 12, 13, 25, 26, 27, 28, 31, 32} <= lines
    assert not lines & {6, 15, 16, 17, 18, 19, 29}


@pytest.mark.parametrize("name, rwp", [
    ("userfaultfd_rwp", True), ("VM_UFFD_RWP", True), ("MM_CP_UFFD_RWP_RESOLVE", True),
    ("mrwprotect_range", True), ("PAGE_IS_ACCESSED", True), ("uffd_rwp", True),
    ("krwp", False), ("need_wait_for_krwp_work", False), ("VM_UFFD_WP", False)])
def test_rwp_identifiers(name, rwp):
    assert rwp_lines.is_rwp_identifier(name) is rwp


def test_single_statement_and_multiline_condition():
    src = ("int f(int a)\n{\n\tif (a &&\n\t    userfaultfd_rwp(a))\n\t\treturn g(a,\n\t\t\t1);\n"
           "\treturn 0;\n}\n")
    assert rwp_lines.select(src) == {3, 4, 5, 6}


INFO = """TN:
SF:/src/mm/a.c
FN:3,f
FNDA:2,f
BRDA:4,0,0,1
BRDA:4,0,1,-
DA:3,2
DA:4,2
DA:5,0
end_of_record
"""


def test_tracefile_parse_add_and_write_round_trip():
    a = tracefile.parse(INFO, roots=[Path("/src")])
    fc = a.files["mm/a.c"]
    assert fc.lines == {3: 2, 4: 2, 5: 0} and fc.branches[(4, "0", "1")] is None
    a.add(tracefile.parse(INFO.replace("DA:5,0", "DA:5,3").replace("4,0,1,-", "4,0,1,1"),
                          roots=[Path("/src")]))
    fc = a.files["mm/a.c"]
    assert fc.lines == {3: 4, 4: 4, 5: 3} and fc.branches[(4, "0", "1")] == 1
    assert fc.function_hits == {"f": 4}
    again = tracefile.parse(a.text())
    assert again.files["mm/a.c"].lines == fc.lines
    assert again.files["mm/a.c"].branches == fc.branches


def test_a_torn_tracefile_is_bad_input():
    with pytest.raises(BadInput, match="not an lcov record"):
        tracefile.parse("SF:/x.c\nDA:3\n")


def test_summary_rwp_rows_uncovered_and_compare():
    cov = tracefile.parse(INFO, roots=[Path("/src")])
    rows = summary.restricted(cov, {"mm/a.c": {4, 5}, "mm/none.c": {1}})
    assert [(r.path, r.lines_hit, r.lines, r.branches_taken, r.branches, r.uncovered)
            for r in rows] == [("mm/a.c", 1, 2, 1, 2, [5]), ("mm/none.c", 0, 0, 0, 0, [])]
    assert "mm/a.c: 5" in summary.uncovered_text(rows, "never:")
    other = tracefile.parse(INFO.replace("DA:5,0", "DA:5,1").replace("DA:3,2", "DA:3,0"),
                            roots=[Path("/src")])
    d = summary.compare(cov, tracefile.parse(other.text()))
    assert (d[0].only_a, d[0].only_b) == ([3], [5])
    assert summary.ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"


def test_added_lines_from_a_diff():
    text = ("diff --git a/mm/a.c b/mm/a.c\n--- a/mm/a.c\n+++ b/mm/a.c\n"
            "@@ -10,0 +11,2 @@\n+x\n+y\n@@ -20 +22 @@\n-old\n+new\n"
            "--- /dev/null\n+++ b/mm/new.c\n@@ -0,0 +1,1 @@\n+z\n")
    assert diff.added_lines(text) == {"mm/a.c": {11, 12, 22}, "mm/new.c": {1}}


def test_series_lines_of_a_quilt_series(tmp_path):
    before, tree = tmp_path / "before", tmp_path / "tree"
    (before / "mm").mkdir(parents=True)
    (tree / "mm").mkdir(parents=True)
    (before / "mm/a.c").write_text("one\ntwo\nthree\n")
    (tree / "mm/a.c").write_text("one\ntwo\nadded\nthree\nend\n")
    patch = tmp_path / "0001.patch"
    patch.write_text("--- a/mm/a.c\n+++ b/mm/a.c\n@@ -2,0 +3 @@\n+added\n")
    from harness.fetch.patches import Series
    got = diff.series_lines(Series("quilt", (patch,), "d"), before, tree)
    assert got == {"mm/a.c": {3, 5}}


def test_object_list_and_make_variables(tmp_path):
    assert profile.parse_objects("mm/memory.o, fs/proc/task_mmu.o") == \
        ("mm/memory.o", "fs/proc/task_mmu.o")
    assert profile.make_vars(("mm/memory.o", "mm/rmap.o")) == [
        "GCOV_PROFILE_memory.o=$(if $(filter mm,$(obj)),y,n)",
        "GCOV_PROFILE_rmap.o=$(if $(filter mm,$(obj)),y,n)"]
    for bad in ("memory.c", "", "mm/../x.o"):
        with pytest.raises(BadInput):
            profile.parse_objects(bad)
    (tmp_path / "mm").mkdir()
    (tmp_path / "mm/memory.c").write_text("")
    profile.check_sources(("mm/memory.o",), tmp_path)
    with pytest.raises(BadInput, match="mm/nope.o"):
        profile.check_sources(("mm/nope.o",), tmp_path)


def _archive(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_gcov_archive_from_the_console_and_torn():
    data = _archive({"a.gcda": b"x" * 100})
    text = base64.b64encode(data).decode()
    out = f"noise\n@@RWPGCOV-BEGIN {len(data)}\n{text[:50]}\n{text[50:]}\n@@RWPGCOV-END\n"
    assert protocol.gcov_archive(out) == data
    assert protocol.gcov_archive(out.replace(text[50:], text[50:-8])) is None
    assert protocol.gcov_archive("@@RWPGCOV-BEGIN 3\n!!!\n@@RWPGCOV-END\n") is None


def test_counters_are_placed_beside_the_build_notes(tmp_path):
    bdir = tmp_path / "builds" / "x"
    (bdir / "mm").mkdir(parents=True)
    (bdir / "mm/memory.gcno").write_bytes(b"notes")
    guest_name = str((bdir / "mm/memory.gcda").resolve())[1:]
    counters.unpack(_archive({guest_name: b"counts", "other/y.gcda": b"?"}), tmp_path / "d")
    placed = counters.beside_notes(tmp_path / "d", bdir, tmp_path / "s")
    assert placed == [tmp_path / "s/mm/memory.gcda"]
    assert (tmp_path / "s/mm/memory.gcno").read_bytes() == b"notes"
    # a build directory that moved: matched by the object's path
    moved = tmp_path / "moved"
    shutil.copytree(bdir, moved)
    assert counters.beside_notes(tmp_path / "d", moved, tmp_path / "s2") == \
        [tmp_path / "s2/mm/memory.gcda"]


def test_unpack_writes_only_files_inside_its_directory(tmp_path):
    counters.unpack(_archive({"a/b.gcda": b"1", "../escape.gcda": b"2", "/abs.gcda": b"3"}),
                    tmp_path / "d")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.gcda")) == ["d/a/b.gcda"]


@pytest.mark.skipif(not shutil.which("gcc") or not shutil.which("gcov"), reason="needs gcc")
def test_fastcov_turns_real_counters_into_rwp_coverage(tmp_path):
    """A host program compiled with --coverage, run once: the RWP lines it
    executed are covered, the RWP line it did not execute is listed."""
    tree, bdir = tmp_path / "tree", tmp_path / "build"
    (tree / "mm").mkdir(parents=True)
    (bdir / "mm").mkdir(parents=True)
    shutil.copy(DATA / "fake_mm.c", tree / "mm/fake_mm.c")
    subprocess.run(["gcc", "--coverage", "-O0", "-o", bdir / "mm/fake_mm", tree / "mm/fake_mm.c"],
                   cwd=bdir, check=True)
    subprocess.run([bdir / "mm/fake_mm"], cwd=bdir, check=True)
    gcda = next(bdir.rglob("*.gcda"))
    dump = tmp_path / "dump" / str(gcda.resolve())[1:]
    dump.parent.mkdir(parents=True)
    shutil.copy(gcda, dump)
    for note in bdir.rglob("*.gcno"):
        note.rename(gcda.with_suffix(".gcno"))
    shadow = tmp_path / "shadow"
    assert counters.beside_notes(tmp_path / "dump", bdir, shadow)
    cov = gcovtool.convert(shadow, tree, bdir)
    assert list(cov.files) == ["mm/fake_mm.c"]
    fc = cov.files["mm/fake_mm.c"]
    assert fc.lines[32] == 1 and fc.lines[26] == 0
    rows = summary.restricted(cov, summary.rwp_selection(cov, tree))
    assert 26 in rows[0].uncovered and 32 not in rows[0].uncovered
    assert rows[0].branches > 0
    (tmp_path / "t.info").write_text(tracefile.Coverage(
        {str(tree / p): fc for p, fc in cov.files.items()}).text())
    page, why = gcovtool.html(tmp_path / "t.info", tree, tmp_path / "html")
    assert page is not None, why
    assert "fake_mm.c" in (tmp_path / "html/mm/index.html").read_text()


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_the_profile_variable_is_y_only_in_the_objects_directory(tmp_path):
    """As kbuild reads it: one sub-make per directory, obj=DIR, the variable
    from the command line, and a Makefile of its own that may say GCOV_PROFILE := n
    (arch/x86/boot does, and it has a memory.o too)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "Makefile").write_text(
        "all:\n\t@$(MAKE) -s -C sub obj=mm\n\t@$(MAKE) -s -C sub obj=arch/x86/boot NO=n\n")
    (tmp_path / "sub" / "Makefile").write_text(
        "GCOV_PROFILE := $(NO)\nall:\n\t@echo \"$(obj) $(patsubst n%,,$(GCOV_PROFILE_memory.o)"
        "$(GCOV_PROFILE))\"\n")
    res = subprocess.run(["make", "-s", "-C", tmp_path, *profile.make_vars(("mm/memory.o",))],
                         capture_output=True, text=True, check=True)
    assert res.stdout.split("\n")[:2] == ["mm y", "arch/x86/boot "]


def test_the_pytest_plugin_asks_for_a_coverage_kernel():
    from harness import pytest_plugin

    class Config:
        def __init__(self, coverage):
            self.values = {"--rwp-kernel-src": None, "--rwp-kernel-version": "7.3",
                           "--rwp-transport": "auto", "--rwp-accel": "auto",
                           "--rwp-allowlist": None, "--rwp-one-by-one": False,
                           "--rwp-test-timeout": None, "--rwp-profile": [],
                           "--rwp-coverage": coverage, "--rwp-arch": "x86_64"}

        def getoption(self, name):
            return self.values[name]
    assert pytest_plugin.GuestSession(Config(True)).request().kernel.coverage_objects == \
        profile.DEFAULT_OBJECTS
    assert not pytest_plugin.GuestSession(Config(False)).request().kernel.coverage
