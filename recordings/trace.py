"""The machine-readable trace: one JSON object per exchange (`--format json`).

Field names here are a public contract (issue #2): later work adds fields, never renames.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dockertap.proxy.exchange import Exchange


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def trace_record(ex: Exchange) -> dict[str, Any]:
    """The JSON-serialisable trace line for a finished (or still open) exchange."""
    method, target = ex.method_and_target
    path = target.split("?", 1)[0]
    record: dict[str, Any] = {
        "id": ex.id,
        "connection": ex.connection_id,
        "sequence": ex.sequence,
        "started": rfc3339(ex.started),
        "method": method,
        "path": path,
        "target": target,
        "status": ex.status,
        "duration_ms": None if ex.duration is None else round(ex.duration * 1000, 3),
        "response_head_ms": None
        if ex.response_started is None
        else round((ex.response_started - ex.started) * 1000, 3),
        "request_bytes": ex.request_bytes,
        "response_bytes": ex.response_bytes,
        "hijacked": ex.hijacked,
        "client": {"pid": ex.peer.pid, "uid": ex.peer.uid, "command": ex.peer.command},
        "backend_url": ex.backend,
        "synthetic": ex.synthetic,
        "error": ex.error,
    }
    annotation = ex.annotation
    if annotation is not None and hasattr(annotation, "to_dict"):
        record.update(annotation.to_dict())
    return record
