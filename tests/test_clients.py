"""The clients users really run — compose v1 and v2, buildx, the docker SDK — through dockertap.

Each test drives one real client through a ``dockertap proxy`` in front of one engine and checks
both what the client saw (it worked) and what the trace says it did (the requests that made it work).
Runs on every engine; what a generation cannot serve is skipped with the reason.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import engines
import pytest
from engines import BUSYBOX_TAG


@pytest.fixture
def tap(engine: engines.Engine, short_tmp: Path) -> Iterator[engines.Tap]:
    """A ``dockertap proxy`` in front of ``engine`` for one test."""
    started = engines.start_tap(engine.url, short_tmp)
    try:
        yield started
    finally:
        started.stop()


def requests_in(tap: engines.Tap) -> list[tuple[str, str, int]]:
    """``(method, path without API version or query, status)`` of every traced exchange (stops the tap
    first, so every exchange has been written)."""
    tap.stop()
    seen = []
    for record in tap.trace_lines():
        if "method" not in record:
            continue
        path = record["path"].split("?", 1)[0]
        parts = path.split("/", 2)
        if len(parts) == 3 and parts[1].startswith("v1."):
            path = "/" + parts[2]
        seen.append((record["method"], path, record.get("status") or 0))
    return seen


def _compose_project(directory: Path, marker: str, with_version_key: bool) -> str:
    project = f"dtc{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True, exist_ok=True)
    header = "version: '2.4'\n" if with_version_key else ""  # v1 needs it; v2 warns that it is obsolete
    (directory / "docker-compose.yml").write_text(
        f"{header}services:\n  box:\n    image: {BUSYBOX_TAG}\n    command: sh -c 'echo {marker}; sleep 30'\n"
    )
    return project


def _check_compose_trace(tap: engines.Tap, project: str) -> None:
    seen = requests_in(tap)
    created = [status for method, path, status in seen if (method, path) == ("POST", "/containers/create")]
    assert created and all(status == 201 for status in created), seen
    assert any(method == "POST" and path == "/networks/create" for method, path, _ in seen), seen
    assert any(method == "DELETE" and path.startswith("/containers/") for method, path, _ in seen), seen
    assert any(method == "DELETE" and path.startswith("/networks/") for method, path, _ in seen), seen


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_compose_up_logs_down_through_the_tap(
    engine: engines.Engine, tap: engines.Tap, short_tmp: Path, version: str
) -> None:
    marker = f"compose-{version}-ok"
    directory = short_tmp / "project"
    project = _compose_project(directory, marker, with_version_key=version == "v1")
    compose = engines.compose_v1 if version == "v1" else engines.compose_v2

    def run(*args: str):
        return compose(tap.url, directory, "--project-name", project, *args)

    up = run("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        logs = _wait_for_output(lambda: run("logs", "--no-color").stdout, marker)
        assert marker in logs
    finally:
        down = run("down", "--timeout", "1")
    assert down.returncode == 0, down.stderr
    _check_compose_trace(tap, project)


def _wait_for_output(read, marker: str, timeout: float = 20) -> str:
    import time

    deadline = time.monotonic() + timeout
    text = read()
    while marker not in text and time.monotonic() < deadline:
        time.sleep(0.3)
        text = read()
    return text


def test_buildx_build_then_run_through_the_tap(
    engine: engines.Engine, tap: engines.Tap, short_tmp: Path
) -> None:
    """buildx's docker driver talks BuildKit's gRPC over the daemon's /grpc and /session upgrades."""
    if engine.name == "podman":
        pytest.skip(
            f"{engine.id}: Podman serves no BuildKit API (/grpc, /session) for buildx's docker driver"
        )
    context = short_tmp / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {BUSYBOX_TAG}\nRUN echo built-by-buildkit > /marker\n")
    tag = f"dt-buildx-{uuid.uuid4().hex[:8]}:latest"
    # RUN without a network: dockerd-20.10 runs here without a default bridge (see engines.py).
    argv = ("build", "--progress", "plain", "--network", "none", "--tag", tag, str(context))
    built = engines.buildx(tap.url, *argv)
    try:
        assert built.returncode == 0, built.stderr
        ran = engines.docker(engine.url, "run", "--rm", tag, "cat", "/marker")
        assert (ran.returncode, ran.stdout) == (0, "built-by-buildkit\n"), ran.stderr
    finally:
        engines.docker(engine.url, "rmi", "--force", tag)
    seen = requests_in(tap)
    assert any((method, path) == ("POST", "/session") for method, path, _ in seen), seen
    assert any((method, path) == ("POST", "/grpc") for method, path, _ in seen), seen


def test_sdk_runs_a_container_through_the_tap(engine: engines.Engine, tap: engines.Tap) -> None:
    client = engines.sdk_client(tap.url)
    try:
        output = client.containers.run(BUSYBOX_TAG, ["echo", "sdk-ok"], remove=True)
        tags = {tag for image in client.images.list() for tag in image.tags}
    finally:
        client.close()
    assert output == b"sdk-ok\n"
    assert any(tag.endswith("dt-busybox:latest") for tag in tags), tags
    seen = requests_in(tap)
    assert ("POST", "/containers/create", 201) in seen, seen
    started = [s for m, p, s in seen if m == "POST" and p.startswith("/containers/") and p.endswith("/start")]
    waited = [s for m, p, s in seen if m == "POST" and p.startswith("/containers/") and p.endswith("/wait")]
    assert started == [204] and waited == [200], seen


def test_sdk_negotiates_the_engines_api_version(engine: engines.Engine, tap: engines.Tap) -> None:
    """20.10 stops at API 1.41; the SDK must ask the engine instead of assuming the newest."""
    client = engines.sdk_client(tap.url)
    try:
        negotiated = client.api.api_version
        server = client.version()
    finally:
        client.close()
    assert negotiated == server["ApiVersion"] or engine.name == "podman", (negotiated, server)
    versions = {path.split("/", 2)[1] for _, path, _ in _raw_paths(tap) if path.startswith("/v1.")}
    assert versions <= {f"v{negotiated}"}, versions


def _raw_paths(tap: engines.Tap) -> list[tuple[str, str, int]]:
    tap.stop()
    return [(r["method"], r["path"], r.get("status") or 0) for r in tap.trace_lines() if "method" in r]


def test_clients_are_the_current_generation() -> None:
    """The clients are the testing root's (docker 28.5, buildx 0.29, compose 2.40) and bookworm's
    compose 1.29, whatever the host has installed."""
    try:
        cli = engines.docker_binary()
        plugin_env = engines.docker_env("unix:///nonexistent", plugins=True)
    except (FileNotFoundError, OSError) as err:
        pytest.skip(f"clients unavailable: {err}")
    import subprocess

    def version(*argv: str, env=None) -> str:
        return subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=30).stdout

    assert "28.5." in version(cli, "--version")
    assert "0.29." in version(cli, "buildx", "version", env=plugin_env)
    assert "2.40." in version(cli, "compose", "version", env=plugin_env)
    v1 = shutil.which("docker-compose")
    if v1:
        assert "1.29." in version(v1, "version", "--short")
