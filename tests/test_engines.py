"""The engine fixtures themselves: every other real-engine test relies on these facts."""

from __future__ import annotations

import json
import os
import uuid

import engines
import pytest
from conftest import ALL_ENGINE_IDS
from engines import BUSYBOX_TAG, docker

# The fixtures' own tests run on every engine, the crun variant included (it skips with the reason
# where the host's cgroup layout rules it out).
EVERY_ENGINE = pytest.mark.parametrize("engine", [*ALL_ENGINE_IDS, "podman-5.8-crun"], indirect=True)


@EVERY_ENGINE
def test_engine_answers_docker_version(engine: engines.Engine) -> None:
    result = docker(engine.url, "version", "--format", "{{json .Server}}")
    assert result.returncode == 0, result.stderr
    server = json.loads(result.stdout)
    components = {c["Name"]: c["Version"] for c in server.get("Components") or []}
    expected = {"dockerd": "Engine", "podman": "Podman Engine"}[engine.name]
    assert expected in components, server
    # The generation is the one its id promises (the root was built from the right suite).
    assert components[expected].startswith(engine.version + "."), (engine.id, components)


@EVERY_ENGINE
def test_run_echo_directly(engine: engines.Engine) -> None:
    result = docker(engine.url, "run", "--rm", BUSYBOX_TAG, "echo", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hi\n", "")


@EVERY_ENGINE
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


@EVERY_ENGINE
def test_engine_runs_in_its_own_root_and_network_namespace(engine: engines.Engine) -> None:
    """pivot_root, not chroot: the engine's root is its Debian root, and its network is not ours."""
    for kind in ("mnt", "net"):
        assert os.readlink(f"/proc/{engine.pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"), kind
    assert engine.root is not None
    release = engine.host_path("/etc/os-release").read_text()
    assert release == (engine.root / "etc/os-release").read_text()
    # The host's network devices are invisible to it, and its own bridge (docker0 or podman's) is not
    # on the host: its network namespace is its own.
    inside = _links(engine.run("cat", "/proc/net/dev").stdout)
    host = _links(open("/proc/self/net/dev").read())
    assert "lo" in inside
    assert inside & host <= {"lo", "docker0"}, inside & host
    if engine.name == "dockerd":
        assert "docker0" in inside
        assert _bridge_id("docker0", engine.run) != _bridge_id("docker0", None)


def _links(proc_net_dev: str) -> set[str]:
    return {line.split(":")[0].strip() for line in proc_net_dev.splitlines()[2:]}


def _bridge_id(name: str, run_inside) -> str:
    """The bridge's MAC address in the engine's namespace (``run_inside``) or on the host ("" if none)."""
    path = f"/sys/class/net/{name}/address"
    if run_inside is None:
        return open(path).read().strip() if os.path.exists(path) else ""
    return run_inside("cat", path).stdout.strip()


@EVERY_ENGINE
def test_exec_enters_the_container_not_the_host(engine: engines.Engine) -> None:
    name = f"dt-exec-{uuid.uuid4().hex[:8]}"
    started = docker(engine.url, "run", "-d", "--name", name, BUSYBOX_TAG, "sleep", "300")
    assert started.returncode == 0, started.stderr
    try:
        seen = docker(engine.url, "exec", name, "cat", "/etc/passwd")
    finally:
        docker(engine.url, "rm", "--force", name)
    assert seen.stdout == "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n", seen.stderr


@EVERY_ENGINE
def test_root_tools_run_in_the_engines_namespaces(engine: engines.Engine) -> None:
    if engine.name == "dockerd":
        listed = engine.ctr("images", "list", "--quiet")
        assert listed.returncode == 0, listed.stderr
        uses_containerd_store = engine.spec is not None and engine.spec.image_store == "containerd"
        # Only with the containerd image store does containerd itself hold the images.
        assert ("dt-busybox:latest" in listed.stdout) == uses_containerd_store, listed.stdout
    else:
        listed = engine.podman_cli("images", "--format", "{{.Repository}}:{{.Tag}}")
        assert listed.returncode == 0, listed.stderr
        assert any(name.endswith("/dt-busybox:latest") for name in listed.stdout.split()), listed.stdout


@EVERY_ENGINE
def test_image_store_is_the_one_the_id_names(engine: engines.Engine) -> None:
    if engine.name != "dockerd":
        pytest.skip(f"{engine.id}: Podman has one image store (containers/storage)")
    info = json.loads(docker(engine.url, "info", "--format", "{{json .}}").stdout)
    driver_status = dict(info.get("DriverStatus") or [])
    if engine.spec is not None and engine.spec.image_store == "containerd":
        assert driver_status.get("driver-type") == "io.containerd.snapshotter.v1", info["Driver"]
    else:
        assert info["Driver"] == "overlay2", info["Driver"]


@EVERY_ENGINE
def test_dockerd_has_its_own_containerd(engine: engines.Engine) -> None:
    if engine.name != "dockerd":
        pytest.skip(f"{engine.id}: Podman has no containerd")
    assert engine.containerd_socket is not None
    assert engine.containerd_socket.is_socket()
    assert str(engine.containerd_socket).startswith(str(engine.base) + "/")
    # The containerd serving that socket was started by our dockerd, not by the system.
    owned = engines.processes_under(engine.base)
    names = {open(f"/proc/{pid}/comm").read().strip() for pid in owned if os.path.exists(f"/proc/{pid}")}
    assert {"dockerd", "containerd"} <= names


@pytest.mark.engine
@pytest.mark.parametrize("engine_id", ["dockerd-28.5", "podman-5.8"])
def test_stop_leaves_no_process_or_mount(short_tmp, engine_id: str) -> None:
    """A throwaway engine with a running container: after stop() nothing of it survives."""
    try:
        engine = engines.start_engine(engine_id, short_tmp / "e")
    except engines.EngineStartError as err:
        if os.environ.get("DOCKERTAP_REQUIRE_ENGINES") == "1":
            pytest.fail(str(err), pytrace=False)
        pytest.skip(str(err))
    try:
        engines.import_busybox(engine)
        started = docker(engine.url, "run", "-d", BUSYBOX_TAG, "sleep", "600")
        assert started.returncode == 0, started.stderr
        # engine, its containerd or conmon, the shim, sleep
        assert len(engines.processes_under(engine.base)) >= 3
        # Its root mount is the overlay of its Debian root, as it sees it.
        roots = [line.split() for line in open(f"/proc/{engine.pid}/mountinfo") if line.split()[4] == "/"]
        assert roots and roots[-1][roots[-1].index("-") + 2] == "dockertap-root", roots
        namespace = os.readlink(f"/proc/{engine.pid}/ns/mnt")
    finally:
        engine.stop()
    assert engines.processes_under(engine.base) == []
    assert engines.mounts_under(engine.base) == []
    assert not engine.base.exists()
    in_namespace = [p for p in os.listdir("/proc") if p.isdigit() and _mount_namespace(p) == namespace]
    assert [(p, _state(p)) for p in in_namespace if _state(p) not in ("Z", "")] == []


def _mount_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _state(pid: str) -> str:
    """The process state letter ("Z": a zombie, already dead), "" if it is gone."""
    try:
        return open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[0]
    except OSError:
        return ""


@EVERY_ENGINE
def test_busybox_image_has_the_applets_tests_use(engine: engines.Engine) -> None:
    applets = "sh echo cat sleep ls top wc sha256sum head"
    script = f"for c in {applets}; do command -v $c >/dev/null || echo no-$c; done"
    result = docker(engine.url, "run", "--rm", BUSYBOX_TAG, "sh", "-c", script)
    assert (result.returncode, result.stdout) == (0, "")
