"""Sans-io HTTP/1.1 framing: where does each message end, and when does a stream go raw?

This is the only HTTP knowledge on the forwarding path. It reads just enough of a head to
decide body framing (Content-Length, chunked, until-close, none) and whether the connection
is being hijacked, and it scans chunked bodies for their end without copying them. Building
full mitmproxy `Request`/`Response` objects happens later, off the hot path
(`dockertap.proxy.capture`).

It is also the one request-head grammar: RFC 9112 as Go's net/http server (dockerd, Podman)
accepts it, minus everything two parsers could read differently. A head with a bare CR or LF,
a control byte, obs-fold, whitespace before a colon, Transfer-Encoding beside Content-Length or
on HTTP/1.0 or other than `chunked`, a duplicate or list-valued Content-Length, a duplicate or
missing Host, an absolute-form target... is refused before a byte of it reaches the engine, so
the engine never executes a message the trace does not show (issue 10). Responses get the same
grammar, so dockertap frames them as the client does (or the relay answers 502).

Docker specifics handled here (layer-model.md §5.1):

* `Connection: Upgrade` + `Upgrade: tcp|h2c` answered by `101` -> raw bidirectional stream;
* the legacy hijack: `200` with `Content-Type: application/vnd.docker.raw-stream` (or
  `multiplexed-stream`) and no length framing -> also a raw bidirectional stream, although
  no upgrade was negotiated (mitmproxy's own HTTP layer does not know this one);
* a `2xx` answer to `CONNECT` -> tunnel.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

#: Largest request or response head we accept; a larger one gets 431 (issue: 1 MiB heads).
MAX_HEAD_SIZE = 256 * 1024
#: A chunk-size line longer than this (extensions included) is malformed.
MAX_CHUNK_LINE = 4096
#: Chunk sizes beyond this are absurd for the Docker API and treated as a protocol error.
MAX_CHUNK_SIZE = 1 << 40

DOCKER_STREAM_TYPES = (b"application/vnd.docker.raw-stream", b"application/vnd.docker.multiplexed-stream")

_TOKEN_CLASS = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX_BYTES = b"0123456789abcdefABCDEF"
# `bytes.translate(None, ALLOWED)` deletes the allowed bytes in C and leaves only the offending ones:
# one pass per head instead of a per-byte Python loop (~20 µs per head on the relay's hot path).
#: Bytes a head may hold at all: HTAB, CR, LF, visible ASCII, SP and obs-text (values only, RFC 9110 §5.5).
_HEAD_BYTES = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F), *range(0x80, 0x100)])
#: A request-target: visible ASCII without "#" (a fragment is never sent; Go would route it as path).
_TARGET_BYTES = bytes(c for c in range(0x21, 0x7F) if c != ord("#"))
#: Go's httpguts.validHostByte: what net/http's server accepts in Host.
_HOST_BYTES = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!$%&()*+,-.:;=[]_~'@"

_REQUEST_LINE = re.compile(rb"([%s]+) ([\x21-\x7e]+) HTTP/1\.([01])" % _TOKEN_CLASS)
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?")
#: The header block after the start line: every line `token ":" OWS value OWS CRLF`. No whitespace
#: before the colon, no obs-fold (a line starting with SP/HTAB is not a token), no empty name.
_HEADER_BLOCK = re.compile(rb"(?:[%s]+:[^\r\n]*\r\n)*\r\n" % _TOKEN_CLASS)
_HEADER_FIELD = re.compile(rb"([%s]+):[ \t]*([^\r\n]*?)[ \t]*\r\n" % _TOKEN_CLASS)
#: RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF, hex digits only (no "0x", sign, "_" or spaces).
_CHUNK_LINE = re.compile(rb"([0-9a-fA-F]{1,16})(?:;[\t\x20-\x7e]*)?\r\n")
_TRAILER_LINE = re.compile(rb"[%s]+:[\t\x20-\x7e\x80-\xff]*\r\n" % _TOKEN_CLASS)
#: Headers whose every occurrence the framing decision needs (lower-cased names).
_FRAMING_FIELDS = frozenset(
    (b"content-length", b"transfer-encoding", b"connection", b"upgrade", b"host", b"expect", b"origin")
)


class ProtocolError(Exception):
    """The peer sent bytes that are not HTTP/1.1 as we can relay it unambiguously.

    `status_hint` is what we answer a client with when the error is in a request head.
    """

    status_hint = 400


class HeadTooLarge(ProtocolError):
    status_hint = 431


class Body(enum.Enum):
    """How the end of a message body is found."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"


class Hijack(enum.Enum):
    """Why a connection stops being HTTP after a response head."""

    NONE = "none"
    UPGRADE = "upgrade"  # 101 Switching Protocols (attach, exec start, /grpc, /session)
    RAW_STREAM = "raw-stream"  # Docker's legacy 200 + raw-stream without upgrade
    TUNNEL = "tunnel"  # 2xx to CONNECT


@dataclass(slots=True, frozen=True)
class RequestFrame:
    method: bytes
    target: bytes
    body: Body
    length: int
    wants_upgrade: bool
    close: bool
    #: The Host header's value (b"" when absent: HTTP/1.0 or CONNECT).
    host: bytes = b""
    #: The request carries browser-only headers (Origin, Sec-Fetch-*): a web page is talking.
    from_browser: bool = False


@dataclass(slots=True, frozen=True)
class ResponseFrame:
    status: int
    body: Body
    length: int
    hijack: Hijack
    close: bool

    @property
    def informational(self) -> bool:
        """1xx other than 101: forwarded, then the real response head follows."""
        return 100 <= self.status < 200 and self.status != 101


def find_head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line ending a head, or -1 if the head is incomplete."""
    i = buf.find(b"\r\n\r\n", max(0, start - 3))
    return -1 if i < 0 else i + 4


def check_line_endings(data: bytes | bytearray, complete: bool = True) -> None:
    """Every CR and LF in a head must be part of a CRLF pair.

    Go's net/textproto also ends a line at a bare LF (and keeps a bare CR in a value): a head we
    split only on CRLF could hide a second request from us (issue 10's smuggling reproducer).
    `complete=False` checks an unfinished head, whose last byte may be the CR of a pair still
    arriving — so a bare LF is refused at once rather than after the head timeout.
    """
    pairs = data.count(b"\r\n")
    if data.count(b"\n") != pairs:
        raise ProtocolError("bare LF in the head (a line must end in CRLF)")
    crs = data.count(b"\r")
    if crs != pairs and not (not complete and crs == pairs + 1 and data[-1:] == b"\r"):
        raise ProtocolError("bare CR in the head (a line must end in CRLF)")


def _check_bytes(head: bytes) -> None:
    """No control byte but HTAB anywhere in a complete head.

    CR and LF need no check of their own on this path: the start-line and header-block patterns
    admit them only as the CRLF ending each line, so a bare one fails a match, and the error
    path then names it (`check_line_endings`).
    """
    bad = head.translate(None, _HEAD_BYTES)
    if bad:
        raise ProtocolError(f"control byte {bad[:1]!r} in the head")


def _start_line(head: bytes, pattern: re.Pattern[bytes]) -> tuple[re.Match[bytes] | None, int]:
    """Check a whole head's bytes and match its start line: (match or None, where the line ends).

    A bare CR/LF is named here; the caller explains any other mismatch.
    """
    _check_bytes(head)
    line_end = head.find(b"\r\n")
    match = pattern.fullmatch(head, 0, line_end)
    if match is None:
        check_line_endings(head)
    return match, line_end


def _header_fields(head: bytes, start: int) -> tuple[dict[bytes, list[bytes]], bool]:
    """The framing-relevant fields of a head whose start line ends at `start` (validated whole).

    Returns (lower-cased name -> values, whether any Sec-Fetch-* field is present).
    """
    if not _HEADER_BLOCK.fullmatch(head, start):
        check_line_endings(head)
        for line in head[start:].split(b"\r\n"):  # the error path only: name the offending line
            if line and not _HEADER_FIELD.fullmatch(line + b"\r\n"):
                break
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError(f"obsolete header line folding {line[:60]!r}")
        raise ProtocolError(f"malformed header line {line[:60]!r}")
    fields: dict[bytes, list[bytes]] = {}
    sec_fetch = False
    # The block is valid, so plain splitting is exact; partition/lower/strip run in C, unlike a
    # capturing regex per field (~3x slower per head).
    for line in head[start:-4].split(b"\r\n") if len(head) > start + 2 else ():
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in _FRAMING_FIELDS:
            fields.setdefault(name, []).append(value.strip(b" \t"))
        elif name.startswith(b"sec-fetch-"):
            sec_fetch = True
    return fields, sec_fetch


def _tokens(fields: dict[bytes, list[bytes]], name: bytes) -> set[bytes]:
    return {t.strip().lower() for v in fields.get(name, ()) for t in v.split(b",") if t.strip()}


def _content_length(fields: dict[bytes, list[bytes]]) -> int | None:
    """Exactly one Content-Length of 1-18 ASCII digits, or none: duplicates and lists are refused
    (Go dedupes equal duplicates but rejects "7, 7"; any other peer may differ again)."""
    values = fields.get(b"content-length")
    if not values:
        return None
    if len(values) > 1:
        raise ProtocolError("more than one Content-Length header")
    value = values[0]
    if not value or len(value) > 18 or value.translate(None, b"0123456789"):
        raise ProtocolError(f"invalid Content-Length {value[:30]!r}")
    return int(value)


def _is_chunked(fields: dict[bytes, list[bytes]], http10: bool) -> bool:
    """Transfer-Encoding is exactly one field `chunked`, never beside Content-Length, never on
    HTTP/1.0 (Go ignores it there and frames by Content-Length: issue 10's second reproducer)."""
    values = fields.get(b"transfer-encoding")
    if values is None:
        return False
    if http10:
        raise ProtocolError("Transfer-Encoding on HTTP/1.0 (peers disagree on its framing)")
    if len(values) > 1 or values[0] != b"chunked":
        raise ProtocolError(f"unsupported Transfer-Encoding {b', '.join(values)[:60]!r} (only 'chunked')")
    if b"content-length" in fields:
        raise ProtocolError("both Transfer-Encoding and Content-Length (peers disagree on which wins)")
    return True


def _check_target(method: bytes, target: bytes) -> None:
    """Origin-form (`/path?query`) only, or authority-form for CONNECT: an absolute-form target or
    `*` would be routed by the engine differently from what the trace shows."""
    if target.translate(None, _TARGET_BYTES):
        raise ProtocolError(f"malformed request target {target[:80]!r}")
    if method == b"CONNECT":
        if target[:1] == b"/" or b"/" in target or b"@" in target:
            raise ProtocolError(f"malformed CONNECT target {target[:80]!r}")
    elif target[:1] != b"/":
        raise ProtocolError(f"request target must start with '/' {target[:80]!r}")


def parse_request_head(head: bytes | bytearray) -> RequestFrame:
    """Read the framing facts of a request head (ending in the blank line), or raise
    ProtocolError for anything dockertap and the engine's Go parser could read differently."""
    head = bytes(head)
    match, line_end = _start_line(head, _REQUEST_LINE)
    if match is None:
        request_line = head[: max(line_end, 0)]
        if not request_line:
            raise ProtocolError("empty line before the request line")
        method = request_line.split(b" ", 1)[0]
        if method.translate(None, _TOKEN_BYTES):
            raise ProtocolError(f"malformed method {method[:20]!r}")
        if request_line.count(b" ") == 2 and not request_line.endswith((b" HTTP/1.1", b" HTTP/1.0")):
            raise ProtocolError(f"unsupported HTTP version {request_line.rsplit(b' ', 1)[-1][:20]!r}")
        raise ProtocolError(f"malformed request line {request_line[:80]!r}")
    method, target = match.group(1), match.group(2)
    http10 = match.group(3) == b"0"
    _check_target(method, target)
    fields, sec_fetch = _header_fields(head, line_end + 2)
    hosts = fields.get(b"host", ())
    if len(hosts) > 1:
        raise ProtocolError("more than one Host header")
    host = hosts[0] if hosts else b""
    if not hosts and not http10 and method != b"CONNECT":
        raise ProtocolError("missing Host header (HTTP/1.1 requires one)")
    if host.translate(None, _HOST_BYTES):
        raise ProtocolError(f"malformed Host header {host[:60]!r}")
    expect = fields.get(b"expect")
    if expect is not None and (len(expect) > 1 or expect[0].lower() != b"100-continue"):
        raise ProtocolError(f"unsupported Expect {b', '.join(expect)[:60]!r} (only '100-continue')")
    connection = _tokens(fields, b"connection")
    if _is_chunked(fields, http10):
        body, length = Body.CHUNKED, 0
    else:
        n = _content_length(fields)
        body, length = (Body.LENGTH, n) if n else (Body.NONE, 0)
    close = b"close" in connection or (http10 and b"keep-alive" not in connection)
    wants_upgrade = (b"upgrade" in connection and b"upgrade" in fields) or method == b"CONNECT"
    from_browser = sec_fetch or b"origin" in fields
    return RequestFrame(method, target, body, length, wants_upgrade, close, host, from_browser)


def parse_response_head(head: bytes | bytearray, request: RequestFrame) -> ResponseFrame:
    """Read the framing facts of a response head, given the request it answers.

    The same line grammar as requests; framing a client could read differently (Transfer-Encoding
    beside Content-Length or on HTTP/1.0, duplicate lengths) is a ProtocolError (the relay's 502).
    """
    head = bytes(head)
    match, line_end = _start_line(head, _STATUS_LINE)
    if match is None:
        status_line = head[: max(line_end, 0)]
        parts = status_line.split(b" ", 2)
        if len(parts) >= 2 and parts[0] in (b"HTTP/1.1", b"HTTP/1.0"):
            raise ProtocolError(f"malformed status code {parts[1][:20]!r}")
        raise ProtocolError(f"malformed status line {status_line[:80]!r}")
    http10 = match.group(1) == b"0"
    status = int(match.group(2))
    if status < 100:
        raise ProtocolError(f"invalid status code {status}")
    fields, _ = _header_fields(head, line_end + 2)
    connection = _tokens(fields, b"connection")
    close = b"close" in connection or (http10 and b"keep-alive" not in connection)

    if status == 101:
        return ResponseFrame(status, Body.NONE, 0, Hijack.UPGRADE, False)
    if request.method == b"CONNECT" and 200 <= status < 300:
        return ResponseFrame(status, Body.NONE, 0, Hijack.TUNNEL, False)
    if status < 200 or status in (204, 304) or request.method == b"HEAD":
        return ResponseFrame(status, Body.NONE, 0, Hijack.NONE, close)
    if _is_chunked(fields, http10):
        return ResponseFrame(status, Body.CHUNKED, 0, Hijack.NONE, close)
    length = _content_length(fields)
    if length is not None:
        return ResponseFrame(status, Body.LENGTH if length else Body.NONE, length, Hijack.NONE, close)
    content_type = b"".join(_content_types(head, line_end + 2)).lower()
    if status == 200 and content_type.startswith(DOCKER_STREAM_TYPES):
        return ResponseFrame(status, Body.NONE, 0, Hijack.RAW_STREAM, False)
    return ResponseFrame(status, Body.UNTIL_CLOSE, 0, Hijack.NONE, True)


def _content_types(head: bytes, start: int) -> list[bytes]:
    """Content-Type values: read only for unframed responses (rare), so kept off the common path."""
    pairs = (line.partition(b":") for line in head[start:-4].split(b"\r\n"))
    return [value.strip(b" \t") for name, _, value in pairs if name.lower() == b"content-type"]


class ChunkedScanner:
    """Finds where a chunked body ends, chunk by chunk, without copying chunk data.

    Feed it consecutive slices of the stream; `feed` returns how many bytes of the slice
    belong to the body. When `done` turns true, bytes past that count belong to the next
    message. Trailers are accepted and skipped.
    """

    __slots__ = ("_remaining", "_line", "_state", "done")

    _SIZE, _DATA, _DATA_CRLF, _TRAILER = range(4)

    def __init__(self) -> None:
        self._remaining = 0
        self._line = bytearray()
        self._state = self._SIZE
        self.done = False

    def feed(self, data: bytes | bytearray | memoryview) -> int:
        pos, end = 0, len(data)
        while pos < end and not self.done:
            state = self._state
            if state == self._DATA:
                take = min(self._remaining, end - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state, self._remaining = self._DATA_CRLF, 2
                continue
            if state == self._DATA_CRLF:
                # The CRLF after chunk data, possibly split across feeds: each byte must be its own.
                expected = b"\r\n"[2 - self._remaining :]
                take = min(self._remaining, end - pos)
                if bytes(data[pos : pos + take]) != expected[:take]:
                    raise ProtocolError("chunk data not followed by CRLF")
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = self._SIZE
                continue
            # SIZE or TRAILER: accumulate one line.
            nl = bytes(data[pos : min(end, pos + MAX_CHUNK_LINE + 2)]).find(b"\n")
            if nl < 0:
                self._line += data[pos:end]
                pos = end
                if len(self._line) > MAX_CHUNK_LINE:
                    raise ProtocolError("chunk-size line too long")
                break
            self._line += data[pos : pos + nl + 1]
            pos += nl + 1
            line = bytes(self._line)
            self._line.clear()
            if len(line) > MAX_CHUNK_LINE + 2:
                raise ProtocolError("chunk-size line too long")
            if state == self._TRAILER:
                if line == b"\r\n":
                    self.done = True
                elif not _TRAILER_LINE.fullmatch(line):
                    raise ProtocolError(f"malformed trailer line {line[:60]!r}")
                continue
            match = _CHUNK_LINE.fullmatch(line)
            # Hex digits only (int(x, 16) would also take "0x", "+", "-" and "_"), no whitespace,
            # CRLF only: Go's chunked reader took a bare LF before Go 1.23.8, newer ones refuse it.
            if match is None:
                raise ProtocolError(f"invalid chunk size line {line[:30]!r}")
            size = int(match.group(1), 16)
            if size > MAX_CHUNK_SIZE:
                raise ProtocolError(f"absurd chunk size {size}")
            if size == 0:
                self._state = self._TRAILER
            else:
                self._state, self._remaining = self._DATA, size
        return pos


def iter_chunks(raw: bytes | bytearray) -> Iterator[tuple[int, int, int, int]]:
    """Walk a (possibly truncated) chunked body prefix, off the forwarding path.

    Yields (size-line start, payload start, payload end, declared size) per data chunk; the
    payload end is clipped to what `raw` holds. Stops at the last chunk or at malformed bytes.
    """
    pos = 0
    while pos < len(raw):
        nl = raw.find(b"\r\n", pos)
        if nl < 0:
            return
        try:
            size = int(bytes(raw[pos:nl]).split(b";", 1)[0].strip() or b"x", 16)
        except ValueError:
            return
        if size == 0:
            return
        start = nl + 2
        yield pos, start, min(start + size, len(raw)), size
        pos = start + size + 2


def decode_chunked(raw: bytes | bytearray) -> bytes:
    """Decode a (possibly truncated) chunked body prefix into its payload, best effort."""
    return b"".join(bytes(raw[start:end]) for _, start, end, _ in iter_chunks(raw))
