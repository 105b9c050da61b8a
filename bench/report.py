"""Hardening report: run the load, fault, permission and fuzz tests and print ONE table.

    .venv/bin/python bench/report.py            # CI-sized fuzz profile (~5 min in all, root, dockerd)
    HYPOTHESIS_PROFILE=deep .venv/bin/python bench/report.py
    .venv/bin/python bench/report.py --groups secrets,terminal,permissions   # only those rows

Every figure comes from the test suite itself (tests/test_load.py, test_faults.py,
test_permissions.py, test_fuzz.py, the redaction and terminal-safety tests), run by pytest
with their stats written to files, plus a bulk transfer through the real relay checked with
sha256 both ways (tests/relay_harness.py).
Nothing is typed in by hand: a failing test shows up as a failing row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))

GROUPS = {
    "load": ["tests/test_load.py"],
    "faults": ["tests/test_faults.py"],
    "permissions": ["tests/test_permissions.py"],
    "fuzz": ["tests/test_fuzz.py", "tests/test_framing.py"],
    "secrets": ["tests/test_redact.py", "tests/test_redact_routes.py", "tests/test_redact_engine.py"],
    "terminal": ["tests/test_safe_text.py"],
}


def run_group(name: str, paths: list[str], workdir: Path, env: dict) -> dict:
    junit = workdir / f"{name}.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *paths]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [
        case.get("name")
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {"returncode": proc.returncode, "failed": failed, **counts, "seconds": float(suite.get("time", 0))}


def bulk_rows() -> list[dict]:
    from relay_harness import RelayRig, bulk_roundtrip

    rig = RelayRig()
    try:
        return [bulk_roundtrip(rig, 256 << 20, framing) for framing in ("length", "chunked", "hijack")]
    finally:
        rig.close()


def passed(group: dict) -> str:
    ok = group["tests"] - group["failures"] - group["errors"] - group["skipped"]
    text = f"{ok}/{group['tests']} passed"
    if group["skipped"]:
        text += f", {group['skipped']} skipped"
    if group["failed"]:
        text += " — FAILED: " + ", ".join(group["failed"])
    return text


def secret_places() -> tuple[int, int]:
    """(places, routes) in the generated table of where a secret can travel."""
    rows = json.loads((ROOT / "analyzers/data/secret_fields.json").read_text())["fields"]
    return len(rows), len({row["route"] for row in rows})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default=",".join([*GROUPS, "bytes"]), help="comma-separated subset")
    chosen = set(parser.parse_args().groups.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="dt-report-"))
    env = dict(os.environ)
    env.setdefault("HYPOTHESIS_PROFILE", "ci")
    env["DOCKERTAP_LOAD_STATS"] = str(workdir / "load.json")
    env["DOCKERTAP_FUZZ_STATS"] = str(workdir / "fuzz.json")
    results = {name: run_group(name, paths, workdir, env) for name, paths in GROUPS.items() if name in chosen}
    load = json.loads((workdir / "load.json").read_text()) if (workdir / "load.json").exists() else {}
    fuzz = json.loads((workdir / "fuzz.json").read_text()) if (workdir / "fuzz.json").exists() else {}
    bulk = bulk_rows() if "bytes" in chosen else []

    rows: list[tuple[str, str, str]] = []
    if load:
        rows += [
            ("load", "connections held at once (+ /events streams)",
             f"{load['connections_open_at_once'] - load['streams']} + {load['streams']}"),
            ("load", "/_ping requests answered 200 OK", f"{load['requests'] - len(load['failures'])}"
             f"/{load['requests']} in {load['seconds']} s"),
            ("load", "held /events streams delivering at the end",
             f"{load['streams_delivering']}/{load['streams']}"),
            ("load", "latency steady p50 / p99 / max",
             f"{load['p50_ms']} / {load['p99_ms']} / {load['max_ms']} ms"),
            ("load", "latency of the 1,000-at-once first requests p50 / p99",
             f"{load['burst_p50_ms']} / {load['burst_p99_ms']} ms"),
            ("load", "proxy RSS after warm-up → end (peak)",
             f"{load['rss_warm_kib'] // 1024} → {load['rss_end_kib'] // 1024} MiB "
             f"({load['rss_peak_kib'] // 1024} MiB), "
             f"{(load['rss_end_kib'] / load['rss_warm_kib'] - 1) * 100:+.1f} %"),
        ]  # fmt: skip
    if "load" in results:
        rows.append(("load", "test_load.py", passed(results["load"])))
    if "faults" in results:
        rows.append(("faults", "injected and survived (test_faults.py)", passed(results["faults"])))
    if "permissions" in results:
        rows.append(("who can connect", "test_permissions.py", passed(results["permissions"])))
    if "secrets" in results:
        places, routes = secret_places()
        rows += [
            ("secrets", "places a secret can travel (from the swagger)", f"{places} on {routes} routes"),
            ("secrets", "test_redact*.py (each place + real CLI/swarm)", passed(results["secrets"])),
        ]
    if "terminal" in results:
        what = "crafted recording/argv/JSON/output (test_safe_text)"
        rows.append(("terminal", what, passed(results["terminal"])))
    total = sum(row["cases"] for row in fuzz.values())
    if "fuzz" in results:
        profile = env["HYPOTHESIS_PROFILE"]
        rows.append(("fuzz", f"cases through the real relay ({profile} profile)", f"{total:,}"))
    for name, row in sorted(fuzz.items()):
        rows.append(
            ("fuzz", f"  {name}",
             f"{row['cases']:,} cases: {row['complete']:,} relayed intact, {row['flagged']:,} ended with an "
             f"error recorded, {row['explained']:,} stopped at a close/unfinished head; "
             f"{row['bytes'] / 1e6:.1f} MB relayed"),
        )  # fmt: skip
    if "fuzz" in results:
        rows.append(("fuzz", "test_fuzz.py + test_framing.py", passed(results["fuzz"])))
    for b in bulk:
        equal = b["client_to_backend_equal"] and b["backend_to_client_equal"]
        verdict = "sha256 equal both ways" if equal else "sha256 DIFFERS"
        if b["errors"]:
            verdict += f"; errors {b['errors']}"
        rows.append(("bytes", f"{b['bytes_each_way'] >> 20} MiB each way, {b['framing']}", verdict))
    lost = (
        (len(load.get("failures", [])) if load else 0)
        + sum(0 if (b["client_to_backend_equal"] and b["backend_to_client_equal"]) else 1 for b in bulk)
        + sum(r["failures"] + r["errors"] for r in results.values())
    )
    rows.append(("lost", "requests, streams or bytes lost; failing checks", str(lost)))

    width = [max(len(r[i]) for r in rows) for i in range(2)]
    print(f"{'area'.ljust(width[0])}  {'what'.ljust(width[1])}  result")
    print(f"{'-' * width[0]}  {'-' * width[1]}  {'-' * 40}")
    for area, what, result in rows:
        print(f"{area.ljust(width[0])}  {what.ljust(width[1])}  {result}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
