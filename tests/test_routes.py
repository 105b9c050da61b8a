"""Route matching: the table covers the Engine API spec, and real CLI request targets map as Docker does."""

from __future__ import annotations

import re

import pytest

from dockertap.analyzers.routes import all_routes, match_route, route_table

TABLE = route_table()
ROUTES = TABLE["routes"]


def _concrete(path: str, greedy: list[str]) -> tuple[str, dict[str, str]]:
    """Fill a template with distinctive values; greedy params get a slash so greediness is exercised."""
    values: dict[str, str] = {}

    def fill(m: re.Match) -> str:
        name = m.group(1)
        values[name] = f"org/{name}-v:1" if name in greedy else f"{name}-val"
        return values[name]

    return re.sub(r"\{(\w+)\}", fill, path), values


def test_table_records_its_spec() -> None:
    assert re.fullmatch(r"1\.\d+", TABLE["engine"]["spec_version"])
    assert "swagger.yaml" in TABLE["engine"]["source"]
    spec_rows = [r for r in ROUTES if r["family"] == "engine" and r["operation_id"]]
    assert len(spec_rows) == TABLE["engine"]["spec_routes"] >= 100
    assert TABLE["libpod"]["routes"] == sum(1 for r in ROUTES if r["family"] == "libpod")
    assert all(r["source"] for r in ROUTES)


@pytest.mark.parametrize(
    "template",
    [
        "HEAD /_ping",
        "GET /_ping",
        "HEAD /containers/{id}/archive",
        "GET /containers/{id}/attach/ws",
        "POST /session",
        "POST /grpc",
        "POST /swarm/init",
        "GET /services/{id}/logs",
        "POST /nodes/{id}/update",
        "GET /tasks/{id}",
        "POST /secrets/create",
        "POST /configs/{id}/update",
        "POST /plugins/{name}/enable",
        "GET /distribution/{name}/json",
        "POST /build/prune",
        "GET /libpod/_ping",
        "POST /libpod/containers/{name}/start",
        "POST /libpod/containers/{name}/attach",
    ],
)
def test_required_routes_present(template: str) -> None:
    assert template in {r["template"] for r in ROUTES}


@pytest.mark.parametrize("row", ROUTES, ids=[r["template"] for r in ROUTES])
def test_every_route_matches_itself_and_nothing_shadows_it(row: dict) -> None:
    path, values = _concrete(row["path"], row["greedy_params"])
    version = "/v1.41" if row["family"] == "engine" else "/v5.0.0"
    match = match_route(row["method"], f"{version}{path}?a=1&a=2&b=")
    assert match.known
    assert match.template == row["template"], f"{path} shadowed by {match.template}"
    assert match.params == values
    assert match.family == row["family"]
    assert match.query == {"a": ["1", "2"], "b": [""]}
    assert match.path == path


def test_templates_are_unique() -> None:
    templates = [r.template for r in all_routes()]
    assert len(templates) == len(set(templates))


# (method, target as the docker CLI or podman clients send it, expected template, expected object id)
REAL_TARGETS = [
    ("HEAD", "/_ping", "HEAD /_ping", None),
    ("GET", "/_ping", "GET /_ping", None),
    ("GET", "/v1.41/version", "GET /version", None),
    ("GET", "/v1.47/info", "GET /info", None),
    ("POST", "/v1.41/containers/create?name=web", "POST /containers/create", None),
    ("POST", "/v1.41/containers/create", "POST /containers/create", None),
    (
        "POST",
        "/v1.41/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1",
        "POST /containers/{id}/attach",
        "abc",
    ),
    ("POST", "/v1.41/containers/abc/wait?condition=next-exit", "POST /containers/{id}/wait", "abc"),
    ("POST", "/v1.41/containers/abc/wait?condition=removed", "POST /containers/{id}/wait", "abc"),
    ("POST", "/v1.41/containers/abc/start", "POST /containers/{id}/start", "abc"),
    ("POST", "/v1.41/containers/abc/resize?h=40&w=120", "POST /containers/{id}/resize", "abc"),
    ("GET", "/v1.41/containers/json", "GET /containers/json", None),
    ("GET", "/v1.41/containers/json?all=1&filters=%7B%7D", "GET /containers/json", None),
    ("GET", "/v1.41/containers/web/json", "GET /containers/{id}/json", "web"),
    ("POST", "/v1.41/containers/abc/exec", "POST /containers/{id}/exec", "abc"),
    ("POST", "/v1.41/exec/xyz/start", "POST /exec/{id}/start", "xyz"),
    ("POST", "/v1.41/exec/xyz/resize?h=40&w=120", "POST /exec/{id}/resize", "xyz"),
    ("GET", "/v1.41/exec/xyz/json", "GET /exec/{id}/json", "xyz"),
    ("POST", "/v1.41/containers/abc/stop?t=2", "POST /containers/{id}/stop", "abc"),
    ("POST", "/v1.41/containers/abc/kill?signal=SIGTERM", "POST /containers/{id}/kill", "abc"),
    ("DELETE", "/v1.41/containers/abc?force=1&v=1", "DELETE /containers/{id}", "abc"),
    ("GET", "/v1.41/containers/abc/logs?stderr=1&stdout=1&follow=1", "GET /containers/{id}/logs", "abc"),
    ("GET", "/v1.41/containers/abc/top?ps_args=aux", "GET /containers/{id}/top", "abc"),
    ("GET", "/v1.41/containers/abc/stats?stream=0", "GET /containers/{id}/stats", "abc"),
    ("HEAD", "/v1.41/containers/abc/archive?path=%2Fetc%2Fhosts", "HEAD /containers/{id}/archive", "abc"),
    ("PUT", "/v1.41/containers/abc/archive?path=%2Ftmp", "PUT /containers/{id}/archive", "abc"),
    ("POST", "/v1.41/commit?container=abc&repo=snap", "POST /commit", "abc"),
    ("POST", "/v1.41/images/create?fromImage=busybox&tag=latest", "POST /images/create", None),
    ("GET", "/v1.47/images/library/busybox:latest/json", "GET /images/{name}/json", "library/busybox:latest"),
    ("GET", "/v1.47/images/busybox/json", "GET /images/{name}/json", "busybox"),
    (
        "DELETE",
        "/v1.41/images/localhost:5000/team/app:1.0?force=1",
        "DELETE /images/{name}",
        "localhost:5000/team/app:1.0",
    ),
    (
        "POST",
        "/v1.41/images/busybox:latest/tag?repo=mine&tag=v1",
        "POST /images/{name}/tag",
        "busybox:latest",
    ),
    ("POST", "/v1.41/images/mine/push?tag=v1", "POST /images/{name}/push", "mine"),
    ("GET", "/v1.41/images/get?names=busybox", "GET /images/get", None),
    ("GET", "/v1.41/images/json", "GET /images/json", None),
    ("POST", "/v1.41/build?t=x&dockerfile=Dockerfile", "POST /build", None),
    ("GET", "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D", "GET /events", None),
    ("GET", "/v1.41/networks/bridge", "GET /networks/{id}", "bridge"),
    ("POST", "/v1.41/networks/create", "POST /networks/create", None),
    ("GET", "/v1.41/volumes", "GET /volumes", None),
    ("GET", "/v1.41/system/df", "GET /system/df", None),
    ("POST", "/session", "POST /session", None),
    ("POST", "/v1.47/session", "POST /session", None),
    ("POST", "/grpc", "POST /grpc", None),
    ("GET", "/libpod/_ping", "GET /libpod/_ping", None),
    ("HEAD", "/libpod/_ping", "HEAD /libpod/_ping", None),
    ("GET", "/v5.0.0/libpod/containers/json?all=true", "GET /libpod/containers/json", None),
    ("GET", "/v5.0.0/libpod/images/quay.io/podman/hello:latest/json", "GET /libpod/images/{name}/json", None),
]


@pytest.mark.parametrize(("method", "target", "template", "object_id"), REAL_TARGETS)
def test_real_cli_targets(method: str, target: str, template: str, object_id: str | None) -> None:
    match = match_route(method, target)
    assert match.known
    assert match.template == template
    if object_id is not None:
        assert match.object_id == object_id


def test_attach_details() -> None:
    match = match_route("post", "/v1.41/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1")
    assert match.method == "POST"
    assert match.api_version == "1.41"
    assert match.path == "/containers/abc/attach"
    assert match.object_kind == "container"
    assert match.query["stream"] == ["1"]


def test_url_encoded_object_id_is_decoded() -> None:
    match = match_route("GET", "/v1.41/images/library%2Fbusybox:latest/json")
    assert match.object_id == "library/busybox:latest"


def test_single_segment_params_do_not_swallow_slashes() -> None:
    # Moby registers swarm objects as plain `{id}` (no `.*`), so a slash cannot be part of the ID.
    assert not match_route("GET", "/v1.41/services/a/b").known


def test_unknown_route() -> None:
    match = match_route("GET", "/v1.41/nonexistent/thing?x=1")
    assert not match.known
    assert match.template == "GET /nonexistent/thing"
    assert match.api_version == "1.41"
    assert match.object_kind is None and match.object_id is None
    assert not match_route("PATCH", "/containers/abc/start").known


def test_hijack_and_streaming_hints() -> None:
    rows = {r["template"]: r for r in ROUTES}
    assert rows["POST /containers/{id}/attach"]["hijack"] == "tcp"
    assert rows["POST /grpc"]["hijack"] == "h2c"
    assert rows["GET /events"]["streaming"] == "json-lines"
    assert rows["GET /containers/{id}/json"]["hijack"] is None
