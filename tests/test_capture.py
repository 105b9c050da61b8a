"""Raw relay captures become mitmproxy objects with the body prefix decoded."""

from __future__ import annotations

from dockertap.proxy.capture import build_request, build_response, materialize
from dockertap.proxy.exchange import Capture, Exchange, PeerInfo


def _exchange(request_head: bytes, response_head: bytes | None, body: bytes = b"", chunked: bool = False):
    ex = Exchange(1, 1, 1, PeerInfo(), "unix:///x", request_head, Capture(1024), Capture(1024))
    ex.response_head = response_head
    ex.response_chunked = chunked
    ex.response_body.add(body)
    ex.ended = ex.started + 0.01
    return ex


def test_heads_parse_without_stray_line_endings():
    ex = _exchange(
        b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: docker\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
        b"[]",
    )
    materialize(ex)
    assert ex.request.method == "GET" and ex.request.path == "/v1.41/containers/json?all=1"
    assert ex.request.headers["host"] == "docker"
    assert ex.response.status_code == 200 and ex.response.reason == "OK"
    assert ex.response.content == b"[]"


def test_chunked_prefix_is_decoded_and_final_head_follows_1xx():
    ex = _exchange(
        b"POST /build HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n6\r\n world\r\n",  # truncated: no final chunk captured
        chunked=True,
    )
    response = build_response(ex)
    assert response.status_code == 200 and response.reason == "OK"
    assert response.raw_content == b"hello world"
    assert response.headers["transfer-encoding"] == "chunked"  # the head is kept as sent


def test_garbage_head_gives_no_object():
    ex = _exchange(b"\x00\x01garbage\r\n\r\n", None)
    assert build_request(ex) is None
    assert build_response(ex) is None


def test_status_is_the_final_responses_after_100_continue():
    ex = _exchange(
        b"POST /build HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    )
    assert ex.status == 500
