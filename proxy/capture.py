"""Turns the relay's raw captures into mitmproxy `Request`/`Response` objects.

Runs in the sink pipeline, never on the forwarding path: mitmproxy's model costs tens of
microseconds per exchange, which the relay must not pay per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockertap.proxy.exchange import Capture, Exchange, final_head, header_value
from dockertap.proxy.framing import decode_chunked

if TYPE_CHECKING:  # mitmproxy costs ~0.3 s to import: only the consumers that build its objects pay
    from mitmproxy import http


def _head_lines(head: bytes) -> list[bytes]:
    # mitmproxy's head readers take lines without their CRLF (with it, the reason keeps "\r\n").
    return [line for line in head.split(b"\r\n") if line]


def body_prefix(capture: Capture, chunked: bool) -> bytes:
    """The captured body prefix as payload bytes (chunk framing removed)."""
    raw = bytes(capture.data)
    return decode_chunked(raw) if chunked else raw


def response_fields(ex: Exchange) -> dict[str, str]:
    """The final response head's headers as a dict (repeated names joined by ", "), no mitmproxy."""
    head = final_head(ex.response_head)
    fields: dict[str, str] = {}
    for line in (head or b"").split(b"\r\n")[1:]:
        name, colon, _ = line.partition(b":")
        if colon and line[:1] not in (b" ", b"\t"):
            key = name.strip().decode("latin-1")
            fields.setdefault(key, header_value(head, key))
    return fields


def response_payload(ex: Exchange) -> bytes | None:
    """The whole response payload (chunk framing removed) when it was captured complete and not
    content-encoded; else None. Enough for the small JSON answers analysis learns from."""
    if not ex.response_head or ex.response_body.truncated:
        return None
    if header_value(final_head(ex.response_head), "content-encoding").strip().lower() not in ("", "identity"):
        return None
    return body_prefix(ex.response_body, ex.response_chunked)


def build_request(ex: Exchange) -> http.Request | None:
    """A mitmproxy Request for the exchange, with the captured body prefix as content."""
    from mitmproxy.net.http.http1 import read_request_head
    try:
        request = read_request_head(_head_lines(ex.request_head))
    except ValueError:
        return None
    request.timestamp_start = ex.started
    request.timestamp_end = ex.request_ended or ex.started
    request.raw_content = body_prefix(ex.request_body, ex.request_chunked) if ex.request_body.total else b""
    return request


def build_response(ex: Exchange) -> http.Response | None:
    from mitmproxy.net.http.http1 import read_response_head

    head = ex.response_head
    if not head:
        return None
    try:  # several heads when 1xx responses preceded the final one: keep the final
        response = read_response_head(_head_lines(final_head(head)))
    except ValueError:
        return None
    response.timestamp_start = ex.response_started or ex.started
    response.timestamp_end = ex.ended
    if ex.response_body.total:
        response.raw_content = body_prefix(ex.response_body, ex.response_chunked)
    else:
        response.raw_content = b""
    return response


def materialize(ex: Exchange) -> None:
    """Fill `ex.request` / `ex.response` from the raw captures (idempotent)."""
    if ex.request is None:
        ex.request = build_request(ex)
    elif ex.request_body.total and ex.ended is not None:
        ex.request.raw_content = body_prefix(ex.request_body, ex.request_chunked)
    if ex.response_head and (ex.response is None or ex.ended is not None):
        ex.response = build_response(ex)
