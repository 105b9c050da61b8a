"""Sans-io HTTP/1.1 framing: where does each message end, and when does a stream go raw?

This is the only HTTP knowledge on the forwarding path. It reads just enough of a head to
decide body framing (Content-Length, chunked, until-close, none) and whether the connection
is being hijacked, and it scans chunked bodies for their end without copying them. Building
full mitmproxy `Request`/`Response` objects happens later, off the hot path
(`dockertap.proxy.capture`).

Docker specifics handled here (layer-model.md §5.1):

* `Connection: Upgrade` + `Upgrade: tcp|h2c` answered by `101` -> raw bidirectional stream;
* the legacy hijack: `200` with `Content-Type: application/vnd.docker.raw-stream` (or
  `multiplexed-stream`) and no length framing -> also a raw bidirectional stream, although
  no upgrade was negotiated (mitmproxy's own HTTP layer does not know this one);
* a `2xx` answer to `CONNECT` -> tunnel.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

#: Largest request or response head we accept; a larger one gets 431 (issue: 1 MiB heads).
MAX_HEAD_SIZE = 256 * 1024
#: A chunk-size line longer than this (extensions included) is malformed.
MAX_CHUNK_LINE = 4096
#: Chunk sizes beyond this are absurd for the Docker API and treated as a protocol error.
MAX_CHUNK_SIZE = 1 << 40

DOCKER_STREAM_TYPES = (b"application/vnd.docker.raw-stream", b"application/vnd.docker.multiplexed-stream")

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# The same sets as `bytes.translate` deletion tables: `value.translate(None, ALLOWED)` leaves only the
# disallowed bytes, in C. A per-byte generator here cost ~20 µs per head on the relay's hot path.
_TOKEN_BYTES = bytes(sorted(_TOKEN_CHARS))
_HEX_BYTES = bytes(sorted(_HEX_DIGITS))
_TARGET_BYTES = bytes(c for c in range(256) if c > 0x20 and c != 0x7F)


class ProtocolError(Exception):
    """The peer sent bytes that are not HTTP/1.1 as we can relay it.

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


def _header_fields(lines: list[bytes]) -> dict[bytes, list[bytes]]:
    fields: dict[bytes, list[bytes]] = {}
    for line in lines:
        if not line:
            continue
        if line[0] in b" \t":
            raise ProtocolError("obsolete header line folding")
        name, sep, value = line.partition(b":")
        if not sep or not name or name.translate(None, _TOKEN_BYTES):
            raise ProtocolError(f"malformed header line {line[:60]!r}")
        fields.setdefault(name.lower(), []).append(value.strip())
    return fields


def _tokens(fields: dict[bytes, list[bytes]], name: bytes) -> set[bytes]:
    return {t.strip().lower() for v in fields.get(name, ()) for t in v.split(b",") if t.strip()}


def _content_length(fields: dict[bytes, list[bytes]]) -> int | None:
    values = {v.strip() for raw in fields.get(b"content-length", ()) for v in raw.split(b",")}
    if not values:
        return None
    if len(values) > 1:
        raise ProtocolError("conflicting Content-Length headers")
    value = values.pop().strip()
    if not value.isdigit() or len(value) > 18:
        raise ProtocolError(f"invalid Content-Length {value[:30]!r}")
    return int(value)


def _is_chunked(fields: dict[bytes, list[bytes]]) -> bool:
    codings = [t.strip().lower() for v in fields.get(b"transfer-encoding", ()) for t in v.split(b",")]
    if not codings:
        return False
    if codings[-1] != b"chunked":
        raise ProtocolError(f"unsupported Transfer-Encoding {b', '.join(codings)[:60]!r}")
    return True


def parse_request_head(head: bytes | bytearray) -> RequestFrame:
    """Read the framing facts of a request head (ending in the blank line)."""
    lines = bytes(head).split(b"\r\n")
    request_line = lines[0]
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise ProtocolError(f"malformed request line {request_line[:80]!r}")
    method, target, version = parts
    if not method or method.translate(None, _TOKEN_BYTES):
        raise ProtocolError(f"malformed method {method[:20]!r}")
    if not target or target.translate(None, _TARGET_BYTES):
        raise ProtocolError(f"malformed request target {target[:80]!r}")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ProtocolError(f"unsupported HTTP version {version[:20]!r}")
    fields = _header_fields(lines[1:])
    connection = _tokens(fields, b"connection")
    if _is_chunked(fields):
        body, length = Body.CHUNKED, 0
    else:
        n = _content_length(fields)
        body, length = (Body.LENGTH, n) if n else (Body.NONE, 0)
    close = b"close" in connection or (version == b"HTTP/1.0" and b"keep-alive" not in connection)
    wants_upgrade = (b"upgrade" in connection and b"upgrade" in fields) or method == b"CONNECT"
    return RequestFrame(method, target, body, length, wants_upgrade, close)


def parse_response_head(head: bytes | bytearray, request: RequestFrame) -> ResponseFrame:
    """Read the framing facts of a response head, given the request it answers."""
    lines = bytes(head).split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ProtocolError(f"malformed status line {lines[0][:80]!r}")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"malformed status code {code[:20]!r}")
    status = int(code)
    if status < 100:
        raise ProtocolError(f"invalid status code {status}")
    fields = _header_fields(lines[1:])
    connection = _tokens(fields, b"connection")
    close = b"close" in connection or (parts[0] == b"HTTP/1.0" and b"keep-alive" not in connection)

    if status == 101:
        return ResponseFrame(status, Body.NONE, 0, Hijack.UPGRADE, False)
    if request.method == b"CONNECT" and 200 <= status < 300:
        return ResponseFrame(status, Body.NONE, 0, Hijack.TUNNEL, False)
    if status < 200 or status in (204, 304) or request.method == b"HEAD":
        return ResponseFrame(status, Body.NONE, 0, Hijack.NONE, close)
    if _is_chunked(fields):
        return ResponseFrame(status, Body.CHUNKED, 0, Hijack.NONE, close)
    length = _content_length(fields)
    if length is not None:
        return ResponseFrame(status, Body.LENGTH if length else Body.NONE, length, Hijack.NONE, close)
    content_type = b"".join(fields.get(b"content-type", ())).lower()
    if status == 200 and content_type.startswith(DOCKER_STREAM_TYPES):
        return ResponseFrame(status, Body.NONE, 0, Hijack.RAW_STREAM, False)
    return ResponseFrame(status, Body.UNTIL_CLOSE, 0, Hijack.NONE, True)


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
            if state == self._DATA or state == self._DATA_CRLF:
                take = min(self._remaining, end - pos)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    if state == self._DATA:
                        self._state, self._remaining = self._DATA_CRLF, 2
                    else:
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
            line = bytes(self._line).rstrip(b"\r\n")
            self._line.clear()
            if len(line) > MAX_CHUNK_LINE:
                raise ProtocolError("chunk-size line too long")
            if state == self._TRAILER:
                if not line:
                    self.done = True
                continue
            size_text = line.split(b";", 1)[0].strip()
            # Hex digits only: int(x, 16) would also take "0x", "+", "-" and "_", which the peer won't.
            if not size_text or len(size_text) > 16 or size_text.translate(None, _HEX_BYTES):
                raise ProtocolError(f"invalid chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
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
