"""Generate `routes.json`, the route table `dockertap.analyzers.routes` matches against.

The Engine API routes come from Moby's published OpenAPI spec (`api/swagger.yaml`); a handful of routes
that Moby's router registers but the spec omits are added from a small sourced table below. Podman's
`/libpod/...` routes come, optionally, from the `swagger:operation` comments and `r.Handle(...)`
registrations in Podman's `pkg/api/server/register_*.go`.

Usage (the spec and Podman sources are never committed; only the generated JSON is):

    git -C <moby gitdir> show HEAD:api/swagger.yaml > /tmp/swagger.yaml
    python analyzers/data/gen_routes.py /tmp/swagger.yaml \
        --engine-source "moby/moby api/swagger.yaml @ <commit>" \
        [--podman-server-dir <dir with register_*.go> --podman-source "containers/podman @ <commit>"]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HTTP_METHODS = ("get", "head", "post", "put", "delete", "patch", "options")

#: First path segment → the object kind a route acts on.
OBJECT_KINDS: dict[str, str] = {
    "containers": "container",
    "exec": "exec",
    "images": "image",
    "build": "build",
    "commit": "container",
    "networks": "network",
    "volumes": "volume",
    "plugins": "plugin",
    "nodes": "node",
    "swarm": "swarm",
    "services": "service",
    "tasks": "task",
    "secrets": "secret",
    "configs": "config",
    "distribution": "image",
    "session": "buildkit",
    "grpc": "buildkit",
    "_ping": "system",
    "info": "system",
    "version": "system",
    "events": "system",
    "auth": "system",
    "system": "system",
    "pods": "pod",
    "manifests": "manifest",
    "artifacts": "artifact",
    "generate": "kube",
    "play": "kube",
    "kube": "kube",
    "quadlets": "quadlet",
    "local": "image",
}

#: Moby registers these collections with `{name:.*}` / `{id:.*}` (gorilla/mux regex), so an ID or image
#: reference may contain slashes and the match is greedy. Source: daemon/server/router/{container,image,
#: network,volume,plugin,distribution}/*.go `router.NewXRoute("/containers/{name:.*}/…")`.
ENGINE_GREEDY_COLLECTIONS = frozenset(
    {"containers", "images", "networks", "volumes", "plugins", "exec", "distribution"}
)

#: Routes Moby's router registers that `api/swagger.yaml` does not document.
ENGINE_ROUTER_EXTRAS: list[dict[str, str]] = [
    {
        "method": "POST",
        "path": "/grpc",
        "tag": "Session",
        "summary": "BuildKit control API (h2c upgrade, used by buildx's docker driver)",
        "source": 'moby/moby daemon/server/router/grpc/grpc.go: initRoutes (NewPostRoute("/grpc"))',
    },
    {
        "method": "POST",
        "path": "/build/cancel",
        "tag": "Image",
        "summary": "Cancel a running legacy build",
        "source": "moby/moby daemon/server/router/build/build.go: initRoutes",
    },
    {
        "method": "GET",
        "path": "/containers/{id}/checkpoints",
        "tag": "Container",
        "summary": "List checkpoints (experimental)",
        "source": "moby/moby daemon/server/router/checkpoint/checkpoint.go: initRoutes",
    },
    {
        "method": "POST",
        "path": "/containers/{id}/checkpoints",
        "tag": "Container",
        "summary": "Create a checkpoint (experimental)",
        "source": "moby/moby daemon/server/router/checkpoint/checkpoint.go: initRoutes",
    },
    {
        "method": "DELETE",
        "path": "/containers/{id}/checkpoints/{checkpoint}",
        "tag": "Container",
        "summary": "Delete a checkpoint (experimental)",
        "source": "moby/moby daemon/server/router/checkpoint/checkpoint.go: initRoutes",
    },
]

#: Upgrade (hijack) routes. Source: layer-model.md §5.1 (moby client/hijack.go, container_attach.go,
#: container_exec.go; router/grpc/grpc_routes.go; buildkit session/manager.go).
HIJACK: dict[tuple[str, str], str] = {
    ("POST", "/containers/{id}/attach"): "tcp",
    ("POST", "/exec/{id}/start"): "tcp unless Detach",
    ("GET", "/containers/{id}/attach/ws"): "websocket",
    ("POST", "/session"): "h2c",
    ("POST", "/grpc"): "h2c",
    ("POST", "/libpod/containers/{name}/attach"): "tcp",
    ("POST", "/libpod/exec/{id}/start"): "tcp unless Detach",
}

#: Streaming (chunked, flushed) response bodies. Source: layer-model.md §5.2.
STREAMING: dict[tuple[str, str], str] = {
    ("GET", "/events"): "json-lines",
    ("GET", "/containers/{id}/logs"): "stdio-stream (follow=1)",
    ("GET", "/containers/{id}/stats"): "json-objects (stream defaults to true)",
    ("POST", "/containers/{id}/wait"): "json-at-exit",
    ("POST", "/images/create"): "json-progress",
    ("POST", "/images/{name}/push"): "json-progress",
    ("POST", "/images/load"): "json-progress",
    ("POST", "/build"): "json-progress",
    ("POST", "/plugins/pull"): "json-progress",
    ("POST", "/plugins/{name}/upgrade"): "json-progress",
    ("POST", "/plugins/{name}/push"): "json-progress",
    ("GET", "/images/get"): "tar",
    ("GET", "/images/{name}/get"): "tar",
    ("GET", "/containers/{id}/export"): "tar",
    ("GET", "/containers/{id}/archive"): "tar",
    ("GET", "/services/{id}/logs"): "stdio-stream (follow=1)",
    ("GET", "/tasks/{id}/logs"): "stdio-stream (follow=1)",
    ("GET", "/libpod/events"): "json-lines",
    ("GET", "/libpod/containers/{name}/logs"): "stdio-stream (follow=1)",
    ("GET", "/libpod/containers/{name}/stats"): "json-objects (stream defaults to true)",
    ("GET", "/libpod/containers/stats"): "json-objects (stream defaults to true)",
    ("POST", "/libpod/containers/{name}/wait"): "json-at-exit",
    ("POST", "/libpod/images/pull"): "json-progress",
    ("POST", "/libpod/build"): "json-progress",
    ("GET", "/libpod/images/{name}/get"): "tar",
    ("GET", "/libpod/images/export"): "tar",
    ("GET", "/libpod/containers/{name}/export"): "tar",
    ("GET", "/libpod/containers/{name}/archive"): "tar",
}

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _normalize(path: str) -> str:
    """`/containers/{name:.*}/json` → `/containers/{name}/json` (drop gorilla/mux regexes)."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _first_segment(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "libpod":
        parts = parts[1:]
    return parts[0] if parts else ""


def _entry(
    method: str, path: str, family: str, tag: str, op_id: str, summary: str, source: str, greedy: list[str]
) -> dict:
    return {
        "method": method,
        "path": path,
        "template": f"{method} {path}",
        "family": family,
        "object_kind": OBJECT_KINDS.get(_first_segment(path)),
        "params": _PARAM.findall(path),
        "greedy_params": greedy,
        "tag": tag,
        "operation_id": op_id,
        "summary": summary,
        "hijack": HIJACK.get((method, path)),
        "streaming": STREAMING.get((method, path)),
        "source": source,
    }


def engine_routes(spec: dict, source: str) -> list[dict]:
    """Every (method, path) of the Engine API spec, plus the router-only extras."""
    routes = []
    for path, ops in spec["paths"].items():
        greedy = _PARAM.findall(path) if _first_segment(path) in ENGINE_GREEDY_COLLECTIONS else []
        for method, op in ops.items():
            if method not in HTTP_METHODS:
                continue
            tags = op.get("tags") or [""]
            routes.append(
                _entry(
                    method.upper(),
                    path,
                    "engine",
                    tags[0],
                    op.get("operationId", ""),
                    (op.get("summary") or "").strip(),
                    source,
                    greedy[:1],
                )
            )
    for extra in ENGINE_ROUTER_EXTRAS:
        path = extra["path"]
        greedy = _PARAM.findall(path)[:1] if _first_segment(path) in ENGINE_GREEDY_COLLECTIONS else []
        routes.append(
            _entry(
                extra["method"], path, "engine", extra["tag"], "", extra["summary"], extra["source"], greedy
            )
        )
    return routes


_SWAGGER_OP = re.compile(r"//\s*swagger:operation\s+(\w+)\s+(/libpod/\S+)\s+\S+\s+(\w+)")
_SUMMARY = re.compile(r"//\s*summary:\s*(.+)")
_TAG = re.compile(r"//\s*-\s*(\w+)\s*$")
_HANDLE = re.compile(r"\.Handle(?:Func)?\((?:VersionedPath\()?\"([^\"]+)\"\)?,.*?\.Methods\(([^)]*)\)")


def libpod_routes(server_dir: Path, source: str) -> list[dict]:
    """Podman's `/libpod` routes from the swagger comments and the registrations that follow them."""
    routes: dict[tuple[str, str], dict] = {}
    for file in sorted(server_dir.glob("register_*.go")):
        lines = file.read_text().splitlines()
        blocks: list[tuple[int, re.Match]] = [
            (i, m) for i, line in enumerate(lines) if (m := _SWAGGER_OP.search(line))
        ]
        for n, (start, op) in enumerate(blocks):
            end = blocks[n + 1][0] if n + 1 < len(blocks) else len(lines)
            method, path, op_id = op.group(1).upper(), _normalize(op.group(2)), op.group(3)
            summary, tag = "", ""
            methods = {method}
            greedy: set[str] = set()
            for line in lines[start + 1 : end]:
                if not summary and (m := _SUMMARY.search(line)):
                    summary = m.group(1).strip()
                if not tag and (m := _TAG.search(line)):
                    tag = m.group(1)
                if h := _HANDLE.search(line):
                    raw = h.group(1)
                    greedy.update(g for g in re.findall(r"\{(\w+):\.\*\}", raw))
                    if _normalize(raw) == path:
                        methods.update(
                            m.split(".Method")[-1].upper() for m in re.findall(r"http\.Method\w+", h.group(2))
                        )
            src = f"{source} {file.name}: {op_id}"
            for meth in sorted(methods):
                routes.setdefault(
                    (meth, path),
                    _entry(
                        meth,
                        path,
                        "libpod",
                        tag,
                        op_id,
                        summary,
                        src,
                        sorted(greedy & set(_PARAM.findall(path))),
                    ),
                )
    return list(routes.values())


def _load_yaml(path: Path) -> dict:
    try:
        from ruamel.yaml import YAML

        return YAML(typ="safe").load(path.read_text())
    except ImportError:  # pragma: no cover - ruamel ships with mitmproxy
        import yaml

        return yaml.safe_load(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("swagger", type=Path, help="path to Moby's api/swagger.yaml")
    parser.add_argument("--engine-source", default="moby/moby api/swagger.yaml")
    parser.add_argument("--podman-server-dir", type=Path, help="dir holding Podman's register_*.go")
    parser.add_argument("--podman-source", default="containers/podman pkg/api/server")
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("routes.json"))
    args = parser.parse_args(argv)

    spec = _load_yaml(args.swagger)
    routes = engine_routes(spec, args.engine_source)
    doc: dict = {
        "generated_by": "analyzers/data/gen_routes.py",
        "engine": {
            "spec_version": str(spec["info"]["version"]),
            "source": args.engine_source,
            "spec_routes": sum(1 for r in routes if r["operation_id"]),
        },
        "libpod": None,
        "routes": routes,
    }
    if args.podman_server_dir:
        libpod = libpod_routes(args.podman_server_dir, args.podman_source)
        doc["libpod"] = {"source": args.podman_source, "routes": len(libpod)}
        routes.extend(libpod)
    args.output.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(routes)} routes to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
