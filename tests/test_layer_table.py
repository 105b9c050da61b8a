"""The layer model: every route has a chain on both backends, and the documented non-obvious facts hold."""

from __future__ import annotations

import pytest

from dockertap.analyzers.layer_table import LAYERS, all_rows, condition_holds, expected_chain
from dockertap.analyzers.routes import all_routes, match_route


def chain(family: str, method: str, target: str, store: str = "graphdriver", **kw):
    return expected_chain(family, store, match_route(method, target), **kw)


@pytest.mark.parametrize("family", ["dockerd", "podman"])
@pytest.mark.parametrize("store", ["graphdriver", "containerd"])
def test_every_route_has_a_chain(family: str, store: str) -> None:
    for spec in all_routes():
        target = spec.path.replace("{", "").replace("}", "")
        result = expected_chain(family, store, match_route(spec.method, target), engine_version="29.0.0")
        assert result.steps, spec.template
        assert {s.layer for s in result.steps} <= LAYERS, spec.template
        assert result.explanation["en"] and result.explanation["ja"], spec.template
        assert result.source, spec.template


def test_rows_are_sourced_and_bilingual() -> None:
    for row in all_rows():
        assert row.source
        if not row.add:
            assert row.en and row.ja, row.key


def test_dockerd_start() -> None:
    c = chain("dockerd", "POST", "/v1.41/containers/abc/start")
    assert c.layers[:4] == ("dockerd", "containerd", "shim", "runc")
    assert {"Tasks.Create", "Tasks.Start"} <= set(c.step("containerd").operations)
    assert {"/tasks/create", "/tasks/start"} <= set(c.step("containerd").events)
    assert {"create", "start"} <= set(c.step("runc").operations)
    assert "containerd-shim-runc-v2" in c.step("shim").execs


def test_libnetwork_setkey_only_on_older_engines() -> None:
    old = chain("dockerd", "POST", "/containers/abc/start", engine_version="20.10.24+dfsg1")
    new = chain("dockerd", "POST", "/containers/abc/start", engine_version="29.7.2")
    assert "libnetwork-setkey" in old.step("host").execs
    assert "libnetwork-setkey" not in new.step("host").execs


def test_containerd_store_adds_snapshot_work() -> None:
    gd = chain("dockerd", "POST", "/containers/create")
    c8d = chain("dockerd", "POST", "/containers/create", store="containerd")
    assert gd.layers == ("dockerd",)
    assert "Snapshots.Prepare" in c8d.step("containerd").operations
    assert "/snapshot/commit" in c8d.step("containerd").events


def test_top_runs_host_ps_and_runc_ps() -> None:
    c = chain("dockerd", "GET", "/containers/abc/top?ps_args=aux")
    assert "ps" in c.step("host").execs
    assert "runc ps" in c.step("runc").execs


def test_stats_reach_containerd_but_not_runc() -> None:
    c = chain("dockerd", "GET", "/containers/abc/stats?stream=0")
    assert "Tasks.Metrics" in c.step("containerd").operations
    assert "runc" not in c.layers


def test_version_execs_runc_version() -> None:
    for target in ("/version", "/info"):
        c = chain("dockerd", "GET", target)
        assert {"runc --version", "docker-init --version"} <= set(c.step("host").execs)


def test_buildkit_runs_runc_without_containerd() -> None:
    c = chain("dockerd", "POST", "/grpc")
    assert "runc run" in c.step("runc").execs
    assert "containerd" not in c.layers and "shim" not in c.layers
    legacy = chain("dockerd", "POST", "/build?t=x")
    assert "containerd" in legacy.layers
    bk = chain("dockerd", "POST", "/build?version=2")
    assert "containerd" not in bk.layers


def test_commit_pauses_unless_told_not_to() -> None:
    assert "Tasks.Pause" in chain("dockerd", "POST", "/commit?container=a").step("containerd").operations
    assert chain("dockerd", "POST", "/commit?container=a&pause=0").layers == ("dockerd",)


def test_forced_remove_kills() -> None:
    # removing a stopped container touches nothing below dockerd but, maybe, its network rules
    removal = chain("dockerd", "DELETE", "/containers/a")
    assert removal.layers == ("dockerd", "host") and removal.step("host").optional == ("*",)
    assert "runc kill" in chain("dockerd", "DELETE", "/containers/a?force=1").step("runc").execs


def test_podman_start_has_conmon_and_no_containerd() -> None:
    c = chain("podman", "POST", "/v1.41/containers/abc/start", runtime="runc")
    assert "conmon" in c.layers
    assert "containerd" not in c.layers and "shim" not in c.layers
    assert "runc start" in c.step("runc").execs
    assert "crun" in chain("podman", "POST", "/containers/abc/start").layers  # Podman's usual default


def test_podman_attach_does_the_oci_create() -> None:
    c = chain("podman", "POST", "/containers/abc/attach?stream=1", runtime="crun")
    assert "crun create" in c.step("crun").execs
    assert "conmon" in c.step("conmon").execs


def test_libpod_routes_reuse_compat_rows_on_podman_and_404_on_dockerd() -> None:
    assert "conmon" in chain("podman", "POST", "/libpod/containers/abc/start").layers
    assert "404" in chain("dockerd", "GET", "/libpod/_ping").steps[0].operations[0]


def test_swarm_defaults() -> None:
    assert chain("dockerd", "POST", "/swarm/init").layers == ("dockerd",)
    assert "503" in chain("podman", "GET", "/services").steps[0].operations[0]


def test_conditions() -> None:
    assert condition_holds("query.force", {"force": ["true"]}, None)
    assert not condition_holds("query.force", {"force": ["0"]}, None)
    assert condition_holds("query.pause=0", {"pause": ["false"]}, None)
    assert condition_holds("body.Detach", None or {}, {"Detach": True})
    assert not condition_holds("body.Detach", {}, {"Detach": False})
    assert not condition_holds("body.Detach", {}, b"not json")


def test_a_step_the_note_calls_conditional_is_marked_so():
    """A note that says "only when …" must come with the structured flag the correlator reads
    (`optional` or `if_running`): the word alone once made steps optional, and rows written that way
    would now be reported missing whenever the condition did not hold."""
    from dockertap.analyzers import layer_table

    unmarked = [
        (row.family, row.route, step.layer)
        for group in (layer_table.ROWS, layer_table.GROUP_DEFAULTS, layer_table.GRPC_ROWS)
        for row in group
        for step in row.steps
        if step.note.lstrip().lower().startswith("only") and not (step.optional or step.if_running)
    ]
    assert not unmarked, unmarked
