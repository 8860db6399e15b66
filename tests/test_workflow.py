"""The checked-in CI workflow, linted by maintained linters: the GitHub
workflow schema (check-jsonschema's vendored copy) and zizmor's audits, both
offline."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "rwp.yml"


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make setup` installs the test extras")
    return found


def test_the_workflow_matches_githubs_schema():
    res = subprocess.run([_tool("check-jsonschema"), "--builtin-schema",
                          "vendor.github-workflows", str(WORKFLOW)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_zizmor_finds_nothing_in_the_workflow():
    res = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", str(WORKFLOW)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_linters_can_fail(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - uses: actions/checkout@v4\n      - run: echo ${{ github.head_ref }}\n"
                   "    timeout: 5\n")
    schema = subprocess.run([_tool("check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(bad)], capture_output=True, text=True)
    audit = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", str(bad)],
                           capture_output=True, text=True)
    assert schema.returncode != 0 and "timeout" in schema.stdout
    assert audit.returncode != 0 and "unpinned-uses" in audit.stdout


def test_the_readme_points_at_the_workflow_instead_of_a_copy():
    readme = (ROOT / "README.md").read_text()
    assert ".github/workflows/rwp.yml" in readme
    assert "runs-on:" not in readme and "matrix:\n" not in readme
