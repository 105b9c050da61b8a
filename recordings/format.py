"""The session file: versioned, append-only JSON Lines, one record per line.

A session file is written while the tap runs and must stay useful after a crash, so every record
is a complete line handed to the kernel with one `write()` a few milliseconds after the exchange
ends (the hub's batch delay, then the recorder thread): `kill -9` of the proxy loses the exchanges
in flight and those that ended in the last few milliseconds (measured in
tests/test_recorder_cost.py), and the reader tolerates (and reports) a truncated last line.

Records (`type` field):

- `header` — first line: format name and version, dockertap version, start time, backend
  fingerprint, host facts, whether redaction was on, the capture limit.
- `exchange` — one per finished exchange: every field of the JSON trace (`trace_record`), plus the
  raw request/response heads, captured body prefixes (wire bytes, chunk framing included, as text
  or base64, with arrival marks), and for hijacked streams the timed raw frames per direction and
  a demultiplexed `streams` view.
- `settled` — with observation on: the `layers`, `evidence` and `mismatches` an exchange had once
  its settle window closed; the reader applies them to the `exchange` record with the same `id`.
- `backend` — the backend fingerprint, whenever it changes after the header was written.
- `evidence` — background evidence (containerd events, runtime execs), any JSON object.
- `footer` — last line when the session closed cleanly: end time, exchange and drop counts.

Raw bytes are the source of truth: concatenating `frames` (or a body's `data`) gives back exactly
the bytes the relay forwarded, so a replay can re-emit them. `streams` is derived (Docker's 8-byte
stdio framing decoded, layer-model.md §5.1) and only for reading.

Versioning rule: `version` is the major version. Adding fields or record types keeps it; readers
ignore fields and record types they do not know. Renaming, removing or changing the meaning of a
field bumps it, and a reader refuses a major version newer than it knows.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import platform
import socket
import stat
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dockertap.analyzers.streams import MULTIPLEXED_TYPE, STREAM_NAMES
from dockertap.i18n import msg
from dockertap.proxy.exchange import Capture, Exchange, HijackCapture, PeerInfo
from dockertap.proxy.framing import decode_chunked, iter_chunks
from dockertap.recordings.trace import rfc3339, trace_record

FORMAT_NAME = "dockertap-session"
FORMAT_VERSION = 1

_FRAME_HEADER = struct.Struct(">BxxxI")
_MAX_FRAME = 1 << 26


class SessionFormatError(ValueError):
    """The file is not a dockertap session, or a version this reader does not understand.

    Carries its message id and fields so the CLI can word it in the user's language (`worded`);
    `str()` is the English.
    """

    def __init__(self, message_id: str, **fields: object) -> None:
        self.message_id = message_id
        self.fields = fields
        super().__init__(msg("en", message_id, **fields))


class SessionWarning(str):
    """A warning about a session file: its English text (a plain str to every reader), with its message id
    and fields so a display can word it in the user's language (`dockertap.i18n.worded`)."""

    message_id: str
    fields: dict[str, object]

    def __new__(cls, message_id: str, **fields: object) -> SessionWarning:
        warning = super().__new__(cls, msg("en", message_id, **fields))
        warning.message_id, warning.fields = message_id, fields
        return warning


# -- bytes <-> JSON ---------------------------------------------------------------------------


def encode_bytes(data: bytes) -> tuple[str, str]:
    """(encoding, data): UTF-8 text when it round-trips exactly, base64 otherwise."""
    try:
        return "text", data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64", base64.b64encode(data).decode("ascii")


def decode_bytes(encoding: str, data: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(data)
    if encoding == "text":
        return data.encode("utf-8")
    raise SessionFormatError("session_unknown_encoding", encoding=encoding)


# -- demultiplexing with timing ---------------------------------------------------------------


def content_type(head: bytes | None) -> str:
    """The Content-Type of the last (final) response head, lower-cased, or ''."""
    if not head:
        return ""
    last = head.rstrip(b"\r\n").rsplit(b"\r\n\r\n", 1)[-1]
    for line in last.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-type":
            return value.strip().decode("latin-1").lower()
    return ""


def _parses_as_frames(data: bytes, complete: bool) -> bool:
    """True when `data` is a sequence of well-formed 8-byte-header frames (tail may be cut)."""
    pos = 0
    if len(data) < 8:
        return False
    while pos + 8 <= len(data):
        kind, size = _FRAME_HEADER.unpack_from(data, pos)
        if kind not in STREAM_NAMES or data[pos + 1 : pos + 4] != b"\0\0\0" or size > _MAX_FRAME:
            return False
        pos += 8 + size
    return pos == len(data) or not complete


def is_multiplexed(content_type_value: str, data: bytes, complete: bool) -> bool:
    """Docker labels API < 1.42 framed streams `raw-stream`, so unlabelled framing is detected."""
    if content_type_value.startswith(MULTIPLEXED_TYPE):
        return True
    return _parses_as_frames(data, complete)


def timed_demux(pieces: list[tuple[float, bytes]]) -> list[dict[str, Any]]:
    """Decode framed stdio into `{t, stream, encoding, data}`; t is when the frame was complete."""
    data = b"".join(chunk for _, chunk in pieces)
    ends: list[int] = []  # end offset of each piece, ascending
    times: list[float] = []
    offset = 0
    for t, chunk in pieces:
        offset += len(chunk)
        ends.append(offset)
        times.append(t)

    def time_at(byte_end: int) -> float:
        # a binary search: a stream of 1-byte frames has as many pieces as frames
        i = bisect_left(ends, byte_end)
        return times[i] if i < len(times) else (times[-1] if times else 0.0)

    out: list[dict[str, Any]] = []
    pos = 0
    while pos + 8 <= len(data):
        kind, size = _FRAME_HEADER.unpack_from(data, pos)
        if kind not in STREAM_NAMES or data[pos + 1 : pos + 4] != b"\0\0\0":
            break
        end = min(pos + 8 + size, len(data))
        encoding, text = encode_bytes(data[pos + 8 : end])
        out.append({"t": time_at(end), "stream": STREAM_NAMES[kind], "encoding": encoding, "data": text})
        pos = pos + 8 + size
    if pos < len(data) and (pos + 8 > len(data) or not out):
        encoding, text = encode_bytes(data[pos:])
        out.append({"t": time_at(len(data)), "stream": "partial", "encoding": encoding, "data": text})
    return out


def _timed_slices(capture: Capture, base: float) -> list[tuple[float, bytes]]:
    """The captured wire bytes cut at their arrival marks, with times relative to `base`."""
    data = bytes(capture.data)
    marks = capture.marks or [(base, 0)]
    out = []
    for i, (t, start) in enumerate(marks):
        end = marks[i + 1][1] if i + 1 < len(marks) else len(data)
        if end > start:
            out.append((round(t - base, 6), data[start:end]))
    return out


def _dechunk_timed(slices: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """Payload pieces of a chunked body, each stamped with the arrival time of its wire bytes."""
    raw = b"".join(chunk for _, chunk in slices)
    starts: list[int] = []
    offset = 0
    for _, chunk in slices:
        starts.append(offset)
        offset += len(chunk)
    out: list[tuple[float, bytes]] = []
    for _, start, stop, _ in iter_chunks(raw):
        # only the slices that overlap [start, stop): found by binary search, not by a scan
        i = max(0, bisect_right(starts, start) - 1)
        while i < len(starts) and starts[i] < stop:
            slice_end = starts[i + 1] if i + 1 < len(starts) else len(raw)
            lo, hi = max(start, starts[i]), min(stop, slice_end)
            if lo < hi:
                out.append((slices[i][0], raw[lo:hi]))
            i += 1
    return out


# -- exchange -> record -------------------------------------------------------------------------


def _body_record(capture: Capture, chunked: bool, base: float) -> dict[str, Any]:
    encoding, data = encode_bytes(bytes(capture.data))
    return {
        "encoding": encoding,
        "data": data,
        "size": capture.total,
        "captured": len(capture.data),
        "truncated": capture.truncated,
        "chunked": chunked,
        "marks": [[round(t - base, 6), offset] for t, offset in capture.marks],
    }


def _head_text(head: bytes | None) -> str | None:
    return None if head is None else head.decode("latin-1")


def _offset(t: float | None, base: float) -> float | None:
    return None if t is None else round(t - base, 6)


def _hijack_record(hijack: HijackCapture, base: float, response_type: str) -> dict[str, Any]:
    frames = []
    backend_pieces: list[tuple[float, bytes]] = []
    for i, (t, direction, chunk) in enumerate(hijack.frames):
        encoding, data = encode_bytes(chunk)
        frame: dict[str, Any] = {
            "t": round(t - base, 6),
            "dir": direction,
            "stream": "stdin" if direction == "client" else "raw",
            "encoding": encoding,
            "data": data,
        }
        if i in hijack.withheld:
            frame["withheld"] = hijack.withheld[i]  # redaction kept its size, not its bytes
        frames.append(frame)
        if direction == "backend":
            backend_pieces.append((round(t - base, 6), chunk))
    backend_data = b"".join(chunk for _, chunk in backend_pieces)
    complete = hijack.backend_closed_at is not None and not hijack.truncated
    multiplexed = bool(backend_data) and is_multiplexed(response_type, backend_data, complete)
    if multiplexed:
        streams = timed_demux(backend_pieces)
    else:
        streams = []
        for t, chunk in backend_pieces:
            encoding, data = encode_bytes(chunk)
            streams.append({"t": t, "stream": "raw", "encoding": encoding, "data": data})
    for frame in frames:
        if frame["dir"] == "client":
            streams.append(dict(frame, stream="stdin"))
    streams.sort(key=lambda s: s["t"])
    for item in streams:
        item.setdefault("dir", "backend")
    return {
        "client_bytes": hijack.client_bytes,
        "backend_bytes": hijack.backend_bytes,
        "captured": hijack.captured,
        "truncated": hijack.truncated,
        "client_closed": _offset(hijack.client_closed_at, base),
        "backend_closed": _offset(hijack.backend_closed_at, base),
        "multiplexed": multiplexed,
        "frames": frames,
        "streams": streams,
    }


def _response_streams(ex: Exchange, response_type: str) -> list[dict[str, Any]] | None:
    """Demultiplexed stdio of a streamed (not hijacked) body such as `logs`, else None.

    dockerd 20.10 sends `logs` with no Content-Type at all, so unlabelled bodies are checked too.
    """
    labelled = response_type.startswith("application/vnd.docker.")
    if not (labelled or not response_type) or not ex.response_body.data:
        return None
    slices = _timed_slices(ex.response_body, ex.started)
    pieces = _dechunk_timed(slices) if ex.response_chunked else slices
    payload = b"".join(chunk for _, chunk in pieces)
    complete = ex.ended is not None and not ex.response_body.truncated
    if not is_multiplexed(response_type, payload, complete):
        return None
    return timed_demux(pieces)


def exchange_record(ex: Exchange) -> dict[str, Any]:
    """The `exchange` record: the JSON trace fields plus everything a replay needs."""
    base = ex.started
    record: dict[str, Any] = {"type": "exchange"}
    record.update(trace_record(ex))
    record["t_start"] = ex.started
    record["ended"] = _offset(ex.ended, base)
    record["request"] = {
        "head": _head_text(ex.request_head),
        "ended": _offset(ex.request_ended, base),
        "body": _body_record(ex.request_body, ex.request_chunked, base),
    }
    response_type = content_type(ex.response_head)
    response: dict[str, Any] | None = None
    if ex.response_head is not None:
        response = {
            "head": _head_text(ex.response_head),
            "started": _offset(ex.response_started, base),
            "body": _body_record(ex.response_body, ex.response_chunked, base),
        }
        streams = _response_streams(ex, response_type)
        if streams is not None:
            response["streams"] = streams
    record["response"] = response
    record["hijack"] = None if ex.hijack is None else _hijack_record(ex.hijack, base, response_type)
    record["client"]["gid"] = ex.peer.gid
    return record


# -- writer -------------------------------------------------------------------------------------


def host_facts() -> dict[str, str | None]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "user": user,
    }


def _to_jsonable(item: Any) -> Any:
    if hasattr(item, "to_dict"):
        return item.to_dict()
    return item


def _dumps(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()


def private_fd(path: str | os.PathLike[str]) -> int:
    """Create (or truncate) a file only its owner can read, for writing: recordings, exports and
    traces hold what crossed a root-equivalent socket. A file that existed loses others' access too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd


def open_private(path: str | os.PathLike[str], *, binary: bool = False) -> IO[Any]:
    """`private_fd` as a file object (text UTF-8, or binary)."""
    fd = private_fd(path)
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")


class SessionWriter:
    """Writes a session file record by record, each one a single `write()` to the kernel.

    `target` is a path (created or truncated) or a binary file object. The header goes out on
    construction; `close()` writes the footer.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[bytes],
        *,
        backend: Any = None,
        backend_url: str | None = None,
        redacted: bool = True,
        capture_limit: int | None = None,
        started: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        from dockertap import __version__

        self.path = str(target) if isinstance(target, str | os.PathLike) else None
        if isinstance(target, str | os.PathLike):
            self._fd: int | None = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._file: IO[bytes] | None = None
        else:
            self._fd, self._file = None, target
        self.exchanges = 0
        self.evidence = 0
        self.closed = False
        self.header: dict[str, Any] = {
            "type": "header",
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "dockertap": __version__,
            "started": rfc3339(started if started is not None else _now()),
            "backend": _to_jsonable(backend),
            "backend_url": backend_url,
            "host": host_facts(),
            "redacted": redacted,
            "capture_limit": capture_limit,
        }
        if extra:
            self.header.update(extra)
        self.write_record(self.header)

    def write_record(self, record: dict[str, Any]) -> None:
        """Append one record as one line; it reaches the kernel before this returns."""
        self.write_records([record])

    def write_records(self, records: list[dict[str, Any]]) -> None:
        """Append records as whole lines with one `write()`: a crash never splits them."""
        if self.closed:
            raise ValueError("session writer is closed")
        if not records:
            return
        line = b"".join(_dumps(record) for record in records)
        if self._fd is not None:
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        else:
            assert self._file is not None
            self._file.write(line)
            self._file.flush()

    def write_exchange(self, ex: Exchange) -> None:
        self.write_record(exchange_record(ex))
        self.exchanges += 1

    def write_evidence(self, item: Any) -> None:
        record = dict(_to_jsonable(item))
        record["type"] = "evidence"
        self.write_record(record)
        self.evidence += 1

    def write_backend(self, backend: Any) -> None:
        self.write_record({"type": "backend", "at": rfc3339(_now()), "backend": _to_jsonable(backend)})

    def close(self, dropped: int = 0) -> None:
        """Write the footer (a clean end) and close the file; idempotent."""
        if self.closed:
            return
        self.write_record(
            {"type": "footer", "ended": rfc3339(_now()), "exchanges": self.exchanges, "dropped": dropped}
        )
        self.closed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> float:
    import time

    return time.time()


# -- reader -------------------------------------------------------------------------------------


def _body_bytes(body: dict[str, Any] | None) -> bytes:
    if not body:
        return b""
    return decode_bytes(body.get("encoding", "text"), body.get("data", ""))


@dataclass
class RecordedExchange:
    """One `exchange` record, with helpers that give back the bytes it holds."""

    record: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.record[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.record.get(key, default)

    @property
    def method(self) -> str:
        return self.record.get("method", "?")

    @property
    def target(self) -> str:
        return self.record.get("target", "?")

    @property
    def status(self) -> int | None:
        return self.record.get("status")

    @property
    def route(self) -> str | None:
        """The templated route (`GET /containers/{id}/json`), when the session was analysed."""
        route = self.record.get("route")
        return route.get("template") if isinstance(route, dict) else route

    @property
    def hijacked(self) -> bool:
        return self.record.get("hijack") is not None

    def request_head(self) -> bytes:
        return (self.record["request"]["head"] or "").encode("latin-1")

    def response_head(self) -> bytes | None:
        response = self.record.get("response")
        return (
            None if response is None or response.get("head") is None else response["head"].encode("latin-1")
        )

    def request_body_wire(self) -> bytes:
        """Captured request body exactly as it crossed the socket (chunk framing included)."""
        return _body_bytes(self.record["request"].get("body"))

    def response_body_wire(self) -> bytes:
        response = self.record.get("response") or {}
        return _body_bytes(response.get("body"))

    def request_body(self) -> bytes:
        """Captured request payload (chunk framing removed)."""
        body = self.record["request"].get("body") or {}
        raw = _body_bytes(body)
        return decode_chunked(raw) if body.get("chunked") else raw

    def response_body(self) -> bytes:
        body = (self.record.get("response") or {}).get("body") or {}
        raw = _body_bytes(body)
        return decode_chunked(raw) if body.get("chunked") else raw

    def body_slices(self, side: str = "response") -> list[tuple[float, bytes]]:
        """(offset seconds, wire bytes) per arrival mark: the pacing a replay reproduces."""
        part = self.record.get(side) or {}
        body = part.get("body") or {}
        raw = _body_bytes(body)
        marks = body.get("marks") or [[0.0, 0]]
        out = []
        for i, (t, start) in enumerate(marks):
            end = marks[i + 1][1] if i + 1 < len(marks) else len(raw)
            if end > start:
                out.append((float(t), raw[start:end]))
        return out

    def hijack_frames(self) -> list[tuple[float, str, bytes]]:
        """Raw hijacked frames: (offset seconds, "client"|"backend", exact bytes)."""
        hijack = self.record.get("hijack") or {}
        return [
            (float(f["t"]), f["dir"], decode_bytes(f["encoding"], f["data"]))
            for f in hijack.get("frames", [])
        ]

    def hijack_bytes(self, direction: str) -> bytes:
        return b"".join(chunk for _, d, chunk in self.hijack_frames() if d == direction)

    def streams(self) -> list[tuple[float, str, bytes]]:
        """Demultiplexed stdio (hijack or streamed body): (offset seconds, stream name, payload)."""
        hijack = self.record.get("hijack")
        items = (
            hijack.get("streams", []) if hijack else (self.record.get("response") or {}).get("streams", [])
        )
        return [(float(s["t"]), s["stream"], decode_bytes(s["encoding"], s["data"])) for s in items or []]

    def to_exchange(self) -> Exchange:
        """Rebuild a relay `Exchange` (raw captures, timings, peer) for code that works on those."""
        rec = self.record
        base = float(rec.get("t_start") or 0.0)
        client = rec.get("client") or {}
        request = rec["request"]
        response = rec.get("response")

        def capture(body: dict[str, Any] | None) -> Capture:
            body = body or {}
            data = _body_bytes(body)
            cap = Capture(limit=max(len(data), 1), data=bytearray(data), total=body.get("size", len(data)))
            cap.marks = [(base + float(t), int(off)) for t, off in body.get("marks", [])]
            return cap

        def at(offset: float | None) -> float | None:
            return None if offset is None else base + float(offset)

        ex = Exchange(
            id=rec.get("id", 0),
            connection_id=rec.get("connection", 0),
            sequence=rec.get("sequence", 0),
            peer=PeerInfo(client.get("pid"), client.get("uid"), client.get("gid"), client.get("command")),
            backend=rec.get("backend_url") or "",
            request_head=self.request_head(),
            request_body=capture(request.get("body")),
            response_body=capture(response.get("body") if response else None),
            started=base,
        )
        ex.request_chunked = bool((request.get("body") or {}).get("chunked"))
        ex.request_ended = at(request.get("ended"))
        ex.response_head = self.response_head()
        if response:
            ex.response_started = at(response.get("started"))
            ex.response_chunked = bool((response.get("body") or {}).get("chunked"))
        ex.ended = at(rec.get("ended"))
        ex.error = rec.get("error")
        ex.synthetic = bool(rec.get("synthetic"))
        hijack = rec.get("hijack")
        if hijack is not None:
            hc = HijackCapture(limit=max(hijack.get("captured", 0), 1))
            for t, direction, chunk in self.hijack_frames():
                hc.frames.append((base + t, direction, chunk))  # type: ignore[arg-type]
            hc.captured = hijack.get("captured", sum(len(c) for _, _, c in hc.frames))
            hc.client_bytes = hijack.get("client_bytes", 0)
            hc.backend_bytes = hijack.get("backend_bytes", 0)
            hc.client_closed_at = at(hijack.get("client_closed"))
            hc.backend_closed_at = at(hijack.get("backend_closed"))
            ex.hijack = hc
        return ex


@dataclass
class Session:
    """A session file read back: header, exchanges in file order, evidence, footer, warnings."""

    header: dict[str, Any]
    exchanges: list[RecordedExchange] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    backend_updates: list[dict[str, Any]] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def version(self) -> int:
        return int(self.header.get("version", 0))

    @property
    def backend(self) -> dict[str, Any] | None:
        """The latest known backend fingerprint (header, or a later `backend` record)."""
        if self.backend_updates:
            return self.backend_updates[-1].get("backend")
        return self.header.get("backend")

    @property
    def complete(self) -> bool:
        """True when the session closed cleanly (footer present, nothing truncated)."""
        return self.footer is not None and not self.warnings


def in_request_order(session: Session) -> list[RecordedExchange]:
    """Exchanges in the order their requests started (the file has them in the order they ended)."""
    return sorted(session.exchanges, key=lambda rec: (rec.get("t_start") or 0.0, rec.get("id") or 0))


def _parse_lines(lines: Iterable[bytes], source: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record or None, problem) — a bad line is reported, not fatal."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            problem = SessionWarning("session_unreadable_line", source=source, line=number, error=exc.msg)
            yield number, None, problem
            continue
        if not isinstance(record, dict):
            yield number, None, SessionWarning("session_not_object", source=source, line=number)
            continue
        yield number, record, ""


def check_header(header: dict[str, Any], source: str = "session") -> None:
    if header.get("type") != "header" or header.get("format") != FORMAT_NAME:
        raise SessionFormatError("session_not_session", source=source, format=FORMAT_NAME)
    version = header.get("version")
    if not isinstance(version, int):
        raise SessionFormatError("session_no_version", source=source, version=version)
    if version > FORMAT_VERSION:
        raise SessionFormatError("session_too_new", source=source, version=version, supported=FORMAT_VERSION)
    if version < 1:
        raise SessionFormatError("session_bad_version", source=source, version=version)


def read_session(source: str | os.PathLike[str] | IO[bytes]) -> Session:
    """Read a session file; tolerates a truncated last line (a crash) and reports it in `warnings`."""
    if isinstance(source, str | os.PathLike):
        name = str(source)
        raw = Path(source).read_bytes()
    else:
        name = getattr(source, "name", "session")
        raw = source.read()
    lines = raw.split(b"\n")
    ends_cleanly = raw.endswith(b"\n")
    last_index = len(lines) if not ends_cleanly else len(lines) - 1
    session: Session | None = None
    pending_warnings: list[str] = []
    by_id: dict[Any, dict[str, Any]] = {}
    for number, record, problem in _parse_lines(lines, name):
        if record is None:
            if number == last_index and not ends_cleanly:
                pending_warnings.append(SessionWarning("session_truncated_last", source=name, line=number))
            elif session is None:
                raise SessionFormatError("session_not_session_because", source=name, problem=problem)
            else:
                pending_warnings.append(SessionWarning("session_line_skipped", problem=problem))
            continue
        if session is None:
            check_header(record, name)
            session = Session(header=record, path=name)
            continue
        kind = record.get("type")
        if kind == "exchange":
            session.exchanges.append(RecordedExchange(record))
            by_id[record.get("id")] = record
        elif kind == "settled":
            recorded = by_id.get(record.get("id"))
            if recorded is not None:
                recorded.update({k: record[k] for k in SETTLED_FIELDS if k in record})
        elif kind == "evidence":
            session.evidence.append(record)
        elif kind == "backend":
            session.backend_updates.append(record)
        elif kind == "footer":
            session.footer = record
        # Unknown record types are ignored: later versions may add them (see the versioning rule).
    if session is None:
        raise SessionFormatError("session_empty", source=name)
    session.warnings.extend(pending_warnings)
    if session.footer is None:
        session.warnings.append(SessionWarning("session_no_footer", source=name))
    return session


# -- pipeline sink --------------------------------------------------------------------------------


_UNSEEN = object()


#: What the recorder thread is handed: ("exchange" | "settled" | "evidence" | "backend", payload).
_Job = tuple[str, Any]


class RecorderSink:
    """Pipeline sink: appends each ended exchange to a session file, and backend changes as they come.

    Encoding and writing run on a thread of their own: the event loop hands over one list per
    batch, so a stream of a million 1-byte frames costs the relay nothing while it is recorded.
    The thread writes each batch with one `write()`, a few milliseconds after the exchanges end.

    With observation on, exchanges are written as they end (before the settle window), and a
    `settled` record with the evidence follows when the window closes: a `kill -9` inside the
    window loses that exchange's evidence, never the exchange.

    `backend` is a callable returning the current fingerprint (e.g. `lambda: analysis.backend`); a
    `backend` record is written whenever its value changes after the header.
    """

    def __init__(self, writer: SessionWriter, backend: Any = None) -> None:
        import queue
        import threading

        self.writer = writer
        self._backend = backend
        self._last_backend = writer.header.get("backend")
        #: The fingerprint object last compared: fingerprints are frozen, so the same object cannot
        #: have changed, and its `to_dict` is not rebuilt for every exchange.
        self._last_backend_object: Any = _UNSEEN
        self.errors = 0
        self.last_error: str | None = None
        self._jobs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dockertap-recorder", daemon=True)
        self._thread.start()

    def handle_batch(self, batch: list[tuple[str, Exchange]]) -> None:
        jobs: list[_Job] = []
        for kind, ex in batch:
            if kind != "end":
                continue
            backend = self._backend_change()
            if backend is not None:
                jobs.append(("backend", backend))
            jobs.append(("exchange", ex))
        if jobs:
            self._jobs.put(jobs)

    def settled_sink(self) -> SettledRecorder:
        """The sink to put behind the settle window: it records the evidence each exchange got."""
        return SettledRecorder(self)

    def _backend_change(self) -> Any:
        if self._backend is None:
            return None
        backend = self._backend()
        if backend is self._last_backend_object and not isinstance(backend, dict):
            return None
        self._last_backend_object = backend
        current = _to_jsonable(backend)
        if current is not None and current != self._last_backend:
            self._last_backend = current
            return current
        return None

    def write_evidence(self, item: Any) -> None:
        self._jobs.put([("evidence", item)])

    def handle_background(self, records: list[dict]) -> None:
        """Evidence no exchange caused (exit clean-up, restarts): kept as `evidence` records."""
        self._jobs.put([("evidence", record) for record in records])

    def _settled(self, exchanges: list[Exchange]) -> None:
        self._jobs.put([("settled", ex) for ex in exchanges])

    def _run(self) -> None:
        while True:
            jobs = self._jobs.get()
            if jobs is None:
                return
            while not self._jobs.empty():  # everything handed over meanwhile: one write
                more = self._jobs.get()
                if more is None:
                    self._write(jobs)
                    return
                jobs.extend(more)
            self._write(jobs)

    def _write(self, jobs: list[_Job]) -> None:
        records = []
        for kind, payload in jobs:
            try:
                records.append(self._record(kind, payload))
            except Exception as exc:  # one bad exchange must not stop the recording
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
        try:
            self.writer.write_records(records)
        except OSError as exc:
            self.errors += len(records)
            self.last_error = f"cannot write {self.writer.path or 'the recording'}: {exc.strerror or exc}"
            return
        self.writer.exchanges += sum(1 for kind, _ in jobs if kind == "exchange")
        self.writer.evidence += sum(1 for kind, _ in jobs if kind == "evidence")

    @staticmethod
    def _record(kind: str, payload: Any) -> dict[str, Any]:
        if kind == "exchange":
            return exchange_record(payload)
        if kind == "settled":
            return settled_record(payload)
        if kind == "backend":
            return {"type": "backend", "at": rfc3339(_now()), "backend": payload}
        return dict(_to_jsonable(payload), type="evidence")

    def close(self, dropped: int = 0) -> None:
        """Write out everything handed over, then the footer."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self.writer.close(dropped=dropped)


class SettledRecorder:
    """The recorder's sink behind the settle window: one `settled` record per exchange."""

    def __init__(self, recorder: RecorderSink) -> None:
        self._recorder = recorder

    def handle_batch(self, batch: list[tuple[str, Exchange]]) -> None:
        ended = [ex for kind, ex in batch if kind == "end"]
        if ended:
            self._recorder._settled(ended)

    def handle_background(self, records: list[dict]) -> None:
        self._recorder.handle_background(records)


#: Annotation fields a `settled` record carries: what the settle window can still change.
SETTLED_FIELDS = ("layers", "evidence", "mismatches")


def settled_record(ex: Exchange) -> dict[str, Any]:
    """The evidence an exchange gathered in its settle window, to update its `exchange` record."""
    annotation = ex.annotation
    fields = annotation.to_dict() if annotation is not None and hasattr(annotation, "to_dict") else {}
    return {"type": "settled", "id": ex.id, **{k: fields[k] for k in SETTLED_FIELDS if k in fields}}
