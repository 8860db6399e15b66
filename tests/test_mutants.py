"""Mutation runs on the host: the catalog, the generator's operators, and the
loop over a small fake kernel tree (its build and run stand-ins judge the
tree's text, so the loop's bookkeeping is what is tested)."""

import dataclasses
import json
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness import mutate
from harness.run import guestprogs
from harness.errors import BadInput
from harness.mutants import catalog, operators
from harness.parse.verdicts import Status, TestResult
from harness.requests import Request

REPO = Path(__file__).resolve().parents[1]
# What each run of the fake loop selected (None: it only built).
SELECTIONS: list = []
CACHED_73 = Path.home() / ".cache/rwp-harness/src/linux-source-7.3_7.3.4-1_bpo13+1"

SOURCE = """static int f(struct vma *vma, unsigned long flags, int n)
{
\tif (userfaultfd_rwp(vma) && n)
\t\treturn flags & (VM_UFFD_WP | VM_UFFD_RWP);
\tif (n < 4 && uffd_rwp(vma))
\t\twake_rwp(vma);
\treturn 0;
}
"""


def _git_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "mm").mkdir(parents=True)
    (tree / "mm/userfaultfd.c").write_text(SOURCE)
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                 "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=tree, check=True)
    return tree


def _toml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "m.toml"
    p.write_text(body)
    return p


def test_catalog_reads_toml_and_patches(tmp_path):
    t = _toml(tmp_path, '[[mutant]]\nid = "D-x"\narea = "D"\nfile = "mm/userfaultfd.c"\n'
                        'find = "\\treturn 0;"\nreplace = "\\treturn 1;"\nwhy = "returns 1"\n')
    d = tmp_path / "dir"
    d.mkdir()
    (d / "B-y.patch").write_text("Subject: [PATCH] drop the wake\n---\n--- a/mm/userfaultfd.c\n"
                                 "+++ b/mm/userfaultfd.c\n@@ -5,3 +5,3 @@\n \tif (n < 4 && uffd_rwp(vma))\n-\t\twake_rwp(vma);\n"
                                 "+\t\t;\n \treturn 0;\n")
    ms = catalog.load([t, d])
    assert [(m.id, m.area, m.why) for m in ms] == [("D-x", "D", "returns 1"),
                                                   ("B-y", "", "drop the wake")]
    tree = _git_tree(tmp_path)
    assert ms[0].lines(tree) == {7} and ms[1].lines(tree) == {6}
    for m in ms:
        m.apply(tree)
        assert (tree / "mm/userfaultfd.c").read_text() != SOURCE
        m.revert(tree)
        assert (tree / "mm/userfaultfd.c").read_text() == SOURCE


@pytest.mark.parametrize("body, error", [
    ('[[mutant]]\nid = "a"\nfile = "x.c"\nfind = "q"\n', "lacks replace"),
    ('[[mutant]]\nid = "a"\nfile = "x.c"\nfind = "q"\nreplace = "q"\n', "changes nothing"),
    ('[[mutant]]\nid = "a b"\nfile = "x.c"\nfind = "q"\nreplace = "r"\n', "not a plain name"),
    ('[[mutant]]\nid = "a"\nfile = "x.c"\nfind = "q"\nreplace = "r"\n' * 2, "given twice"),
    ("[[mutant]\n", "m.toml"),
    ("", "holds no"),
])
def test_catalog_refuses_bad_sets(tmp_path, body, error):
    with pytest.raises(BadInput, match=error):
        catalog.load([_toml(tmp_path, body)])


def test_a_mutant_whose_text_is_gone_does_not_apply(tmp_path):
    tree = _git_tree(tmp_path)
    m = catalog.Mutant("x", "mm/userfaultfd.c", "", find="\treturn", replace="\treturn -1 +")
    with pytest.raises(catalog.NotApplicable, match="2 times"):
        m.apply(tree)


def test_generator_operators_and_round_trip(tmp_path):
    tree = _git_tree(tmp_path)
    found = operators.candidates(tree, ["mm/userfaultfd.c"])
    by_op = {}
    for m in found:
        by_op.setdefault(m.id.split("-", 3)[3].rsplit("-", 1)[0], []).append(m)
    assert set(by_op) == set(operators.OPERATORS)
    new_lines = {m.replace.splitlines()[-1].strip() for m in found}
    assert "if (!(userfaultfd_rwp(vma) && n))" in new_lines
    assert "if (userfaultfd_rwp(vma) || n)" in new_lines
    assert "return flags & (VM_UFFD_WP);" in new_lines
    assert ";" in new_lines                              # wake_rwp() dropped
    assert "if (n <= 4 && uffd_rwp(vma))" in new_lines
    assert not any("return" in m.find.splitlines()[-1] and "0" in m.find for m in found
                   if m.find.endswith("return 0;"))       # line 7 is not an RWP line
    (tmp_path / "gen.toml").write_text(operators.to_toml(found))
    back = catalog.load([tmp_path / "gen.toml"])
    assert [(m.find, m.replace) for m in back] == [(m.find, m.replace) for m in found]
    for m in back:
        m.apply(tree)
        m.revert(tree)
    operators.write(found, tree, tmp_path / "patches")
    as_patches = catalog.load([tmp_path / "patches"])
    assert len(as_patches) == len(found)
    for m in as_patches:
        m.apply(tree)
        assert (tree / "mm/userfaultfd.c").read_text() != SOURCE
        m.revert(tree)


@pytest.mark.skipif(not CACHED_73.is_dir(), reason="needs the 7.3.4 source in the cache "
                    "(make check fetches it)")
def test_the_curated_set_applies_to_7_3_4():
    ms = catalog.load([mutate.DEFAULT_SET])
    assert len(ms) >= 40
    assert {m.area for m in ms} >= set("ABCDEFGHIJK")
    for m in ms:
        assert (CACHED_73 / m.file).read_text().count(m.find) == 1, m.id


def _result(tid: str, status: Status) -> TestResult:
    return TestResult(tid, status, reason="" if status == Status.PASS else "broken")


@pytest.fixture
def fake_loop(tmp_path, monkeypatch):
    """mutate's loop over a git tree whose 'kernel' passes while it holds
    `return 0;`, fails its second test on `return 1;`, does not build on
    `syntax error`, and makes QEMU fail on `qemu dies`."""
    tree = _git_tree(tmp_path)
    monkeypatch.setattr(mutate.bisect, "repository", lambda req: (tree, "fake", "HEAD"))

    @contextmanager
    def claimed(repo):
        yield tree
    monkeypatch.setattr(mutate.bisect, "claimed", claimed)

    class Run:
        def __init__(self, tests, path):
            self.tests, self.path = tests, path

        @property
        def ok(self):
            return not any(t.failed for t in self.tests)

    def evaluate(req, breq, parent, exitfirst=False, test=True):
        text = (tree / "mm/userfaultfd.c").read_text()
        if "syntax error" in text:
            return "not built", "kernel build failed", {}, None
        selections.append(req.run.select if test else None)
        if not test:
            return "built", "", {}, None
        if "qemu dies" in text:
            return "not tested", "QEMU died twice", {}, None
        second = Status.FAIL if "return 1;" in text else Status.PASS
        third = Status.SKIP if "return 2;" in text else Status.PASS
        return "built", "", {}, Run([_result("c/p::a", Status.PASS), _result("c/p::b", second),
                                     _result("c/p::c", third)], parent)
    selections = SELECTIONS
    selections.clear()
    monkeypatch.setattr(mutate, "_evaluate", evaluate)
    req = Request()
    req = dataclasses.replace(req, run=dataclasses.replace(req.run, results_dir=tmp_path / "res"))
    return tree, req


def _m(mid, find, replace):
    return catalog.Mutant(mid, "mm/userfaultfd.c", mid, find=find, replace=replace)


def test_loop_verdicts_against_the_control(fake_loop):
    tree, req = fake_loop
    ms = [_m("killed", "\treturn 0;", "\treturn 1;"),
          _m("skips", "\treturn 0;", "\treturn 2;"),
          _m("survives", "\treturn 0;", "\treturn 0 ;"),
          _m("gone", "no such text", "x"),
          _m("unbuilt", "\treturn 0;", "\tsyntax error"),
          _m("infra", "\treturn 0;", "\tqemu dies;"),
          _m("after", "\treturn 0;", "\treturn 1;")]
    result, out = mutate.run_mutations(req, ms, progress=lambda s: None)
    got = {m.id: m.verdict for m in result.mutants}
    assert got == {"killed": mutate.Verdict.KILLED, "skips": mutate.Verdict.KILLED,
                   "survives": mutate.Verdict.SURVIVED, "gone": mutate.Verdict.NOT_APPLIED,
                   "unbuilt": mutate.Verdict.NOT_BUILT, "infra": mutate.Verdict.NOT_TESTED}
    assert result.mutants[0].killers == ["c/p::b: pass -> fail: broken"]
    assert result.mutants[1].killers == ["c/p::c: pass -> skip: broken"]
    assert result.stopped.startswith("infra")          # a host fault ends the loop, judged as nothing
    assert result.kill_ratio == pytest.approx(2 / 3)
    assert (tree / "mm/userfaultfd.c").read_text() == SOURCE     # every mutant reverted
    doc = json.loads((out / "mutate.json").read_text())
    assert doc["counts"]["killed"] == 2 and doc["kill_ratio"] == pytest.approx(2 / 3)
    assert "kill ratio: 66.7%" in (out / "mutate.md").read_text()


def test_a_stopped_run_resumes_where_it_stopped(fake_loop):
    tree, req = fake_loop
    first = [_m("killed", "\treturn 0;", "\treturn 1;"), _m("infra", "\treturn 0;", "\tqemu dies;")]
    result, out = mutate.run_mutations(req, first, progress=lambda s: None)
    assert result.stopped
    again = dataclasses.replace(req, mutate=dataclasses.replace(req.mutate, resume=out))
    more = [*first[:1], _m("infra", "\treturn 0;", "\treturn 0 ;"), _m("new", "\treturn 0;", "\treturn 2;")]
    result, out2 = mutate.run_mutations(again, more, progress=lambda s: None)
    assert out2 == out and not result.stopped
    assert [(m.id, m.verdict.value) for m in result.mutants] == [
        ("killed", "killed"), ("infra", "survived"), ("new", "killed")]
    doc = json.loads((out / "mutate.json").read_text())
    assert doc["counts"]["killed"] == 2


def test_guest_programs_changed_under_a_run_stop_it_and_a_resume_reruns_the_control(
        fake_loop, monkeypatch):
    tree, req = fake_loop
    programs = {"now": "aaa"}
    monkeypatch.setattr(mutate.guestprogs, "sources_digest", lambda: programs["now"])
    said = []

    def progress(line):
        said.append(line)
        if line.startswith("[mutate] 1/"):
            programs["now"] = "bbb"     # someone edits guest/ while the run goes on
    ms = [_m("killed", "\treturn 0;", "\treturn 1;"), _m("survives", "\treturn 0;", "\treturn 0 ;")]
    result, out = mutate.run_mutations(req, ms, progress=progress)
    assert [m.id for m in result.mutants] == ["killed"]
    assert "guest programs changed since the control (aaa -> bbb)" in result.stopped
    again = dataclasses.replace(req, mutate=dataclasses.replace(req.mutate, resume=out))
    result, _ = mutate.run_mutations(again, ms, progress=said.append)
    assert any("running the control again" in line for line in said)
    assert not result.stopped and result.programs == "bbb"
    assert [(m.id, m.programs) for m in result.mutants] == [("killed", "aaa"), ("survives", "bbb")]
    assert json.loads((out / "mutate.json").read_text())["programs"] == "bbb"


def test_a_resume_with_another_kernel_config_reruns_the_control(fake_loop):
    tree, req = fake_loop
    ms = [_m("killed", "\treturn 0;", "\treturn 1;")]
    result, out = mutate.run_mutations(req, ms, progress=lambda s: None)
    doc = json.loads((out / "mutate.json").read_text())
    assert doc["config"] and doc["config"] == result.config
    doc["config"] = "0123456789ab"          # as if a fragment changed since
    (out / "mutate.json").write_text(json.dumps(doc))
    said = []
    again = dataclasses.replace(req, mutate=dataclasses.replace(req.mutate, resume=out))
    result, _ = mutate.run_mutations(again, ms, progress=said.append)
    assert any("kernel config changed since the judged mutants' control (0123456789ab ->"
               in line for line in said)
    assert any(line.startswith("[mutate] control:") for line in said)
    assert result.config != "0123456789ab"
    said.clear()
    mutate.run_mutations(again, ms, progress=said.append)      # same config: the control stands
    assert not any("control" in line for line in said)


def test_a_control_that_fails_stops_before_any_mutant(fake_loop):
    tree, req = fake_loop
    (tree / "mm/userfaultfd.c").write_text(SOURCE.replace("return 0;", "return 1;"))
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "bad"],
                   cwd=tree, check=True)
    with pytest.raises(mutate.ControlFailed, match="c/p::b"):
        mutate.run_mutations(req, [_m("x", "\treturn 1;", "\treturn 0;")], progress=lambda s: None)


def _coverage_run(tmp_path) -> Path:
    """A coverage run of two programs: c/p ran line 3, c/q lines 3 and 5,
    c/r was cut short by a reboot; nobody ran line 6."""
    cov = tmp_path / "run" / "coverage"
    cov.mkdir(parents=True)
    def info(*counts):
        return "SF:mm/userfaultfd.c\n" + "".join(f"DA:{l},{n}\n" for l, n in counts) + "end_of_record\n"
    (cov / "total.info").write_text(info((3, 5), (5, 1), (6, 0)))
    (cov / "c-p.info").write_text(info((3, 4), (5, 0), (6, 0)))
    (cov / "c-q.info").write_text(info((3, 1), (5, 1), (6, 0)))
    (cov / "c-r.info").write_text(info((3, 0), (5, 0), (6, 0)))
    (cov / "coverage.json").write_text(json.dumps(
        {"programs": {"c/p": "c-p.info", "c/q": "c-q.info", "c/r": "c-r.info"},
         "partial": ["c/r"]}))
    (tmp_path / "run" / "results.json").write_text(json.dumps(
        {"tests": [], "manifest": {"guest_programs": guestprogs.sources_digest()}}))
    return tmp_path / "run"


def test_by_coverage_refuses_a_coverage_run_of_other_guest_programs(tmp_path, monkeypatch):
    run = _coverage_run(tmp_path)
    monkeypatch.setattr(mutate.guestprogs, "sources_digest", lambda: "changed")
    with pytest.raises(mutate.BadInput, match="ran guest programs .* these are changed"):
        mutate.CoverageRun(run, by_program=True)
    mutate.CoverageRun(run)         # --coverage-run alone only reports, and stands


def test_executed_lines_from_a_coverage_run(tmp_path):
    run = mutate.CoverageRun(_coverage_run(tmp_path), by_program=True)
    assert run.executed("mm/userfaultfd.c", {3}) is True
    assert run.executed("mm/userfaultfd.c", {6, 7}) is False
    assert run.executed("mm/userfaultfd.c", {7}) is None      # no line gcov knows
    assert run.executed("mm/other.c", {3}) is None
    assert run.executed_by("mm/userfaultfd.c", {3}) == ["c/p", "c/q", "c/r"]
    assert run.executed_by("mm/userfaultfd.c", {5}) == ["c/q", "c/r"]   # c/r: partial


def test_by_coverage_runs_each_mutant_with_the_programs_that_executed_it(fake_loop, tmp_path):
    tree, req = fake_loop
    req = dataclasses.replace(req, mutate=dataclasses.replace(
        req.mutate, coverage_run=_coverage_run(tmp_path), by_coverage=True))
    ms = [_m("line5", "\tif (n < 4", "\tif (n <= 4"),            # line 5: c/q (and c/r)
          _m("line6", "\t\twake_rwp(vma);", "\t\t;"),           # line 6: nobody
          _m("line7", "\treturn 0;", "\treturn 1;")]             # gcov knows no line 7
    result, _ = mutate.run_mutations(req, ms, progress=lambda s: None)
    got = {m.id: (m.verdict.value, m.selected) for m in result.mutants}
    assert got == {"line5": ("survived", ["c/q", "c/r"]), "line6": ("survived", []),
                   "line7": ("killed", [])}
    assert "not run" in result.mutants[1].reason
    # the control, then line5 with its programs, line6 built only, line7 with everything
    assert SELECTIONS == [(), ("c/q::", "c/r::"), None, ()]


@pytest.mark.parametrize("extra, error", [
    (["--by-coverage"], "needs the coverage run"),
    (["--by-coverage", "--coverage-run", "x", "-k", "c/p"], "give no -k"),
])
def test_by_coverage_refuses_what_it_cannot_honour(extra, error):
    from harness import cli, requests
    args = cli.make_parser().parse_args(["mutate", *extra])
    with pytest.raises(BadInput, match=error):
        requests.from_args(args)
