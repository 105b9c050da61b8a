"""Observed evidence on real engines: the docker CLI through `dockertap run --format json`, with the
kernel's process connector and containerd events on, checked against what the host really did.

Needs root (the proc connector needs CAP_NET_ADMIN); engines come from tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import engines
import pytest

from dockertap.proxy.evidence.containerd import parse_ctr_line
from dockertap.proxy.evidence.execs import ExecWatcher, Program, capability_reason, describe_exec

IMAGE = engines.BUSYBOX_TAG
needs_root = pytest.mark.skipif(capability_reason() is not None, reason=str(capability_reason()))


def traced(engine: engines.Engine, tmp: Path, *docker_args: str) -> tuple[list[dict], list[dict]]:
    """Run `docker …` through `dockertap run --observe`; return (exchange records, background)."""
    return traced_command(engine.url, tmp, "docker", *docker_args)


def traced_command(
    backend_url: str, tmp: Path, *command: str, ok: bool = True
) -> tuple[list[dict], list[dict]]:
    """Run any client command through `dockertap run --observe`; return (records, background)."""
    trace = tmp / f"{uuid.uuid4().hex[:8]}.jsonl"
    argv = [*engines.dockertap_command(), "run", "--observe", "--format", "json", "-o", str(trace)]
    argv += ["--backend", backend_url, "--", *command]
    done = subprocess.run(
        argv, capture_output=True, timeout=120, env=engines.docker_env("unix:///nonexistent")
    )
    if ok:
        assert done.returncode == 0, done.stderr.decode()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    return [r for r in records if "type" not in r], [r for r in records if r.get("type") == "background"]


def marks(record: dict) -> dict[str, str]:
    """layer → status, and `layer.op` → status for per-operation marks."""
    out = {}
    for entry in record["layers"]:
        out[entry["layer"]] = entry["status"]
        for op, status in entry.get("operation_status", {}).items():
            out[f"{entry['layer']}.{op}"] = status
    return out


def missing(record: dict) -> list[str]:
    return [name for name, status in marks(record).items() if status == "missing"]


def one(records: list[dict], route: str) -> dict:
    found = [r for r in records if r.get("route") == route]
    assert len(found) == 1, f"{route}: {[r.get('route') for r in records]}"
    return found[0]


def layers(record: dict) -> dict[str, dict]:
    return {entry["layer"]: entry for entry in record["layers"]}


def runtime_commands(record: dict, program: str = "runc") -> list[str]:
    return [
        i["runtime_command"] for i in record["evidence"] if i["source"] == "exec" and i["program"] == program
    ]


def topics(record: dict) -> list[str]:
    return [i["topic"] for i in record["evidence"] if i["source"] == "containerd"]


@pytest.fixture
def running(dockerd):
    name = f"dt-ev-{uuid.uuid4().hex[:6]}"
    engines.docker(dockerd.url, "run", "-d", "--name", name, IMAGE, "sleep", "300", check=True)
    try:
        yield name
    finally:
        engines.docker(dockerd.url, "rm", "-f", name)


@needs_root
def test_run_start_is_observed_in_containerd_and_runc(dockerd, short_tmp):
    records, background = traced(dockerd, short_tmp, "run", "--rm", IMAGE, "echo", "hi")
    start = one(records, "POST /containers/{id}/start")
    assert {"/tasks/create", "/tasks/start"} <= set(topics(start))
    assert {"create", "start"} <= set(runtime_commands(start))
    by_layer = layers(start)
    assert by_layer["containerd"]["status"] == "observed"
    assert by_layer["runc"]["status"] == "observed"
    assert by_layer["runc"]["operation_status"] == {"create": "observed", "start": "observed"}
    assert by_layer["containerd"]["operation_status"]["Tasks.Start"] == "observed"
    assert not start["mismatches"]
    # the exit and its clean-up belong to the container, seen by the wait, not to attach or start
    assert "/tasks/exit" not in topics(start)
    exits = [b for b in background if b["kind"] == "container-exit"]
    assert exits and exits[0]["container_id"] == start["object_id"]
    wait = one(records, "POST /containers/{id}/wait")
    assert exits[0]["observed_by"] == [wait["id"]]
    assert one(records, "POST /containers/{id}/attach")["evidence"] == []


@needs_root
def test_ps_is_observed_as_dockerd_only(dockerd, short_tmp):
    records, _ = traced(dockerd, short_tmp, "ps")
    listing = one(records, "GET /containers/json")
    # with the containerd image store, dockerd asks containerd for the images (Images.Get/List),
    # which publishes no event: that layer stays "expected", never missing
    below = ["containerd"] if dockerd.spec.image_store == "containerd" else []
    assert [entry["layer"] for entry in listing["layers"]] == ["dockerd", *below]
    assert listing["layers"][0]["status"] == "observed"
    assert listing["evidence"] == [] and missing(listing) == []


@needs_root
def test_version_execs_runc_version(dockerd, short_tmp):
    # dockerd 20.10 does exec `runc --version` (and docker-init --version) on every /version:
    # seen here on Debian's 20.10.24, as the layer model says for v29.
    records, _ = traced(dockerd, short_tmp, "version")
    version = one(records, "GET /version")
    execs = {(i["program"], i["runtime_command"]) for i in version["evidence"] if not i["unreadable"]}
    assert ("runc", "--version") in execs
    assert layers(version)["host"]["status"] == "observed"


@needs_root
def test_exec_is_observed_as_runc_exec(dockerd, running, short_tmp):
    records, _ = traced(dockerd, short_tmp, "exec", running, "true")
    start = one(records, "POST /exec/{id}/start")
    assert "exec" in runtime_commands(start)
    assert {"/tasks/exec-added", "/tasks/exec-started"} <= set(topics(start))
    assert layers(start)["runc"]["operation_status"] == {"exec": "observed"}


@needs_root
def test_pause_is_observed_as_runc_pause(dockerd, running, short_tmp):
    records, _ = traced(dockerd, short_tmp, "pause", running)
    pause = one(records, "POST /containers/{id}/pause")
    assert runtime_commands(pause) == ["pause"]
    assert topics(pause) == ["/tasks/paused"]
    assert not pause["mismatches"]
    engines.docker(dockerd.url, "unpause", running, check=True)


@needs_root
def test_top_is_observed_as_runc_ps_then_host_ps(dockerd, running, short_tmp):
    records, _ = traced(dockerd, short_tmp, "top", running)
    top = one(records, "GET /containers/{id}/top")
    programs = [(i["program"], i["runtime_command"]) for i in top["evidence"] if not i["unreadable"]]
    assert ("runc", "ps") in programs
    assert any(program == "ps" for program, _ in programs)
    runc_ps = next(i for i in top["evidence"] if i["program"] == "runc")
    host_ps = next(i for i in top["evidence"] if i["program"] == "ps")
    assert runc_ps["time"] < host_ps["time"]
    assert host_ps["ppid"] == dockerd.pid  # dockerd itself runs the host ps


@needs_root
def test_podman_run_is_conmon_and_the_runtime_never_containerd(podman, short_tmp):
    records, _ = traced(podman, short_tmp, "run", "--rm", IMAGE, "echo", "hi")
    evidence = [i for r in records for i in r["evidence"]]
    assert not any(i["source"] == "containerd" for i in evidence)
    programs = {i["program"] for i in evidence if i["source"] == "exec"}
    assert "conmon" in programs
    assert programs & {"runc", "crun"}
    runtime_creates = [
        i for i in evidence if i.get("runtime_command") == "create" and i["program"] != "conmon"
    ]
    assert runtime_creates, evidence
    for r in records:
        assert "containerd" not in layers(r)


@needs_root
def test_exec_reader_keeps_up_with_short_lived_processes():
    """N short-lived execs per second: every one is seen (readable or reported unreadable)."""
    spawned = 1000
    items: list[dict] = []

    async def main() -> tuple[float, dict]:
        watcher = ExecWatcher(items.extend, programs=(Program("true", "host", "plain", "test load"),))
        assert await watcher.start(), watcher.status()
        pids = set()
        began = time.perf_counter()
        for i in range(spawned):
            pids.add(os.posix_spawn("/bin/true", ["/bin/true", str(i)], os.environ))
            if i % 50 == 0:
                await asyncio.sleep(0)
        for pid in pids:
            os.waitpid(pid, 0)
        rate = spawned / (time.perf_counter() - began)
        await asyncio.sleep(0.5)
        await watcher.stop()
        mine = [i for i in items if i["pid"] in pids]
        return rate, {
            "seen": len({i["pid"] for i in mine}),
            "readable": sum(not i["unreadable"] for i in mine),
        }

    rate, counts = asyncio.run(main())
    print(f"\n{spawned} execs at {rate:.0f}/s: seen {counts['seen']}, command line read {counts['readable']}")
    assert counts["seen"] == spawned
    for item in items:
        assert (item["argv"] is None) == item["unreadable"]  # unreadable is said, never guessed


def test_command_lines_parse_into_runtime_command_and_container_id():
    cid = "d49adf3a1042d74650125e2860f55e50e8825d71488ef6acbcbc087371fe4ba3"
    root = ["runc", "--root", "/x/runtime-runc/moby", "--log", "/b/log.json", "--log-format", "json"]
    cases = [
        ([*root, "create", "--bundle", "/b", "--pid-file", "/b/init.pid", cid], ("create", cid)),
        ([*root, "kill", cid, "15"], ("kill", cid)),
        ([*root, "exec", "--process", "/tmp/p.json", "--detach", "--pid-file", "/p", cid], ("exec", cid)),
        ([*root, "ps", "--format", "json", cid], ("ps", cid)),
        ([*root, "update", "--resources=-", cid], ("update", cid)),
        (["runc", "--version"], ("--version", None)),
        (["runc", "init"], ("init", None)),
        (["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", cid, "start"], ("start", cid)),
        (
            ["/usr/bin/conmon", "--api-version", "1", "-c", cid, "-u", cid, "-r", "/usr/sbin/runc"],
            ("create", cid),
        ),
        (["/usr/bin/conmon", "-e", "-c", cid, "--exec-attach"], ("exec", cid)),
    ]
    for argv, (command, container) in cases:
        parsed = describe_exec(argv)
        assert (parsed["runtime_command"], parsed["container_id"]) == (command, container), argv


def test_ctr_events_lines_parse():
    # verbatim from `ctr --address … events` (containerd 1.6.20, Debian 12)
    cid = "345eda1a311f1c406d5ad7048f726ceedb4f0e3be74a34be0990e54d455637d4"
    eid = "7b483671b6bf5a6ea974e9e3ca1c966ecc24d060d60c6940cab25e04bd32f3e5"
    line = (
        f'2026-11-29 10:41:29.213528451 +0000 UTC moby /tasks/exit {{"container_id":"{cid}","id":"{eid}",'
        f'"pid":15299,"exited_at":"2026-11-29T10:41:29.213492889Z"}}'
    )
    item = parse_ctr_line(line)
    assert item is not None
    assert (item["namespace"], item["topic"], item["container_id"], item["exec_id"]) == (
        "moby",
        "/tasks/exit",
        cid,
        eid,
    )
    assert abs(item["time"] - 1795948889.213528) < 1e-3
    created = parse_ctr_line(
        f'2026-11-29 10:41:28.939182101 +0000 UTC moby /containers/create {{"id":"{cid}"}}'
    )
    assert created is not None and created["container_id"] == cid and created["exec_id"] is None
    assert parse_ctr_line("ctr: failed to dial") is None


# -- trust: evidence only from the engine's own processes (issue 10.4) -------------------------


#: Forges `runc ps <cid> --log <state dir>/…` (argv[0] "runc", the comm is sh) every 20 ms for
#: 1.5 s, as root outside the engine's tree and as nobody, while `docker top` runs in the middle.
FORGER = r"""
mark=$1 cid=$2 log=$3
forge() { exec -a runc sh -c 'sleep 0.2' ps --log "$log/$mark.json" "$cid"; }
storm() {
  for i in $(seq 75); do
    (forge) &
    setpriv --reuid=65534 --regid=65534 --clear-groups \
      bash -c "exec -a runc sh -c 'sleep 0.2' ps --log $log/$mark.json $cid" &
    sleep 0.02
  done
  wait
}
storm &
sleep 0.5
docker top "$cid" >/dev/null
wait
"""


@needs_root
def test_forged_runtime_execs_are_never_attributed(dockerd, running, short_tmp):
    """`exec -a runc … --log <containerd state dir>/…` by root outside the engine's tree and by
    `nobody`, while `docker top` runs: only the shim's genuine `runc ps` is evidence."""
    cid = engines.docker(dockerd.url, "inspect", "-f", "{{.Id}}", running, check=True).stdout.strip()
    mark = f"forged{uuid.uuid4().hex[:6]}"
    state = str(dockerd.containerd_socket.parent)  # what the old argv rule trusted
    records, background = traced_command(
        dockerd.url, short_tmp, "bash", "-c", FORGER, "forger", mark, cid, state,
    )  # fmt: skip
    items = [i for r in records for i in r["evidence"]] + [i for b in background for i in b["items"]]
    forged = [i for i in items if mark in " ".join(i.get("argv") or [])]
    assert forged == [], forged
    top = one(records, "GET /containers/{id}/top")
    assert ("runc", "ps") in {(i["program"], i["runtime_command"]) for i in top["evidence"]}
    assert missing(top) == []


@needs_root
def test_forged_runtime_execs_are_never_attributed_on_podman(podman, short_tmp):
    """The same storm against Podman (conmon, the runtime exec'd by the service), around a
    `docker pause`: only the service's genuine `runc pause` is evidence. A guard for the
    ancestry rule (the old argv rule only trusted containerd's state paths, absent on Podman)."""
    name = f"dt-fp-{uuid.uuid4().hex[:6]}"
    engines.docker(podman.url, "run", "-d", "--name", name, IMAGE, "sleep", "300", check=True)
    try:
        cid = engines.docker(podman.url, "inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
        mark = f"forged{uuid.uuid4().hex[:6]}"
        storm = FORGER.replace(" ps --log", " pause --log")
        storm = storm.replace('docker top "$cid"', 'docker pause "$cid"')
        records, background = traced_command(
            podman.url, short_tmp, "bash", "-c", storm, "forger", mark, cid, "/run/containers/storage",
        )  # fmt: skip
    finally:
        engines.docker(podman.url, "rm", "-f", name)
    items = [i for r in records for i in r["evidence"]] + [i for b in background for i in b["items"]]
    forged = [i for i in items if mark in " ".join(i.get("argv") or [])]
    assert forged == [], forged
    pause = one(records, "POST /containers/{id}/pause")
    assert ("runc", "pause") in {(i["program"], i["runtime_command"]) for i in pause["evidence"]}
    assert missing(pause) == [] and not pause["mismatches"], pause


# -- false marks (issue 9.5) -----------------------------------------------------------------


@needs_root
def test_a_terminal_resize_signal_marks_nothing_missing(dockerd, running, short_tmp):
    """`docker run -it` forwards SIGWINCH as `kill?signal=WINCH`: `runc kill` runs, the container
    lives on, and the exit clean-up (an optional part of kill) is not reported missing."""
    records, _ = traced(dockerd, short_tmp, "kill", "--signal", "WINCH", running)
    kill = one(records, "POST /containers/{id}/kill")
    assert missing(kill) == [], kill["layers"]
    assert marks(kill)["runc.kill"] == "observed"
    assert not kill["mismatches"]


@needs_root
def test_force_removing_an_exited_container_marks_nothing_missing(dockerd, short_tmp):
    """The shim and runc are gone when a container has exited: `rm -f` reaches nothing below
    dockerd, and the trace must not mark `shim[Kill✗ Delete✗]`."""
    name = f"dt-ex-{uuid.uuid4().hex[:6]}"
    engines.docker(dockerd.url, "run", "--name", name, IMAGE, "true", check=True)
    try:
        records, _ = traced(dockerd, short_tmp, "rm", "-f", name)
    finally:
        engines.docker(dockerd.url, "rm", "-f", name)
    removal = one(records, "DELETE /containers/{id}")
    assert missing(removal) == [], removal["layers"]


@needs_root
def test_force_removing_a_running_container_still_sees_the_kill(dockerd, running, short_tmp):
    """The other side of the above: a running container's forced removal does reach runc."""
    records, _ = traced(dockerd, short_tmp, "rm", "-f", running)
    removal = one(records, "DELETE /containers/{id}")
    assert marks(removal)["runc"] == "observed"
    assert missing(removal) == [], removal["layers"]


@needs_root
def test_a_server_that_is_not_an_engine_is_never_marked_dockerd_observed(short_tmp):
    """A Unix socket that answers 404 to everything (family unknown): its answers prove nothing
    about dockerd, so no layer is marked observed, and the evidence status says why."""
    from fakesock import FakeServer, other_http

    with FakeServer(str(short_tmp / "fake.sock"), other_http) as server:
        records, _ = traced_command(server.url, short_tmp, "docker", "ps", ok=False)
    assert records
    for record in records:
        assert "observed" not in marks(record).values(), record["layers"]


@needs_root
def test_podman_start_runs_netavark_for_its_exchange_not_in_the_background(podman, short_tmp):
    """Podman sets up the container's network (`netavark setup`, or CNI plugins running iptables)
    while handling start (or the attach that initialises the container): attributed there, never
    a background line."""
    name = f"dt-net-{uuid.uuid4().hex[:6]}"
    try:
        records, background = traced(podman, short_tmp, "run", "-d", "--name", name, IMAGE, "sleep", "30")
    finally:
        engines.docker(podman.url, "rm", "-f", name)
    network = {"netavark", "iptables", "ip6tables", "nft"}  # netavark (nft/iptables), or CNI's plugins
    # `netavark --version` is Podman's info probe (dockertap's own /info at start), not network setup
    stray = [
        i
        for b in background
        for i in b["items"]
        if i.get("program") in network and i.get("runtime_command") != "--version"
    ]
    assert stray == [], stray
    attributed = [r["route"] for r in records for i in r["evidence"] if i.get("program") in network]
    assert attributed and set(attributed) <= {"POST /containers/{id}/start", "POST /containers/{id}/attach"}


@needs_root
def test_image_load_runs_docker_untar_for_its_exchange(dockerd, short_tmp):
    """dockerd 20.10 unpacks `docker load` in a re-exec'd `docker-untar`: part of the load."""
    archive = short_tmp / "image.tar"
    tag = f"dt-load-{uuid.uuid4().hex[:6]}:latest"  # a layer of its own, so load must unpack it
    engines._docker_import(dockerd.url, tag, engines.busybox_rootfs_tar({"etc/marker": tag.encode()}))
    engines.docker(dockerd.url, "save", "-o", str(archive), tag, check=True)
    engines.docker(dockerd.url, "rmi", tag, check=True)
    records, background = traced(dockerd, short_tmp, "load", "-i", str(archive))
    stray = [i for b in background for i in b["items"] if str(i.get("program", "")).startswith("docker-")]
    assert stray == [], stray
    load = one(records, "POST /images/load")
    programs = {i.get("program") for i in load["evidence"]}
    if engines.describe(dockerd).startswith("dockerd 20."):
        assert programs & {"docker-untar", "docker-applyLayer"}, load["evidence"]
    assert missing(load) == []


@needs_root
def test_an_exec_resize_never_collects_the_runc_init_of_the_exec(engine, short_tmp):
    """`docker exec -it` on a terminal resizes while `runc exec` → `runc init` is still running:
    `runc init` is the child of the exec's `runc exec` and goes with it, never onto the resize."""
    if shutil.which("script") is None:
        pytest.skip("needs util-linux `script` for a terminal")
    name = f"dt-rs-{uuid.uuid4().hex[:6]}"
    engines.docker(engine.url, "run", "-d", "--name", name, IMAGE, "sleep", "300", check=True)
    resizes = []
    try:
        for _ in range(4):
            terminal = f"stty rows 40 cols 120; docker exec -it {name} true"
            records, _bg = traced_command(engine.url, short_tmp, "script", "-qec", terminal, "/dev/null")
            resizes += [r for r in records if r["route"] == "POST /exec/{id}/resize"]
            start = one(records, "POST /exec/{id}/start")
            assert marks(start)[engine_runtime(start)] == "observed"
    finally:
        engines.docker(engine.url, "rm", "-f", name)
    assert resizes, "the client never resized: no terminal?"
    for resize in resizes:
        assert resize["evidence"] == [] and not resize["mismatches"], resize
        assert "unexpected" not in marks(resize).values()


def engine_runtime(record: dict) -> str:
    return "crun" if any(entry["layer"] == "crun" for entry in record["layers"]) else "runc"


@needs_root
def test_late_containerd_events_under_load_are_waited_for_not_marked_missing(dockerd, running, short_tmp):
    """On a loaded host `ctr events` can deliver far later than the settle window (the same build
    was ✓ alone and ✗ under load). Stalling dockertap's own `ctr` for 0.8 s around a pause makes
    that lateness certain: the pause must still come out observed, never missing."""
    stall = (
        'ctr=$(pgrep -P "$PPID" -x ctr); kill -STOP "$ctr"; docker pause "$1"; '
        'sleep 0.8; kill -CONT "$ctr"; sleep 0.3'
    )
    try:
        records, _ = traced_command(dockerd.url, short_tmp, "sh", "-c", stall, "stall", running)
    finally:
        engines.docker(dockerd.url, "unpause", running)
    pause = one(records, "POST /containers/{id}/pause")
    assert missing(pause) == [], pause["layers"]
    assert marks(pause)["containerd.Tasks.Pause"] == "observed", pause["layers"]


@needs_root
def test_docker_run_on_a_terminal_marks_nothing_missing(engine, short_tmp):
    """`docker run -it` on a terminal: resizes (`resize`, and SIGWINCH forwarded as
    `kill?signal=WINCH` where the CLI proxies signals) and the run itself mark nothing missing.
    A guard: the CLI 28.5 used here resizes with `resize` only, which was already clean; the
    WINCH kill itself is proven by test_a_terminal_resize_signal_marks_nothing_missing."""
    if shutil.which("script") is None:
        pytest.skip("needs util-linux `script` for a terminal")
    terminal = f"stty rows 40 cols 120; docker run -it --rm {IMAGE} sh -c 'sleep 0.3; echo done'"
    records, _ = traced_command(engine.url, short_tmp, "script", "-qec", terminal, "/dev/null")
    assert any(r["route"] == "POST /containers/{id}/resize" for r in records), [r["route"] for r in records]
    for record in records:
        assert missing(record) == [], (record["route"], record["layers"])
