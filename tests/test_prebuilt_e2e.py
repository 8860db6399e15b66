"""The distro kernel as shipped: Debian's linux-image of the default source
version, fetched, booted and run with rwp_basic in C and Python, its results
also written as a KCIDB document."""

import json
import subprocess

import pytest

from helpers import harness_argv

pytestmark = pytest.mark.vm


def test_the_debian_image_runs_rwp_basic(tmp_path):
    kcidb = tmp_path / "kcidb.json"
    res = subprocess.run(harness_argv("run", "--kernel-image", "debian", "-k", "rwp_basic",
                                      "--results-dir", str(tmp_path), "--json",
                                      "--kcidb", str(kcidb)),
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    m = doc["manifest"]
    assert m["source"]["origin"] == "debian-image"
    assert m["kernel_release"].endswith("-amd64") and m["config_requested"] == ""
    assert m["guest_capabilities"]["rwp"] is True
    ids = {t["id"]: t["status"] for t in doc["tests"]}
    assert {p for p in (i.split("::")[0] for i in ids)} == {"c/rwp_basic", "py/rwp_basic"}
    assert set(ids.values()) == {"pass"} and len(ids) >= 14
    assert "swap" in m["guest_capabilities"] and m["guest_capabilities"]["swap"]   # zram, a module
    k = json.loads(kcidb.read_text())
    assert k["checkouts"][0]["tree_name"] == "debian-image"
    assert {t["status"] for t in k["tests"]} == {"PASS"}
