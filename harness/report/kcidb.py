"""A saved run as a KernelCI database (KCIDB) v5 document.

One checkout (the source and the series applied), one build (the kernel
built), one test per result. Ids are "<origin>:<key>": the checkout's key is
the source and series, the build's adds the config, so runs of one kernel
share them; a test's key is the run directory and the test id.

Statuses: pass PASS, fail FAIL, error ERROR (the harness could not judge the
test: the VM died, no result), skip SKIP, flaky FAIL (it failed in some of
the repeats; misc.runs lists them), xfail DONE (it ran to its end and met the
known failure its reason names: neither a pass of the kernel nor a new
failure), a test the run never reached MISS. misc.harness_status keeps the
harness's own word for each.

kcidb-io validates every document before it is written: one it refuses is a
harness bug, reported as such.
"""

import hashlib
import json
from pathlib import Path

from harness import cache
from harness.errors import ExitStatus, HarnessError
from harness.parse.verdicts import Status, split_test_id
from harness.report import results

SCHEMA_VERSION = {"major": 5, "minor": 3}
DEFAULT_ORIGIN = "rwp"            # every id's prefix unless --kcidb-origin says
_EXCERPT_CAP = 16384                    # the schema's maxLength of log_excerpt
STATUS = {Status.PASS.value: "PASS", Status.FAIL.value: "FAIL", Status.ERROR.value: "ERROR",
          Status.SKIP.value: "SKIP", Status.FLAKY.value: "FAIL", Status.XFAIL.value: "DONE",
          "not_run": "MISS"}


class InvalidDocument(HarnessError):
    """kcidb-io refused what this module wrote: a bug here, not in the run."""
    status = ExitStatus.INTERNAL_ERROR


def _url(path: Path) -> str:
    return Path(path).resolve().as_uri()


def _key(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def test_path(tid: str) -> str:
    """c/rwp_contract::sync_read_fault__anon -> rwp.c.rwp_contract.sync_read_fault.anon"""
    program, sub = split_test_id(tid)
    parts = ["rwp", *program.split("/"), *sub.split("__")]
    return ".".join("".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in p) or "_"
                    for p in parts)


def _checkout(m: dict, origin: str) -> dict:
    src, series = m.get("source") or {}, m.get("series") or {}
    c = {"id": f"{origin}:{_key(src.get('identity', ''), m.get('series_hash', ''))}",
         "origin": origin, "tree_name": src.get("origin", "unknown"),
         "git_commit_name": src.get("identity") or src.get("version", ""),
         "valid": True,
         "misc": {"kernel_version": src.get("version", ""), "source": src.get("identity", "")}}
    commit = series.get("tip") or m.get("source_commit") or ""
    if len(commit) == 40:
        c["git_commit_hash"] = commit
    if series.get("patch_sha256"):
        joined = "".join(f"{h}\n" for h in series["patch_sha256"])
        c["patchset_hash"] = hashlib.sha256(joined.encode()).hexdigest()
        c["patchset_files"] = [{"name": Path(f).name, "url": _url(Path(f))}
                               for f in series.get("files", [])]
        c["misc"]["series"] = series.get("describe", "")
    elif not series:
        c["patchset_hash"] = ""
    if "@" in series.get("message_id", ""):
        c["message_id"] = series["message_id"]
    if m.get("started"):
        c["start_time"] = m["started"]
    return c


def _build(m: dict, run_dir: Path, origin: str, checkout_id: str) -> dict:
    host = m.get("host") or {}
    profiles = m.get("profiles") or []
    arch = m.get("arch") or {}
    b = {"id": f"{origin}:{_key(checkout_id, m.get('config_sha256', ''))}",
         "origin": origin, "checkout_id": checkout_id,
         # Runs from before --arch have no record of it: they were x86_64.
         "architecture": arch.get("name", "x86_64") if isinstance(arch, dict) else arch,
         "compiler": host.get("compiler", ""),
         "config_name": "+".join(["rwp-harness", *profiles]),
         "status": "PASS",       # a run exists only for a kernel that built
         "misc": {"kernel_release": m.get("kernel_release", ""),
                  "config_sha256": m.get("config_sha256", ""),
                  "config_requested": m.get("config_requested", "")}}
    build_s = (m.get("timings") or {}).get("build")
    # Under a second: the run reused a finished build, whose own time is not known.
    if isinstance(build_s, (int, float)) and build_s >= 1.0:
        b["duration"] = float(build_s)
    else:
        b["misc"]["reused"] = True
    if m.get("guest_capabilities"):
        b["misc"]["guest_capabilities"] = m["guest_capabilities"]
    for name, key in (("config", "config_url"), ("build.log", "log_url")):
        if (run_dir / name).exists():
            b[key] = _url(run_dir / name)
    return b


def _environment(m: dict) -> dict:
    host = m.get("host") or {}
    return {"comment": f"QEMU ({m.get('accel', '?')}) under virtme-ng "
                       f"{host.get('virtme_ng', '?')} on Linux {host.get('kernel', '?')}",
            "misc": {"qemu": host.get("qemu", ""), "accel": m.get("accel", "")}}


def _excerpt(t: dict) -> str:
    text = "\n".join([t.get("reason", ""), *t.get("diagnostics", []),
                      *(s.get("text", "") for s in t.get("splats", []))]).strip()
    return text[:_EXCERPT_CAP]


def _test(t: dict, run_dir: Path, origin: str, build_id: str, env: dict) -> dict:
    out = {"id": f"{origin}:{run_dir.name}/{t['id']}", "origin": origin, "build_id": build_id,
           "path": test_path(t["id"]), "status": STATUS[t["status"]],
           "duration": float(t.get("duration") or 0.0), "environment": env,
           "misc": {"harness_status": t["status"], "test_id": t["id"],
                    "reason": t.get("reason", ""), "runs": t.get("runs", [])}}
    if (run_dir / "console.log").exists():
        out["log_url"] = _url(run_dir / "console.log")
    excerpt = _excerpt(t)
    if excerpt:
        out["log_excerpt"] = excerpt
    return out


def document(doc: dict, run_dir: Path, origin: str = DEFAULT_ORIGIN) -> dict:
    m = doc.get("manifest") or {}
    checkout = _checkout(m, origin)
    build = _build(m, run_dir, origin, checkout["id"])
    env = _environment(m)
    tests = [_test(t, run_dir, origin, build["id"], env) for t in doc["tests"]]
    tests += [{"id": f"{origin}:{run_dir.name}/{tid}", "origin": origin, "build_id": build["id"],
               "path": test_path(tid), "status": STATUS["not_run"], "environment": env,
               "misc": {"harness_status": "not_run", "test_id": tid}}
              for tid in doc.get("not_run") or []]
    return {"version": dict(SCHEMA_VERSION), "checkouts": [checkout], "builds": [build],
            "tests": tests}


def validate(kdoc: dict) -> None:
    import jsonschema
    import kcidb_io
    try:
        kcidb_io.schema.V5_3.validate_exactly(kdoc)
    except jsonschema.exceptions.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise InvalidDocument(f"the KCIDB document does not validate at {where}: {e.message}")


def write(run_dir: Path, dest: Path, origin: str = DEFAULT_ORIGIN) -> dict:
    """The saved run in run_dir as a validated KCIDB document at dest."""
    run_dir = Path(run_dir)
    kdoc = document(results.read_document(run_dir),
                    run_dir if run_dir.is_dir() else run_dir.parent, origin)
    validate(kdoc)
    cache.write_atomic(dest, json.dumps(kdoc, indent=1) + "\n")
    return kdoc
