"""Evidence from an engine in its own mount namespace (issue 9.2): Docker-in-Docker, snaps, any engine
started under a private root. Its `--exec-root` (containerd's socket and state dir) is a tmpfs only
the engine's mount namespace sees, so every path it reports must be followed through
`/proc/<pid>/root`; its container was started before the tap, so `runc ps` for `docker top` can
only be attributed by process ancestry (the shim found from the engine's state dir).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import engines
import pytest

from dockertap.proxy.evidence.engine_host import EngineHost, find_containerd_socket
from dockertap.proxy.evidence.execs import capability_reason

IMAGE = engines.BUSYBOX_TAG
needs_root = pytest.mark.skipif(capability_reason() is not None, reason=str(capability_reason()))


def start_dockerd_in_own_mount_namespace(base: Path) -> engines.Engine:
    """Debian's dockerd, as tests/engines.py starts it, but in a private mount namespace whose
    exec-root is a tmpfs: its API socket stays reachable from here, its containerd does not."""
    if shutil.which("unshare") is None:
        raise engines.EngineStartError("util-linux `unshare` is not installed")
    base.mkdir(parents=True, exist_ok=True)
    sock, exec_root, log_path = base / "docker.sock", base / "x", base / "dockerd.log"
    exec_root.mkdir(exist_ok=True)
    (base / "daemon.json").write_text("{}\n")
    argv = [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", 'mount -t tmpfs -o mode=0711 tmpfs "$0" && exec "$@"', str(exec_root),
        engines.DOCKERD_BINARY,
        "--config-file", str(base / "daemon.json"),
        "--data-root", str(base / "data"),
        "--exec-root", str(exec_root),
        "--pidfile", str(base / "dockerd.pid"),
        "--host", f"unix://{sock}",
        "--storage-driver", "vfs",
        "--bridge=none", "--iptables=false", "--ip6tables=false", "--shutdown-timeout=5",
    ]  # fmt: skip
    process = engines._spawn(argv, log_path, cwd=base)
    engine = engines.Engine("dockerd", base, sock, process.pid, log_path, process=process)
    engines._wait_ready(engine, process)
    return engine


@pytest.fixture(scope="module")
def private_dockerd() -> Iterator[engines.Engine]:
    if capability_reason() is not None:
        pytest.skip(str(capability_reason()))
    try:
        engine = start_dockerd_in_own_mount_namespace(engines.short_base("dm"))
    except engines.EngineStartError as err:
        if engines.engines_required() if hasattr(engines, "engines_required") else False:
            pytest.fail(str(err))
        pytest.skip(f"engine unavailable: {err}")
    try:
        engines.import_busybox(engine)
        yield engine
    finally:
        engine.stop()


def observed_run(engine: engines.Engine, tmp: Path, *docker_args: str) -> tuple[list[dict], str]:
    trace = tmp / f"{uuid.uuid4().hex[:8]}.jsonl"
    argv = [*engines.dockertap_command(), "run", "--observe", "--format", "json", "-o", str(trace)]
    argv += ["--backend", engine.url, "--", "docker", *docker_args]
    done = subprocess.run(
        argv, capture_output=True, timeout=120, env=engines.docker_env("unix:///nonexistent")
    )
    assert done.returncode == 0, done.stderr.decode()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    return [r for r in records if "type" not in r], done.stderr.decode()


def statuses(record: dict) -> dict[str, str]:
    out = {}
    for entry in record["layers"]:
        out[entry["layer"]] = entry["status"]
        for op, status in entry.get("operation_status", {}).items():
            out[f"{entry['layer']}.{op}"] = status
    return out


@needs_root
def test_the_engines_containerd_is_found_through_its_root(private_dockerd):
    hidden = private_dockerd.base / "x" / "containerd" / "containerd.sock"
    assert not hidden.exists()  # the point of the namespace: not at that path on this host
    engine = EngineHost.of(private_dockerd.pid)
    assert engine.own_mount_namespace
    path, how = find_containerd_socket(None, engine)
    assert path is not None and path.startswith("/proc/") and path.endswith(f"/root{hidden}"), how
    assert Path(path).exists() and "through /proc/" in how


@needs_root
def test_top_of_a_container_started_before_the_tap_is_observed_not_missing(private_dockerd, short_tmp):
    """The shim predates dockertap and containerd is only reachable through the engine's root:
    `runc ps` is still the engine's (the shim is the parent of the container's init.pid)."""
    name = f"dt-mn-{uuid.uuid4().hex[:6]}"
    engines.docker(private_dockerd.url, "run", "-d", "--name", name, IMAGE, "sleep", "300", check=True)
    try:
        records, _ = observed_run(private_dockerd, short_tmp, "top", name)
        stop_records, _ = observed_run(private_dockerd, short_tmp, "stop", "-t", "1", name)
    finally:
        engines.docker(private_dockerd.url, "rm", "-f", name)
    top = next(r for r in records if r["route"] == "GET /containers/{id}/top")
    assert statuses(top)["runc.ps"] == "observed", top["layers"]
    assert "missing" not in statuses(top).values(), top["layers"]
    stop = next(r for r in stop_records if r["route"] == "POST /containers/{id}/stop")
    assert statuses(stop)["runc.kill"] == "observed", stop["layers"]
    assert statuses(stop)["containerd"] == "observed", stop["layers"]
    assert "missing" not in statuses(stop).values(), stop["layers"]


@needs_root
def test_the_evidence_status_line_says_containerd_is_watched_through_the_engines_root(private_dockerd):
    argv = [
        *engines.dockertap_command(),
        "run",
        "--observe",
        "--backend",
        private_dockerd.url,
        "--",
        "docker",
        "ps",
    ]
    done = subprocess.run(
        argv, capture_output=True, timeout=60, env=engines.docker_env("unix:///nonexistent")
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "containerd on (ctr events on /proc/" in done.stderr.decode(), done.stderr.decode()


def test_the_status_line_says_why_no_containerd_was_found() -> None:
    engine = EngineHost(4242, uid=0, name="dockerd", argv=["dockerd"], own_mount_namespace=True)
    path, why = find_containerd_socket(None, engine, exists=lambda _path: False)
    assert path is None
    assert why.startswith("engine in another mount namespace and no containerd socket found at ")
    assert "/proc/4242/root/run/containerd/containerd.sock" in why
