"""Evidence correlation on recorded-looking item sequences (pure: no sockets, no engines).

The sequences mirror what `ctr events` and the proc connector reported for dockerd 20.10 on this
machine (see proxy/evidence/*): same topics, argv shapes and ordering; times are relative.
"""

from __future__ import annotations

from dockertap.analyzers.annotate import annotate, format_chain
from dockertap.analyzers.correlate import Correlator, apply_outcome
from dockertap.analyzers.fingerprint import fingerprint

CID = "d49adf3a1042d74650125e2860f55e50e8825d71488ef6acbcbc087371fe4ba3"
OTHER = "345eda1a311f1c406d5ad7048f726ceedb4f0e3be74a34be0990e54d455637d4"
EXEC_ID = "7b483671b6bf5a6ea974e9e3ca1c966ecc24d060d60c6940cab25e04bd32f3e5"
DOCKERD, CONTAINERD, SHIM = 14934, 14941, 23809
SOCK = "/tmp/dt/x/containerd/containerd.sock"
T0 = 1_800_000_000.0

BACKEND = fingerprint(
    {"Server": "Docker/20.10.24+dfsg1 (linux)", "Api-Version": "1.41"},
    {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41"},
    None,
    endpoint_url="unix:///tmp/dt/docker.sock",
)


def runc(pid: int, command: str, cid: str | None, *extra: str, ppid: int = SHIM, t: float = 0.0) -> dict:
    argv = ["runc", "--root", "/tmp/dt/x/runtime-runc/moby", "--log-format", "json", command, *extra]
    if cid:
        argv.append(cid)
    return {
        "source": "exec", "time": T0 + t, "pid": pid, "ppid": ppid, "uid": 0, "ancestors": [ppid],
        "program": "runc", "layer": "runc", "argv": argv, "runtime_command": command, "container_id": cid,
        "unreadable": False,
    }  # fmt: skip


def execd(pid: int, program: str, command: str | None, layer: str, *, ppid: int, t: float, cid=None) -> dict:
    argv = [program] + ([command] if command else [])
    return {
        "source": "exec", "time": T0 + t, "pid": pid, "ppid": ppid, "uid": 0, "ancestors": [ppid],
        "program": program, "layer": layer, "argv": argv, "runtime_command": command, "container_id": cid,
        "unreadable": False,
    }  # fmt: skip


def event(topic: str, t: float, cid: str = CID, exec_id: str | None = None) -> dict:
    return {
        "source": "containerd", "time": T0 + t, "namespace": "moby", "topic": topic,
        "container_id": cid, "exec_id": exec_id, "pid": None, "exit_status": None, "event": {},
    }  # fmt: skip


class Session:
    """Feeds exchanges the way the wiring does: open at request, close at end."""

    def __init__(self, **sources: bool) -> None:
        self.c = Correlator(
            engine_pids={DOCKERD, CONTAINERD},
            sources=sources or {"exec": True, "containerd": True},
        )
        # the container's shim, as found in the engine's state dir
        self.c.trust_runtimes({SHIM: (CID, "containerd-shim-runc-v2")})
        self.annotations = {}

    def open(self, key: int, method: str, target: str, t: float) -> None:
        ann = annotate(method, target, BACKEND)
        self.annotations[key] = ann
        self.c.open(key, ann.route.template, ann.route.object_id, T0 + t, ann.chain)

    def close(self, key: int, t: float, response=None, hijacked: bool = False) -> None:
        ann = self.annotations[key]
        self.c.close(key, T0 + t, responded=True, hijacked=hijacked, query=ann.route.query, response=response)

    def result(self, key: int):
        outcome = self.c.outcome(key, finished=True)
        apply_outcome(self.annotations[key], outcome)
        return self.annotations[key]


def run_rm_session() -> tuple[Session, list[dict]]:
    s = Session()
    s.open(1, "POST", "/v1.41/containers/create", 0.000)
    s.close(1, 0.010, response={"Id": CID, "Warnings": []})
    s.open(2, "POST", f"/v1.41/containers/{CID}/attach?stream=1&stdout=1&stderr=1", 0.011)
    s.open(3, "POST", f"/v1.41/containers/{CID}/wait?condition=removed", 0.012)
    s.open(4, "POST", f"/v1.41/containers/{CID}/start", 0.013)
    shim_start = execd(23803, "containerd-shim-runc-v2", "start", "shim", ppid=CONTAINERD, t=0.030, cid=CID)
    shim_start["argv"] += ["-address", SOCK, "-id", CID]
    shim_serve = execd(SHIM, "containerd-shim-runc-v2", "serve", "shim", ppid=23803, t=0.031, cid=CID)
    s.c.add(
        [
            event("/containers/create", 0.020),
            shim_start,
            shim_serve,
            runc(23820, "create", CID, "--bundle", "/b", t=0.035),
            execd(23829, "runc", "init", "runc", ppid=23820, t=0.037),  # container id only via its parent
            event("/tasks/create", 0.050),
            runc(23850, "start", CID, t=0.060),
            event("/tasks/start", 0.065),
            # the echo exits before dockerd even answers the start request
            event("/tasks/exit", 0.066),
            runc(23855, "delete", CID, t=0.070),
            event("/tasks/delete", 0.075),
            event("/containers/delete", 0.078),
        ]
    )
    s.close(4, 0.080)
    s.close(3, 0.090, response={"StatusCode": 0})
    s.close(2, 0.091, hijacked=True)
    background = s.c.settle_items(T0 + 0.5)
    return s, background


def test_run_rm_start_observed_through_containerd_and_runc():
    s, _ = run_rm_session()
    start = s.result(4)
    by_layer = {ls.layer: ls for ls in start.layers}
    assert by_layer["containerd"].status == "observed"
    assert by_layer["containerd"].operation_status["Tasks.Create"] == "observed"
    assert by_layer["containerd"].operation_status["Tasks.Start"] == "observed"
    assert by_layer["containerd"].operation_status["Containers.Create"] == "observed"
    assert by_layer["runc"].operation_status == {"create": "observed", "start": "observed"}
    assert by_layer["shim"].status == "observed"
    topics = [i.get("topic") for i in start.evidence if i["source"] == "containerd"]
    assert topics == ["/containers/create", "/tasks/create", "/tasks/start"]
    commands = [i["runtime_command"] for i in start.evidence if i.get("program") == "runc"]
    assert commands == ["create", "init", "start"]
    chain = format_chain(start)
    assert "containerd[" in chain and "Tasks.Create✓" in chain and "runc[create✓ start✓]" in chain
    assert start.mismatches == []


def test_exit_cleanup_is_a_container_event_linked_to_the_wait_not_the_attach():
    s, background = run_rm_session()
    assert s.result(2).evidence == []  # the open attach overlaps everything and owns nothing
    assert s.result(3).evidence == []
    exits = [r for r in background if r["kind"] == "container-exit"]
    assert len(exits) == 1
    record = exits[0]
    assert record["container_id"] == CID and record["observed_by"] == [3]
    names = [i.get("topic") or f"runc {i['runtime_command']}" for i in record["items"]]
    assert names == ["/tasks/exit", "runc delete", "/tasks/delete", "/containers/delete"]
    start = s.result(4)
    assert not any(i.get("topic") == "/tasks/exit" for i in start.evidence)


def test_ps_is_dockerd_only_and_an_unrelated_restart_is_background():
    s = Session()
    s.open(1, "GET", "/v1.41/containers/json", 0.0)
    # a restart policy starts another container of this engine while ps is in flight
    s.c.add([event("/tasks/start", 0.002, cid=OTHER), runc(30001, "start", OTHER, t=0.001)])
    s.close(1, 0.004)
    background = s.c.settle_items(T0 + 1)
    ps = s.result(1)
    assert [ls.layer for ls in ps.layers] == ["dockerd"]
    assert ps.layers[0].status == "observed"
    assert ps.evidence == [] and ps.mismatches == []
    assert [r["kind"] for r in background] == ["no-exchange"]
    assert {i.get("topic") or i["program"] for i in background[0]["items"]} == {"/tasks/start", "runc"}


def test_missing_and_unexpected_are_reported_as_mismatches():
    s = Session()
    s.c.add([event("/tasks/start", -5.0)])  # this engine knows CID
    s.c.settle_items(T0)
    s.open(1, "POST", f"/v1.41/containers/{CID}/pause", 0.0)
    # no `runc pause` and no /tasks/paused, but a `runc kill` on the same container
    s.c.add([runc(30010, "kill", CID, "15", t=0.003)])
    s.close(1, 0.010)
    s.c.settle_items(T0 + 1)
    pause = s.result(1)
    by_layer = {ls.layer: ls for ls in pause.layers}
    assert by_layer["containerd"].status == "missing"
    assert by_layer["containerd"].operation_status == {"Tasks.Pause": "missing"}
    assert by_layer["runc"].status == "missing"
    assert by_layer["runc"].operation_status == {"pause": "missing"}
    assert any("runc kill" in m and "not in the model" in m for m in pause.mismatches)
    assert any(m.startswith("containerd:") and "not seen" in m for m in pause.mismatches)
    assert "✗" in format_chain(pause)
    assert [i["runtime_command"] for i in pause.evidence] == ["kill"]


def test_no_active_source_leaves_everything_expected():
    s = Session(exec=False, containerd=False)
    s.open(1, "POST", f"/v1.41/containers/{CID}/pause", 0.0)
    s.close(1, 0.01)
    pause = s.result(1)
    assert {ls.layer: ls.status for ls in pause.layers if ls.layer != "dockerd"} == {
        "containerd": "expected",
        "shim": "expected",
        "runc": "expected",
    }
    assert pause.mismatches == []


def test_version_probes_split_between_concurrent_version_and_info_and_foreign_execs_dropped():
    s = Session()
    s.open(1, "GET", "/v1.41/version", 0.0)
    s.open(2, "GET", "/v1.41/info", 0.001)
    s.c.add(
        [
            execd(40001, "runc", "--version", "runc", ppid=DOCKERD, t=0.002),
            execd(40002, "runc", "--version", "runc", ppid=DOCKERD, t=0.003),
            execd(40003, "runc", "--version", "runc", ppid=99999, t=0.003),  # another engine's dockerd
            execd(40004, "docker-init", "--version", "host", ppid=DOCKERD, t=0.004),
            execd(40005, "docker-init", "--version", "host", ppid=DOCKERD, t=0.005),
        ]
    )
    s.close(1, 0.010)
    s.close(2, 0.011)
    assert s.c.settle_items(T0 + 1) == []
    assert s.c.foreign == 1
    for key in (1, 2):
        ann = s.result(key)
        assert sorted(i["program"] for i in ann.evidence) == ["docker-init", "runc"]
        assert {ls.layer: ls.status for ls in ann.layers}["host"] == "observed"


def test_names_resolve_to_ids_from_inspect_and_exec_ids_from_exec_create():
    s = Session()
    s.open(1, "GET", "/v1.41/containers/web/json", 0.0)
    s.close(1, 0.002, response={"Id": CID, "Name": "/web"})
    s.open(2, "POST", "/v1.41/containers/web/exec", 0.003)
    s.close(2, 0.004, response={"Id": EXEC_ID})
    s.open(3, "POST", f"/v1.41/exec/{EXEC_ID}/start", 0.005)
    s.c.add(
        [
            event("/tasks/exec-added", 0.006, exec_id=EXEC_ID),
            runc(30020, "exec", CID, "--process", "/tmp/p.json", "--detach", t=0.008),
            event("/tasks/exec-started", 0.010, exec_id=EXEC_ID),
            event("/tasks/exit", 0.030, exec_id=EXEC_ID),
        ]
    )
    s.close(3, 0.031, hijacked=True)
    assert s.c.settle_items(T0 + 1) == []
    start = s.result(3)
    assert [i.get("topic") or i["runtime_command"] for i in start.evidence] == [
        "/tasks/exec-added",
        "exec",
        "/tasks/exec-started",
        "/tasks/exit",
    ]
    assert {ls.layer: ls.operation_status for ls in start.layers}["runc"] == {"exec": "observed"}
    assert s.c.resolve("web") == CID


def test_finished_exchanges_are_bounded_by_count_and_age_and_late_items_become_background() -> None:
    c = Correlator(
        engine_pids={DOCKERD, CONTAINERD}, sources={"containerd": True}, max_finished=50
    )
    ping = annotate("GET", "/v1.41/_ping", BACKEND)
    start = annotate("POST", f"/v1.41/containers/{CID}/start", BACKEND)
    c.open(0, start.route.template, start.route.object_id, T0, start.chain)
    c.close(0, T0 + 0.2, responded=True, chain=start.chain)
    for key in range(1, 10_001):  # a client pinging in a loop
        c.open(key, ping.route.template, None, T0 + key * 1e-4, ping.chain)
        c.close(key, T0 + key * 1e-4 + 5e-5, responded=True, chain=ping.chain)
        if key % 100 == 0:
            c.prune(T0 + key * 1e-4)
    assert len(c._exchanges) <= 50 + 100 and len(c._finished) <= 50 + 100
    assert c.outcome(0, finished=True) is None  # the start was dropped by count, long before 300 s
    # evidence for the dropped start no longer lands on it: it is shown as background instead
    c.add([event("/tasks/start", 0.1)])
    records = c.settle_items(T0 + 10.0)
    assert [r["kind"] for r in records] == ["no-exchange"] and records[0]["items"][0][
        "topic"
    ] == "/tasks/start"
    c.prune(T0 + 400.0)
    assert c._exchanges == {} and not c._finished  # and every one goes after the horizon


def test_forged_runtime_execs_are_not_the_engines() -> None:
    """argv proves nothing: a `runc` by another user, by a root process outside the engine's tree,
    or inside a container (another mount namespace) is dropped, whatever its command line says."""
    c = Correlator(
        engine_pids={DOCKERD, CONTAINERD}, engine_namespaces={"mnt:[1]"}, sources={"exec": True}
    )
    c.trust_runtimes({SHIM: (CID, "containerd-shim-runc-v2")})
    top = annotate("GET", f"/v1.41/containers/{CID}/top", BACKEND)
    c.open(1, top.route.template, top.route.object_id, T0, top.chain)
    log = ["--log", SOCK.rsplit("/", 1)[0] + "/forged.json"]  # under containerd's state dir
    genuine = {**runc(50001, "ps", CID, "--format", "json", t=0.002), "mount_ns": "mnt:[1]"}
    by_nobody = {**runc(50002, "ps", CID, *log, ppid=SHIM, t=0.003), "uid": 65534}
    outside_tree = {**runc(50003, "ps", CID, *log, ppid=4242, t=0.004), "ancestors": [4242, 4000, 1]}
    in_container = {**runc(50004, "ps", CID, *log, ppid=SHIM, t=0.005), "mount_ns": "mnt:[2]"}
    no_uid = {**runc(50005, "ps", CID, *log, ppid=SHIM, t=0.006)}
    del no_uid["uid"]
    c.add([genuine, by_nobody, outside_tree, in_container, no_uid])
    c.close(1, T0 + 0.01, responded=True)
    assert c.settle_items(T0 + 1) == []
    outcome = c.outcome(1, finished=True)
    assert outcome is not None
    assert [i["pid"] for i in outcome.items] == [50001]
    assert c.foreign == 4


def test_a_child_of_an_accepted_runtime_exec_follows_it_but_container_processes_do_not() -> None:
    """`runc init` belongs to the `runc exec` that started it (not to a resize open at the time);
    what the container then runs (its pid was `runc init`) is never the engine's."""
    s = Session()
    s.open(1, "POST", f"/v1.41/exec/{EXEC_ID}/start", 0.0)
    s.c.close(1, T0 + 5.0, responded=True, hijacked=True)  # the hijacked stream is long-lived
    s.open(2, "POST", f"/v1.41/containers/{CID}/resize?h=40&w=120", 0.001)
    s.c.add(
        [
            runc(60001, "exec", CID, "--detach", t=0.002),
            execd(60002, "runc", "init", "runc", ppid=60001, t=0.003),
            {**runc(60003, "ps", CID, t=0.004, ppid=60002)},  # forked by the container's process
        ]
    )
    s.close(2, 0.010)
    assert s.c.settle_items(T0 + 6) == []
    resize = s.result(2)
    assert resize.evidence == [] and resize.mismatches == []
    start = s.result(1)
    assert [i["pid"] for i in start.evidence] == [60001, 60002]
    assert s.c.foreign == 1


def test_kill_with_a_signal_that_does_not_end_the_container_marks_nothing_missing() -> None:
    """`kill?signal=WINCH` (a terminal resize under `docker run -it`): `runc kill` runs, and the
    exit clean-up the model lists as optional does not follow; nothing is missing."""
    s = Session()
    s.c.add([event("/tasks/start", -5.0)])
    s.c.settle_items(T0 - 4)
    s.open(1, "POST", f"/v1.41/containers/{CID}/kill?signal=WINCH", 0.0)
    s.c.add([runc(61001, "kill", CID, "28", t=0.003)])
    s.close(1, 0.010)
    s.c.settle_items(T0 + 1)
    kill = s.result(1)
    assert kill.mismatches == []
    assert {ls.layer: ls.operation_status for ls in kill.layers}["runc"] == {"kill": "observed"}
    assert "✗" not in format_chain(kill)


def test_force_removing_an_exited_container_expects_nothing_below_dockerd() -> None:
    s = Session()
    s.c.add([event("/tasks/start", -5.0), event("/tasks/exit", -4.0)])
    s.c.settle_items(T0 - 3)
    s.open(1, "DELETE", f"/v1.41/containers/{CID}?force=1", 0.0)
    s.close(1, 0.010)
    s.c.settle_items(T0 + 1)
    removal = s.result(1)
    assert removal.mismatches == [] and "✗" not in format_chain(removal)
    # the same removal of a running container does expect the kill
    s.c.add([event("/tasks/start", 0.5)])
    s.c.settle_items(T0 + 2)
    s.open(2, "DELETE", f"/v1.41/containers/{CID}?force=1", 1.0)
    s.close(2, 1.010)
    s.c.settle_items(T0 + 3)
    assert "✗" in format_chain(s.result(2))
