"""The relay: client connection in, backend connection out, every byte forwarded unchanged.

Each client connection gets its own backend connection (1:1, so keep-alive, connection
close and hijacks keep their meaning) and two pumps:

* the request pump reads request heads and bodies from the client and forwards them;
* the response pump reads response heads and bodies from the backend and forwards them.

The request pump queues each request's framing for the response pump and then waits until
that response's head has been relayed before it interprets more client bytes: if the
response hijacks the connection (101, or Docker's plain-200 raw stream), what follows from
the client is raw stdin, not another request. After a hijack both pumps become raw copies,
and EOF in one direction becomes `shutdown(SHUT_WR)` toward the other (half-close), so that
`echo hi | docker run -i img cat` sees stdin end while output keeps flowing.

Only heads are buffered. Bodies move in slices as they arrive; a bounded prefix of each is
captured for the sinks.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import itertools
import json
import logging
import os
import select
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dockertap.proxy.endpoints import Endpoint
from dockertap.proxy.exchange import (
    Capture,
    Exchange,
    FrameDirection,
    HijackCapture,
    PeerInfo,
    StreamTap,
    header_value,
)
from dockertap.proxy.framing import (
    MAX_HEAD_SIZE,
    Body,
    ChunkedScanner,
    HeadTooLarge,
    Hijack,
    ProtocolError,
    RequestFrame,
    check_line_endings,
    find_head_end,
    parse_request_head,
    parse_response_head,
)
from dockertap.proxy.hub import EventHub

log = logging.getLogger(__name__)

#: Bodies left after the capture prefix at least this long are spliced in the kernel (Linux).
SPLICE_MIN = 1024 * 1024
SPLICE_PIPE = 1024 * 1024
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_CAN_SPLICE = hasattr(os, "splice") and hasattr(os, "pipe2")

HEAD_RECV = 64 * 1024
BULK_RECV = 256 * 1024
SEND_BUFFER = 4 * 1024 * 1024

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

#: Defaults of `dockertap proxy --idle-timeout/--head-timeout/--max-connections`.
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_HEAD_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 4096
#: Refusals over the cap being answered at once; beyond this a refused connection is just closed.
MAX_REFUSING = 64


class PeerClosed(Exception):
    """The other side closed (or reset) the connection in the middle of a message."""


@dataclass(slots=True)
class RelayConfig:
    backend: Endpoint
    #: Bytes of each body (and of each hijacked stream) kept for the sinks.
    capture_limit: int = 64 * 1024
    #: Once a request head has started arriving, it must be complete within this time (else 408).
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    #: A connection with no exchange in flight that sends no byte for this long is closed (None: never).
    #: Streams being relayed (events, logs -f, attach) are in flight, never idle.
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    #: Client connections open at once; more are answered 503 and closed (None: no cap).
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS
    #: The listener is TCP: refuse (403) requests a browser page could make, or whose Host is not
    #: loopback (DNS rebinding), since any web page can reach a loopback port.
    loopback_guard: bool = False
    #: With `loopback_guard`: host names besides loopback ones a Host may carry (the listener's own).
    guard_allows: frozenset[bytes] = frozenset()
    #: With `loopback_guard`: also accept any IP literal as Host (a public listener's remote clients
    #: name the address they dialled; DNS rebinding needs a DNS name, so an IP literal is no threat).
    guard_allows_ip: bool = False
    max_head: int = MAX_HEAD_SIZE
    #: Explains a failed backend dial: OSError -> (reason, hint). Injected so the relay
    #: itself stays free of diagnosis logic.
    describe_dial_error: Callable[[Endpoint, OSError], tuple[str, str]] | None = None
    #: The one opt-in change to relayed bytes: (header name, value maker). A request head without
    #: that header gets `name: value` added before it reaches the engine; the exchange records
    #: the head as sent and names the header in `added_headers` (`--otel-propagate`).
    add_request_header: tuple[str, Callable[[], str]] | None = None
    #: While set, asked for each request head before it is forwarded: an awaitable to wait on
    #: first (`run` holds requests that reach below the engine until its observers are up), or None.
    hold: Callable[[str, str], Awaitable[object] | None] | None = None
    #: Upgrades (the 101 response's `Upgrade` protocol) whose whole stream is handed to the sink
    #: pipeline through a `StreamTap`, not only the capture prefix: BuildKit's HTTP/2 (`h2c`).
    tap_upgrades: frozenset[str] = frozenset({"h2c"})
    #: Bytes a tap may hold while the pipeline has not taken them yet.
    tap_limit: int = 16 * 1024 * 1024


def add_header_if_absent(
    head: bytes, name: str, make_value: Callable[[], str]
) -> tuple[bytes, tuple[str, ...]]:
    """The head with `name: value` added before its blank line unless it already has that header.

    Framing never depends on the added header, and the value is checked like any received byte."""
    if header_value(head, name):
        return head, ()
    line = f"{name}: {make_value()}\r\n".encode("latin-1")
    check_line_endings(line, complete=True)
    return head[:-2] + line + b"\r\n", (name,)


@dataclass(slots=True)
class RelayStats:
    connections_total: int = 0
    connections_open: int = 0
    exchanges: int = 0
    open_streams: int = 0
    bytes_from_clients: int = 0
    bytes_from_backend: int = 0
    errors: int = 0
    synthetic: dict[int, int] = field(default_factory=dict)
    #: Connections answered 503 because `max_connections` were open.
    refused_over_cap: int = 0
    #: Connections closed after `idle_timeout` with no byte and no exchange in flight.
    idle_closed: int = 0


def _tune(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    except OSError:
        pass


def _peer_hung_up(sock: socket.socket) -> bool:
    """After EOF: did the peer close completely (POLLHUP), not just shut down its writes?"""
    try:
        poller = select.poll()
    except AttributeError:  # no poll() (Windows): assume a full close
        return True
    poller.register(sock.fileno(), select.POLLIN | getattr(select, "POLLRDHUP", 0))
    events = poller.poll(0)
    return any(ev & (select.POLLHUP | select.POLLERR) for _, ev in events)


def _shutdown(sock: socket.socket | None, how: int) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(how)
    except OSError:
        pass


def _stray_crlfs(buf: bytes | bytearray) -> int:
    """Length of the run of CRLFs at the start of `buf` (empty lines before a head)."""
    n = 0
    while buf[n : n + 2] == b"\r\n":
        n += 2
    return n


def _head_end(buf: bytes | bytearray, searched: int = 0) -> int:
    """Where the head in `buf` ends (stray CRLFs before it skipped), or -1 if it is incomplete."""
    skip = _stray_crlfs(buf)
    return find_head_end(buf, max(skip, searched)) if len(buf) > skip else -1


def _host_name(host: bytes) -> bytes:
    """The name in a Host value, lower-cased, without its port (`[::1]:2375` -> `[::1]`)."""
    name = host.lower()
    if name.startswith(b"["):
        return name.split(b"]", 1)[0] + b"]"
    return name.rsplit(b":", 1)[0] if name.count(b":") == 1 else name


def _is_loopback_host(name: bytes) -> bool:
    """A Host name for this machine: localhost, *.localhost, 127.0.0.0/8 or [::1].

    A browser sends the page's own host name, so a DNS-rebinding page (evil.example resolving to
    127.0.0.1) is told apart from the docker CLI, which sends the address it dialled.
    """
    if name == b"[::1]":
        return True
    if name == b"localhost" or name.endswith(b".localhost"):
        return True
    parts = name.split(b".")
    return len(parts) == 4 and parts[0] == b"127" and all(p.isdigit() and int(p) < 256 for p in parts)


def _is_ip_literal(name: bytes) -> bool:
    try:
        ipaddress.ip_address(name.strip(b"[]").decode("ascii"))
    except ValueError:
        return False
    return True


def _error_response(status: int, message: str) -> bytes:
    body = json.dumps({"message": message}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


class Relay:
    """Accepts client sockets and relays each to its own backend connection."""

    def __init__(self, config: RelayConfig, hub: EventHub | None = None) -> None:
        self.config = config
        self.hub = hub or EventHub()
        self.stats = RelayStats()
        self._connection_ids = itertools.count(1)
        self._exchange_ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._refusing: set[asyncio.Task] = set()
        self._connections: set[_Connection] = set()
        self._idle_task: asyncio.Task | None = None

    def next_exchange_id(self) -> int:
        return next(self._exchange_ids)

    async def serve(self, listener: socket.socket, peer_reader=None) -> None:
        """Accept connections forever on a non-blocking listening socket."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("accept failed (%s); backing off", exc.strerror)
                    await asyncio.sleep(0.1)
                    continue
                raise
            client.setblocking(False)
            cap = self.config.max_connections
            if cap is not None and self.stats.connections_open >= cap:
                self._refuse_over_cap(client, cap)
                continue
            peer = peer_reader(client) if peer_reader else PeerInfo()
            self.start_connection(client, peer)

    def _refuse_over_cap(self, client: socket.socket, cap: int) -> None:
        """Answer 503 without reading a request, in a short task of its own (never the accept loop)."""
        self.stats.refused_over_cap += 1
        self.stats.synthetic[503] = self.stats.synthetic.get(503, 0) + 1
        if self.stats.refused_over_cap == 1 or self.stats.refused_over_cap % 1000 == 0:
            log.warning(
                "dockertap: refused %d connection(s) with 503: %d open (--max-connections %d)",
                self.stats.refused_over_cap,
                self.stats.connections_open,
                cap,
            )
        if len(self._refusing) >= MAX_REFUSING:  # a flood: no answer at all, the descriptor goes now
            client.close()
            return
        message = f"dockertap: too many client connections ({cap} open, --max-connections); try again later"
        task = asyncio.get_running_loop().create_task(self._send_and_close(client, 503, message))
        self._refusing.add(task)
        task.add_done_callback(self._refusing.discard)

    async def _send_and_close(self, client: socket.socket, status: int, message: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(1.0):
                await loop.sock_sendall(client, _error_response(status, message))
                client.shutdown(socket.SHUT_WR)
                # Read what the client sent, so closing does not reset the answer away (TCP RST).
                while await loop.sock_recv(client, HEAD_RECV):
                    pass
        except (OSError, TimeoutError):
            pass
        finally:
            client.close()

    async def _close_idle(self) -> None:
        """Every few seconds, close connections waiting for a first byte longer than `idle_timeout`."""
        idle = self.config.idle_timeout
        assert idle is not None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(idle / 4, 5.0))
            cutoff = loop.time() - idle
            for conn in list(self._connections):
                if conn.waiting_since is not None and conn.waiting_since < cutoff and not conn.open_exchanges:
                    conn.close_idle()

    def start_connection(self, client: socket.socket, peer: PeerInfo) -> asyncio.Task:
        conn = _Connection(self, next(self._connection_ids), client, peer)
        loop = asyncio.get_running_loop()
        if self.config.idle_timeout is not None and self._idle_task is None:
            self._idle_task = loop.create_task(self._close_idle())
        task = loop.create_task(conn.run())
        self._tasks.add(task)
        self._connections.add(conn)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _task: self._connections.discard(conn))
        return task

    @property
    def active_tasks(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
            self._idle_task = None
        for task in [*self._tasks, *self._refusing]:
            task.cancel()
        if self._tasks or self._refusing:
            await asyncio.gather(*self._tasks, *self._refusing, return_exceptions=True)


class _Connection:
    """One client connection and its backend connection."""

    def __init__(self, relay: Relay, connection_id: int, client: socket.socket, peer: PeerInfo) -> None:
        self.relay = relay
        self.config = relay.config
        self.hub = relay.hub
        self.stats = relay.stats
        self.id = connection_id
        self.peer = peer
        self.client = client
        self.client_buf = bytearray()
        self.backend: socket.socket | None = None
        self.backend_buf = bytearray()
        self.sequence = 0
        self.queue: asyncio.Queue[tuple[Exchange, RequestFrame, asyncio.Future] | None] = asyncio.Queue()
        self.response_task: asyncio.Task | None = None
        self.hijacked: Exchange | None = None
        #: True while the request pump relays a response itself (the one-task fast path).
        self.inline = False
        #: Set when the client closed while a response streamed to it (inline path).
        self.client_gone = False
        self.stdin_task: asyncio.Task | None = None
        self.loop = asyncio.get_running_loop()
        #: loop.time() since when the request pump waits for the first byte of a head, else None.
        self.waiting_since: float | None = None
        #: Exchanges started and not yet ended (an idle connection has none in flight).
        self.open_exchanges = 0
        self.closed_idle = False

    def close_idle(self) -> None:
        """The idle timer fired: end the wait for a head as if the client had closed."""
        self.closed_idle = True
        self.stats.idle_closed += 1
        _shutdown(self.client, socket.SHUT_RD)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        self.stats.connections_total += 1
        self.stats.connections_open += 1
        _tune(self.client)
        try:
            await self._request_pump()
            if self.response_task is not None:
                await self.response_task
        except asyncio.CancelledError:
            if self.response_task is not None:
                self.response_task.cancel()
            raise
        except Exception:
            self.stats.errors += 1
            log.exception("connection %d failed", self.id)
        finally:
            if self.response_task is not None and not self.response_task.done():
                self.response_task.cancel()
                try:
                    await self.response_task
                except BaseException:
                    pass
            if self.hijacked is not None:
                self._end(self.hijacked)
                self.stats.open_streams -= 1
            self.client.close()
            if self.backend is not None:
                self.backend.close()
            self.stats.connections_open -= 1

    def _end(self, ex: Exchange, error: str | None = None) -> None:
        if ex.ended is not None:
            return
        self.open_exchanges -= 1
        if error and not ex.error:
            ex.error = error
        ex.ended = time.time()
        self.stats.bytes_from_clients += ex.request_bytes
        self.stats.bytes_from_backend += ex.response_bytes
        self.hub.emit("end", ex)

    # -- reading heads -------------------------------------------------------------------------

    async def _fill(self, sock: socket.socket, buf: bytearray) -> bool:
        """Read more bytes into `buf`; False on EOF (or reset, which we treat alike)."""
        try:
            data = await self.loop.sock_recv(sock, HEAD_RECV)
        except (ConnectionResetError, BrokenPipeError):
            return False
        if not data:
            return False
        buf += data
        return True

    async def _read_head(self, sock: socket.socket, buf: bytearray, timeout: float | None) -> bytes | None:
        """Return one head (through its blank line) from `buf`/`sock`; None on EOF before any byte.

        Stray CRLFs before a head (RFC 9112 §2.2) are tolerated and stay in front of it, so they
        are relayed like every other byte; callers parse `raw[_stray_crlfs(raw):]`.
        """
        end = _head_end(buf)
        if end < 0:
            if len(buf) == _stray_crlfs(buf):
                if sock is self.client:
                    self.waiting_since = self.loop.time()
                try:
                    if not await self._fill(sock, buf):
                        return None
                finally:
                    self.waiting_since = None
            end = _head_end(buf)
            if end < 0:
                # An unfinished head: refuse a bare CR/LF now, not after the head timeout. Only the
                # new bytes are checked (plus a CR that may pair with a new LF): linear in the head.
                check_line_endings(buf, complete=False)
                async with asyncio.timeout(timeout):
                    while end < 0:
                        if len(buf) > self.config.max_head:
                            raise HeadTooLarge(f"head larger than {self.config.max_head} bytes")
                        searched = len(buf)
                        if not await self._fill(sock, buf):
                            raise PeerClosed("connection closed in the middle of a head")
                        end = _head_end(buf, searched)
                        if end < 0:
                            checked = searched - 1 if buf[searched - 1 : searched] == b"\r" else searched
                            check_line_endings(buf[checked:], complete=False)
        if end > self.config.max_head:
            raise HeadTooLarge(f"head larger than {self.config.max_head} bytes")
        head = bytes(buf[:end])
        del buf[:end]
        return head

    # -- the request side ----------------------------------------------------------------------

    def _new_exchange(self, head: bytes) -> Exchange:
        self.sequence += 1
        self.open_exchanges += 1
        limit = self.config.capture_limit
        self.stats.exchanges += 1
        return Exchange(
            id=self.relay.next_exchange_id(),
            connection_id=self.id,
            sequence=self.sequence,
            peer=self.peer,
            backend=self.config.backend.url,
            request_head=head,
            request_body=Capture(limit),
            response_body=Capture(limit),
        )

    async def _answer_ourselves(self, ex: Exchange, status: int, message: str) -> OSError | None:
        """Send (and record on `ex`) an answer dockertap writes itself: 400, 408, 431, 502.

        The JSON `message` is what the docker CLI prints. Returns the error if it could not be sent.
        """
        response = _error_response(status, message)
        split = response.index(b"\r\n\r\n") + 4
        ex.synthetic = True
        ex.response_head = response[:split]
        ex.response_started = time.time()
        ex.response_body.add(response[split:])
        self.stats.synthetic[status] = self.stats.synthetic.get(status, 0) + 1
        self.hub.emit("response", ex)
        try:
            await self.loop.sock_sendall(self.client, response)
        except OSError as exc:
            return exc
        return None

    async def _reject(self, status: int, message: str, head: bytes) -> None:
        """Answer a request we cannot relay ourselves, record it, and close."""
        ex = self._new_exchange(head)
        ex.error = message
        self.hub.emit("request", ex)
        await self._finish_responses()
        failed = await self._answer_ourselves(ex, status, f"dockertap: {message}")
        if failed is not None:  # e.g. an until-close response already closed the client side
            ex.error = f"{message}; the {status} answer could not be delivered: {failed.strerror or failed}"
        self._end(ex)

    def _guard(self, frame: RequestFrame) -> str | None:
        """On TCP: why this request is refused (a browser page or a rebound DNS name), or None."""
        if frame.from_browser:
            return (
                "refused: the request comes from a web browser (Origin or Sec-Fetch-* header); "
                "a web page must never reach the Docker API"
            )
        name = _host_name(frame.host)
        allowed = _is_loopback_host(name) or name in self.config.guard_allows
        if frame.host and not allowed and not (self.config.guard_allows_ip and _is_ip_literal(name)):
            host = frame.host.decode("latin-1")
            return f"refused: Host {host!r} is not a loopback name or address (DNS rebinding?)"
        return None

    async def _finish_responses(self) -> None:
        """Let in-flight responses complete before we write anything of our own to the client."""
        if self.response_task is not None:
            self.queue.put_nowait(None)
            await self.response_task
            self.response_task = None

    async def _connect_backend(self, ex: Exchange) -> bool:
        try:
            self.backend = await self.config.backend.connect()
        except OSError as exc:
            describe = self.config.describe_dial_error
            reason, hint = describe(self.config.backend, exc) if describe else (exc.strerror or str(exc), "")
            message = f"dockertap: cannot reach {self.config.backend.url}: {reason}"
            if hint:
                message += f" — {hint}"
            ex.error = message
            await self._answer_ourselves(ex, 502, message)
            self._end(ex)
            return False
        _tune(self.backend)
        return True

    async def _request_pump(self) -> None:
        client = self.client
        while True:
            try:
                raw = await self._read_head(client, self.client_buf, self.config.head_timeout)
            except HeadTooLarge as exc:
                await self._reject(431, str(exc), bytes(self.client_buf[:1024]))
                return
            except ProtocolError as exc:  # a bare CR/LF in an unfinished head
                pending = bytes(self.client_buf[:1024])
                await self._reject(exc.status_hint, f"malformed request: {exc}", pending)
                return
            except TimeoutError:
                await self._reject(408, "request head not completed in time", bytes(self.client_buf[:1024]))
                return
            except PeerClosed:
                await self._client_eof()
                return
            if raw is None:
                await self._client_eof()
                return
            head = raw  # stray CRLFs before a request are refused by the grammar (Go answers 400 too)
            try:
                frame = parse_request_head(head)
            except ProtocolError as exc:
                await self._reject(exc.status_hint, f"malformed request: {exc}", head[:1024])
                return
            refusal = self._guard(frame) if self.config.loopback_guard else None
            if refusal is not None:
                await self._reject(403, refusal, head[:1024])
                return

            received = len(head)
            added: tuple[str, ...] = ()
            if self.config.add_request_header is not None:
                head, added = add_header_if_absent(head, *self.config.add_request_header)
                raw = head
            ex = self._new_exchange(head)
            if added:
                ex.added_headers, ex.added_bytes = added, len(head) - received
            self.hub.emit("request", ex)
            if self.config.hold is not None:
                waiting = self.config.hold(*ex.method_and_target)
                if waiting is not None:
                    await waiting
            if self.backend is None and not await self._connect_backend(ex):
                return
            body_here = frame.body is Body.NONE or (
                frame.body is Body.LENGTH and len(self.client_buf) >= frame.length
            )
            if self.response_task is None and body_here:
                if not await self._exchange_inline(ex, frame, raw):
                    return
                continue
            if self.response_task is None:
                self.response_task = self.loop.create_task(self._response_pump())
            relayed: asyncio.Future = self.loop.create_future()
            self.queue.put_nowait((ex, frame, relayed))
            try:
                await self.loop.sock_sendall(self.backend, raw)
                if frame.body is Body.LENGTH:
                    ex.request_chunked = False
                    await self._copy_length(
                        client, self.client_buf, self.backend, frame.length, ex.request_body
                    )
                elif frame.body is Body.CHUNKED:
                    ex.request_chunked = True
                    await self._copy_chunked(client, self.client_buf, self.backend, ex.request_body)
            except PeerClosed:
                ex.error = ex.error or "client closed the connection in the middle of the request body"
                _shutdown(self.backend, socket.SHUT_WR)
                self.queue.put_nowait(None)
                return
            except ProtocolError as exc:
                ex.error = f"malformed request body: {exc}"
                _shutdown(self.backend, socket.SHUT_RDWR)
                self.queue.put_nowait(None)
                return
            except OSError as exc:  # backend went away while we were sending
                ex.error = ex.error or f"backend connection failed while sending the request: {exc}"
                _shutdown(self.backend, socket.SHUT_RDWR)
                self.queue.put_nowait(None)
                return
            ex.request_ended = time.time()

            verdict = await self._wait_relayed(relayed, ex)
            if verdict is None:  # the response pump has ended the connection
                return
            if verdict is not Hijack.NONE:
                leftover = bytes(self.client_buf)
                self.client_buf.clear()
                await self._copy_raw(client, self.backend, "client", ex.hijack, leftover)
                self.queue.put_nowait(None)
                return
            if frame.close:
                self.queue.put_nowait(None)
                return

    async def _exchange_inline(self, ex: Exchange, frame: RequestFrame, raw: bytes) -> bool:
        """The common case in one task: the request's body is already here and no response is
        in flight, so send head and body together and relay the response right here. Saves the
        hand-off to the response pump (two event-loop passes and ~50 µs per exchange).
        Returns False when the connection must end.
        """
        backend, client = self.backend, self.client
        assert backend is not None
        out = raw
        if frame.body is Body.LENGTH:
            body = bytes(self.client_buf[: frame.length])
            del self.client_buf[: frame.length]
            ex.request_body.add(body)
            out = raw + body
        try:
            await self._send(backend, out)
        except OSError as exc:
            _shutdown(backend, socket.SHUT_RDWR)
            relayed: asyncio.Future = self.loop.create_future()
            # The backend may still have answered (e.g. an error, then close): relay it if so.
            await self._relay_response(ex, frame, relayed, backend, client)
            self._end(ex, f"backend connection failed while sending the request: {exc}")
            return False
        ex.request_ended = time.time()
        relayed = self.loop.create_future()
        self.inline = True
        try:
            keep = await self._relay_response(ex, frame, relayed, backend, client)
        finally:
            self.inline = False
        if self.stdin_task is not None:  # a hijack: stdin flows until the client closes it
            await self.stdin_task
            self.stdin_task = None
        if not keep or frame.close or self.client_gone:
            if self.client_gone:
                self.queue.put_nowait(None)
            return False
        return True

    async def _watch_client(self) -> None:
        """While a streamed response flows on the inline path, notice the client leaving.

        The two-pump path gets this for free (its request pump is reading the client); here a
        small task reads instead. EOF is passed on as the client meant it: a full close frees
        the backend at once (docker CLI killed during `logs -f`), a half-close is forwarded.
        Bytes that arrive (a pipelined request) wait in the buffer for the request pump.
        """
        while len(self.client_buf) <= self.config.max_head:
            try:
                data = await self.loop.sock_recv(self.client, HEAD_RECV)
            except OSError:
                data = b""
            if not data:
                if _peer_hung_up(self.client):
                    self.client_gone = True
                    _shutdown(self.backend, socket.SHUT_RDWR)
                elif not self.client_buf:
                    self.client_gone = True
                    _shutdown(self.backend, socket.SHUT_WR)
                # else: a half-close behind pipelined requests; the request pump relays those
                # first and meets the EOF itself, as it would have on the two-pump path.
                return
            self.client_buf += data

    async def _wait_relayed(self, relayed: asyncio.Future, ex: Exchange) -> Hijack | None:
        """Wait for this request's response head — unless the response pump is already gone.

        The pump ends the connection on a backend error (bad chunk size, close mid-body); a
        request the client pipelined behind it may be queued after the pump drained the queue,
        and nobody would ever answer it.
        """
        pump = self.response_task
        if not relayed.done() and pump is not None:
            await asyncio.wait((relayed, pump), return_when=asyncio.FIRST_COMPLETED)
        if relayed.done():
            return relayed.result()
        self._end(ex, "connection ended before a response")
        return None

    async def _client_eof(self) -> None:
        """The client stopped sending between requests: end politely or abort, as it meant."""
        if self.backend is None:
            return
        if _peer_hung_up(self.client):
            # Fully gone (e.g. docker CLI killed during `logs -f`): free the backend now.
            _shutdown(self.backend, socket.SHUT_RDWR)
        else:
            _shutdown(self.backend, socket.SHUT_WR)  # a half-close: pass it on, keep relaying
        self.queue.put_nowait(None)

    # -- the response side ---------------------------------------------------------------------

    async def _response_pump(self) -> None:
        backend, client = self.backend, self.client
        assert backend is not None
        while True:
            item = await self.queue.get()
            if item is None:
                break
            ex, frame, relayed = item
            try:
                keep_going = await self._relay_response(ex, frame, relayed, backend, client)
            except asyncio.CancelledError:
                self._end(ex, "cancelled")
                raise
            finally:
                if not relayed.done():
                    relayed.set_result(None)
            if not keep_going:
                break
        if self.hijacked is None:
            # The connection is over: wake a request pump that waits for the next head.
            _shutdown(client, socket.SHUT_RD)
        # Drain the queue so a waiting request pump is released.
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                item[2].done() or item[2].set_result(None)
                self._end(item[0], "connection ended before a response")

    async def _relay_response(
        self, ex: Exchange, frame: RequestFrame, relayed: asyncio.Future, backend: socket.socket, client
    ) -> bool:
        """Relay one response. Returns False when the connection must end after it."""
        informational = b""
        raw: bytes | None = None
        try:
            while True:
                raw = await self._read_head(backend, self.backend_buf, None)
                if raw is None:
                    raise PeerClosed("backend closed the connection without responding")
                head = raw[_stray_crlfs(raw) :]
                response = parse_response_head(head, frame)
                if not response.informational:
                    break
                informational += head
                await self.loop.sock_sendall(client, raw)  # 100 Continue must reach the client now
        except (PeerClosed, ProtocolError, HeadTooLarge, OSError) as exc:
            if informational or ex.response_head is not None:
                self._end(ex, f"backend error: {exc}")
                _shutdown(client, socket.SHUT_RDWR)
                return False
            if isinstance(exc, PeerClosed) and ex.sequence > 1 and not self.backend_buf:
                # A reused connection the backend closed while idle: close it the same way, so
                # the client sees what it would have seen directly (Go's client then retries).
                self._end(ex, "backend closed the idle connection")
                _shutdown(client, socket.SHUT_RDWR)
                return False
            sent = bytes(self.backend_buf[:32])
            # The head is out of the buffer once read whole: look at it, or at what is buffered.
            http_like = (raw or sent).lstrip(b"\r\n").startswith(b"HTTP/")
            if isinstance(exc, ProtocolError) and http_like:
                what = "sent a response head a client could read differently (refused)"
            elif isinstance(exc, ProtocolError) or not b"HTTP/".startswith(sent[:5]):
                what = "did not answer with HTTP"
            else:
                what = "failed"
            message = f"dockertap: the backend at {self.config.backend.url} {what}: {exc}"
            if sent and not isinstance(exc, ProtocolError):
                message += f" (it sent {sent!r})"  # non-HTTP bytes, then closed: say what they were
            await self._answer_ourselves(ex, 502, message)
            self._end(ex, message)
            _shutdown(client, socket.SHUT_RDWR)
            return False

        ex.response_head = informational + head if informational else head
        ex.response_started = time.time()
        self.hub.emit("response", ex)
        try:
            await self.loop.sock_sendall(client, raw)
        except OSError:
            self._end(ex, "client went away before the response head")
            _shutdown(backend, socket.SHUT_RDWR)
            return False

        if response.hijack is not Hijack.NONE:
            ex.hijack = HijackCapture(self.config.capture_limit)
            if (
                self.config.tap_upgrades
                and response.status == 101
                and header_value(head, "upgrade").strip().lower() in self.config.tap_upgrades
            ):
                ex.hijack.tap = StreamTap(self.config.tap_limit)
            self.hijacked = ex
            self.stats.open_streams += 1
            relayed.set_result(response.hijack)
            if self.inline:  # no request pump is free to carry stdin: give it a task
                stdin = bytes(self.client_buf)
                self.client_buf.clear()
                self.stdin_task = self.loop.create_task(
                    self._copy_raw(client, backend, "client", ex.hijack, stdin)
                )
            leftover = bytes(self.backend_buf)
            self.backend_buf.clear()
            await self._copy_raw(backend, client, "backend", ex.hijack, leftover)
            return False

        relayed.set_result(Hijack.NONE)
        streaming = response.body in (Body.CHUNKED, Body.UNTIL_CLOSE)
        watcher = None
        if streaming:
            self.stats.open_streams += 1
            if self.inline:
                watcher = self.loop.create_task(self._watch_client())
        try:
            if response.body is Body.LENGTH:
                await self._copy_length(backend, self.backend_buf, client, response.length, ex.response_body)
            elif response.body is Body.CHUNKED:
                ex.response_chunked = True
                await self._copy_chunked(backend, self.backend_buf, client, ex.response_body)
            elif response.body is Body.UNTIL_CLOSE:
                await self._copy_until_close(backend, self.backend_buf, client, ex.response_body)
        except PeerClosed as exc:
            self._end(ex, str(exc) or "backend closed the connection in the middle of the response body")
            _shutdown(client, socket.SHUT_RDWR)
            return False
        except ProtocolError as exc:
            self._end(ex, f"malformed response body from the backend: {exc}")
            _shutdown(client, socket.SHUT_RDWR)
            return False
        except OSError as exc:  # the client went away mid-body
            self._end(ex, f"client went away in the middle of the response: {exc.strerror or exc}")
            _shutdown(backend, socket.SHUT_RDWR)
            return False
        finally:
            if streaming:
                self.stats.open_streams -= 1
            if watcher is not None:
                watcher.cancel()
        self._end(ex)
        if response.close or response.body is Body.UNTIL_CLOSE:
            _shutdown(client, socket.SHUT_WR)
            return False
        return True

    # -- body copying --------------------------------------------------------------------------

    async def _send(self, dst: socket.socket, data) -> None:
        try:
            await self.loop.sock_sendall(dst, data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise OSError(exc.errno, "peer closed the connection") from None

    async def _copy_length(self, src, buf: bytearray, dst, length: int, capture: Capture) -> None:
        remaining = length
        if buf:
            take = min(remaining, len(buf))
            piece = bytes(buf[:take])
            del buf[:take]
            capture.add(piece)
            await self._send(dst, piece)
            remaining -= take
        if remaining <= 0:
            return
        chunk = bytearray(min(remaining, BULK_RECV))
        view = memoryview(chunk)
        recv_into = self.loop.sock_recv_into
        try:
            while remaining > 0:
                if capture.full and remaining >= SPLICE_MIN and _CAN_SPLICE:
                    # The capture has its prefix: the rest only needs counting, so let the
                    # kernel move it (no copies through Python; +20–40% on bulk bodies).
                    moved = await self._splice(src, dst, remaining)
                    capture.total += moved
                    remaining -= moved
                    if remaining:
                        raise PeerClosed(f"connection closed with {remaining} body bytes still expected")
                    return
                want = min(remaining, len(chunk))
                try:
                    n = await recv_into(src, view[:want])
                except (ConnectionResetError, BrokenPipeError):
                    n = 0
                if not n:
                    raise PeerClosed(f"connection closed with {remaining} body bytes still expected")
                piece = view[:n]
                capture.add(piece)
                await self._send(dst, piece)
                remaining -= n
        finally:
            view.release()

    async def _wait_ready(self, sock: socket.socket, writable: bool) -> None:
        future = self.loop.create_future()
        fd = sock.fileno()
        add, remove = (
            (self.loop.add_writer, self.loop.remove_writer)
            if writable
            else (self.loop.add_reader, self.loop.remove_reader)
        )
        add(fd, lambda: future.done() or future.set_result(None))
        try:
            await future
        finally:
            remove(fd)

    async def _splice(self, src: socket.socket, dst: socket.socket, length: int) -> int:
        """Move up to `length` bytes src → dst through a kernel pipe; returns the bytes moved
        (fewer only when src hit EOF). Linux only (`_CAN_SPLICE`)."""
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            try:
                fcntl.fcntl(write_end, _F_SETPIPE_SZ, SPLICE_PIPE)
            except OSError:
                pass  # the default 64 KiB pipe still works, just in smaller steps
            moved = 0
            flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
            while moved < length:
                try:
                    n = os.splice(src.fileno(), write_end, min(length - moved, SPLICE_PIPE), flags=flags)
                except BlockingIOError:
                    await self._wait_ready(src, writable=False)
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    n = 0
                if n == 0:
                    return moved
                pending = n
                while pending:
                    try:
                        pending -= os.splice(read_end, dst.fileno(), pending, flags=flags)
                    except BlockingIOError:
                        await self._wait_ready(dst, writable=True)
                    except (BrokenPipeError, ConnectionResetError) as exc:
                        raise OSError(exc.errno, "peer closed the connection") from None
                moved += n
            return moved
        finally:
            os.close(read_end)
            os.close(write_end)

    async def _copy_chunked(self, src, buf: bytearray, dst, capture: Capture) -> None:
        scanner = ChunkedScanner()
        if buf:
            n = scanner.feed(buf)
            piece = bytes(buf[:n])
            del buf[:n]
            capture.add(piece)
            await self._send(dst, piece)
        size = HEAD_RECV
        while not scanner.done:
            try:
                data = await self.loop.sock_recv(src, size)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                raise PeerClosed("connection closed in the middle of a chunked body")
            if len(data) == size and size < BULK_RECV:
                size = BULK_RECV  # a bulk transfer: read in bigger slices
            n = scanner.feed(data)
            if n < len(data):
                buf += data[n:]
                data = data[:n]
            capture.add(data)
            await self._send(dst, data)

    async def _copy_until_close(self, src, buf: bytearray, dst, capture: Capture) -> None:
        if buf:
            piece = bytes(buf)
            buf.clear()
            capture.add(piece)
            await self._send(dst, piece)
        size = HEAD_RECV
        while True:
            try:
                data = await self.loop.sock_recv(src, size)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                return
            if len(data) == size and size < BULK_RECV:
                size = BULK_RECV
            capture.add(data)
            await self._send(dst, data)

    async def _copy_raw(
        self, src: socket.socket, dst: socket.socket, direction: FrameDirection, capture, leftover: bytes
    ) -> None:
        """One direction of a hijacked stream; EOF becomes a half-close toward `dst`."""
        try:
            if leftover:
                if capture.add(direction, leftover) and self.hijacked is not None:
                    self.hub.emit("stream", self.hijacked)
                await self._send(dst, leftover)
            size = HEAD_RECV
            while True:
                try:
                    data = await self.loop.sock_recv(src, size)
                except OSError:
                    data = b""
                if not data:
                    break
                if len(data) == size and size < BULK_RECV:
                    size = BULK_RECV
                if capture.add(direction, data) and self.hijacked is not None:
                    self.hub.emit("stream", self.hijacked)
                await self._send(dst, data)
        except OSError:
            # The receiving side is gone: stop reading from the sender too.
            _shutdown(src, socket.SHUT_RD)
        finally:
            _shutdown(dst, socket.SHUT_WR)
            now = time.time()
            if direction == "client":
                capture.client_closed_at = now
            else:
                capture.backend_closed_at = now
