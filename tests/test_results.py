"""The run directory's files: kept current without rewriting them per result."""

import json

from harness.parse import ktap
from harness.report import results
from harness.run.runner import TestResult


def _result(i: int) -> TestResult:
    return TestResult(f"c/x::t{i}", ktap.Status.PASS)


def test_a_burst_of_results_is_written_once_then_at_the_end(tmp_path, monkeypatch):
    run = results.Run(tmp_path)
    writes = []
    real = run._write
    monkeypatch.setattr(run, "_write", lambda name, text: (writes.append(name), real(name, text)))
    for i in range(100):
        run.add(_result(i))
    assert writes.count("results.json") == 1          # the first result, then throttled
    run.save()
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [t["id"] for t in doc["tests"]] == [f"c/x::t{i}" for i in range(100)]


def test_results_are_written_again_once_the_interval_has_passed(tmp_path, monkeypatch):
    run = results.Run(tmp_path)
    # each add reads the clock, each save once more
    clock = iter([100.0, 100.0, 100.5, 101.2, 101.2])
    monkeypatch.setattr(results.time, "monotonic", lambda: next(clock))

    def ids():
        return [t["id"] for t in json.loads((tmp_path / "results.json").read_text())["tests"]]
    run.add(_result(0))
    run.add(_result(1))
    assert ids() == ["c/x::t0"]
    run.add(_result(2))
    assert ids() == ["c/x::t0", "c/x::t1", "c/x::t2"]
