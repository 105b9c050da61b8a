"""Imports cannot be made to expand without bound, and exports are as private as recordings."""

from __future__ import annotations

import re
import subprocess
import zlib
from pathlib import Path

import engines
from fakesock import FakeServer, docker_like, short_tmpdir
from mitmproxy import http
from mitmproxy.io import FlowWriter
from mitmproxy.test import tflow

from dockertap.recordings.format import SessionWriter

BOMB_BYTES = 1 << 30  # what the answer would decode to


def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    return b"".join(compressor.compress(block) for _ in range(size >> 20)) + compressor.flush()


def _peak_kb_and_result(*args: str) -> tuple[int, subprocess.CompletedProcess]:
    result = subprocess.run(
        ["/usr/bin/time", "-v", *engines.dockertap_command(), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return peak, result


def test_import_refuses_a_gzip_bomb_with_one_clear_line(tmp_path: Path):
    flow = tflow.tflow(resp=True)
    flow.request.path = "/v1.41/containers/json"
    flow.response = http.Response.make(
        200, b"", {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    flow.response.raw_content = _gzip_of_zeros(BOMB_BYTES)
    assert len(flow.response.raw_content) < 2 << 20  # a ~1 MB file
    source, out = tmp_path / "bomb.flows", tmp_path / "out.jsonl"
    with open(source, "wb") as f:
        FlowWriter(f).add(flow)
    peak_kb, result = _peak_kb_and_result("import", str(source), "-o", str(out))
    assert result.returncode == 2, result.stderr
    messages = [line for line in result.stderr.splitlines() if line.startswith("dockertap:")]
    assert len(messages) == 1 and "decodes to more than" in messages[0] and "Traceback" not in result.stderr
    assert not out.exists()
    assert peak_kb < 400_000, f"peak {peak_kb} kB"


def test_exports_and_run_traces_are_created_0600(tmp_path: Path):
    session = tmp_path / "s.jsonl"
    SessionWriter(str(session)).close()
    har, flows = tmp_path / "s.har", tmp_path / "s.flows"
    flows.write_bytes(b"")
    flows.chmod(0o644)  # an existing file loses others' access too
    done = subprocess.run(
        [*engines.dockertap_command(), "export", str(session), "--har", str(har), "--flows", str(flows)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    trace = tmp_path / "t.txt"
    with FakeServer(f"{short_tmpdir()}/d.sock", docker_like()) as backend:
        ran = subprocess.run(
            [
                *engines.dockertap_command(),
                "run",
                "--no-observe",
                "-b",
                backend.url,
                "-o",
                str(trace),
                "--",
                "true",
            ],
            capture_output=True,
            timeout=60,
        )
    assert ran.returncode == 0, ran.stderr
    for path in (har, flows, trace):
        assert path.exists() and path.stat().st_mode & 0o777 == 0o600, (path, oct(path.stat().st_mode))
