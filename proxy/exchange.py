"""What the relay captured about one HTTP exchange.

The relay fills an `Exchange` on the forwarding path with cheap facts only: raw head bytes,
timestamps, byte counts and bounded body prefixes. Everything costly (mitmproxy objects,
chunk decoding, analysis) happens later, in the sink pipeline, from these raw facts.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mitmproxy import http

#: Direction of a hijacked-stream frame: bytes the client sent (stdin) or the backend sent.
FrameDirection = Literal["client", "backend"]


def final_head(head: bytes | None) -> bytes | None:
    """The final response head when 1xx interim heads (100 Continue) were relayed before it."""
    if not head:
        return head
    return head.rstrip(b"\r\n").rsplit(b"\r\n\r\n", 1)[-1] + b"\r\n\r\n"


def status_of(head: bytes | None) -> int | None:
    """Status code of the final response in a raw head."""
    head = final_head(head)
    if not head:
        return None
    try:
        return int(head[9:12])
    except ValueError:
        return None


def header_value(head: bytes | None, name: str) -> str:
    """A header's value in a raw head, as mitmproxy's `headers.get(name, "")` gives it.

    Case-insensitive name; repeated headers joined with ", "; folded continuation lines joined
    with a space. Lets the pipeline read Content-Type without building mitmproxy objects.
    """
    if not head:
        return ""
    wanted = name.lower().encode("latin-1")
    values: list[bytes] = []
    current: bytearray | None = None
    for line in head.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current += b" " + line.strip()
            continue
        current = None
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == wanted:
            current = bytearray(value.strip())
            values.append(current)  # type: ignore[arg-type]
    return ", ".join(bytes(v).decode("utf-8", "surrogateescape") for v in values)


@dataclass(slots=True)
class PeerInfo:
    """Who is on the other end of a client connection (Unix peer credentials)."""

    pid: int | None = None
    uid: int | None = None
    gid: int | None = None
    #: The client's command line (`/proc/<pid>/cmdline`), or None when it could not be read.
    command: str | None = None
    #: The same arguments as the kernel keeps them (NUL-separated), so redaction sees each
    #: argument whole (`--password "a b"` is one argument); None when only text is known.
    argv: tuple[str, ...] | None = None

    def to_dict(self) -> dict:
        return {"pid": self.pid, "uid": self.uid, "gid": self.gid, "command": self.command}


@dataclass(slots=True, eq=False)
class Capture:
    """A bounded prefix of a byte stream plus the count of every byte that passed.

    `marks` records when each captured slice arrived, as (time, offset into `data`), so a
    replay can reproduce the pacing of streamed bodies (`logs -f`, `/events`, progress).
    """

    limit: int
    data: bytearray = field(default_factory=bytearray)
    total: int = 0
    marks: list[tuple[float, int]] = field(default_factory=list)

    def add(self, chunk: bytes | memoryview) -> None:
        n = len(chunk)
        room = self.limit - len(self.data)
        if room > 0:
            self.marks.append((time.time(), len(self.data)))
            self.data += chunk[:room] if n > room else chunk
        self.total += n

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)

    @property
    def full(self) -> bool:
        """The prefix is complete: later bytes are only counted."""
        return len(self.data) >= self.limit


@dataclass(slots=True, eq=False)
class StreamTap:
    """Every byte of a hijacked stream, in order, handed on to the analysis stage.

    The capture keeps only a prefix; some analyses need the whole stream (BuildKit's HTTP/2 after an
    `h2c` upgrade). The relay appends what it forwards — nothing is parsed here — and the sink
    pipeline takes the chunks shortly after. At most `limit` bytes wait at a time: if the pipeline
    falls behind, further chunks are dropped and counted in `lost_*`, never held up.
    """

    limit: int
    pending: deque[tuple[float, FrameDirection, bytes]] = field(default_factory=deque)
    pending_bytes: int = 0
    lost_client: int = 0
    lost_backend: int = 0
    #: Set when the consumer has been told there is something to take; cleared by `take`.
    notified: bool = False

    def put(self, direction: FrameDirection, chunk: bytes | memoryview) -> bool:
        """Queue a chunk; True when the consumer should be told (nothing was announced yet)."""
        n = len(chunk)
        if self.pending_bytes + n > self.limit:
            if direction == "client":
                self.lost_client += n
            else:
                self.lost_backend += n
            return False
        self.pending.append((time.time(), direction, bytes(chunk)))
        self.pending_bytes += n
        if self.notified:
            return False
        self.notified = True
        return True

    def take(self) -> list[tuple[float, FrameDirection, bytes]]:
        """Everything queued so far (called by the consumer, on the event loop)."""
        chunks = list(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        self.notified = False
        return chunks


@dataclass(slots=True, eq=False)
class HijackCapture:
    """Timed frames of a hijacked (raw, bidirectional) stream, bounded in total size."""

    limit: int
    frames: list[tuple[float, FrameDirection, bytes]] = field(default_factory=list)
    captured: int = 0
    client_bytes: int = 0
    backend_bytes: int = 0
    client_closed_at: float | None = None
    backend_closed_at: float | None = None
    #: Frame index → size of a frame whose bytes redaction withheld (stdin, BuildKit sessions).
    withheld: dict[int, int] = field(default_factory=dict)
    #: Set by the relay for upgrades whose whole stream the analysis stage reads (`h2c`).
    tap: StreamTap | None = None

    def add(self, direction: FrameDirection, chunk: bytes | memoryview) -> bool:
        """Count and capture a chunk; True when the tap's consumer should be told about it."""
        n = len(chunk)
        if direction == "client":
            self.client_bytes += n
        else:
            self.backend_bytes += n
        room = self.limit - self.captured
        if room > 0:
            piece = bytes(chunk[:room]) if n > room else bytes(chunk)
            self.frames.append((time.time(), direction, piece))
            self.captured += len(piece)
        return self.tap is not None and self.tap.put(direction, chunk)

    @property
    def truncated(self) -> bool:
        return self.client_bytes + self.backend_bytes > self.captured


@dataclass(slots=True, eq=False)
class Exchange:
    """One request and its response on a client connection, as the relay saw them.

    Times are wall-clock seconds (`time.time()`). `request_body`/`response_body` hold the
    raw wire bytes of the body prefix, chunk framing included when `*_chunked` is set;
    `dockertap.proxy.capture` decodes them off the forwarding path.
    """

    id: int
    connection_id: int
    sequence: int
    peer: PeerInfo
    backend: str
    request_head: bytes
    request_body: Capture
    response_body: Capture
    started: float = field(default_factory=time.time)
    request_chunked: bool = False
    request_ended: float | None = None
    response_head: bytes | None = None
    response_started: float | None = None
    response_chunked: bool = False
    ended: float | None = None
    hijack: HijackCapture | None = None
    #: Why the exchange did not complete normally (backend gone, client gone, protocol error).
    error: str | None = None
    #: A response dockertap wrote itself (502 backend unreachable, 400, 431) instead of relaying.
    synthetic: bool = False
    #: Headers dockertap added to `request_head` before relaying it (only `--otel-propagate` does);
    #: `request_head` is the head as the engine received it, `added_bytes` what the client never sent.
    added_headers: tuple[str, ...] = ()
    added_bytes: int = 0
    # Filled by the sink pipeline, never by the relay:
    request: http.Request | None = None
    response: http.Response | None = None
    annotation: object | None = None

    @property
    def hijacked(self) -> bool:
        return self.hijack is not None

    @property
    def request_bytes(self) -> int:
        """Bytes the client sent in this exchange: head, body and hijacked stdin."""
        hijacked = self.hijack.client_bytes if self.hijack else 0
        return len(self.request_head) - self.added_bytes + self.request_body.total + hijacked

    @property
    def response_bytes(self) -> int:
        """Bytes the client received in this exchange: head, body and hijacked output."""
        head = len(self.response_head) if self.response_head else 0
        hijacked = self.hijack.backend_bytes if self.hijack else 0
        return head + self.response_body.total + hijacked

    @property
    def status(self) -> int | None:
        """Status of the final response, read straight from the raw head (no parsing objects)."""
        return status_of(self.response_head)

    @property
    def method_and_target(self) -> tuple[str, str]:
        line = self.request_head.split(b"\r\n", 1)[0].split(b" ")
        if len(line) < 2:
            return "?", "?"
        return line[0].decode("latin-1"), line[1].decode("latin-1")

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    @property
    def is_open(self) -> bool:
        return self.ended is None
