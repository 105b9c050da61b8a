"""A fake Docker daemon that answers the real docker CLI from a recording (`dockertap replay --serve`).

Matching: a request is keyed by method + templated route + normalised query, so object ids in the path never
matter (the CLI may name a container by name, short id or full id: `/containers/{id}/json` is one key). The
k-th request of a key gets the k-th recorded answer; once they run out the last one is reused, so a CLI that
polls (or a learner who runs the command twice) still gets an answer.

Answers keep the recording's pacing, scaled by `speed` (0 = no waiting): the delay before the head, each body
slice at its capture time, and hijacked streams frame by frame. Backend frames of a hijacked stream also wait
until the client has sent as many stdin bytes as it had when the frame was recorded, so interactive sessions
stay in step whatever the speed.

Bodies are re-framed from their captured payload, which keeps every answer well-formed even when the
recording kept only a prefix: a truncated Content-Length body is announced with its captured length, a
truncated chunked body is terminated properly, and both carry an `X-Dockertap-Replay-Warning` header.

For a classroom: a request the lesson has no answer for gets 501 with a JSON message naming the lesson and
the closest recorded request (the CLI prints it; a 404 would read as "No such container"); a body that differs
from the recorded one (another image or command) is answered as recorded, with the difference on the serve's
terminal and in `X-Dockertap-Replay-Warning`; `/version` and `/info` missing from the recording are
synthesised from its backend fingerprint, and say so.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from dockertap.analyzers.routes import match_route
from dockertap.i18n import counted, msg
from dockertap.proxy.exchange import final_head
from dockertap.proxy.framing import (
    MAX_HEAD_SIZE,
    Body,
    ChunkedScanner,
    Hijack,
    ProtocolError,
    RequestFrame,
    decode_chunked,
    find_head_end,
    parse_request_head,
    parse_response_head,
)
from dockertap.recordings.replayable import RecordedExchange, ReplaySession, TimedSlice

log = logging.getLogger(__name__)

WARNING_HEADER = "X-Dockertap-Replay-Warning"
#: Longest a backend frame waits for the client's stdin to catch up before it is sent anyway.
STDIN_CATCH_UP_TIMEOUT = 5.0
READ_SIZE = 64 * 1024
#: Longest a container's start waits for the CLI's concurrently sent wait request to arrive.
WAIT_BEFORE_START = 0.5

RequestKey = tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]]


def request_key(method: str, target: str) -> RequestKey:
    """(method, route template, sorted query): what identifies "the same request" across runs."""
    match = match_route(method, target)
    query = tuple(sorted((name, tuple(values)) for name, values in match.query.items()))
    return match.method, match.template, query


def describe_request(method: str, target: str) -> str:
    """`GET /containers/json?all=1`: the request without its API version prefix, full ids shortened."""
    match = match_route(method, target)
    query = target.split("?", 1)[1] if "?" in target else ""
    text = f"{match.method} {match.path}" + (f"?{query}" if query else "")
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1…", text)


#: One note on a served request: message ids with their fields, worded in either language by `dockertap.i18n`.
Note = tuple[tuple[str, dict[str, object]], ...]


def word(lang: str, note: Note) -> str:
    """A note's text in `lang` (its pieces run on: a message and its " — closest …" tail)."""
    return "".join(
        msg(lang, message_id, **{k: _in(lang, v) for k, v in fields.items()}) for message_id, fields in note
    )


def _in(lang: str, value: object) -> object:
    """A note's field in `lang` when it is worded (a BodyDifference), else the value itself."""
    return value.in_lang(lang) if isinstance(value, BodyDifference) else value


@dataclass
class Served:
    """What the fake daemon did with one request (for the console log and for tests)."""

    method: str
    target: str
    status: int
    recorded: RecordedExchange | None
    notes: tuple[Note, ...] = ()

    def note_in(self, lang: str) -> str:
        """The notes in `lang`, joined by "; " ('' when there are none)."""
        return "; ".join(word(lang, note) for note in self.notes)

    @property
    def note(self) -> str:
        """The notes in English (what the HTTP answer and the tests see)."""
        return self.note_in("en")


class AnswerBook:
    """Recorded answers by request key, handed out in order of arrival."""

    def __init__(self, session: ReplaySession) -> None:
        self.session = session
        self._answers: dict[RequestKey, list[RecordedExchange]] = {}
        self._served: dict[RequestKey, int] = {}
        for rec in session.exchanges:
            self._answers.setdefault(request_key(rec.method, rec.target), []).append(rec)

    def take(self, method: str, target: str) -> RecordedExchange | None:
        """The next recorded answer for this request, or the last one again when they ran out."""
        key = request_key(method, target)
        answers = self._answers.get(key)
        if not answers:
            return None
        k = self._served.get(key, 0)
        self._served[key] = k + 1
        return answers[min(k, len(answers) - 1)]

    def ping_answer(self, method: str) -> RecordedExchange | None:
        """Any recorded `/_ping`, preferring the same method (HEAD and GET differ only in the body)."""
        pings = [r for r in self.session.exchanges if r.route.endswith(" /_ping") and r.response_head]
        same = [r for r in pings if r.method == method]
        return (same or pings or [None])[0]

    def closest(self, method: str, target: str) -> str | None:
        """The recorded request most like this one: same route, same method, then the most similar text."""
        wanted = describe_request(method, target)
        key = request_key(method, target)
        candidates = {describe_request(r.method, r.target): r for r in self.session.exchanges}
        if not candidates:
            return None

        def likeness(text: str) -> tuple[bool, bool, float]:
            rec_key = request_key(candidates[text].method, candidates[text].target)
            return (
                rec_key[:2] == key[:2],
                rec_key[0] == key[0],
                difflib.SequenceMatcher(None, wanted, text).ratio(),
            )

        return max(candidates, key=likeness)


def lesson_name(session: ReplaySession) -> str:
    """How a message names the recording: its file stem, with its title when it has one."""
    stem = session.source.rsplit("/", 1)[-1].removesuffix(".jsonl")
    title = session.header.get("title")
    return f"{stem!r} ({title})" if title else repr(stem)


def _json_or_none(data: bytes) -> object | None:
    try:
        return json.loads(data) if data.strip() else None
    except ValueError:
        return None


#: Fields named first in a difference: what a learner changes (another image, another command).
_FIRST_FIELDS = ("Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Tty", "OpenStdin", "AttachStdin")


def _shown(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _same(a: object, b: object) -> bool:
    """Equal as the engine decodes them: Go reads an absent field as its zero value."""
    zero: tuple[object, ...] = (None, "", False, 0, [], {})
    return a == b or (a in zero and b in zero)


@dataclass(frozen=True)
class BodyDifference:
    """What differs between a recorded request body and a received one, worded in either language."""

    fields: tuple[tuple[str, str, str], ...] = ()  # (field, recorded value, received value), as JSON
    sizes: tuple[int, int] | None = None  # (received, recorded) bytes, for bodies that are not JSON objects

    def in_lang(self, lang: str, limit: int = 300) -> str:
        if self.sizes is not None:
            received, recorded = self.sizes
            text = msg(
                lang,
                "difference_body",
                received=counted(lang, received, "byte"),
                recorded=counted(lang, recorded, "byte"),
            )
        else:
            text = "; ".join(
                msg(lang, "difference_field", field=k, recorded=old, got=new) for k, old, new in self.fields
            )
        return text if len(text) <= limit else text[: limit - 1] + "…"


def body_difference(recorded: bytes, received: bytes) -> BodyDifference | None:
    """What differs between the recorded request body and this one (e.g. another image or command).

    JSON bodies are compared field by field (top level; absent equals the zero value), the fields a learner
    changes first; other bodies by bytes. None when they agree.
    """
    if recorded == received:
        return None
    old, new = _json_or_none(recorded), _json_or_none(received)
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in dict.fromkeys([*old, *new]) if not _same(old.get(k), new.get(k))]
        if not keys:
            return None
        keys.sort(key=lambda k: _FIRST_FIELDS.index(k) if k in _FIRST_FIELDS else len(_FIRST_FIELDS))
        return BodyDifference(fields=tuple((k, _shown(old.get(k)), _shown(new.get(k))) for k in keys))
    return BodyDifference(sizes=(len(received), len(recorded)))


#: Answered even when the recording lacks them, synthesised from the recorded backend fingerprint.
SYNTHESISABLE = ("GET /version", "HEAD /version", "GET /info", "HEAD /info")


def synthesised_document(session: ReplaySession, template: str) -> dict[str, object]:
    """A `/version` or `/info` answer consistent with the recording's backend fingerprint.

    Only what the fingerprint knows is filled in; the rest is empty, never invented.
    """
    backend = session.backend
    version = str(backend.get("engine_version") or "")
    api = str(backend.get("api_version") or "1.41")
    podman = backend.get("family") == "podman"
    host = session.header.get("host") if isinstance(session.header.get("host"), dict) else {}
    kernel = str((host or {}).get("kernel") or "")
    if template.endswith("/version"):
        components: list[dict[str, object]] = [
            {"Name": "Podman Engine" if podman else "Engine", "Version": version, "Details": {}}
        ]
        if backend.get("containerd_version"):
            components.append({"Name": "containerd", "Version": backend["containerd_version"], "Details": {}})
        if backend.get("runc_version"):
            components.append({"Name": "runc", "Version": backend["runc_version"], "Details": {}})
        return {
            "Platform": {"Name": str(backend.get("product") or "")},
            "Components": components,
            "Version": version,
            "ApiVersion": api,
            "MinAPIVersion": "1.12" if not podman else "1.24",
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": kernel,
            "GitCommit": "",
            "GoVersion": "",
            "BuildTime": "",
        }
    return {
        "ID": "",
        "Containers": 0,
        "ContainersRunning": 0,
        "ContainersPaused": 0,
        "ContainersStopped": 0,
        "Images": 0,
        "Driver": str(backend.get("storage_driver") or ""),
        "ServerVersion": version,
        "OSType": "linux",
        "Architecture": "x86_64",
        "KernelVersion": kernel,
        "OperatingSystem": str(backend.get("product") or ""),
        "Name": str((host or {}).get("hostname") or ""),
        "DefaultRuntime": str(backend.get("default_runtime") or ("crun" if podman else "runc")),
        "Warnings": ["dockertap replay: synthesised from the recording's backend fingerprint, not recorded"],
    }


# -- heads ----------------------------------------------------------------------------------------


def _set_header(head: bytes, name: str, value: str | None) -> bytes:
    """Replace (or drop, when value is None) a header in a head, appending it when absent."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    wanted = name.lower().encode()
    kept = [lines[0]] + [ln for ln in lines[1:] if ln.split(b":", 1)[0].strip().lower() != wanted]
    if value is not None:
        kept.append(f"{name}: {value}".encode("latin-1"))
    return b"\r\n".join(kept) + b"\r\n\r\n"


def _json_head(status: int, reason: str, body: bytes, extra: dict[str, str] | None = None) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Server: dockertap-replay",
    ]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def synthesized_ping_head(session: ReplaySession, with_body: bool) -> bytes:
    """A `/_ping` answer built from the recording header's backend fingerprint (no ping was recorded)."""
    backend = session.backend
    api = str(backend.get("api_version") or backend.get("ApiVersion") or "1.41")
    os_type = str(backend.get("os_type") or backend.get("os") or "linux")
    lines = [
        "HTTP/1.1 200 OK",
        f"Api-Version: {api}",
        f"Ostype: {os_type}",
        "Docker-Experimental: false",
        "Cache-Control: no-cache, no-store, must-revalidate",
        "Content-Type: text/plain; charset=utf-8",
        "Server: dockertap-replay",
        f"{WARNING_HEADER}: no /_ping in the recording; synthesized from its backend fingerprint",
        f"Content-Length: {2 if with_body else 0}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- the server -----------------------------------------------------------------------------------


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    buffer: bytearray = field(default_factory=bytearray)
    eof: bool = False

    async def fill(self) -> bool:
        chunk = await self.reader.read(READ_SIZE)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    async def read_request(self) -> tuple[bytes, RequestFrame, bytes] | None:
        """One request head and its whole body, framed by `dockertap.proxy.framing`."""
        while (end := find_head_end(self.buffer)) < 0:
            if len(self.buffer) > MAX_HEAD_SIZE:
                raise ProtocolError("request head too large")
            if not await self.fill():
                return None
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        frame = parse_request_head(head)
        if frame.body is Body.LENGTH:
            while len(self.buffer) < frame.length:
                if not await self.fill():
                    raise ProtocolError("client closed inside a request body")
            body = bytes(self.buffer[: frame.length])
            del self.buffer[: frame.length]
        elif frame.body is Body.CHUNKED:
            scanner, taken = ChunkedScanner(), 0
            while True:
                taken += scanner.feed(memoryview(self.buffer)[taken:])
                if scanner.done:
                    break
                if not await self.fill():
                    raise ProtocolError("client closed inside a chunked request body")
            body = bytes(self.buffer[:taken])
            del self.buffer[:taken]
        else:
            body = b""
        return head, frame, body


class ReplayServer:
    """Serves one recording on a listening socket until cancelled."""

    def __init__(
        self, session: ReplaySession, speed: float = 1.0, on_served: Callable[[Served], None] | None = None
    ) -> None:
        self.session = session
        self.speed = speed
        self.book = AnswerBook(session)
        self.on_served = on_served or (lambda served: None)
        self.served: list[Served] = []
        self._tasks: set[asyncio.Task] = set()
        #: Containers (by the id the client used) with a request that got no recorded answer → that request.
        self._failed: dict[str, str] = {}
        self._waited: set[str] = set()
        self._created: set[str] = set()

    async def serve(self, sock: socket.socket) -> None:
        server = await asyncio.start_unix_server(self._track, sock=sock, limit=READ_SIZE)
        async with server:
            try:
                await server.serve_forever()
            finally:
                for task in list(self._tasks):
                    task.cancel()

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._connection(_Connection(reader, writer))
        except (ConnectionError, ProtocolError, asyncio.IncompleteReadError) as exc:
            log.debug("replay connection ended: %s", exc)
        finally:
            self._tasks.discard(task)
            writer.close()

    def _record(self, served: Served) -> None:
        self.served.append(served)
        self.on_served(served)

    async def _pause_until(self, start: float, offset: float) -> None:
        """Sleep until `offset` recorded seconds (scaled by speed) after loop time `start`."""
        if self.speed <= 0 or offset <= 0:
            return
        loop = asyncio.get_running_loop()
        delay = start + offset / self.speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _connection(self, conn: _Connection) -> None:
        while True:
            request = await conn.read_request()
            if request is None:
                return
            head, frame, body = request
            method, target = frame.method.decode("latin-1"), frame.target.decode("latin-1")
            if frame.body is Body.CHUNKED:
                body = decode_chunked(body)
            keep_open = await self._answer(conn, method, target, frame, body)
            await conn.writer.drain()
            if not keep_open or frame.close:
                return

    async def _answer(
        self, conn: _Connection, method: str, target: str, frame: RequestFrame, body: bytes = b""
    ) -> bool:
        """Write the answer to one request; False when the connection must close afterwards."""
        route = match_route(method, target)
        container = route.object_id if route.object_kind == "container" else None
        if container and route.template == "POST /containers/{id}/start":
            refused = await self._earlier_failure(container)
            if refused:
                return self._unmatched(conn, method, target, refused)
        rec = self.book.take(method, target)
        if container and route.template == "POST /containers/{id}/wait":
            self._waited.add(container)

        is_ping = route.template.endswith(" /_ping")
        if rec is None and is_ping:
            rec = self.book.ping_answer(method)
            if rec is None:
                conn.writer.write(synthesized_ping_head(self.session, with_body=method != "HEAD"))
                if method != "HEAD":
                    conn.writer.write(b"OK")
                self._record(Served(method, target, 200, None, ((("serve_ping_synthesized", {}),),)))
                return True
        if rec is None and match_route(method, target).template in SYNTHESISABLE:
            return self._synthesised(conn, method, target)
        if rec is None:
            if container:
                self._failed.setdefault(container, describe_request(method, target))
            return self._unmatched(conn, method, target)
        if rec.route == "POST /containers/create":
            answer = _json_or_none(rec.response_body)
            if isinstance(answer, dict) and isinstance(answer.get("Id"), str):
                # A new `docker run` reuses the recorded id: what failed for the last one is forgotten.
                self._created.add(answer["Id"])
                self._failed.pop(answer["Id"], None)
                self._waited.discard(answer["Id"])
        if rec.response_head is None:
            message = f"dockertap replay: the recorded request got no answer ({rec.error or 'unknown error'})"
            body = json.dumps({"message": message}).encode()
            conn.writer.write(_json_head(502, "Bad Gateway", body) + body)
            self._record(Served(method, target, 502, rec, ((("serve_no_answer", {}),),)))
            return True
        return await self._replay(conn, rec, frame, method, body_difference(rec.request_body, body))

    async def _earlier_failure(self, container: str) -> str | None:
        """The request for this container that got no recorded answer, if any, before its start.

        The docker CLI opens the wait and sends the start on two connections at once; the wait is issued
        first, so a start briefly waits for it (at most WAIT_BEFORE_START seconds) to learn its fate.
        """
        if container not in self._created:
            return self._failed.get(container)  # not this run's container: no wait is coming
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_BEFORE_START
        while container not in self._waited and container not in self._failed and loop.time() < deadline:
            await asyncio.sleep(0.01)
        return self._failed.get(container)

    def _unmatched(self, conn: _Connection, method: str, target: str, earlier: str | None = None) -> bool:
        """501 Not Implemented with a JSON message the docker CLI prints (a 404 would read as "No such …").

        `earlier`: this request has an answer, but an earlier request for the same container had none, so
        going on would pretend the rest of the command worked (`docker run -d` would print an id, exit 0).
        """
        closest = self.book.closest(method, target)
        lesson = lesson_name(self.session)
        request = describe_request(method, target)
        note: Note = (
            ("serve_refused_after", {"lesson": lesson, "earlier": earlier, "request": request})
            if earlier
            else ("serve_no_recorded_answer", {"lesson": lesson, "request": request}),
            ("serve_closest", {"closest": closest}) if closest else ("serve_empty", {}),
        )
        body = json.dumps({"message": word("en", note)}, ensure_ascii=False).encode()
        conn.writer.write(_json_head(501, "Not Implemented", body) + body)
        self._record(Served(method, target, 501, None, (note,)))
        return True

    def _synthesised(self, conn: _Connection, method: str, target: str) -> bool:
        """`/version` or `/info` the recording lacks, built from its backend fingerprint (and saying so)."""
        template = match_route(method, target).template
        document = synthesised_document(self.session, template)
        note: Note = (("serve_synthesised_note", {"route": template}),)
        body = json.dumps(document).encode() if method != "HEAD" else b""
        conn.writer.write(_json_head(200, "OK", body, {WARNING_HEADER: word("en", note)}) + body)
        self._record(Served(method, target, 200, None, (note,)))
        return True

    async def _replay(
        self,
        conn: _Connection,
        rec: RecordedExchange,
        frame: RequestFrame,
        method: str,
        difference: BodyDifference | None = None,
    ) -> bool:
        loop = asyncio.get_running_loop()
        start = loop.time()
        if rec.response_started is not None:
            await self._pause_until(start, rec.response_started - rec.started)
        # Interim 1xx heads are not replayed: the CLI never sends `Expect`, and 101 is a final head here.
        head = final_head(rec.response_head) or b""
        response = parse_response_head(head, frame)
        status = response.status
        notes: list[Note] = []
        pieces = rec.response_slices if method != "HEAD" else []
        if method == "HEAD" and rec.method == "GET":
            head = _set_header(head, "Content-Length", str(len(rec.response_body)))
        elif method == "GET" and rec.method == "HEAD" and response.body is Body.NONE:
            # A GET answered from a recorded HEAD /_ping: the body of a ping is always "OK".
            head = _set_header(head, "Content-Length", "2")
            pieces = [TimedSlice(rec.response_started or rec.started, b"OK")]
            response = parse_response_head(head, frame)
        elif rec.response_truncated and response.body in (Body.LENGTH, Body.CHUNKED, Body.UNTIL_CLOSE):
            captured = sum(len(p.data) for p in pieces)
            truncated = "serve_truncated_wire" if rec.response_chunked else "serve_truncated"
            notes.append(((truncated, {"captured": captured, "total": rec.response_total}),))
            head = _set_header(head, WARNING_HEADER, word("en", notes[-1]))
            if response.body is Body.LENGTH:
                head = _set_header(head, "Content-Length", str(captured))
        if difference:
            notes.append((("serve_differs", {"difference": difference}),))
            head = _set_header(head, WARNING_HEADER, json.dumps(word("en", notes[-1]))[1:-1])
        conn.writer.write(head)
        await conn.writer.drain()
        self._record(Served(method, rec.target, status, rec, tuple(notes)))
        base = rec.response_started or rec.started
        sent_at = loop.time()
        if response.hijack is not Hijack.NONE:
            await self._play_hijack(conn, rec, sent_at, base)
            return False
        if response.body is Body.NONE:
            return True
        chunked = response.body is Body.CHUNKED
        for piece in pieces:
            await self._pause_until(sent_at, piece.at - base)
            conn.writer.write(_chunk(piece.data) if chunked else piece.data)
            await conn.writer.drain()
        if chunked:
            if rec.ended is not None:
                await self._pause_until(sent_at, rec.ended - base)
            conn.writer.write(b"0\r\n\r\n")
        return response.body is not Body.UNTIL_CLOSE

    async def _play_hijack(
        self, conn: _Connection, rec: RecordedExchange, sent_at: float, base: float
    ) -> None:
        """Play the backend side of a hijacked stream; read and discard what the client sends."""
        received = len(conn.buffer)
        conn.buffer.clear()
        progressed = asyncio.Event()

        async def drain_client() -> None:
            nonlocal received
            while True:
                chunk = await conn.reader.read(READ_SIZE)
                received += len(chunk)
                progressed.set()
                if not chunk:  # half-close: keep sending output, as a real daemon does
                    conn.eof = True
                    return

        reader_task = asyncio.create_task(drain_client())
        try:
            client_sent = 0
            for at, direction, data in rec.hijack_frames:
                if direction == "client":
                    client_sent += len(data)
                    continue
                await self._wait_for_client(lambda need=client_sent: received >= need or conn.eof, progressed)
                await self._pause_until(sent_at, at - base)
                conn.writer.write(data)
                await conn.writer.drain()
            if rec.backend_closed_at is not None:
                await self._pause_until(sent_at, rec.backend_closed_at - base)
            if conn.writer.can_write_eof():
                conn.writer.write_eof()
            # Let the client finish reading and close its side; a real daemon closes soon after.
            try:
                await asyncio.wait_for(asyncio.shield(reader_task), timeout=2.0)
            except TimeoutError:
                pass
        finally:
            reader_task.cancel()

    @staticmethod
    async def _wait_for_client(ready: Callable[[], bool], progressed: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STDIN_CATCH_UP_TIMEOUT
        while not ready():
            progressed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(progressed.wait(), timeout=remaining)
            except TimeoutError:
                return


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n" if data else b""
