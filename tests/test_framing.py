"""Unit tests of the sans-io framing (proxy/framing.py): tables of heads and the framing they imply.

Each row is (head bytes, expected framing) in the style of h11's tests; the chunked scanner is fed
every valid body at every split point, so no slicing of the stream can change where a body ends.
References in the rows: RFC 9112 (HTTP/1.1 message syntax) and Moby's hijack contract
(layer-model.md §5.1).
"""

from __future__ import annotations

import pytest

from dockertap.proxy.framing import (
    MAX_CHUNK_LINE,
    MAX_CHUNK_SIZE,
    Body,
    ChunkedScanner,
    HeadTooLarge,
    Hijack,
    ProtocolError,
    RequestFrame,
    check_line_endings,
    decode_chunked,
    find_head_end,
    parse_request_head,
    parse_response_head,
)

GET = parse_request_head(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
HEAD = parse_request_head(b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
CONNECT = parse_request_head(b"CONNECT docker:2375 HTTP/1.1\r\nHost: docker\r\n\r\n")


# -- request heads ---------------------------------------------------------------------------

# (head, method, body, length, wants_upgrade, close) — RFC 9112 §6.1-6.3, §9.3
H = b"Host: docker\r\n"  # HTTP/1.1 requests need exactly one Host (RFC 9112 §3.2; Go's server enforces it)
REQUEST_CASES = [
    (b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n", b"GET", Body.NONE, 0, False, False),
    (b"POST /c HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\n", b"POST", Body.LENGTH, 5, False, False),
    (b"POST /c HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n", b"POST", Body.NONE, 0, False, False),
    (
        b"POST /b HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n",
        b"POST",
        Body.CHUNKED,
        0,
        False,
        False,
    ),
    # Docker attach / exec start: Connection: Upgrade + Upgrade: tcp (moby api/server/router/container)
    (
        b"POST /containers/x/attach?stream=1 HTTP/1.1\r\n"
        + H
        + b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        b"POST",
        Body.NONE,
        0,
        True,
        False,
    ),
    (
        b"POST /exec/x/start HTTP/1.1\r\n"
        + H
        + b"Content-Length: 2\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        b"POST",
        Body.LENGTH,
        2,
        True,
        False,
    ),
    # Upgrade header without the Connection token is no upgrade request (§7.8)
    (b"GET /x HTTP/1.1\r\n" + H + b"Upgrade: tcp\r\n\r\n", b"GET", Body.NONE, 0, False, False),
    (b"CONNECT h:1 HTTP/1.1\r\n\r\n", b"CONNECT", Body.NONE, 0, True, False),  # Host optional for CONNECT
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", b"GET", Body.NONE, 0, False, True),
    (b"GET / HTTP/1.1\r\n" + H + b"connection: keep-alive, CLOSE\r\n\r\n", b"GET", Body.NONE, 0, False, True),
    (b"GET / HTTP/1.0\r\n\r\n", b"GET", Body.NONE, 0, False, True),  # no Host needed on HTTP/1.0
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b"GET", Body.NONE, 0, False, False),
    (b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n", b"POST", Body.LENGTH, 3, False, True),
    # header names are case-insensitive, values trimmed of SP/HTAB (RFC 9110 §5.5 OWS)
    (
        b"POST /c HTTP/1.1\r\n" + H + b"cOnTeNt-LeNgTh: \t 12 \t\r\n\r\n",
        b"POST",
        Body.LENGTH,
        12,
        False,
        False,
    ),
    (b"POST /c HTTP/1.1\r\n" + H + b"Content-Length:12\r\n\r\n", b"POST", Body.LENGTH, 12, False, False),
    # obs-text (bytes >= 0x80) and HTAB are allowed inside field values, an empty value too
    (
        b"GET /a HTTP/1.1\r\n" + H + b"X-Label: caf\xc3\xa9\tb\r\nX-Empty:\r\n\r\n",
        b"GET",
        Body.NONE,
        0,
        False,
        False,
    ),
    (
        b"PUT /a HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        b"PUT",
        Body.LENGTH,
        1,
        False,
        False,
    ),
    (
        b"GET /v1.41/containers/json?filters={%22a%22:[1]}&all=1 HTTP/1.1\r\n" + H + b"\r\n",
        b"GET",
        Body.NONE,
        0,
        False,
        False,
    ),
]


@pytest.mark.parametrize(("head", "method", "body", "length", "upgrade", "close"), REQUEST_CASES)
def test_request_framing(head, method, body, length, upgrade, close):
    frame = parse_request_head(head)
    assert (frame.method, frame.body, frame.length, frame.wants_upgrade, frame.close) == (
        method,
        body,
        length,
        upgrade,
        close,
    )


def test_request_frame_carries_host_and_browser_markers():
    frame = parse_request_head(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:2375\r\n\r\n")
    assert (frame.host, frame.from_browser) == (b"127.0.0.1:2375", False)
    for marker in (b"Origin: http://evil.example", b"Sec-Fetch-Mode: no-cors", b"sec-fetch-site: cross-site"):
        frame = parse_request_head(b"GET / HTTP/1.1\r\nHost: localhost\r\n" + marker + b"\r\n\r\n")
        assert frame.from_browser, marker


# (head, substring of the error) — each is a request we must answer with 400, never relay. Every row
# is a head Go's net/http (dockerd, Podman) could frame differently from a CRLF-only reader, or
# would refuse itself after we relayed it (then the trace would show a request the engine never ran).
BAD_REQUESTS = [
    # request line (RFC 9112 §3): method SP request-target SP HTTP-version, single spaces
    (b"GET /_ping\r\n\r\n", "malformed request line"),
    (b"GET  /_ping HTTP/1.1\r\n" + H + b"\r\n", "malformed request line"),
    (b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", "malformed request line"),
    (b"GET / HTTP/1.1 \r\n" + H + b"\r\n", "malformed request line|unsupported HTTP version"),
    (b" GET / HTTP/1.1\r\n" + H + b"\r\n", "malformed"),
    (b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", "malformed"),
    (b"G(T / HTTP/1.1\r\n" + H + b"\r\n", "malformed method"),
    (b"GET /\x7f HTTP/1.1\r\n" + H + b"\r\n", "control byte"),
    (
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n",
        "malformed request line",
    ),  # raw UTF-8: percent-encode it
    (b"GET / HTTP/2.0\r\n" + H + b"\r\n", "unsupported HTTP version"),
    (b"GET / http/1.1\r\n" + H + b"\r\n", "unsupported HTTP version"),
    (b"GET / HTTP/1.10\r\n" + H + b"\r\n", "unsupported HTTP version"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n", "control byte|malformed"),  # a TLS ClientHello
    # request-target forms the engine would route differently from what the trace shows (§3.2)
    (b"GET http://docker/containers/json HTTP/1.1\r\n" + H + b"\r\n", "must start with '/'"),
    (b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", "must start with '/'"),
    (b"GET /_ping#frag HTTP/1.1\r\n" + H + b"\r\n", "malformed request target"),
    (b"CONNECT /x HTTP/1.1\r\n\r\n", "malformed CONNECT target"),
    # stray CRLF before the request line: Go's server discards it only after a POST, else answers 400
    (b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", "empty line before the request line"),
    # line endings: CR and LF only as CRLF pairs (Go's textproto ends a line at a bare LF)
    (b"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Trace: a\n\nPOST /containers/create HTTP/1.1\r\n\r\n", "bare LF"),
    (b"GET /_ping HTTP/1.1\nHost: d\r\n\r\n", "bare LF"),
    (b"GET /_ping HTTP/1.1\r\nHost: d\r\nX: a\rb\r\n\r\n", "bare CR"),
    (b"GET /_ping HTTP/1.1\r\nHost: d\r\nX: a\r\r\n\r\n", "bare CR"),
    # control bytes other than HTAB, anywhere in the head (RFC 9110 §5.5)
    (b"GET / HTTP/1.1\r\nHost: d\r\nX: a\x00b\r\n\r\n", "control byte"),
    (b"GET / HTTP/1.1\r\nHost: d\r\nX: \x1b]0;pwned\x07\r\n\r\n", "control byte"),
    (b"GET / HTTP/1.1\r\nHost: d\r\nX: a\x7fb\r\n\r\n", "control byte"),
    (b"GET / HTTP/1.1\r\nHost: d\r\nX: \x0b\r\n\r\n", "control byte"),
    # header lines (§5.1): token ":" OWS value OWS
    (b"GET / HTTP/1.1\r\nHost d\r\n\r\n", "malformed header line"),
    (b"GET / HTTP/1.1\r\nHo st: d\r\n\r\n", "malformed header line"),
    (b"GET / HTTP/1.1\r\n: d\r\n" + H + b"\r\n", "malformed header line"),
    (b"GET / HTTP/1.1\r\nHost : d\r\n\r\n", "malformed header line"),  # whitespace before the colon
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length\t: 5\r\n\r\n", "malformed header line"),
    (b"GET / HTTP/1.1\r\nX-\xc3\xa9: 1\r\n" + H + b"\r\n", "malformed header line"),  # non-token name
    (b"GET / HTTP/1.1\r\nHost: d\r\n folded\r\n\r\n", "folding"),  # §5.2 obs-fold
    (b"GET / HTTP/1.1\r\n Host: d\r\n\r\n", "folding"),
    (b"GET / HTTP/1.1\r\nHost: d\r\nX: a\r\n\tb\r\n\r\n", "folding"),
    # Host (§3.2; Go's server answers 400 itself, after which the trace would show an unexecuted request)
    (b"GET / HTTP/1.1\r\n\r\n", "missing Host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "malformed Host"),
    (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "malformed Host"),
    # Expect other than 100-continue: Go answers 417 without running the handler
    (b"POST / HTTP/1.1\r\n" + H + b"Expect: nothing\r\nContent-Length: 1\r\n\r\n", "unsupported Expect"),
    # request smuggling shapes (§6.3 items 3-5): one framing or none
    (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "more than one Content-Length",
    ),
    (
        b"PUT /a HTTP/1.1\r\n" + H + b"Content-Length: 7\r\nContent-Length: 7\r\n\r\n",
        "more than one Content-Length",
    ),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\n", "invalid Content-Length"),
    (b"PUT /a HTTP/1.1\r\n" + H + b"Content-Length: 7, 7\r\n\r\n", "invalid Content-Length"),  # Go: 400
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", "invalid Content-Length"),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\n", "invalid Content-Length"),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x10\r\n\r\n", "invalid Content-Length"),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 2\r\n\r\n", "invalid Content-Length"),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1_0\r\n\r\n", "invalid Content-Length"),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n", "invalid Content-Length"),  # Go: no body
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 9999999999999999999\r\n\r\n", "invalid Content-Length"),
    (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \xd9\xa3\r\n\r\n",
        "invalid Content-Length",
    ),  # Arabic-Indic 3
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"),
    (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        "unsupported Transfer-Encoding",
    ),
    (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
        "unsupported Transfer-Encoding",
    ),
    (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
        "unsupported Transfer-Encoding",
    ),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n\r\n", "unsupported Transfer-Encoding"),
    (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "unsupported Transfer-Encoding",
    ),
    (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "both Transfer-Encoding and Content-Length",
    ),
    (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "both Transfer-Encoding and Content-Length",
    ),
    # issue 10's second reproducer: Go ignores TE on HTTP/1.0 and frames by Content-Length
    (
        b"POST /containers/web/stop HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 62\r\n\r\n",
        "HTTP/1.0",
    ),
    (b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"),
]


@pytest.mark.parametrize(("head", "message"), BAD_REQUESTS)
def test_bad_request_heads_raise_protocol_error_with_400(head, message):
    with pytest.raises(ProtocolError, match=message) as err:
        parse_request_head(head)
    assert err.value.status_hint == 400


# (unfinished head, refused at once?) — a bare LF is refused before the head completes, so a client
# cannot park bytes in front of the engine; a CR at the very end may be half of a CRLF still coming.
@pytest.mark.parametrize(
    ("partial", "refused"),
    [
        (b"GET / HTTP/1.1\r\nHost: d\r", False),
        (b"GET / HTTP/1.1\r\nHost: d\r\nX: a\n", True),
        (b"GET / HTTP/1.1\r\nX: a\rb", True),
        (b"GET / HTTP/1.1\r\r", True),
        (b"GET / HTTP/1.1", False),
    ],
)
def test_unfinished_head_line_endings(partial, refused):
    if refused:
        with pytest.raises(ProtocolError, match="bare"):
            check_line_endings(partial, complete=False)
    else:
        check_line_endings(partial, complete=False)


def test_head_too_large_answers_431():
    assert HeadTooLarge.status_hint == 431
    assert issubclass(HeadTooLarge, ProtocolError)


# -- response heads --------------------------------------------------------------------------

ATTACH = parse_request_head(
    b"POST /containers/x/attach HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
)

# (request, head, status, body, length, hijack, close)
RESPONSE_CASES = [
    (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 200, Body.LENGTH, 2, Hijack.NONE, False),
    (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, Body.NONE, 0, Hijack.NONE, False),
    (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, Body.CHUNKED, 0, Hijack.NONE, False),
    # no framing at all: the body runs until the backend closes (§6.3 item 8)
    (
        GET,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        200,
        Body.UNTIL_CLOSE,
        0,
        Hijack.NONE,
        True,
    ),
    (GET, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", 200, Body.LENGTH, 2, Hijack.NONE, True),
    (
        GET,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
        200,
        Body.LENGTH,
        2,
        Hijack.NONE,
        True,
    ),
    # HEAD, 1xx, 204, 304 never have a body, whatever the headers claim (§6.3 items 1-2)
    (HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n", 200, Body.NONE, 0, Hijack.NONE, False),
    (HEAD, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, Body.NONE, 0, Hijack.NONE, False),
    (GET, b"HTTP/1.1 204 No Content\r\nContent-Length: 20\r\n\r\n", 204, Body.NONE, 0, Hijack.NONE, False),
    (GET, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\n", 304, Body.NONE, 0, Hijack.NONE, False),
    (GET, b"HTTP/1.1 100 Continue\r\n\r\n", 100, Body.NONE, 0, Hijack.NONE, False),
    (GET, b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 103, Body.NONE, 0, Hijack.NONE, False),
    # attach/exec: 101 + Upgrade: tcp -> raw stream both ways
    (
        ATTACH,
        b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        101,
        Body.NONE,
        0,
        Hijack.UPGRADE,
        False,
    ),  # fmt: skip
    # Docker's legacy hijack: 200 + raw-stream / multiplexed-stream and no length (moby httputils)
    (
        ATTACH,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n",
        200,
        Body.NONE,
        0,
        Hijack.RAW_STREAM,
        False,
    ),  # fmt: skip
    (
        ATTACH,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n",
        200,
        Body.NONE,
        0,
        Hijack.RAW_STREAM,
        False,
    ),  # fmt: skip
    # ...but a raw-stream type WITH a length is an ordinary body, and non-200 is no hijack
    (
        ATTACH,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nContent-Length: 3\r\n\r\n",
        200,
        Body.LENGTH,
        3,
        Hijack.NONE,
        False,
    ),  # fmt: skip
    (
        ATTACH,
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n",
        404,
        Body.UNTIL_CLOSE,
        0,
        Hijack.NONE,
        True,
    ),  # fmt: skip
    # CONNECT: 2xx opens a tunnel, anything else is an ordinary response
    (CONNECT, b"HTTP/1.1 200 Connection established\r\n\r\n", 200, Body.NONE, 0, Hijack.TUNNEL, False),
    (CONNECT, b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n", 407, Body.NONE, 0, Hijack.NONE, False),
    (GET, b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", 200, Body.LENGTH, 1, Hijack.NONE, False),  # no reason
    (
        GET,
        b"HTTP/1.1 599 Whatever Reason Phrase\r\nContent-Length: 1\r\n\r\n",
        599,
        Body.LENGTH,
        1,
        Hijack.NONE,
        False,
    ),  # fmt: skip
]


@pytest.mark.parametrize(
    ("request_frame", "head", "status", "body", "length", "hijack", "close"), RESPONSE_CASES
)
def test_response_framing(request_frame: RequestFrame, head, status, body, length, hijack, close):
    frame = parse_response_head(head, request_frame)
    assert (frame.status, frame.body, frame.length, frame.hijack, frame.close) == (
        status,
        body,
        length,
        hijack,
        close,
    )


def test_informational_excludes_101():
    assert parse_response_head(b"HTTP/1.1 100 Continue\r\n\r\n", GET).informational
    assert not parse_response_head(b"HTTP/1.1 101 Switching\r\n\r\n", ATTACH).informational
    assert not parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", GET).informational


BAD_RESPONSES = [
    (b"HTTP/2 200\r\n\r\n", "malformed status line"),
    (b"ICY 200 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 20 OK\r\n\r\n", "malformed status code"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status code"),
    (b"HTTP/1.1 abc OK\r\n\r\n", "malformed status code"),
    (b"HTTP/1.1 099 Low\r\n\r\n", "invalid status code"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "more than one Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", "more than one Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n", "invalid Content-Length"),
    # a client could frame these differently from us: refused (the relay answers 502)
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "both Transfer-Encoding"),
    (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n", "bare LF"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\n\r\n", "bare LF"),
    (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "bare CR"),
    (b"HTTP/1.1 200 OK\r\nX: \x1b[2J\r\n\r\n", "control byte"),
    (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "folding"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "malformed header line"),
    (b"\x00\x00\x12\x04\x00\x00\x00\x00\x00\r\n\r\n", "control byte"),  # an HTTP/2 SETTINGS frame
]


@pytest.mark.parametrize(("head", "message"), BAD_RESPONSES)
def test_bad_response_heads(head, message):
    with pytest.raises(ProtocolError, match=message):
        parse_response_head(head, GET)


# -- finding the end of a head ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("buf", "start", "end"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 0, 18),
        (b"GET / HTTP/1.1\r\n\r\nextra", 0, 18),
        (b"GET / HTTP/1.1\r\n", 0, -1),
        (b"GET / HTTP/1.1\r\n\r", 0, -1),
        (b"\n\n\n\n", 0, -1),  # bare LF heads are not HTTP/1.1 as we relay it
        # resuming the search after `start` must still find a terminator that straddles it
        (b"GET / HTTP/1.1\r\n\r\n", 17, 18),
        (b"GET / HTTP/1.1\r\n\r\n", 15, 18),
        (b"GET / HTTP/1.1\r\n\r\n", 14, 18),
    ],
)
def test_find_head_end(buf, start, end):
    assert find_head_end(buf, start) == end


def test_find_head_end_incremental_at_every_split():
    stream = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    expected = stream.index(b"\r\n\r\n") + 4
    for split in range(1, len(stream)):
        buf = bytearray(stream[:split])
        found = find_head_end(buf)
        searched = len(buf)
        if found < 0:
            buf += stream[split:]
            found = find_head_end(buf, searched)
        assert found == expected, split


# -- chunked bodies --------------------------------------------------------------------------

# (body on the wire, decoded payload) — RFC 9112 §7.1
CHUNKED_BODIES = [
    (b"0\r\n\r\n", b""),
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    (b"0005\r\nhello\r\n0\r\n\r\n", b"hello"),  # leading zeros
    (b"5;name=value\r\nhello\r\n0;last\r\n\r\n", b"hello"),  # chunk extensions
    (b"5\r\nhello\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n", b"hello"),  # trailers
    (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),  # CRLFs inside chunk data are data
    (b"1\r\n0\r\n0\r\n\r\n", b"0"),  # a "0" inside data is not the last chunk
    # Docker's /events and logs -f: many small chunks
    (
        b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b'{"a":1}\n', b"x" * 300, b"y")) + b"0\r\n\r\n",
        b'{"a":1}\n' + b"x" * 300 + b"y",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("wire", "payload"), CHUNKED_BODIES)
def test_chunked_scanner_at_every_split_point(wire, payload):
    next_message = b"HTTP/1.1 200 OK\r\n\r\n"
    stream = wire + next_message
    for split in range(len(stream) + 1):
        scanner = ChunkedScanner()
        consumed = scanner.feed(stream[:split])
        if not scanner.done:
            consumed += scanner.feed(stream[split:])
        assert scanner.done, split
        assert consumed == len(wire), split  # never one byte of the next message
    assert decode_chunked(wire) == payload


@pytest.mark.parametrize(("wire", "_payload"), CHUNKED_BODIES)
def test_chunked_scanner_byte_by_byte(wire, _payload):
    scanner = ChunkedScanner()
    consumed = 0
    for i in range(len(wire)):
        assert not scanner.done, i
        consumed += scanner.feed(wire[i : i + 1])
    assert scanner.done and consumed == len(wire)


@pytest.mark.parametrize(("wire", "_payload"), CHUNKED_BODIES)
def test_chunked_scanner_accepts_memoryview_and_bytearray(wire, _payload):
    for form in (bytearray(wire), memoryview(wire)):
        scanner = ChunkedScanner()
        assert scanner.feed(form) == len(wire) and scanner.done


def test_chunked_scanner_incomplete_is_not_done():
    for wire, _ in CHUNKED_BODIES:
        scanner = ChunkedScanner()
        assert scanner.feed(wire[:-1]) == len(wire) - 1
        assert not scanner.done


# (chunked stream, error substring) — all must be a protocol error, never a silent misframe
BAD_CHUNKED = [
    (b"x\r\n", "invalid chunk size"),
    (b"\r\n", "invalid chunk size"),
    (b"-5\r\nhello\r\n", "absurd chunk size|invalid chunk size"),
    (b" \r\n", "invalid chunk size"),
    # Python's int(x, 16) also takes "0x", "+" and "_": a peer (Go, h11) would not, so we must not either
    (b"0x5\r\nhello\r\n", "invalid chunk size"),
    (b"+5\r\nhello\r\n", "invalid chunk size"),
    (b"1_0\r\n", "invalid chunk size"),
    (b"5 5\r\n", "invalid chunk size"),
    # huge sizes: more hex digits than any real body, and values beyond MAX_CHUNK_SIZE
    (b"1" * 17 + b"\r\n", "invalid chunk size"),
    (b"ffffffffffffffff\r\n", "absurd chunk size"),
    (b"%x\r\n" % (MAX_CHUNK_SIZE + 1), "absurd chunk size"),
    (b"1" * (MAX_CHUNK_LINE + 10), "chunk-size line too long"),
    (b"5;" + b"e" * (MAX_CHUNK_LINE + 10) + b"\r\n", "chunk-size line too long"),
    # line endings and whitespace Go's chunked reader treated differently across versions: refused
    (b"5\nhello\r\n0\r\n\r\n", "invalid chunk size"),  # bare LF after the size (Go < 1.23.8 took it)
    (b"5\r\r\nhello\r\n", "invalid chunk size"),
    (b"5 \r\nhello\r\n", "invalid chunk size"),  # trailing whitespace (Go trims it, h11 does not)
    (b"5\t;x\r\nhello\r\n", "invalid chunk size"),
    (b"5;a\x00b\r\nhello\r\n", "invalid chunk size"),  # a control byte in an extension
    (b"5;a\rb\r\nhello\r\n", "invalid chunk size"),
    # the CRLF after chunk data is checked, not skipped (else "helloXY" would end a chunk for us only)
    (b"5\r\nhelloXY0\r\n\r\n", "not followed by CRLF"),
    (b"5\r\nhello\n0\r\n\r\n", "not followed by CRLF"),
    (b"5\r\nhello\r0\r\n\r\n", "not followed by CRLF"),
    # trailers use the header-line grammar with CRLF endings
    (b"0\r\nX: 1\n\r\n", "malformed trailer"),
    (b"0\r\n\n", "malformed trailer"),
    (b"0\r\nX : 1\r\n\r\n", "malformed trailer"),
    (b"0\r\n folded\r\n\r\n", "malformed trailer"),
    (b"0\r\nX: a\x01\r\n\r\n", "malformed trailer"),
]


@pytest.mark.parametrize(("wire", "message"), BAD_CHUNKED)
def test_bad_chunk_sizes_are_protocol_errors(wire, message):
    with pytest.raises(ProtocolError, match=message):
        ChunkedScanner().feed(wire)


@pytest.mark.parametrize(("wire", "message"), BAD_CHUNKED)
def test_bad_chunk_sizes_fail_when_fed_byte_by_byte(wire, message):
    scanner = ChunkedScanner()
    with pytest.raises(ProtocolError, match=message):
        for i in range(len(wire)):
            scanner.feed(wire[i : i + 1])


def test_chunk_size_at_the_limit_is_accepted():
    scanner = ChunkedScanner()
    line = b"%x\r\n" % MAX_CHUNK_SIZE
    assert scanner.feed(line + b"abc") == len(line) + 3
    assert not scanner.done


def test_decode_chunked_truncated_prefix_is_best_effort():
    wire = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    assert decode_chunked(wire[:12]) == b"hello"
    assert decode_chunked(b"zz\r\nhello") == b""
