"""The machine-readable trace: one JSON object per exchange (`--format json`).

Field names here are a public contract (issue #2): later work adds fields, never renames.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from dockertap.analyzers.clients import client_label
from dockertap.proxy.exchange import Exchange, header_value

_second_text: tuple[float, str] = (math.nan, "")


def rfc3339(ts: float) -> str:
    """`2024-01-01T00:00:00.000000Z`, exactly as `datetime.fromtimestamp(ts, UTC).isoformat()` spells it.

    Traces stamp thousands of exchanges per second, so the date and time of the current second are
    formatted once; the microseconds are rounded as `fromtimestamp` rounds them (half to even).
    """
    global _second_text
    fraction, second = math.modf(ts)
    micro = round(fraction * 1e6)
    if ts < 0 or not 0 <= micro < 1_000_000:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if _second_text[0] != second:
        _second_text = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second_text[1]}.{micro:06d}Z"


def trace_record(ex: Exchange) -> dict[str, Any]:
    """The JSON-serialisable trace line for a finished (or still open) exchange."""
    method, target = ex.method_and_target
    started, ended, response_started, peer = ex.started, ex.ended, ex.response_started, ex.peer
    record: dict[str, Any] = {
        "id": ex.id,
        "connection": ex.connection_id,
        "sequence": ex.sequence,
        "started": rfc3339(started),
        "method": method,
        "path": target.split("?", 1)[0],
        "target": target,
        "status": ex.status,
        "duration_ms": None if ended is None else round((ended - started) * 1000, 3),
        "response_head_ms": None
        if response_started is None
        else round((response_started - started) * 1000, 3),
        "request_bytes": ex.request_bytes,
        "response_bytes": ex.response_bytes,
        "hijacked": ex.hijack is not None,
        "client": {
            "pid": peer.pid,
            "uid": peer.uid,
            "command": peer.command,
            "label": client_label(peer.command, header_value(ex.request_head, "user-agent")),
        },
        "backend_url": ex.backend,
        "synthetic": ex.synthetic,
        "error": ex.error,
    }
    if ex.added_headers:
        record["added_headers"] = list(ex.added_headers)  # bytes dockertap put in (--otel-propagate)
    annotation = ex.annotation
    if annotation is not None and hasattr(annotation, "to_dict"):
        record.update(annotation.to_dict())
    return record
