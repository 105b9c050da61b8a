"""dockertap's own HAR and flow exports import back into the same session: replaying the import
shows what replaying the recording shows (container stdin/stdout/stderr, clients, layers, evidence)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import engines
from mitmproxy.io import FlowReader, FlowWriter
from mitmproxy.io.har import request_to_flow

from dockertap.recordings.format import read_session
from dockertap.recordings.replayable import payload_slices

IMAGE = engines.BUSYBOX_TAG
MITMDUMP = str(Path(sys.executable).parent / "mitmdump")


def dockertap(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*engines.dockertap_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=engines.docker_env("unix:///nonexistent"),
    )


def _replay(path: Path) -> list[str]:
    done = dockertap("replay", str(path), "--speed", "0")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[1:]  # the first line names the file


def _facts(path: Path) -> list[tuple]:
    session = read_session(path)
    return [
        (
            ex.method, ex.target, ex.status, (ex["client"] or {}).get("command"),
            ex.hijack_bytes("client"), ex.hijack_bytes("backend"), ex.streams(),
            [(layer["layer"], layer["status"]) for layer in ex.get("layers", [])],
            len(ex.get("evidence", [])),
            _pacing(ex),
            ex.get("error"),
        )
        for ex in sorted(session.exchanges, key=lambda ex: ex["t_start"])
    ]  # fmt: skip


def _pacing(ex) -> list[tuple[float, bytes]]:
    """When each piece of the response payload arrived (what `replay --speed 1` reproduces)."""
    body = (ex.get("response") or {}).get("body") or {}
    marks = [(round(float(t), 6), int(offset)) for t, offset in body.get("marks") or []]
    return [(s.at, s.data) for s in payload_slices(ex.response_body_wire(), marks, bool(body.get("chunked")))]


def test_har_and_flows_exports_import_back_into_the_same_session(dockerd, tmp_path: Path):
    session_file = tmp_path / "s.jsonl"
    name = f"dt-rt-{os.getpid()}"
    script = (
        f"echo from-stdin | docker run -i --rm {IMAGE} sh -c 'cat; echo from-stderr >&2'; docker ps -a; "
        f"docker run -d --name {name} {IMAGE} sh -c 'echo first; sleep 0.5; echo second' >/dev/null; "
        f"docker logs -f {name}; docker rm {name} >/dev/null"
    )
    done = dockertap("run", "--backend", dockerd.url, "--record", str(session_file), "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    har, flows = tmp_path / "s.har", tmp_path / "s.flows"
    assert dockertap("export", str(session_file), "--har", str(har), "--flows", str(flows)).returncode == 0

    entries = json.loads(har.read_text())["log"]["entries"]
    assert [request_to_flow(entry).request.path for entry in entries]  # mitmproxy's HAR reader takes it
    session = read_session(session_file)
    in_request_order = sorted(session.exchanges, key=lambda ex: ex["t_start"])
    assert [e["_id"] for e in entries] == [ex["id"] for ex in in_request_order]
    assert [e["_id"] for e in entries] != [ex["id"] for ex in session.exchanges]  # the file is in end order
    dumped = subprocess.run([MITMDUMP, "-nr", str(flows)], capture_output=True, text=True, timeout=60)
    assert dumped.returncode == 0 and dumped.stdout.count("<< ") == len(entries), dumped.stderr
    with open(flows, "rb") as f:
        assert [flow.metadata["dockertap"]["id"] for flow in FlowReader(f).stream()] == [
            e["_id"] for e in entries
        ]

    logs = next(ex for ex in session.exchanges if "/logs" in ex.target)
    assert len(_pacing(logs)) >= 2  # "first", then "second" half a second later
    original = _replay(session_file)
    assert any("from-stdin" in line for line in original) and any("from-stderr" in line for line in original)
    for source in (har, flows):
        imported = tmp_path / f"{source.suffix[1:]}.jsonl"
        done = dockertap("import", str(source), "-o", str(imported))
        assert done.returncode == 0, done.stderr
        assert "note:" not in done.stderr  # nothing lacking
        assert _facts(imported) == _facts(session_file)
        assert _replay(imported) == original


def test_import_refuses_to_overwrite_without_force(dockerd, tmp_path: Path):
    session_file = tmp_path / "s.jsonl"
    assert (
        dockertap(
            "run", "--backend", dockerd.url, "--record", str(session_file), "--", "docker", "ps"
        ).returncode
        == 0
    )
    har = tmp_path / "s.har"
    assert dockertap("export", str(session_file), "--har", str(har)).returncode == 0
    target = tmp_path / "precious.jsonl"
    target.write_text("keep me\n")
    refused = dockertap("import", str(har), "-o", str(target))
    assert refused.returncode == 2 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert target.read_text() == "keep me\n"
    assert dockertap("import", str(har), "-o", str(target), "--force").returncode == 0
    assert read_session(target).exchanges


def test_import_of_a_foreign_capture_says_what_it_lacks(dockerd, tmp_path: Path):
    session_file = tmp_path / "s.jsonl"
    done = dockertap(
        "run",
        "--backend",
        dockerd.url,
        "--record",
        str(session_file),
        "--",
        "docker",
        "run",
        "--rm",
        IMAGE,
        "true",
    )
    assert done.returncode == 0, done.stderr
    ours, foreign = tmp_path / "s.flows", tmp_path / "foreign.flows"
    assert dockertap("export", str(session_file), "--flows", str(ours)).returncode == 0
    with open(ours, "rb") as source, open(foreign, "wb") as out:
        writer = FlowWriter(out)
        for flow in FlowReader(source).stream():
            flow.metadata.clear()  # as mitmproxy itself would have captured it
            writer.add(flow)
    done = dockertap("import", str(foreign), "-o", str(tmp_path / "f.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "carry no dockertap metadata" in done.stderr and "hijacked streams" in done.stderr
