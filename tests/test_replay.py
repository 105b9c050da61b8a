"""Replay: sessions recorded from the real dockerd through `dockertap run --record`, then replayed.

Served replays are checked with the real docker CLI against `dockertap replay --serve` (a subprocess on
its own socket): same stdout, stderr and exit codes as the live run, with the engine out of the loop.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import engines
import pytest

from dockertap.analyzers.annotate import annotate
from dockertap.recordings.narrate import PHRASES
from dockertap.recordings.replayable import load_replay

IMAGE = engines.BUSYBOX_TAG
# Relative times ("3 seconds ago") change between the live run and the replay: print stable fields only.
SCRIPT = f"""
docker ps; echo "rc=$?"
docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}} {{{{.ID}}}} {{{{.Size}}}}'; echo "rc=$?"
docker run --rm {IMAGE} echo hi; echo "rc=$?"
docker run --name replay-c {IMAGE} sh -c 'echo out; echo err >&2; exit 3'; echo "rc=$?"
docker logs replay-c; echo "rc=$?"
docker ps -a --format '{{{{.Names}}}} {{{{.Image}}}} {{{{.State}}}}'; echo "rc=$?"
"""


def record(backend_url: str, path: Path, script: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`dockertap run --record PATH -- sh SCRIPT`: one session, one client process per docker command."""
    script_path = path.with_suffix(".sh")
    script_path.write_text(script)
    argv = [
        *engines.dockertap_command(), "run",
        "--backend", backend_url,
        "--record", str(path),
        "--trace-file", str(path.with_suffix(".trace")),
        *extra,
        "--", "sh", str(script_path),
    ]  # fmt: skip
    env = engines.docker_env("unix:///nonexistent-dockertap-test.sock")
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)


def served_docker(server: Served, *args: str) -> subprocess.CompletedProcess[str]:
    """The real docker CLI against a `replay --serve`."""
    return subprocess.run(
        ["docker", *args], env=engines.docker_env(server.url), capture_output=True, text=True, timeout=60
    )


def served_log(server: Served, text: str) -> str:
    """The serve's log once it holds `text` (or after 5 s)."""
    deadline = time.monotonic() + 5
    while text not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.log.read_text()


class Served:
    """A `dockertap replay FILE --serve` subprocess."""

    def __init__(self, recording: Path | str, base: Path, *extra: str) -> None:
        self.socket = base / "replay.sock"
        self.url = f"unix://{self.socket}"
        self.log = base / "serve.out"
        self.err = base / "serve.err"
        argv = [
            *engines.dockertap_command(),
            "replay",
            str(recording),
            "--serve",
            "--listen",
            str(self.socket),
        ]
        with open(self.log, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen([*argv, *extra], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if f"export DOCKER_HOST={self.url}" in self.err.read_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"replay --serve did not start: {self.err.read_text()}")

    def sh(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", script],
            env=engines.docker_env(self.url),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def recorded(dockerd: engines.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A session of docker ps/images/run/logs against the real dockerd, and the live output of the script."""
    path = tmp_path_factory.mktemp("replay") / "session.jsonl"
    live = record(dockerd.url, path, SCRIPT)
    assert live.returncode == 0, live.stderr
    engines.docker(dockerd.url, "rm", "-f", "replay-c")
    yield path, live


@pytest.fixture
def served(recorded: tuple[Path, object], short_tmp: Path) -> Iterator[Served]:
    server = Served(recorded[0], short_tmp, "--speed", "4")
    try:
        yield server
    finally:
        server.stop()


def test_live_run_went_as_expected(recorded) -> None:
    _, live = recorded
    assert "hi\n" in live.stdout
    assert "rc=3" in live.stdout  # the failing container's exit code reached the CLI
    assert live.stdout.count("rc=0") == 5


def test_served_recording_gives_the_docker_cli_the_same_output_and_exit_codes(recorded, served) -> None:
    _, live = recorded
    replayed = served.sh(SCRIPT)
    assert replayed.stdout == live.stdout
    assert replayed.stderr == live.stderr == "err\nerr\n"
    assert replayed.returncode == 0


def test_object_ids_are_matched_by_route_not_by_id(recorded, served) -> None:
    """The recording named `replay-c`; a short id (from the recorded create) hits the same route."""
    session = load_replay(recorded[0])
    create = next(r for r in session.exchanges if r.target.endswith("/containers/create?name=replay-c"))
    full_id = json.loads(create.response_body)["Id"]
    result = served.sh(f"docker logs {full_id[:12]}")
    assert result.returncode == 0
    assert result.stdout == "out\n" and result.stderr == "err\n"


def test_unmatched_request_gets_a_json_error_naming_the_closest_request(served) -> None:
    result = served.sh("docker ps --all --filter status=paused")
    assert result.returncode == 1
    assert "has no recorded answer for GET /containers/json?all=1&filters=" in result.stderr
    assert "closest recorded request: GET /containers/json" in result.stderr
    # The server logs a request after answering it: the CLI may have its answer first.
    deadline = time.monotonic() + 5
    while "GET /containers/json?all=1&filters=" not in served.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "GET /containers/json?all=1&filters=" in served.log.read_text()


def test_ping_is_answered_from_the_recording_for_head_and_get(recorded, served) -> None:
    session = load_replay(recorded[0])
    recorded_ping = next(r for r in session.exchanges if r.route == "HEAD /_ping")
    for method in ("HEAD", "GET"):
        conn = _unix_http(served.socket)
        conn.request(method, "/_ping")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200
        assert response.getheader("Api-Version") == recorded_ping.header("Api-Version")
        assert body == (b"OK" if method == "GET" else b"")


def test_truncated_body_is_replayed_well_formed_with_a_warning(
    dockerd, tmp_path: Path, short_tmp: Path
) -> None:
    path = tmp_path / "small.jsonl"
    live = record(dockerd.url, path, f"docker image inspect {IMAGE}", "--capture-bytes", "300")
    assert live.returncode == 0, live.stderr
    session = load_replay(path)
    inspect = next(r for r in session.exchanges if r.route == "GET /images/{name}/json")
    assert inspect.response_truncated and inspect.response_total > 300
    server = Served(path, short_tmp, "--speed", "0")
    try:
        conn = _unix_http(server.socket)
        conn.request("GET", inspect.target)
        response = conn.getresponse()
        body = response.read()  # http.client reads exactly Content-Length bytes: a lie would hang or fail
        assert body == inspect.response_body
        assert int(response.getheader("Content-Length")) == len(body) <= 300
        assert "truncated" in response.getheader("X-Dockertap-Replay-Warning")
        # The same connection stays usable: the next request gets its answer.
        conn.request("HEAD", "/_ping")
        assert conn.getresponse().status == 200
        narrated = _dockertap("replay", str(path))
        assert PHRASES["en"]["truncated"].split(":")[0] in narrated.stdout
    finally:
        server.stop()


def _unix_http(path: Path) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("localhost", timeout=10)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    conn.sock = sock
    return conn


def _dockertap(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*engines.dockertap_command(), *args], capture_output=True, text=True, timeout=60, input=input
    )


# -- the narrated replay --------------------------------------------------------------------------


def test_narration_shows_routes_explanations_and_stream_contents(recorded) -> None:
    path, _ = recorded
    session = load_replay(path)
    result = _dockertap("replay", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    start = next(r for r in session.exchanges if r.route == "POST /containers/{id}/start")
    explanation = annotate(start.method, start.target, None).chain.explanation
    assert "POST /containers/{id}/attach" in out and "GET /containers/{id}/logs" in out
    assert explanation["en"] in out
    assert "stdout │ hi" in out
    assert "stderr │ err" in out  # the logs body, demultiplexed
    # Grouped by client command: one header per docker invocation, in order.
    headers = [line for line in out.splitlines() if line.startswith("▶ ")]
    assert [h.split("  (")[0] for h in headers[:3]] == [
        "▶ Command: docker ps",
        "▶ Command: docker images --format {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
        f"▶ Command: docker run --rm {IMAGE} echo hi",
    ]
    ja = _dockertap("replay", str(path), "--lang", "ja").stdout
    assert explanation["ja"] in ja and PHRASES["ja"]["layers"] in ja


def test_narration_only_filters_by_route_glob(recorded) -> None:
    out = _dockertap("replay", str(recorded[0]), "--only", "POST /containers/*").stdout
    assert "POST /containers/create" in out and "POST /containers/{id}/start" in out
    assert "GET /containers/json" not in out and "HEAD /_ping" not in out
    nothing = _dockertap("replay", str(recorded[0]), "--only", "DELETE /nothing/*").stdout
    assert "No exchange matches DELETE /nothing/*" in nothing


def test_narration_speed_keeps_recorded_pacing(recorded) -> None:
    """The recorded gaps are waited, scaled: chosen so the pacing adds ~2 s, well above start-up noise."""
    session = load_replay(recorded[0])
    glob = "POST /containers/*"
    selected = [r for r in session.exchanges if r.route.startswith("POST /containers/")]
    span = selected[-1].started - selected[0].started
    speed = span / 2.0
    began = time.monotonic()
    _dockertap("replay", str(recorded[0]), "--only", glob, "--speed", f"{speed:.6f}")
    paced = time.monotonic() - began
    began = time.monotonic()
    _dockertap("replay", str(recorded[0]), "--only", glob, "--speed", "0")
    unpaced = time.monotonic() - began
    assert paced - unpaced >= 2.0 * 0.8


def test_narration_step_waits_for_enter(recorded) -> None:
    out = _dockertap("replay", str(recorded[0]), "--step", "--only", "GET *", input="\n\n").stdout
    assert out.count("q: quit") >= 2  # asked before the second and third exchange, then stdin ended
    assert "GET /containers/{id}/logs" in out  # after EOF the walk continues without stopping
