"""Coverage and mutation on the real 7.3 kernel: one program under --coverage,
and a mutation run of two mutants, one killed and one that survives by
construction (it edits a comment)."""

import json
import subprocess

import pytest

from harness.coverage import tracefile
from harness.fetch import source

from helpers import harness_argv

pytestmark = pytest.mark.vm

# Executed by rwp_basic's sync fault: do_uffd_rwp() hands the fault to the handler.
EXECUTED = ("mm/memory.c", "\t\treturn handle_userfault(vmf, VM_UFFD_RWP);\n")
# Only a migration of a protected page restores PAGE_NONE here; rwp_basic migrates nothing.
NOT_EXECUTED = ("mm/migrate.c", "\tif (pte_swp_uffd(old_pte) && userfaultfd_rwp(pvmw->vma))\n"
                "\t\tnewpte = pte_modify(newpte, PAGE_NONE);\n")
MUTANT_TEST = "c/rwp_contract::rwprotect_mode_validation"
MUTANTS = '''
[[mutant]]
id = "C-rwprotect-takes-rwp-with-dontwake"
area = "C"
file = "mm/userfaultfd.c"
find = """\tif (mode_rwp && mode_dontwake)\n\t\treturn -EINVAL;\n"""
replace = "\\n"
why = "RWPROTECT accepts MODE_RWP together with MODE_DONTWAKE"

[[mutant]]
id = "C-comment-only"
area = "C"
file = "mm/memory.c"
find = "/* Sync mode: unmap PTE and deliver to userfaultfd handler */"
replace = "/* Sync mode: the handler gets the fault (equivalent by construction) */"
why = "a comment: no test can tell"
'''


def _line_of(tree, rel, text, offset=0):
    src = (tree / rel).read_text()
    assert src.count(text) == 1, f"{rel} changed: {text!r}"
    return src[:src.index(text)].count("\n") + 1 + offset


@pytest.fixture(scope="module")
def coverage_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cov")
    res = subprocess.run(harness_argv("check", "--offline", "--coverage", "-k", "c/rwp_basic",
                                      "--results-dir", str(out), "--json"),
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    run_dir = next(p for p in out.iterdir() if (p / "results.json").exists())
    return run_dir, doc, res.stderr


def test_coverage_reports_executed_and_unexecuted_rwp_lines(coverage_run):
    run_dir, doc, stderr = coverage_run
    tree = source.from_debian("7.3", offline=True).path
    cov = tracefile.read(run_dir / "coverage" / "total.info")
    executed = _line_of(tree, *EXECUTED)
    unexecuted = _line_of(tree, *NOT_EXECUTED, offset=1)
    assert cov.files[EXECUTED[0]].lines[executed] > 0
    assert cov.files[NOT_EXECUTED[0]].lines[unexecuted] == 0
    report = json.loads((run_dir / "coverage" / "coverage.json").read_text())
    rows = {r["path"]: r for r in report["rwp"]["files"]}
    assert unexecuted in rows[NOT_EXECUTED[0]]["uncovered"]
    assert executed not in rows[EXECUTED[0]]["uncovered"]
    assert report["executed_by"][EXECUTED[0]][str(executed)] == ["c/rwp_basic"]
    assert report["programs"] == {"c/rwp_basic": "c-rwp_basic.info"}
    assert (run_dir / "coverage" / "c-rwp_basic.info").is_file()
    assert (run_dir / "coverage" / "html" / "index.html").is_file(), report["errors"]
    assert doc["manifest"]["coverage"]["rwp"]["lines"] > 0
    assert "coverage of the RWP lines:" in stderr and "mm/userfaultfd.c" in stderr


def test_mutate_kills_one_mutant_and_reports_the_other_survived(tmp_path, coverage_run):
    run_dir, _, _ = coverage_run
    (tmp_path / "two.toml").write_text(MUTANTS)
    res = subprocess.run(harness_argv("mutate", "--offline", "--mutations", str(tmp_path / "two.toml"),
                                      "-k", MUTANT_TEST, "--coverage-run", str(run_dir),
                                      "--results-dir", str(tmp_path), "--json"),
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    got = {m["id"]: m for m in doc["mutants"]}
    killed, survived = got["C-rwprotect-takes-rwp-with-dontwake"], got["C-comment-only"]
    assert killed["verdict"] == "killed", killed
    assert killed["killers"][0].startswith(f"{MUTANT_TEST}: pass -> fail")
    assert killed["executed"] is True           # rwp_basic's RWPROTECT runs the check
    assert survived["verdict"] == "survived", survived
    assert survived["executed"] is None         # a comment is in no gcov line table
    assert doc["control"] == {MUTANT_TEST: "pass"}
    assert doc["kill_ratio"] == 0.5
    assert "kill ratio: 50.0%" in res.stdout
