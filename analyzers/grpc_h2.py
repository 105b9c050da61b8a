"""Passive HTTP/2 + gRPC decoding of BuildKit's hijacked `/grpc` and `/session` streams.

After dockerd answers `101 Switching Protocols` with `Upgrade: h2c`, both directions carry HTTP/2.
This decoder reads the two byte streams as a bystander and yields, per HTTP/2 stream, the gRPC
method (`:path`), its `grpc-status`, timing, DATA byte and gRPC message counts. It never keeps a
message payload: DATA frames are only counted and skipped (`/session` carries secrets and registry
credentials), and header values other than `:path`, `:status`, `grpc-status` (and, if asked,
`grpc-message`) are dropped as soon as HPACK has decoded them.

It uses h2's own frame and HPACK layers (`hyperframe`, `hpack`, installed with `h2`) rather than
`h2.connection.H2Connection`: that state machine is an endpoint — it enforces its own flow-control
windows and rejects responses on streams it did not open — so it cannot watch a conversation
between two other parties. HPACK must still decode every header block in order, or the dynamic
table goes out of step; that is why header blocks are decoded even for streams we ignore.

Either side may be the HTTP/2 client: on `/grpc` buildx calls dockerd's BuildKit controller; on
`/session` dockerd calls the services buildx serves (FileSync, Secrets, Auth, Health). The side
that sends the connection preface is the client.

Memory is bounded: at most one frame is buffered per direction (its size is limited by the
receiver's advertised SETTINGS_MAX_FRAME_SIZE), closed streams are folded into per-method
counts beyond `MAX_CALLS` detailed records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import hpack
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
)

Side = Literal["client", "backend"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME_HEADER = 9
_DEFAULT_MAX_FRAME = 16_384
_PROTOCOL_MAX_FRAME = (1 << 24) - 1
#: Detailed call records kept per connection; later calls are only counted per method.
MAX_CALLS = 256
#: A header block (HEADERS + CONTINUATIONs) larger than this is refused (gRPC metadata is small).
MAX_HEADER_BLOCK = 1 << 20
MAX_MESSAGE_TEXT = 200
#: Streams open at once, distinct methods counted, HPACK table size honoured: past these the peers are
#: not BuildKit as we know it, and decoding stops with a note rather than holding more memory.
MAX_OPEN_STREAMS = 1024
MAX_METHODS = 256
MAX_HPACK_TABLE = 1 << 20
_KEPT_HEADERS = frozenset({":path", ":status", "grpc-status", "grpc-message"})

#: gRPC status codes (grpc/codes), for display.
GRPC_CODES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)  # fmt: skip


def _other(side: Side) -> Side:
    return "backend" if side == "client" else "client"


@dataclass(slots=True)
class GrpcCall:
    """One HTTP/2 stream: a gRPC call as seen on the wire (no payloads)."""

    stream_id: int
    #: Which side of the Docker connection opened the stream (sent the request HEADERS).
    caller: Side
    method: str | None
    started: float
    responded: float | None = None
    ended: float | None = None
    http_status: int | None = None
    status: int | None = None
    #: `grpc-message` (only when the decoder keeps messages, and cut to MAX_MESSAGE_TEXT).
    message: str | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    request_messages: int = 0
    response_messages: int = 0
    #: RST_STREAM error code, when the stream was reset instead of ending normally.
    reset: int | None = None
    _caller_done: bool = False
    _callee_done: bool = False

    @property
    def done(self) -> bool:
        return self.reset is not None or (self._caller_done and self._callee_done)

    @property
    def status_name(self) -> str | None:
        if self.status is None:
            return None
        return GRPC_CODES[self.status] if 0 <= self.status < len(GRPC_CODES) else str(self.status)

    def to_dict(self, base: float | None = None) -> dict:
        def offset(t: float | None) -> float | None:
            return None if t is None or base is None else round((t - base) * 1000, 3)

        data: dict = {
            "method": self.method,
            "stream": self.stream_id,
            "caller": self.caller,
            "status": self.status,
            "status_name": self.status_name,
            "http_status": self.http_status,
            "started_ms": offset(self.started),
            "duration_ms": None if self.ended is None else round((self.ended - self.started) * 1000, 3),
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "request_messages": self.request_messages,
            "response_messages": self.response_messages,
        }
        if self.message is not None:
            data["message"] = self.message
        if self.reset is not None:
            data["reset"] = self.reset
        return data


@dataclass(slots=True)
class _Messages:
    """Counts length-prefixed gRPC messages in a DATA stream without keeping them."""

    header: bytearray = field(default_factory=bytearray)
    skip: int = 0
    count: int = 0

    def feed(self, data: memoryview) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self.skip:
                step = min(self.skip, n - pos)
                self.skip -= step
                pos += step
                continue
            take = min(5 - len(self.header), n - pos)
            self.header += data[pos : pos + take]
            pos += take
            if len(self.header) == 5:
                self.count += 1
                self.skip = int.from_bytes(self.header[1:5], "big")
                self.header.clear()


@dataclass(slots=True)
class _Direction:
    """Parsing state of one direction of the connection."""

    side: Side
    buffer: bytearray = field(default_factory=bytearray)
    preface_checked: bool = False
    decoder: hpack.Decoder = field(default_factory=hpack.Decoder)
    #: The largest frame this direction may send: the *other* side's SETTINGS_MAX_FRAME_SIZE.
    max_frame: int = _DEFAULT_MAX_FRAME
    #: An open header block: (stream id, frame kind, END_STREAM flag, fragments so far).
    block: tuple[int, str, bool, bytearray] | None = None
    bytes_seen: int = 0
    frames: int = 0


class GrpcDecoder:
    """Feed both directions' bytes in arrival order; read `calls`, `method_counts`, `failure`.

    `keep_messages`: keep `grpc-message` texts (error strings). Off for `/session`, whose errors
    may quote what the client served.
    """

    def __init__(self, *, keep_messages: bool = False, max_calls: int = MAX_CALLS) -> None:
        self.keep_messages = keep_messages
        self.max_calls = max_calls
        client, backend = _Direction("client"), _Direction("backend")
        self._dirs: dict[Side, _Direction] = {"client": client, "backend": backend}
        for d in self._dirs.values():
            d.decoder.max_header_list_size = MAX_HEADER_BLOCK
        #: Which side sent the HTTP/2 connection preface (the HTTP/2 client), once known.
        self.h2_client: Side | None = None
        self._open: dict[int, GrpcCall] = {}
        self._messages: dict[tuple[int, Side], _Messages] = {}
        #: Finished (and, at `snapshot`, still open) calls, in the order they started; at most max_calls.
        self.calls: list[GrpcCall] = []
        #: method → number of calls (every call, also those beyond `max_calls`).
        self.method_counts: dict[str, int] = {}
        self.failure: str | None = None
        self.goaway: int | None = None

    # -- input ---------------------------------------------------------------------------------

    def feed(self, side: Side, data: bytes | memoryview, when: float) -> None:
        """Bytes `side` sent, at time `when`. After a failure, bytes are only counted."""
        direction = self._dirs[side]
        direction.bytes_seen += len(data)
        if self.failure is not None:
            return
        direction.buffer += data
        try:
            self._parse(direction, when)
        except (HyperframeError, hpack.HPACKError, ValueError, IndexError) as exc:
            self._fail(f"{side} bytes are not valid HTTP/2 ({type(exc).__name__}: {exc})")

    def lost(self, side: Side, count: int) -> None:
        """`count` bytes of `side` never reached the decoder (the tap overflowed): stop decoding."""
        if count and self.failure is None:
            self._fail(f"{count} bytes sent by the {side} were not captured; decoding stopped there")

    def _fail(self, reason: str) -> None:
        self.failure = reason
        for d in self._dirs.values():
            d.buffer = bytearray()
            d.block = None
        self._messages.clear()

    def _parse(self, direction: _Direction, when: float) -> None:
        buf = direction.buffer
        if not direction.preface_checked:
            size = min(len(buf), len(PREFACE))
            if buf[:size] != PREFACE[:size]:
                direction.preface_checked = True  # the server side starts with its SETTINGS
            elif size < len(PREFACE):
                return
            else:
                del buf[: len(PREFACE)]
                direction.preface_checked = True
                if self.h2_client is None:
                    self.h2_client = direction.side
        pos = 0
        try:
            while len(buf) - pos >= _FRAME_HEADER:
                frame, length = Frame.parse_frame_header(memoryview(buf)[pos : pos + _FRAME_HEADER])
                if length > direction.max_frame:
                    raise ValueError(
                        f"a {length}-byte frame exceeds the receiver's SETTINGS_MAX_FRAME_SIZE "
                        f"{direction.max_frame}"
                    )
                end = pos + _FRAME_HEADER + length
                if len(buf) < end:
                    break
                frame.parse_body(memoryview(bytes(buf[pos + _FRAME_HEADER : end])))
                pos = end
                direction.frames += 1
                self._frame(direction, frame, when)
        finally:
            del buf[:pos]

    # -- frames --------------------------------------------------------------------------------

    def _frame(self, direction: _Direction, frame: Frame, when: float) -> None:
        if direction.block is not None and not isinstance(frame, ContinuationFrame):
            raise ValueError("a header block was interrupted by another frame")
        if isinstance(frame, SettingsFrame):
            if "ACK" not in frame.flags:
                self._settings(direction.side, frame.settings)
        elif isinstance(frame, HeadersFrame | PushPromiseFrame):
            kind = "push" if isinstance(frame, PushPromiseFrame) else "headers"
            block = (frame.stream_id, kind, "END_STREAM" in frame.flags, bytearray(frame.data))
            direction.block = block
            if "END_HEADERS" in frame.flags:
                self._end_block(direction, when)
        elif isinstance(frame, ContinuationFrame):
            if direction.block is None or direction.block[0] != frame.stream_id:
                raise ValueError("CONTINUATION without its HEADERS")
            direction.block[3].extend(frame.data)
            if len(direction.block[3]) > MAX_HEADER_BLOCK:
                raise ValueError(f"header block larger than {MAX_HEADER_BLOCK} bytes")
            if "END_HEADERS" in frame.flags:
                self._end_block(direction, when)
        elif isinstance(frame, DataFrame):
            self._data(direction.side, frame, when)
        elif isinstance(frame, RstStreamFrame):
            call = self._open.pop(frame.stream_id, None)
            if call is not None:
                # After its trailers a server may end the client's half with RST_STREAM(NO_ERROR): an
                # ordinary end (RFC 9113 §8.1), not a reset worth showing.
                if frame.error_code != 0 or not call._callee_done:
                    call.reset = frame.error_code
                call.ended = when
                self._finish(call)
        elif isinstance(frame, GoAwayFrame):
            self.goaway = frame.error_code

    def _settings(self, side: Side, settings: dict[int, int]) -> None:
        """`side` announced its receiving limits: they bound what the *other* side may send."""
        peer = self._dirs[_other(side)]
        if SettingsFrame.MAX_FRAME_SIZE in settings:
            announced = settings[SettingsFrame.MAX_FRAME_SIZE]
            peer.max_frame = min(max(announced, _DEFAULT_MAX_FRAME), _PROTOCOL_MAX_FRAME)
        if SettingsFrame.HEADER_TABLE_SIZE in settings:
            if settings[SettingsFrame.HEADER_TABLE_SIZE] > MAX_HPACK_TABLE:
                raise ValueError(f"an HPACK table larger than {MAX_HPACK_TABLE} bytes was allowed")
            peer.decoder.max_allowed_table_size = settings[SettingsFrame.HEADER_TABLE_SIZE]

    def _end_block(self, direction: _Direction, when: float) -> None:
        assert direction.block is not None
        stream_id, kind, end_stream, data = direction.block
        direction.block = None
        headers = direction.decoder.decode(bytes(data), raw=True)
        if kind == "push":
            return  # gRPC never pushes; the block was decoded only to keep HPACK in step
        kept: dict[str, str] = {}
        for name, value in headers:
            key = name.decode("latin-1").lower()
            if key in _KEPT_HEADERS:
                kept[key] = value.decode("utf-8", "replace")
        call = self._open.get(stream_id)
        if call is None:
            if ":path" not in kept:
                return  # trailers or a response for a stream we never saw open
            if len(self._open) >= MAX_OPEN_STREAMS:
                raise ValueError(f"more than {MAX_OPEN_STREAMS} streams open at once")
            method = kept[":path"]
            if method not in self.method_counts and len(self.method_counts) >= MAX_METHODS:
                raise ValueError(f"more than {MAX_METHODS} distinct methods")
            call = GrpcCall(stream_id, direction.side, method, when)
            self._open[stream_id] = call
            self.method_counts[method] = self.method_counts.get(method, 0) + 1
            if end_stream:
                call._caller_done = True
            return
        if direction.side == call.caller:
            call._caller_done = call._caller_done or end_stream
        else:
            if call.responded is None:
                call.responded = when
            if ":status" in kept and kept[":status"].isdigit():
                call.http_status = int(kept[":status"])
            if "grpc-status" in kept and kept["grpc-status"].strip().isdigit():
                call.status = int(kept["grpc-status"])
            if "grpc-message" in kept and self.keep_messages:
                call.message = kept["grpc-message"][:MAX_MESSAGE_TEXT]
            call._callee_done = call._callee_done or end_stream
        if call.done:
            call.ended = when
            self._open.pop(stream_id, None)
            self._finish(call)

    def _data(self, side: Side, frame: DataFrame, when: float) -> None:
        call = self._open.get(frame.stream_id)
        if call is None:
            return
        payload = frame.data
        key = (frame.stream_id, side)
        counter = self._messages.get(key)
        if counter is None:
            counter = self._messages[key] = _Messages()
        counter.feed(memoryview(payload))
        if side == call.caller:
            call.request_bytes += len(payload)
            call.request_messages = counter.count
        else:
            if call.responded is None:
                call.responded = when
            call.response_bytes += len(payload)
            call.response_messages = counter.count
        if "END_STREAM" in frame.flags:
            if side == call.caller:
                call._caller_done = True
            else:
                call._callee_done = True
            if call.done:
                call.ended = when
                self._open.pop(frame.stream_id, None)
                self._finish(call)

    def _finish(self, call: GrpcCall) -> None:
        self._messages.pop((call.stream_id, "client"), None)
        self._messages.pop((call.stream_id, "backend"), None)
        if len(self.calls) < self.max_calls:
            self.calls.append(call)

    # -- output --------------------------------------------------------------------------------

    @property
    def methods(self) -> tuple[str, ...]:
        """Every method seen so far (open or finished), in first-seen order."""
        return tuple(self.method_counts)

    def snapshot(self) -> list[GrpcCall]:
        """Finished calls plus those still open, in the order they started (bounded by max_calls)."""
        room = max(0, self.max_calls - len(self.calls))
        open_calls = sorted(self._open.values(), key=lambda c: c.started)[:room]
        return sorted(self.calls + open_calls, key=lambda c: (c.started, c.stream_id))

    @property
    def omitted(self) -> int:
        """Calls counted in `method_counts` but not kept as detailed records."""
        return sum(self.method_counts.values()) - len(self.snapshot())
