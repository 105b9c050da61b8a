"""HAR 1.2 export of a session, so browser devtools, mitmproxy and HAR viewers can open it.

HAR has no place for Docker layers or hijacked streams, so they go in underscore-prefixed custom
fields, which HAR 1.2 allows (`_route`, `_layers`, `_evidence`, `_mismatches`, `_client`, `_hijack`
with the exact `frames` each way, plus `_id`, `_started`, `_object_id`, `_error`, `_streams`), and
`dockertap import` reads them back, so a session survives the round trip. Bodies are the captured
prefixes, payload only (chunk framing removed). Entries are in request order.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

from dockertap.proxy.capture import materialize
from dockertap.recordings.format import (
    RecordedExchange,
    Session,
    decode_bytes,
    in_request_order,
    open_private,
)

#: Origin-form targets get this authority in URLs (the docker CLI sends `Host: api.moby.localhost`).
DEFAULT_HOST = "docker"


def _headers(message) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in message.headers.items(multi=True)] if message else []


def _content(data: bytes, mime: str) -> dict[str, Any]:
    try:
        return {"size": len(data), "mimeType": mime, "text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "size": len(data),
            "mimeType": mime,
            "text": base64.b64encode(data).decode(),
            "encoding": "base64",
        }


def _streams(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for item in items or []:
        data = decode_bytes(item["encoding"], item["data"])
        out.append(
            {"t": item["t"], "dir": item.get("dir", "backend"), "stream": item["stream"], **_text(data)}
        )
    return out


def _text(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(data).decode(), "encoding": "base64"}


def har_entry(rec: RecordedExchange) -> dict[str, Any]:
    ex = rec.to_exchange()
    materialize(ex)
    request, response = ex.request, ex.response
    host = request.headers.get("host", DEFAULT_HOST) if request else DEFAULT_HOST
    url = f"http://{host}{rec.target}"
    query = rec.target.split("?", 1)[1] if "?" in rec.target else ""
    request_body = rec.request_body()
    record = rec.record
    duration = record.get("duration_ms") or 0.0
    head_ms = record.get("response_head_ms")
    entry: dict[str, Any] = {
        "startedDateTime": record["started"],
        "time": duration,
        "request": {
            "method": rec.method,
            "url": url,
            "httpVersion": request.http_version if request else "HTTP/1.1",
            "cookies": [],
            "headers": _headers(request),
            "queryString": [{"name": k, "value": v} for k, v in parse_qsl(query, keep_blank_values=True)],
            "headersSize": len(rec.request_head()),
            "bodySize": record["request"]["body"]["size"],
        },
        "response": {
            "status": response.status_code if response else 0,
            "statusText": response.reason.strip() if response else (record.get("error") or ""),
            "httpVersion": response.http_version if response else "HTTP/1.1",
            "cookies": [],
            "headers": _headers(response),
            "content": _content(
                rec.response_body(), response.headers.get("content-type", "") if response else ""
            ),
            "redirectURL": "",
            "headersSize": len(rec.response_head() or b""),
            "bodySize": (record.get("response") or {}).get("body", {}).get("size", 0),
        },
        "cache": {},
        "timings": {
            "send": 0,
            "wait": head_ms if head_ms is not None else duration,
            "receive": max(duration - (head_ms or duration), 0),
        },
        "_id": record.get("id"),
        "_started": record.get("t_start"),
        "_route": record.get("route"),
        "_object_id": record.get("object_id"),
        "_layers": record.get("layers", []),
        "_evidence": record.get("evidence", []),
        "_mismatches": record.get("mismatches", []),
        "_client": record.get("client"),
        "_error": record.get("error"),
        "_synthetic": record.get("synthetic"),
        "_response_marks": response_marks(rec),
        "_hijack": None,
    }
    if request_body or rec.method in ("POST", "PUT", "PATCH"):
        mime = request.headers.get("content-type", "") if request else ""
        post = _content(request_body, mime)
        entry["request"]["postData"] = {"mimeType": mime, "text": post["text"], **_only_encoding(post)}
    hijack = record.get("hijack")
    if hijack is not None:
        entry["_hijack"] = {
            **{key: hijack.get(key) for key in HIJACK_FACTS},
            "streams": _streams(hijack.get("streams")),
            # the exact bytes each way, so an import replays the stream as it was relayed
            "frames": [
                {"t": t, "dir": direction, **_text(data)} for t, direction, data in rec.hijack_frames()
            ],
        }
    elif (record.get("response") or {}).get("streams") is not None:
        entry["_streams"] = _streams(record["response"]["streams"])
    return entry


def response_marks(rec: RecordedExchange) -> list[list[float]]:
    """When each piece of the response payload arrived, as [seconds after the request, payload offset]:
    the pacing a replay of a streamed body (`logs -f`, `/events`) reproduces. Exports hold payloads,
    so the recording's wire offsets (chunk framing included) are turned into payload offsets."""
    from dockertap.recordings.replayable import payload_slices

    body = (rec.get("response") or {}).get("body") or {}
    marks = [(float(t), int(offset)) for t, offset in body.get("marks") or []]
    out, offset = [], 0
    for piece in payload_slices(rec.response_body_wire(), marks, bool(body.get("chunked"))):
        out.append([piece.at, offset])
        offset += len(piece.data)
    return out


#: The hijack record's facts besides its bytes, carried as they are by both export formats.
HIJACK_FACTS = (
    "client_bytes", "backend_bytes", "captured", "truncated", "client_closed", "backend_closed", "multiplexed"
)  # fmt: skip


def _only_encoding(content: dict[str, Any]) -> dict[str, str]:
    return {"_encoding": content["encoding"]} if "encoding" in content else {}


def session_facts(session: Session) -> dict[str, Any]:
    """What a session knows beyond its exchanges, for an import to give back: when it started, the
    backend, and the evidence no exchange caused (container exits)."""
    return {
        "backend": session.backend,
        "backend_url": session.header.get("backend_url"),
        "redacted": session.header.get("redacted"),
        "started": session.header.get("started"),
        "evidence": [{k: v for k, v in record.items() if k != "type"} for record in session.evidence],
    }


def session_to_har(session: Session) -> dict[str, Any]:
    from dockertap import __version__

    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "dockertap", "version": __version__},
            "pages": [],
            "entries": [har_entry(rec) for rec in in_request_order(session)],
            "_dockertap": session_facts(session),
        }
    }


def write_har(session: Session, path: str) -> int:
    har = session_to_har(session)
    with open_private(path) as out:
        json.dump(har, out, ensure_ascii=False, indent=1)
    return len(har["log"]["entries"])
