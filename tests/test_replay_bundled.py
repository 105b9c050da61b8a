"""Every bundled teaching recording replays, narrated and served, with NO engine running.

The recordings were made from real engines by `recordings/bundled/make_recordings.py`; their headers carry
the docker commands that were recorded and what the CLI printed live. Served, the same commands through the
real docker CLI must print the same thing and exit the same way. Commands recorded without dockertap (the
CLI reached no server: "Cannot connect to the Docker daemon…") are re-run the same way, in a fresh mount
namespace, and must print the same error.
"""

from __future__ import annotations

import html
import http.client
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import engines
import pytest
from test_replay import Served

from dockertap.recordings.narrate import _short_command, direct_commands
from dockertap.recordings.replayable import bundled_recordings, load_replay

README = Path(__file__).resolve().parent.parent / "README.md"

BUNDLED = bundled_recordings()
EXPECTED = {
    "docker-ps",
    "docker-ps-podman",
    "docker-version",
    "docker-version-podman",
    "docker-run",
    "docker-exec",
    "exit-cleanup",
    "cgroup-limits",
    "docker-build",
    "docker-build-legacy",
    "docker-pull-no-registry",
    "docker-pull-no-registry-c8d",
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


def test_every_lesson_has_bilingual_summaries_and_names_its_engine() -> None:
    """A lesson ends with its own points in both languages, and says which real engine it was recorded on
    — the same engine the recorded traffic fingerprints, and the same one the README's table names."""
    readme = README.read_text(encoding="utf-8")
    for name, path in BUNDLED.items():
        header = load_replay(path).header
        summary = header.get("summary") or {}
        assert summary.get("en") and summary.get("ja"), name
        assert len(summary["en"]) == len(summary["ja"]), name
        assert all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", line) for line in summary["ja"]), name
        engine = header.get("engine") or {}
        assert engine.get("id") in engines.ENGINE_SPECS, name
        spec = engines.ENGINE_SPECS[engine["id"]]
        package = "docker.io" if spec.family == "dockerd" else "podman"
        assert engine.get("versions", "").startswith(f"{package} "), name
        backend = header.get("backend")
        if backend:  # the traffic itself says which server answered
            assert backend["family"] == spec.family, name
            assert backend["engine_version"].startswith(spec.version + "."), name
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` ")), None)
        assert row is not None and engine["id"] in row, f"README table row for {name}"


def test_podman_version_lesson_records_the_podman_server() -> None:
    """`docker version` against the served Podman lesson shows Podman from a recorded /version, not a
    synthesised one."""
    session = load_replay(BUNDLED["docker-version-podman"])
    routes = {rec.route for rec in session.exchanges}
    assert {"GET /version", "GET /info"} <= routes
    version = next(live for live in session.header["live"] if live["command"] == ["docker", "version"])
    assert re.search(r"^Server: .*\n Podman Engine:$", version["stdout"], re.M), version["stdout"]


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_recording_narrates(name: str, lang: str) -> None:
    session = load_replay(BUNDLED[name])
    result = subprocess.run(
        [*engines.dockertap_command(), "replay", name, "--lang", lang],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for rec in session.exchanges:
        assert rec.route in result.stdout
    for live in session.header["live"]:
        assert _short_command(" ".join(live["command"])) in result.stdout
    for live in direct_commands(session):  # what the CLI printed when it reached no server
        assert live["stderr"].splitlines()[0][:60] in result.stdout
    text = result.stdout.replace("\n", "")
    for line in session.header["summary"][lang] + session.header.get("explanation", {}).get(lang, []):
        assert line[:40] in text  # the lesson's own points, in the chosen language
    assert session.header["engine"]["id"] in result.stdout
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


def _map_order(output: str) -> str:
    """`docker info` prints ` Runtimes: a b c` by ranging over a Go map (the /info `Runtimes` object): the
    same recorded body gives a new order on every run. Compare that line's words as a set, the rest as is."""
    words = lambda m: " ".join([m[1], *sorted(m[2].split())])  # noqa: E731
    return re.sub(r"^( Runtimes:)(.*)$", words, output, flags=re.M)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_real_docker_cli_against_served_bundled_recording(name: str, short_tmp: Path) -> None:
    """No engine is running here: the answers can only come from the recording."""
    assert shutil.which("docker"), "the docker CLI is needed"
    session = load_replay(BUNDLED[name])
    if direct_commands(session) and os.geteuid() != 0:
        pytest.skip("re-running a command that reached no server needs a mount namespace (root)")
    server = Served(BUNDLED[name], short_tmp, "--speed", "0")
    try:
        for i, live in enumerate(session.header["live"]):
            if live.get("not_servable"):  # said in the header, the narration and the README
                continue
            stdin = live.get("stdin")
            env = engines.docker_env(server.url, live.get("env") or {}, plugins=bool(live.get("plugins")))
            command = live["command"]
            if live.get("context"):  # the CLI reaches the served lesson through a context
                env["DOCKER_CONFIG"] = str(short_tmp / f"config{i}")
                shutil.copytree(engines.docker_config_dir(), env["DOCKER_CONFIG"], symlinks=True)
                create = ["docker", "context", "create", live["context"], "--docker", f"host={server.url}"]
                subprocess.run(create, env=env, check=True, capture_output=True, timeout=60)
            if live.get("direct"):  # reached no server: re-run the same way (the served socket for
                env["LESSON_SOCKET"] = str(server.socket)  # the permission case: nobody may connect)
                command = ["unshare", "--mount", "--", "sh", "-c", live["direct"], "sh", *command]
            result = subprocess.run(
                command,
                input=stdin.encode() if stdin else None,
                env=env,
                capture_output=True,
                timeout=60,
            )
            # Bytes, not text mode: the legacy builder's progress lines keep their `\r`.
            stdout, stderr = (result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"))
            assert (result.returncode, _map_order(stdout)) == (live["exit_code"], _map_order(live["stdout"]))
            assert stderr == live["stderr"]
    finally:
        server.stop()


def test_html_page_shows_what_the_cli_printed_without_a_server() -> None:
    """The projector page of backend-down carries the real CLI errors, not only dockertap's 502."""
    from dockertap.recordings.html_export import render_html

    session = load_replay(BUNDLED["backend-down"])
    page = render_html(session)
    direct = direct_commands(session)
    assert len(direct) == 3
    for live in direct:
        assert html.escape(live["stderr"].strip(), quote=True) in page
