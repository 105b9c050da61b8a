"""Evidence from an engine in its own mount namespace (issue 9.2): Docker-in-Docker, snaps, any engine
started under a private root. The test engines (tests/engines.py) each run pivot_root'd into their own
Debian root, so `/info`'s `Containerd.Address` and containerd's state dir are paths in *that* root and
must be followed through `/proc/<pid>/root`; the container here is started before the tap, so `runc
ps` for `docker top` can only be attributed by process ancestry (the shim found from the state dir).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import engines
import pytest
from test_evidence import marks, traced

from dockertap.proxy.evidence.engine_host import EngineHost, find_containerd_socket
from dockertap.proxy.evidence.execs import capability_reason

IMAGE = engines.BUSYBOX_TAG
needs_root = pytest.mark.skipif(capability_reason() is not None, reason=str(capability_reason()))


@needs_root
def test_the_engines_containerd_is_found_through_its_root(dockerd):
    engine = EngineHost.of(dockerd.pid)
    assert engine.own_mount_namespace
    info = json.loads(engines.docker(dockerd.url, "info", "--format", "{{json .}}", check=True).stdout)
    path, how = find_containerd_socket(info, engine)
    assert path is not None and path.startswith("/proc/") and Path(path).exists(), how
    assert "through /proc/" in how


@needs_root
def test_top_of_a_container_started_before_the_tap_is_observed_not_missing(dockerd, short_tmp):
    """The shim predates dockertap and containerd is only reachable through the engine's root:
    `runc ps` is still the engine's (the shim is the parent of the container's init.pid)."""
    name = f"dt-mn-{uuid.uuid4().hex[:6]}"
    engines.docker(dockerd.url, "run", "-d", "--name", name, IMAGE, "sleep", "300", check=True)
    try:
        records, _ = traced(dockerd, short_tmp, "top", name)
        stop_records, _ = traced(dockerd, short_tmp, "stop", "-t", "1", name)
    finally:
        engines.docker(dockerd.url, "rm", "-f", name)
    top = next(r for r in records if r["route"] == "GET /containers/{id}/top")
    assert marks(top)["runc.ps"] == "observed", top["layers"]
    assert "missing" not in marks(top).values(), top["layers"]
    stop = next(r for r in stop_records if r["route"] == "POST /containers/{id}/stop")
    assert marks(stop)["runc.kill"] == "observed", stop["layers"]
    assert marks(stop)["containerd"] == "observed", stop["layers"]
    assert "missing" not in marks(stop).values(), stop["layers"]


@needs_root
def test_the_evidence_status_line_says_containerd_is_watched_through_the_engines_root(dockerd):
    argv = [
        *engines.dockertap_command(),
        "run",
        "--observe",
        "--backend",
        dockerd.url,
        "--",
        "docker",
        "run",
        "--rm",
        engines.BUSYBOX_TAG,
        "true",
    ]  # a command that reaches below the engine: `run` starts observers only for such commands
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


def test_absolute_symlinks_inside_the_engines_root_stay_inside_it(tmp_path: Path) -> None:
    """`/var/run` → `/run` in the engine's root must not lead to *our* /run."""
    from dockertap.proxy.evidence.engine_host import in_root

    (tmp_path / "run" / "docker").mkdir(parents=True)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to("/run")
    (tmp_path / "run" / "docker" / "c.sock").write_text("")
    assert in_root(str(tmp_path), "/var/run/docker/c.sock") == f"{tmp_path}/run/docker/c.sock"
    (tmp_path / "loop").symlink_to("loop")
    assert in_root(str(tmp_path), "/loop/x").startswith(str(tmp_path))
