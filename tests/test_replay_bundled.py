"""Every bundled teaching recording replays, narrated and served, with NO engine running.

The recordings were made from real engines by `recordings/bundled/make_recordings.py`; their headers carry
the docker commands that were recorded and what the CLI printed live. Served, the same commands through the
real docker CLI must print the same thing and exit the same way.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
from pathlib import Path

import engines
import pytest
from test_replay import Served

from dockertap.recordings.narrate import _short_command
from dockertap.recordings.replayable import bundled_recordings, load_replay

BUNDLED = bundled_recordings()
EXPECTED = {
    "docker-run",
    "docker-exec",
    "docker-build-legacy",
    "docker-pull-no-registry",
    "podman-run",
    "backend-down",
}


def test_all_teaching_recordings_are_bundled_and_small() -> None:
    assert set(BUNDLED) == EXPECTED
    for path in BUNDLED.values():
        assert path.stat().st_size < 200_000
        session = load_replay(path)
        assert session.header.get("title") and session.header.get("live")
        assert not session.warnings  # each closed cleanly


def test_recordings_are_listed_by_name() -> None:
    out = subprocess.run(
        [*engines.dockertap_command(), "replay", "--list"], capture_output=True, text=True, check=True
    ).stdout
    for name, path in BUNDLED.items():
        assert f"{name}  " in out and load_replay(path).header["title"] in out


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_recording_narrates(name: str) -> None:
    session = load_replay(BUNDLED[name])
    result = subprocess.run(
        [*engines.dockertap_command(), "replay", name], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for rec in session.exchanges:
        assert rec.route in result.stdout
    for live in session.header["live"]:
        assert _short_command(" ".join(live["command"])) in result.stdout
    # Observed evidence is shown with the exchange it belongs to.
    for rec in session.exchanges:
        for item in rec.evidence:
            if item.get("source") == "containerd":
                assert f"containerd {item['topic']} container {item['container_id'][:12]}" in result.stdout


def test_run_recording_carries_containerd_and_runc_evidence() -> None:
    """The docker-run lesson is about the layers below dockerd: the recording must show them observed."""
    session = load_replay(BUNDLED["docker-run"])
    start = next(r for r in session.exchanges if r.route == "POST /containers/{id}/start")
    observed = {layer["layer"] for layer in start.annotation["layers"] if layer["status"] == "observed"}
    assert {"containerd", "runc"} <= observed


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_recording_serves_its_recorded_answers(name: str, short_tmp: Path) -> None:
    session = load_replay(BUNDLED[name])
    plain = [
        r
        for r in session.exchanges
        if r.method in ("GET", "HEAD") and not r.hijacked and not r.response_truncated and r.response_head
    ]
    assert plain, "every recording starts with at least a ping"
    server = Served(BUNDLED[name], short_tmp, "--speed", "0")
    try:
        for rec in plain:
            conn = http.client.HTTPConnection("localhost", timeout=10)
            conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.sock.connect(str(server.socket))
            conn.request(rec.method, rec.target)
            response = conn.getresponse()
            assert response.status == rec.status, rec.target
            assert response.read() == (rec.response_body if rec.method == "GET" else b"")
            conn.close()
    finally:
        server.stop()


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_real_docker_cli_against_served_bundled_recording(name: str, short_tmp: Path) -> None:
    """No engine is running here: the answers can only come from the recording."""
    assert shutil.which("docker"), "the docker CLI is needed"
    session = load_replay(BUNDLED[name])
    server = Served(BUNDLED[name], short_tmp, "--speed", "0")
    try:
        for live in session.header["live"]:
            stdin = live.get("stdin")
            result = subprocess.run(
                live["command"],
                input=stdin.encode() if stdin else None,
                env=engines.docker_env(server.url, live.get("env") or {}),
                capture_output=True,
                timeout=60,
            )
            # Bytes, not text mode: the legacy builder's progress lines keep their `\r`.
            stdout, stderr = (result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"))
            assert (result.returncode, stdout) == (live["exit_code"], live["stdout"])
            assert stderr == live["stderr"]
    finally:
        server.stop()
