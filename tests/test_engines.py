"""The engine fixtures themselves: every other real-engine test relies on these facts."""

from __future__ import annotations

import json
import os
import uuid

import engines
import pytest
from engines import BUSYBOX_TAG, docker


def test_engine_answers_docker_version(engine: engines.Engine) -> None:
    result = docker(engine.url, "version", "--format", "{{json .Server}}")
    assert result.returncode == 0, result.stderr
    server = json.loads(result.stdout)
    components = {c["Name"] for c in server.get("Components") or []}
    expected = {"dockerd": "Engine", "podman": "Podman Engine"}[engine.name]
    assert expected in components, server


def test_run_echo_directly(engine: engines.Engine) -> None:
    result = docker(engine.url, "run", "--rm", BUSYBOX_TAG, "echo", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hi\n", "")


def test_network_create_and_rm(engine: engines.Engine) -> None:
    name = f"dt-net-{uuid.uuid4().hex[:8]}"
    created = docker(engine.url, "network", "create", name)
    assert created.returncode == 0, created.stderr
    try:
        listed = docker(engine.url, "network", "ls", "--format", "{{.Name}}")
        assert name in listed.stdout.split()
    finally:
        removed = docker(engine.url, "network", "rm", name)
    assert removed.returncode == 0, removed.stderr
    assert name not in docker(engine.url, "network", "ls", "--format", "{{.Name}}").stdout.split()


def test_dockerd_has_its_own_containerd(dockerd: engines.Engine) -> None:
    assert dockerd.containerd_socket is not None
    assert dockerd.containerd_socket.is_socket()
    assert str(dockerd.containerd_socket).startswith(str(dockerd.base) + "/")
    # The containerd serving that socket was started by our dockerd, not by the system.
    owned = engines.processes_under(dockerd.base)
    names = {open(f"/proc/{pid}/comm").read().strip() for pid in owned if os.path.exists(f"/proc/{pid}")}
    assert {"dockerd", "containerd"} <= names


@pytest.mark.engine
def test_stop_leaves_no_process_or_mount(short_tmp) -> None:
    """A throwaway dockerd with a running container: after stop() nothing of it survives."""
    try:
        engine = engines.start_dockerd(short_tmp / "e")
    except engines.EngineStartError as err:
        if os.environ.get("DOCKERTAP_REQUIRE_ENGINES") == "1":
            pytest.fail(str(err), pytrace=False)
        pytest.skip(str(err))
    try:
        engines.import_busybox(engine)
        started = docker(engine.url, "run", "-d", BUSYBOX_TAG, "sleep", "600")
        assert started.returncode == 0, started.stderr
        assert len(engines.processes_under(engine.base)) >= 4  # dockerd, containerd, shim, sleep
        assert engines.mounts_under(engine.base)
    finally:
        engine.stop()
    assert engines.processes_under(engine.base) == []
    assert engines.mounts_under(engine.base) == []
    assert not engine.base.exists()


def test_busybox_image_has_the_applets_tests_use(engine: engines.Engine) -> None:
    applets = "sh echo cat sleep ls top wc sha256sum head"
    script = f"for c in {applets}; do command -v $c >/dev/null || echo no-$c; done"
    result = docker(engine.url, "run", "--rm", BUSYBOX_TAG, "sh", "-c", script)
    assert (result.returncode, result.stdout) == (0, "")
