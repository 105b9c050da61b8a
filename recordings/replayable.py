"""A recorded exchange as replay needs it: payload slices with their times, hijack frames, route, layers.

The session file (`dockertap.recordings.format`) stores what the relay captured, close to the wire. Both
replays (the narrated walk and the fake daemon) want the same derived view of it: the request line and its
templated route, the response head, the body *payload* cut into the slices it arrived in (chunk framing
removed, so it can be re-framed consistently even when the capture was truncated), and the hijacked frames.
This module builds that view once, from a session record or straight from a relay `Exchange`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dockertap.analyzers.routes import match_route
from dockertap.proxy.exchange import Exchange, final_head, header_value, status_of
from dockertap.proxy.framing import decode_chunked, iter_chunks

#: Where bundled teaching recordings live inside the installed package.
BUNDLED_PACKAGE = "dockertap.recordings"
BUNDLED_DIR = "bundled"


@dataclass(slots=True)
class TimedSlice:
    """Payload bytes and the wall-clock time they passed through the proxy."""

    at: float
    data: bytes


@dataclass(slots=True)
class RecordedExchange:
    """One exchange of a recording, in the shape both replays consume."""

    id: int
    connection: int
    started: float
    method: str
    target: str
    request_head: bytes
    request_body: bytes = b""
    request_total: int = 0
    response_head: bytes | None = None
    response_started: float | None = None
    response_chunked: bool = False
    #: The captured response payload (chunk framing removed), in arrival slices.
    response_slices: list[TimedSlice] = field(default_factory=list)
    #: Every payload/wire byte the backend sent, captured or not (wire count when chunked).
    response_total: int = 0
    response_truncated: bool = False
    ended: float | None = None
    hijack_frames: list[tuple[float, str, bytes]] = field(default_factory=list)
    hijack_truncated: bool = False
    backend_closed_at: float | None = None
    client_closed_at: float | None = None
    client_pid: int | None = None
    client_command: str | None = None
    route: str = ""
    #: The annotation as recorded (route, layers, explanation, evidence…), a plain dict.
    annotation: dict[str, Any] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    synthetic: bool = False
    error: str | None = None
    #: The session-file record this came from (trace fields, demultiplexed `streams`), when loaded from one.
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> int | None:
        return status_of(self.response_head)

    @property
    def response_body(self) -> bytes:
        return b"".join(s.data for s in self.response_slices)

    @property
    def hijacked(self) -> bool:
        return bool(self.hijack_frames) or self.status == 101

    @property
    def client_key(self) -> tuple[int | None, str]:
        """Groups exchanges by the client process that made them."""
        return self.client_pid, self.client_command or "?"

    def header(self, name: str, response: bool = True) -> str | None:
        head = final_head(self.response_head) if response else self.request_head
        return header_value(head, name) or None


def payload_slices(wire: bytes, marks: Sequence[tuple[float, int]], chunked: bool) -> list[TimedSlice]:
    """Cut a captured wire prefix into payload slices at its capture marks (chunk framing removed)."""
    if not wire:
        return []
    marks = list(marks) or [(0.0, 0)]
    bounds = [offset for _, offset in marks[1:]] + [len(wire)]
    payload = decode_chunked(wire) if chunked else wire
    # One pass over the chunks, not a decode per mark: a stream of 1-byte frames has a mark per frame.
    chunks = [(start, stop) for _, start, stop, _ in iter_chunks(wire)] if chunked else []
    slices: list[TimedSlice] = []
    done = 0
    whole = 0  # payload bytes of the chunks wholly before the current bound
    next_chunk = 0
    for (at, _), end in zip(marks, bounds, strict=True):
        if chunked:
            while next_chunk < len(chunks) and chunks[next_chunk][1] <= end:
                whole += chunks[next_chunk][1] - chunks[next_chunk][0]
                next_chunk += 1
            partial = 0
            if next_chunk < len(chunks) and chunks[next_chunk][0] < end:
                partial = end - chunks[next_chunk][0]  # a chunk cut by the bound
            payload_end = whole + partial
        else:
            payload_end = end
        if payload_end > done:
            slices.append(TimedSlice(at, payload[done:payload_end]))
            done = payload_end
    return slices


def from_exchange(ex: Exchange) -> RecordedExchange:
    """The replay view of a live relay exchange (what the recorder saw)."""
    method, target = ex.method_and_target
    annotation = ex.annotation.to_dict() if hasattr(ex.annotation, "to_dict") else {}
    hijack = ex.hijack
    return RecordedExchange(
        id=ex.id,
        connection=ex.connection_id,
        started=ex.started,
        method=method,
        target=target,
        request_head=bytes(ex.request_head),
        request_body=decode_chunked(ex.request_body.data)
        if ex.request_chunked
        else bytes(ex.request_body.data),
        request_total=ex.request_body.total,
        response_head=bytes(ex.response_head) if ex.response_head else None,
        response_started=ex.response_started,
        response_chunked=ex.response_chunked,
        response_slices=payload_slices(
            bytes(ex.response_body.data), ex.response_body.marks, ex.response_chunked
        ),
        response_total=ex.response_body.total,
        response_truncated=ex.response_body.truncated,
        ended=ex.ended,
        hijack_frames=list(hijack.frames) if hijack else [],
        hijack_truncated=hijack.truncated if hijack else False,
        backend_closed_at=hijack.backend_closed_at if hijack else None,
        client_closed_at=hijack.client_closed_at if hijack else None,
        client_pid=ex.peer.pid,
        client_command=ex.peer.command,
        route=_template_of(annotation.get("route")) or match_route(method, target).template,
        annotation=annotation,
        synthetic=ex.synthetic,
        error=ex.error,
    )


def _template_of(route: object) -> str | None:
    """The route template, whether recorded as a string or as a RouteMatch dict."""
    if isinstance(route, dict):
        return route.get("template")
    return route if isinstance(route, str) else None


@dataclass(slots=True)
class ReplaySession:
    """A loaded recording: where it came from, its header, exchanges in request order, warnings."""

    source: str
    header: dict[str, Any]
    exchanges: list[RecordedExchange]
    evidence: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def backend(self) -> dict[str, Any]:
        value = self.header.get("backend") or {}
        return value if isinstance(value, dict) else {}


def load_replay(name_or_path: str | os.PathLike[str]) -> ReplaySession:
    """Read a session file (or a bundled recording by name) into the replay view."""
    from dockertap.recordings.format import read_session

    path = resolve_recording(str(name_or_path))
    session = read_session(path)
    exchanges = []
    for recorded in session.exchanges:
        replayable = from_exchange(recorded.to_exchange())
        record = recorded.record
        replayable.record = record
        kept = ("route", "layers", "evidence", "backend", "grpc", "grpc_note")
        replayable.annotation = {k: record[k] for k in kept if k in record}
        replayable.route = _template_of(record.get("route")) or replayable.route
        replayable.evidence = list(record.get("evidence") or [])
        exchanges.append(replayable)
    header = dict(session.header)
    header["backend"] = session.backend
    return ReplaySession(
        source=str(path),
        header=header,
        exchanges=sort_exchanges(exchanges),
        evidence=list(session.evidence),
        warnings=list(session.warnings),
    )


def backend_fingerprint(session: ReplaySession):
    """The recording's backend as a `BackendFingerprint` (for the layer model), or None."""
    from dockertap.analyzers.fingerprint import BackendFingerprint

    data = session.backend
    if not data:
        return None
    try:
        return BackendFingerprint(**{**data, "reasons": tuple(data.get("reasons") or ())})
    except TypeError:
        return None


def sort_exchanges(exchanges: Iterable[RecordedExchange]) -> list[RecordedExchange]:
    return sorted(exchanges, key=lambda r: (r.started, r.id))


# -- bundled recordings ------------------------------------------------------------------------


def bundled_dir() -> Path:
    return Path(str(resources.files(BUNDLED_PACKAGE).joinpath(BUNDLED_DIR)))


def bundled_recordings() -> dict[str, Path]:
    """Bundled teaching recordings by name (`docker-run` for `bundled/docker-run.jsonl`)."""
    folder = bundled_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.jsonl"))}


def resolve_recording(name_or_path: str) -> Path:
    """A path to an existing file, or the bundled recording of that name."""
    path = Path(name_or_path)
    if path.exists() or os.sep in name_or_path or name_or_path.endswith(".jsonl"):
        return path
    bundled = bundled_recordings()
    if name_or_path in bundled:
        return bundled[name_or_path]
    names = ", ".join(bundled) or "none installed"
    raise FileNotFoundError(
        f"no file {name_or_path!r} and no bundled recording of that name (bundled: {names})"
    )
