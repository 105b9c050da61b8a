"""Map a request line (method + request-target) to its Docker Engine / libpod route template.

The table is `data/routes.json`, generated from Moby's OpenAPI spec and Podman's route registrations by
`data/gen_routes.py`. Matching runs once per exchange, so the table is compiled at import into a dispatch
dict keyed by (method, family, first path segment); within a bucket literal templates are a dict lookup and
templated ones are tried most-specific first. Parameters that Moby/Podman register as `{name:.*}` match
greedily across slashes (image references like `library/busybox:latest`), the others match one segment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Family = Literal["engine", "libpod"]

#: `/v1.41/...` (Docker) or `/v4.0.0/...` (Podman's libpod clients) version prefixes.
_VERSION_PREFIX = re.compile(r"^/v(\d+(?:\.\d+)*)(?=/|$)")


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """What route an exchange hit, with its path parameters and query."""

    template: str
    method: str
    path: str
    api_version: str | None
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    object_kind: str | None = None
    object_id: str | None = None
    known: bool = False
    family: Family = "engine"

    @property
    def route_path(self) -> str:
        """The templated path without the method, e.g. `/containers/{id}/start`."""
        return self.template.split(" ", 1)[1]

    def to_dict(self) -> dict:
        return {
            "template": self.template,
            "method": self.method,
            "path": self.path,
            "api_version": self.api_version,
            "params": dict(self.params),
            "query": {k: list(v) for k, v in self.query.items()},
            "object_kind": self.object_kind,
            "object_id": self.object_id,
            "known": self.known,
            "family": self.family,
        }


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One row of routes.json, as matched against."""

    method: str
    path: str
    template: str
    family: Family
    object_kind: str | None
    params: tuple[str, ...]
    tag: str
    summary: str
    hijack: str | None
    streaming: str | None
    source: str
    operation_id: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    spec: RouteSpec
    regex: re.Pattern[str]
    specificity: tuple[int, int]


@dataclass(slots=True)
class _Bucket:
    literal: dict[str, RouteSpec] = field(default_factory=dict)
    templated: list[_Compiled] = field(default_factory=list)


def _segment_key(path: str) -> str:
    """The dispatch key: first segment, or `libpod/<segment>` for libpod paths."""
    parts = path.split("/", 3)
    first = parts[1] if len(parts) > 1 else ""
    if first == "libpod":
        return "libpod/" + (parts[2] if len(parts) > 2 else "")
    return first


def _compile(path: str, greedy: set[str]) -> re.Pattern[str]:
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", path):
        pattern += re.escape(literal)
        if name:
            pattern += f"(?P<{name}>.+)" if name in greedy else f"(?P<{name}>[^/]+)"
    return re.compile(pattern + r"\Z")


@cache
def route_table() -> dict:
    """The parsed routes.json document (spec version, sources and every route row)."""
    return json.loads(resources.files("dockertap.analyzers").joinpath("data/routes.json").read_text())


@cache
def all_routes() -> tuple[RouteSpec, ...]:
    """Every route of the table, Engine API first."""
    return tuple(
        RouteSpec(
            method=r["method"],
            path=r["path"],
            template=r["template"],
            family=r["family"],
            object_kind=r["object_kind"],
            params=tuple(r["params"]),
            tag=r["tag"],
            summary=r["summary"],
            hijack=r["hijack"],
            streaming=r["streaming"],
            source=r["source"],
            operation_id=r["operation_id"],
        )
        for r in route_table()["routes"]
    )


@cache
def _dispatch() -> dict[tuple[str, str], _Bucket]:
    buckets: dict[tuple[str, str], _Bucket] = {}
    greedy_by_template = {r["template"]: set(r["greedy_params"]) for r in route_table()["routes"]}
    for spec in all_routes():
        bucket = buckets.setdefault((spec.method, _segment_key(spec.path)), _Bucket())
        if not spec.params:
            bucket.literal[spec.path] = spec
            continue
        literal_chars = len(re.sub(r"\{\w+\}", "", spec.path))
        compiled = _Compiled(
            spec,
            _compile(spec.path, greedy_by_template[spec.template]),
            (spec.path.count("/"), literal_chars),
        )
        bucket.templated.append(compiled)
    for bucket in buckets.values():
        # Most specific first: `/containers/{id}/checkpoints/{c}` before `/containers/{id}`.
        bucket.templated.sort(key=lambda c: c.specificity, reverse=True)
    return buckets


def route_spec(template: str) -> RouteSpec | None:
    """The table row for a template like `POST /containers/{id}/start`."""
    return _by_template().get(template)


@cache
def _by_template() -> dict[str, RouteSpec]:
    return {r.template: r for r in all_routes()}


def split_target(target: str) -> tuple[str, str | None, dict[str, list[str]]]:
    """Split a request-target into (unversioned decoded path, API version, query)."""
    parts = urlsplit(target)
    path = unquote(parts.path) or "/"
    api_version = None
    if m := _VERSION_PREFIX.match(path):
        api_version = m.group(1)
        path = path[m.end() :] or "/"
    query = parse_qs(parts.query, keep_blank_values=True) if parts.query else {}
    return path, api_version, query


def match_route(method: str, target: str) -> RouteMatch:
    """Match `method target` (e.g. `POST`, `/v1.41/containers/abc/start?x=1`) against the route table."""
    method = method.upper()
    path, api_version, query = split_target(target)
    spec, params = _lookup(method, path)
    if spec is None:
        return RouteMatch(
            template=f"{method} {path}", method=method, path=path, api_version=api_version, query=query
        )
    object_id = params[spec.params[0]] if spec.params else None
    if object_id is None and spec.path in ("/commit", "/libpod/commit"):
        # `POST /commit?container=<id>` names its container in the query.
        object_id = (query.get("container") or [None])[0]
    return RouteMatch(
        template=spec.template,
        method=method,
        path=path,
        api_version=api_version,
        params=params,
        query=query,
        object_kind=spec.object_kind,
        object_id=object_id,
        known=True,
        family=spec.family,
    )


def _lookup(method: str, path: str) -> tuple[RouteSpec | None, dict[str, str]]:
    bucket = _dispatch().get((method, _segment_key(path)))
    if bucket is None:
        return None, {}
    if (spec := bucket.literal.get(path)) is not None:
        return spec, {}
    for compiled in bucket.templated:
        if m := compiled.regex.match(path):
            return compiled.spec, m.groupdict()
    return None, {}
