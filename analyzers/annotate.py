"""Annotate one exchange with its route and the layers it is expected to reach on this backend.

Statuses start as "expected". Evidence correlation (containerd events, runtime execs) later replaces a
`LayerStatus` with an "observed" or "missing" one and appends to `Annotation.evidence`, so both are mutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dockertap.analyzers.fingerprint import BackendFingerprint
from dockertap.analyzers.layer_table import LayerChain, expected_chain
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
        }


def annotate(
    method: str, target: str, backend: BackendFingerprint | None, body: object | None = None
) -> Annotation:
    """Match the route and attach the chain the layer model expects on `backend` (dockerd when unknown)."""
    route = match_route(method, target)
    family = backend.family if backend and backend.family != "unknown" else "dockerd"
    chain = expected_chain(
        family,
        backend.image_store if backend else "unknown",
        route,
        body=body,
        engine_version=backend.engine_version if backend else None,
        runtime=backend.default_runtime if backend else None,
    )
    layers = [LayerStatus(step.layer, list(step.operations)) for step in chain.steps]
    return Annotation(route=route, chain=chain, layers=layers, backend=backend)


def format_chain(annotation: Annotation) -> str:
    """`dockerd → containerd[Tasks.Create✓ Tasks.Start✓] → runc[create✓ start✓]` (✓ observed, ✗ missing)."""
    parts = []
    for ls in annotation.layers:
        mark = STATUS_MARKS[ls.status]
        if not ls.operations or ls.layer in ("dockerd", "compat-api"):
            parts.append(f"{ls.layer}{mark}")
            continue
        # With per-operation evidence, an operation evidence cannot speak to gets no mark of its own.
        default = "expected" if ls.operation_status else ls.status
        ops = " ".join(f"{op}{STATUS_MARKS[ls.operation_status.get(op, default)]}" for op in ls.operations)
        parts.append(f"{ls.layer}[{ops}]")
    return " → ".join(parts)
