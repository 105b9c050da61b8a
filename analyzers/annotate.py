"""Annotate one exchange with its route and the layers it is expected to reach on this backend.

Statuses start as "expected". Evidence correlation (containerd events, runtime execs) later replaces a
`LayerStatus` with an "observed" or "missing" one and appends to `Annotation.evidence`, so both are mutable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from dockertap.analyzers.fingerprint import BackendFingerprint
from dockertap.analyzers.layer_table import _INDEX, LayerChain, _libpod_alias, condition_holds, expected_chain
from dockertap.analyzers.routes import RouteMatch, match_route

#: "unexpected": evidence showed a layer the model does not name for this route (a mismatch).
Status = Literal["expected", "observed", "missing", "unexpected"]

#: How `format_chain` marks each status.
STATUS_MARKS: dict[str, str] = {"expected": "", "observed": "✓", "missing": "✗", "unexpected": "!"}


@dataclass(slots=True)
class LayerStatus:
    """One layer of an exchange's chain and whether evidence has confirmed it."""

    layer: str
    operations: list[str]
    status: Status = "expected"
    #: Per-operation status, for the operations evidence has confirmed or ruled out.
    operation_status: dict[str, Status] = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = {"layer": self.layer, "operations": list(self.operations), "status": self.status}
        if self.operation_status:
            data["operation_status"] = dict(self.operation_status)
        return data


@dataclass(slots=True)
class Annotation:
    """Route, backend and expected (later: observed) layers of one exchange."""

    route: RouteMatch
    chain: LayerChain
    layers: list[LayerStatus]
    backend: BackendFingerprint | None = None
    evidence: list[dict] = field(default_factory=list)
    #: Where evidence contradicts the model (expected item not seen, unexpected layer seen).
    mismatches: list[str] = field(default_factory=list)
    #: gRPC calls decoded from a BuildKit h2c stream (`GrpcCall.to_dict`), None when not decoded.
    grpc: list[dict] | None = None
    #: Why the h2c stream could not be (fully) decoded, or how many calls were only counted.
    grpc_note: str | None = None

    def layer(self, name: str) -> LayerStatus | None:
        return next((ls for ls in self.layers if ls.layer == name), None)

    def to_dict(self) -> dict:
        backend = self.backend
        return {
            "route": self.route.template,
            "object_id": self.route.object_id,
            "backend": {
                "family": backend.family if backend else "unknown",
                "product": backend.product if backend else None,
                "engine_version": backend.engine_version if backend else None,
            },
            "layers": [ls.to_dict() for ls in self.layers],
            "evidence": list(self.evidence),
            "mismatches": list(self.mismatches),
            **({"grpc": list(self.grpc)} if self.grpc is not None else {}),
            **({"grpc_note": self.grpc_note} if self.grpc_note else {}),
        }


#: Bound of each memo below; a full memo is simply emptied (the working set is a few dozen routes).
_MEMO_SIZE = 4096
_routes: dict[tuple[str, str], RouteMatch] = {}
_chains: dict[tuple, LayerChain] = {}
_conditions: dict[tuple[str, str], tuple[str, ...]] = {}


def route_of(method: str, target: str) -> RouteMatch:
    """`match_route`, memoized: clients repeat the same few targets (`/_ping`, `/containers/json`).

    The `RouteMatch` is shared between exchanges; it is frozen, and nothing writes to its dicts.
    """
    key = (method, target)
    route = _routes.get(key)
    if route is None:
        if len(_routes) >= _MEMO_SIZE:
            _routes.clear()
        route = _routes[key] = match_route(method, target)
    return route


def _chain_conditions(family: str, route: RouteMatch) -> tuple[str, ...]:
    """The `when` conditions of every layer-table row `expected_chain` may pick for this route."""
    template = route.template
    if family == "podman" and route.family == "libpod":
        template = _libpod_alias(template)
    key = (family, template)
    found = _conditions.get(key)
    if found is None:
        rows = _INDEX.base.get(key, []) + _INDEX.adds.get(key, [])
        found = _conditions[key] = tuple(dict.fromkeys(r.when for r in rows if r.when is not None))
    return found


def chain_of(
    backend: BackendFingerprint | None,
    route: RouteMatch,
    body: object | None = None,
    grpc_methods: tuple[str, ...] | None = None,
) -> LayerChain:
    """`expected_chain` for `route` on `backend`, memoized on everything it reads.

    That is the backend facts, the route's template and family, and the truth of each condition
    (`query.force`, `body.Detach`) the candidate rows test, so the memo cannot return another
    request's chain.
    """
    family = backend.family if backend and backend.family != "unknown" else "dockerd"
    image_store = backend.image_store if backend else "unknown"
    engine_version = backend.engine_version if backend else None
    runtime = backend.default_runtime if backend else None
    table_family = "podman" if family == "podman" else "dockerd"
    holds = tuple(condition_holds(w, route.query, body) for w in _chain_conditions(table_family, route))
    key = (family, image_store, engine_version, runtime, route.template, route.family, holds, grpc_methods)
    chain = _chains.get(key)
    if chain is None:
        if len(_chains) >= _MEMO_SIZE:
            _chains.clear()
        chain = _chains[key] = expected_chain(
            family,
            image_store,
            route,
            body=body,
            engine_version=engine_version,
            runtime=runtime,
            grpc_methods=grpc_methods,
        )
    return chain


def annotate(
    method: str, target: str, backend: BackendFingerprint | None, body: object | None = None
) -> Annotation:
    """Match the route and attach the chain the layer model expects on `backend` (dockerd when unknown)."""
    route = route_of(method, target)
    chain = chain_of(backend, route, body)
    layers = [LayerStatus(step.layer, list(step.operations)) for step in chain.steps]
    return Annotation(route=route, chain=chain, layers=layers, backend=backend)


def with_grpc_methods(annotation: Annotation, methods: tuple[str, ...] | None) -> None:
    """Re-key a `/grpc` or `/session` annotation on the gRPC methods decoded so far (None: the
    opaque route's chain).

    Only before evidence has been applied (statuses are still "expected"): the chain changes, and the
    layers are rebuilt from it.
    """
    keyed = None if methods is None else tuple(sorted(methods))
    chain = chain_of(annotation.backend, annotation.route, grpc_methods=keyed)
    if chain is annotation.chain:
        return
    annotation.chain = chain
    annotation.layers = [LayerStatus(step.layer, list(step.operations)) for step in chain.steps]


def format_grpc(calls: list[dict] | None, limit: int = 6) -> str:
    """`gRPC Control/Solve OK 1.20s, Control/Status OK` — the calls of one h2c connection, short."""
    if not calls:
        return ""
    parts = []
    for call in calls[:limit]:
        method = str(call.get("method") or "?").rsplit(".", 1)[-1]
        status = call.get("status_name") or ("open" if call.get("duration_ms") is None else "no status")
        if call.get("reset") is not None:
            status = f"reset {call['reset']}"
        took = call.get("duration_ms")
        parts.append(f"{method} {status}" + (f" {took / 1000:.2f}s" if took and took >= 1000 else ""))
    more = f", +{len(calls) - limit} more" if len(calls) > limit else ""
    return "gRPC " + ", ".join(parts) + more


def format_chain(annotation: Annotation) -> str:
    """`dockerd → containerd[Tasks.Create✓ Tasks.Start✓] → runc[create✓ start✓]` (✓ observed, ✗ missing)."""
    return format_layers(annotation.layers)


def layers_from_records(records: Iterable[dict]) -> list[LayerStatus]:
    """The layers of a recorded or traced exchange (`LayerStatus.to_dict` read back)."""
    return [
        LayerStatus(
            str(r.get("layer")),
            [str(op) for op in r.get("operations") or ()],
            r.get("status") if r.get("status") in STATUS_MARKS else "expected",
            {str(k): v for k, v in (r.get("operation_status") or {}).items() if v in STATUS_MARKS},
        )
        for r in records
        if isinstance(r, dict)
    ]


def format_layers(layers: Iterable[LayerStatus]) -> str:
    parts = []
    for ls in layers:
        mark = STATUS_MARKS[ls.status]
        if not ls.operations or ls.layer in ("dockerd", "compat-api"):
            parts.append(f"{ls.layer}{mark}")
            continue
        # With per-operation evidence, an operation evidence cannot speak to gets no mark of its own.
        default = "expected" if ls.operation_status else ls.status
        ops = " ".join(f"{op}{STATUS_MARKS[ls.operation_status.get(op, default)]}" for op in ls.operations)
        parts.append(f"{ls.layer}[{ops}]")
    return " → ".join(parts)
