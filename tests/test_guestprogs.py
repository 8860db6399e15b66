"""Discovery of guest programs agrees with what the programs themselves list."""

import subprocess
import sys

import pytest

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
