"""Drive the REAL relay in-process: one long-lived event loop, a scripted backend on a Unix socket.

The fuzz tests and `bench/report.py` push thousands of conversations through one `Relay` and one
loop (fast: no process or loop start per case). Each conversation is a client socket (one end of a
socketpair handed to `Relay.start_connection`, as `serve()` would after accept) and a backend
connection the relay dials to `ScriptedBackend`, which records every byte it receives and answers
with the bytes the case prescribes, split where the case says. Nothing in the relay is mocked.

Plain module (no pytest import) so `bench/` can reuse it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from dockertap.proxy.endpoints import Endpoint
from dockertap.proxy.exchange import Exchange, PeerInfo
from dockertap.proxy.hub import EventHub
from dockertap.proxy.relay import Relay, RelayConfig
from dockertap.session import install_fast_loop

CONTROL_PREFIX = b"GET /__control"
CONTROL_REQUEST = b"GET /__control HTTP/1.1\r\nHost: docker\r\n\r\n"
CONTROL_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"


def split_at(data: bytes, points: Sequence[int]) -> list[bytes]:
    """`data` cut at the given offsets (out-of-range and repeated offsets are ignored)."""
    cuts = sorted({p for p in points if 0 < p < len(data)})
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return [p for p in pieces if p]


@dataclass
class BackendRecord:
    """What one backend connection received, and whether the relay ever dialled it."""

    pieces: list[bytes]
    received: bytearray = field(default_factory=bytearray)
    connected: bool = False
    done: asyncio.Future | None = None


class ScriptedBackend:
    """A fake engine: each fuzz connection gets the next script; control connections answer pings."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.scripts: collections.deque[BackendRecord] = collections.deque()
        self.control_requests = 0
        self._sock: socket.socket | None = None
        self._task: asyncio.Task | None = None
        self._handlers: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(1024)
        self._sock.setblocking(False)
        self._task = asyncio.get_running_loop().create_task(self._accept())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        for task in list(self._handlers):
            task.cancel()
        pending = [*self._handlers, *([self._task] if self._task else [])]
        await asyncio.gather(*pending, return_exceptions=True)
        if self._sock:
            self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def expect(self, pieces: list[bytes]) -> BackendRecord:
        record = BackendRecord(pieces, done=asyncio.get_running_loop().create_future())
        self.scripts.clear()
        self.scripts.append(record)
        return record

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            conn, _ = await loop.sock_accept(self._sock)
            conn.setblocking(False)
            task = loop.create_task(self._handle(conn))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            first = await _recv(loop, conn)
            if first.startswith(CONTROL_PREFIX):
                await self._control(loop, conn, bytearray(first))
                return
            record = self.scripts.popleft() if self.scripts else BackendRecord([])
            record.connected = True
            record.received += first

            async def send() -> None:
                try:
                    for piece in record.pieces:
                        await loop.sock_sendall(conn, piece)
                        await asyncio.sleep(0)
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

            async def receive() -> None:
                if not first:
                    return
                while data := await _recv(loop, conn):
                    record.received += data

            await asyncio.gather(send(), receive())
            if record.done is not None and not record.done.done():
                record.done.set_result(None)
        finally:
            conn.close()

    async def _control(self, loop, conn: socket.socket, buf: bytearray) -> None:
        """A well-behaved keep-alive engine: one 200 OK per complete request head."""
        while True:
            while b"\r\n\r\n" in buf:
                end = buf.index(b"\r\n\r\n") + 4
                del buf[:end]
                self.control_requests += 1
                await loop.sock_sendall(conn, CONTROL_RESPONSE)
            data = await _recv(loop, conn)
            if not data:
                return
            buf += data


async def _recv(loop, sock: socket.socket) -> bytes:
    try:
        return await loop.sock_recv(sock, 65536)
    except (ConnectionResetError, BrokenPipeError):
        return b""


@dataclass
class Conversation:
    client_sent: bytes
    backend_sent: bytes
    client_received: bytes
    backend_received: bytes
    backend_connected: bool
    exchanges: list[Exchange]

    @property
    def complete(self) -> bool:
        return self.client_received == self.backend_sent and self.backend_received == self.client_sent

    @property
    def flagged(self) -> bool:
        """An error or a synthetic answer is recorded on some exchange."""
        return any(ex.error or ex.synthetic for ex in self.exchanges)


class RelayRig:
    """One relay, one scripted backend and one event loop, reused for many conversations."""

    def __init__(
        self, head_timeout: float = 2.0, capture_limit: int = 64 * 1024, engine_socket: str | None = None
    ) -> None:
        """`engine_socket`: relay to a real engine there instead of the scripted backend."""
        factory = install_fast_loop()
        self.loop = factory() if factory else asyncio.new_event_loop()
        self.loop_errors: list[dict] = []
        self.loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        self.dir = tempfile.mkdtemp(prefix="dtf-", dir="/tmp")
        self.backend = ScriptedBackend(os.path.join(self.dir, "engine.sock"))
        self.engine_socket = engine_socket
        self.events: list[tuple[str, Exchange]] = []
        self.hub = EventHub(self.events.extend, delay=0.001)
        self.relay = Relay(
            RelayConfig(
                backend=Endpoint("unix", path=engine_socket or self.backend.path),
                head_timeout=head_timeout,
                capture_limit=capture_limit,
            ),
            self.hub,
        )
        self.conversations = 0
        self._control: socket.socket | None = None
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        await self.backend.start()
        if self.engine_socket:
            return  # no control connection: a real engine has no /__control
        client, relay_side = socket.socketpair()
        client.setblocking(False)
        relay_side.setblocking(False)
        self.relay.start_connection(relay_side, PeerInfo())
        self._control = client

    def run(self, coro, timeout: float = 10.0):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    async def control_ping(self) -> bytes:
        """One request on the long-lived keep-alive control connection; returns the full answer."""
        loop = asyncio.get_running_loop()
        assert self._control is not None
        await loop.sock_sendall(self._control, CONTROL_REQUEST)
        buf = b""
        while len(buf) < len(CONTROL_RESPONSE):
            data = await loop.sock_recv(self._control, 65536)
            if not data:
                break
            buf += data
        return buf

    def _connect(self) -> tuple[socket.socket, asyncio.Task, int]:
        """A client socket the relay serves as if accepted: (client end, its task, event index)."""
        client, relay_side = socket.socketpair()
        client.setblocking(False)
        relay_side.setblocking(False)
        before = len(self.events)
        return client, self.relay.start_connection(relay_side, PeerInfo()), before

    async def converse(
        self, client_pieces: list[bytes], backend_pieces: list[bytes], timeout: float = 8.0
    ) -> Conversation:
        """Play one client connection against one scripted backend connection, to the end."""
        loop = asyncio.get_running_loop()
        record = self.backend.expect(backend_pieces)
        client, task, before = self._connect()
        received = bytearray()

        async def send() -> None:
            try:
                for piece in client_pieces:
                    await loop.sock_sendall(client, piece)
                    await asyncio.sleep(0)
                client.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        async def receive() -> None:
            while data := await _recv(loop, client):
                received.extend(data)

        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(send(), receive())
                await task
                if record.connected:
                    await record.done
        finally:
            client.close()
        self.hub.drain()
        self.conversations += 1
        ended = [ex for kind, ex in self.events[before:] if kind == "end"]
        del self.events[before:]
        ended = [ex for ex in ended if not ex.request_head.startswith(CONTROL_PREFIX)]
        return Conversation(
            client_sent=b"".join(client_pieces),
            backend_sent=b"".join(backend_pieces),
            client_received=bytes(received),
            backend_received=bytes(record.received),
            backend_connected=record.connected,
            exchanges=ended,
        )

    async def send(self, client_pieces: list[bytes], quiet: float = 0.3, timeout: float = 10.0):
        """Play one client connection against whatever the relay dials; returns (bytes received,
        exchanges). Stops writing after `quiet` seconds without an answer byte (a request the
        engine still waits a body for), then reads to EOF."""
        loop = asyncio.get_running_loop()
        client, task, before = self._connect()
        received = bytearray()
        try:
            async with asyncio.timeout(timeout):
                try:
                    for piece in client_pieces:
                        await loop.sock_sendall(client, piece)
                        await asyncio.sleep(0)
                except OSError:
                    pass  # the relay refused and closed: read its answer
                while True:
                    try:
                        async with asyncio.timeout(quiet):
                            data = await _recv(loop, client)
                    except TimeoutError:
                        try:
                            client.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        continue
                    if not data:
                        break
                    received += data
                await task
        finally:
            client.close()
        self.hub.drain()
        ended = [ex for kind, ex in self.events[before:] if kind == "end"]
        del self.events[before:]
        return bytes(received), ended

    def close(self) -> None:
        async def shutdown() -> None:
            if self._control is not None:
                self._control.close()
            await self.relay.close()
            await self.backend.stop()

        self.loop.run_until_complete(shutdown())
        self.loop.close()
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def bulk_roundtrip(rig: RelayRig, size: int, framing: str) -> dict:
    """Push `size` bytes each way through the relay in one exchange; sha256 of both directions.

    `framing`: "length" (Content-Length body up, Content-Length body down), "chunked" (both bodies
    chunked) or "hijack" (attach: raw bytes both ways after a 101).
    """
    import hashlib

    up, down = os.urandom(size), os.urandom(size)
    if framing == "length":
        client = b"POST /bulk HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % size + up
        backend = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + down
    elif framing == "chunked":
        step = 1 << 16
        client = (
            b"POST /bulk HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(
                b"%x\r\n%s\r\n" % (len(up[i : i + step]), up[i : i + step]) for i in range(0, size, step)
            )
            + b"0\r\n\r\n"
        )
        backend = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(
                b"%x\r\n%s\r\n" % (len(down[i : i + step]), down[i : i + step]) for i in range(0, size, step)
            )
            + b"0\r\n\r\n"
        )
    else:
        client = (
            b"POST /containers/c/attach?stdin=1 HTTP/1.1\r\nHost: d\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + up
        )
        backend = b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + down
    mib = 1 << 20
    client_pieces = split_at(client, range(mib, len(client), mib))
    backend_pieces = split_at(backend, range(mib, len(backend), mib))
    result = rig.run(rig.converse(client_pieces, backend_pieces, timeout=120), timeout=150)
    digest = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    return {
        "framing": framing,
        "bytes_each_way": size,
        "client_to_backend_equal": digest(result.backend_received) == digest(result.client_sent),
        "backend_to_client_equal": digest(result.client_received) == digest(result.backend_sent),
        "errors": [ex.error for ex in result.exchanges if ex.error],
    }
