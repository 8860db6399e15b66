"""Discovery of guest programs agrees with what the programs themselves list."""

import subprocess
import sys

import pytest

from harness.parse.renamed import MOVED
from harness.parse.verdicts import current_id, former_id
from harness.parse import verdicts
from harness.run import guestprogs


def test_every_program_has_subtests_in_both_languages():
    progs = guestprogs.discover()
    langs = {p.lang for p in progs}
    assert langs == {"c", "py"}
    assert all(p.subtests for p in progs)


def test_selection_narrows_subtests():
    chosen = guestprogs.select(guestprogs.discover(), ["c/rwp_basic::sync_"])
    assert [(p.name, p.subtests) for p in chosen] == [
        ("c/rwp_basic", ("sync_read_fault", "sync_write_fault"))]


@pytest.mark.parametrize("prog", guestprogs.discover(), ids=lambda p: p.name)
def test_static_scan_matches_program_listing(prog, tmp_path):
    if prog.lang == "c":
        exe = tmp_path / "prog"
        subprocess.run(["gcc", "-O0", "-pthread", "-I", str(guestprogs.GUEST_DIR / "include"),
                        "-o", str(exe), str(prog.source)], check=True)
        argv = [str(exe), "--list"]
    else:
        argv = [sys.executable, str(prog.source), "--list"]
    listed = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    assert tuple(listed) == prog.subtests


def test_staged_command_runs_only_the_narrowed_subtests(tmp_path):
    prog = next(p for p in guestprogs.discover() if p.name == "py/rwp_basic")
    staged = guestprogs.Staged(tmp_path)
    assert staged.command(prog).endswith("py/rwp_basic.py")
    narrowed = guestprogs.select([prog], [f"{prog.name}::register_rwp"])[0]
    assert narrowed.subtests == ("register_rwp",)
    assert staged.command(narrowed, narrowed.subtests).endswith("rwp_basic.py register_rwp")
    assert staged.command(prog, ("register_rwp",)).endswith("rwp_basic.py register_rwp")


def test_memory_type_lists_agree():
    """C (rwp_mem.h) and Python (memtypes.py) name the same memory types."""
    import ast
    tree = ast.parse((guestprogs.GUEST_DIR / "py" / "memtypes.py").read_text())
    [py_types] = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                  and any(getattr(t, "id", "") == "MEM_TYPES" for t in n.targets)]
    assert list(py_types) == guestprogs._mem_types()


def test_a_moved_tests_old_id_still_selects_it():
    """rwp_edges' tests now live in the programs of their contract areas:
    -k with an old id (or the old program's name) still finds them."""
    chosen = guestprogs.select(guestprogs.discover(), ["c/rwp_edges::zero_page_is_protected"])
    assert [(p.name, p.subtests) for p in chosen] == [
        ("c/rwp_contract", ("zero_page_is_protected",))]
    moved = guestprogs.select(guestprogs.discover(), ["rwp_edges"])
    names = {verdicts.test_id(p.name, s) for p in moved for s in p.subtests}
    assert {former_id(t).split("::")[0] for t in names} == {"c/rwp_edges", "py/rwp_edges"}
    assert len({t.split("__", 1)[0] for t in names}) == \
        sum(old.endswith("/rwp_edges") for old, _ in MOVED)


def test_the_table_of_moved_tests_matches_the_programs():
    """Each moved test is in the program the table names, and no program still
    holds a test under its old id (the alias would then hide it)."""
    progs = {p.name: {s.split("__", 1)[0] for s in p.subtests} for p in guestprogs.discover()}
    for (old, name), new in MOVED.items():
        assert name in progs[new], f"{name} is not in {new}"
        assert name not in progs.get(old, set()), f"{old} still has {name}"
    assert current_id("c/rwp_edges::write_to_prot_read_rwp_vma__hugetlb") == \
        "c/rwp_contract::write_to_prot_read_rwp_vma__hugetlb"
    assert current_id("c/rwp_basic::sync_read_fault") == "c/rwp_basic::sync_read_fault"
