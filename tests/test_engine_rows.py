"""The layer model's containerd rows against each dockerd's own containerd event stream.

The oracle is independent of dockertap: the engine root's own `ctr events`, run inside the engine's
namespaces, records what containerd published while one docker command ran (the real docker CLI, talking
to the engine directly). For every command the model's chain for that engine (fingerprinted from its
`/_ping`, `/version`, `/info`) must name every topic containerd published (nothing unmodelled, which
would show as "unexpected"), and every topic of a step it does not mark conditional must have been
published (nothing falsely "missing"). The table of what differs between the engines is in the
assertions of `test_containerd_image_store_differences`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import engines
import pytest

from dockertap.analyzers.fingerprint import BackendFingerprint, fingerprint
from dockertap.analyzers.layer_table import expected_chain
from dockertap.analyzers.routes import match_route
from dockertap.proxy.endpoints import parse_endpoint
from dockertap.proxy.probe import probe

IMAGE = engines.BUSYBOX_TAG
CONTAINERD_INSIDE = "/run/docker/containerd/containerd.sock"


class ContainerdEvents:
    """`ctr events` from the engine's root, inside its namespaces; topics in namespace `moby`."""

    def __init__(self, engine: engines.Engine) -> None:
        self.engine = engine

    def during(self, *docker_args: str, plugins: bool = False) -> list[str]:
        process = subprocess.Popen(
            self.engine.command("ctr", f"--address={CONTAINERD_INSIDE}", "events"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            time.sleep(0.5)  # subscribed before the command starts
            done = engines.docker(self.engine.url, *docker_args, plugins=plugins, timeout=240)
            assert done.returncode == 0, done.stderr
            time.sleep(0.7)  # GC and exit events trail the API answer
        finally:
            process.terminate()
            out, _ = process.communicate(timeout=10)
        # "<date> <time> +0000 UTC <namespace> <topic> <event>"
        return [f[5] for f in (line.split() for line in out.splitlines()) if len(f) > 5 and f[4] == "moby"]


def _backend(engine: engines.Engine) -> BackendFingerprint:
    found = probe(parse_endpoint(engine.url), timeout=5.0, full=True)
    assert found.ok, found.error
    return fingerprint(found.ping_headers, found.version, found.info, endpoint_url=engine.url)


def _model_topics(backend: BackendFingerprint, method: str, target: str) -> tuple[set[str], set[str]]:
    """(every containerd topic the chain names, those of steps not marked conditional)."""
    route = match_route(method, target)
    chain = expected_chain(backend.family, backend.image_store, route, engine_version=backend.engine_version)
    named, required = set(), set()
    for step in chain.steps:
        named |= set(step.events)
        if "only" not in step.note.lower():
            required |= set(step.events)
    return named, required


@pytest.fixture
def session(dockerd) -> Iterator[tuple[engines.Engine, BackendFingerprint, ContainerdEvents]]:
    yield dockerd, _backend(dockerd), ContainerdEvents(dockerd)
    engines.docker(dockerd.url, "rm", "-f", "dt-rows")
    engines.docker(dockerd.url, "rmi", "dt-rows-commit", "dt-rows-tag")


def test_containerd_image_store_differences(session, tmp_path):
    engine, backend, events = session
    archive = str(tmp_path / "img.tar")
    steps = [  # (docker CLI args, the API call it makes that is checked)
        (("create", "--name", "dt-rows", IMAGE, "sleep", "60"), ("POST", "/containers/create")),
        (("start", "dt-rows"), ("POST", "/containers/dt-rows/start")),
        (("commit", "dt-rows", "dt-rows-commit"), ("POST", "/commit?container=dt-rows")),
        (("save", "-o", archive, IMAGE), ("GET", "/images/get")),
        (("load", "-i", archive), ("POST", "/images/load")),
        (("tag", IMAGE, "dt-rows-tag"), ("POST", "/images/dt-busybox/tag")),
        (("rm", "-f", "dt-rows"), ("DELETE", "/containers/dt-rows?force=1")),
    ]
    seen: dict[str, list[str]] = {}
    for args, (method, target) in steps:
        published = events.during(*args)
        seen[args[0]] = published
        named, required = _model_topics(backend, method, target)
        unmodelled = set(published) - named
        command = f"{engine.id} `docker {args[0]}`"
        assert not unmodelled, f"{command}: containerd published {unmodelled}, not in the model"
        absent = required - set(published)
        assert not absent, f"{command}: the model requires {absent}, containerd did not publish them"
    c8d = backend.image_store == "containerd"
    assert backend.image_store == ("containerd" if engine.id.endswith("-c8d") else "graphdriver")
    # the differences from 20.10 (and from 28.5 with overlay2), as containerd itself reported them:
    assert ("/snapshot/prepare" in seen["create"]) == c8d  # create already reaches containerd
    assert ("/snapshot/commit" in seen["create"]) == c8d
    assert ("/images/create" in seen["commit"]) == c8d
    assert ("/images/create" in seen["load"]) == c8d
    assert ("/snapshot/remove" in seen["rm"]) == c8d  # the container's lease goes, and its snapshots with it
    assert seen["save"] == []
    assert seen["start"][:3] == ["/containers/create", "/tasks/create", "/tasks/start"]  # every engine


def test_model_names_the_containerd_2_1_content_events_conditionally():
    """`/content/create` exists only from containerd 2.1: the rows name it, but never require it."""
    for route, target in (("POST", "/commit"), ("POST", "/images/load")):
        chain = expected_chain("dockerd", "containerd", match_route(route, target), engine_version="28.5.2")
        step = chain.step("containerd")
        assert step is not None and "/content/create" in step.events and "only" in step.note


def test_buildkit_build_events_are_in_the_solve_rows(session, tmp_path):
    """A one-RUN buildx build: containerd events only with the containerd image store, all modelled."""
    engine, backend, events = session
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo {os.urandom(6).hex()} > /built\n")
    published = events.during("buildx", "build", "--load", "-t", "dt-rows-build", str(tmp_path), plugins=True)
    calls = ("Control/Solve", "frontend.LLBBridge/Solve", "Control/Status")  # a buildx build's /grpc calls
    methods = tuple(f"/moby.buildkit.v1.{call}" for call in calls)
    route = match_route("POST", "/grpc")
    chain = expected_chain(backend.family, backend.image_store, route, grpc_methods=methods)
    named = {event for step in chain.steps for event in step.events}
    assert set(published) <= named, f"{engine.id}: containerd published {set(published) - named}, unmodelled"
    assert bool(published) == (backend.image_store == "containerd"), published
    engines.docker(engine.url, "rmi", "dt-rows-build")


def _traced(engine: engines.Engine, tmp_path, *docker_args: str) -> list[dict]:
    trace = tmp_path / "trace.jsonl"
    command = [*engines.dockertap_command(), "run", "--observe", "--backend", engine.url, "--format", "json",
               "-o", str(trace), "--", engines.docker_binary(), *docker_args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, timeout=120, env=engines.docker_env(engine.url))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return [json.loads(line) for line in trace.read_text().splitlines() if line.startswith("{")]


def test_podman_attach_initialises_and_start_only_starts(podman, tmp_path):
    """`docker run` on Podman: attach inits (conmon, `runc create`, netavark and its firewall tool — `nft` on
    Podman 5, `iptables` on 4.3), start only execs `runc start`. Seen by the tap's own exec evidence."""
    records = _traced(podman, tmp_path, "run", "--rm", IMAGE, "echo", "hi")
    by_route = {r.get("route"): r for r in records if r.get("type") != "background"}

    def execs(route: str) -> set[str]:
        items = [i for i in by_route[route].get("evidence", []) if i["source"] == "exec"]
        return {f"{i['program']} {i.get('runtime_command') or ''}".strip() for i in items}

    attach, start = execs("POST /containers/{id}/attach"), execs("POST /containers/{id}/start")
    assert {"conmon create", "netavark"} <= attach and any(e.endswith(" create") for e in attach), attach
    firewall = "nft" if podman.version.startswith("5") else "iptables"
    assert firewall in {e.split()[0] for e in attach}, (podman.id, attach)
    # start spawns no conmon (attach did); Podman 4.3 only probes `conmon --version` on start
    spawned = [e for e in start if e.startswith("conmon") and e != "conmon --version"]
    assert any(e.endswith(" start") for e in start) and not spawned, start
    for record in (by_route["POST /containers/{id}/attach"], by_route["POST /containers/{id}/start"]):
        assert all(layer["status"] != "missing" for layer in record["layers"]), record["layers"]
