"""Benchmark clients: minimal HTTP/1.1 over Unix sockets, cheap enough not to hide the relay's cost.

Blocking sockets for the one-at-a-time measurements (sequential keep-alive, new connections,
bulk), uvloop `Protocol` workers in several processes for the concurrency test, and a selector
over many sockets for the held `/events` streams. No HTTP library: each would add more per
request than the relays we compare.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import selectors
import socket
import time
from dataclasses import dataclass, field

RECV = 256 * 1024


def request_bytes(path: str, host: str = "docker") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: dockertap-bench\r\n\r\n".encode()


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


class HttpConnection:
    """One keep-alive connection; reads exactly one response per request (CL or chunked)."""

    def __init__(self, path: str) -> None:
        self.sock = connect(path)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _more(self) -> None:
        data = self.sock.recv(RECV)
        if not data:
            raise ConnectionError("peer closed the connection")
        self.buf += data

    def read_head(self) -> tuple[int, dict[bytes, bytes]]:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._more()
        head, self.buf = self.buf[:end], self.buf[end + 4 :]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def read_chunk(self) -> bytes | None:
        """One chunk's payload of a chunked body; None at the last chunk."""
        while (end := self.buf.find(b"\r\n")) < 0:
            self._more()
        size = int(self.buf[:end].split(b";")[0], 16)
        need = end + 2 + size + 2
        while len(self.buf) < need:
            self._more()
        payload = self.buf[end + 2 : end + 2 + size]
        self.buf = self.buf[need:]
        if size == 0:
            return None
        return payload

    def exchange(self, raw: bytes) -> tuple[int, int]:
        """Send one request, read the whole response; (status, body bytes)."""
        self.sock.sendall(raw)
        status, headers = self.read_head()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            total = 0
            while (chunk := self.read_chunk()) is not None:
                total += len(chunk)
            return status, total
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buf) < length:
            self._more()
        self.buf = self.buf[length:]
        return status, length


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


@dataclass
class Latency:
    p50_us: float
    p99_us: float
    count: int
    samples_ns: list[int] = field(default_factory=list, repr=False)

    def merge(self, other: Latency) -> Latency:
        """Pool the samples of interleaved rounds into one distribution."""
        return _latency(self.samples_ns + other.samples_ns)


def _latency(samples_ns: list[int]) -> Latency:
    us = [s / 1000 for s in samples_ns]
    return Latency(percentile(us, 50), percentile(us, 99), len(us), samples_ns)


def keepalive_latency(sock_path: str, path: str, count: int, warmup: int = 200) -> Latency:
    """Sequential requests on one connection: the per-exchange cost of the path."""
    conn = HttpConnection(sock_path)
    raw = request_bytes(path)
    clock = time.perf_counter_ns
    samples = []
    try:
        for i in range(warmup + count):
            start = clock()
            status, _ = conn.exchange(raw)
            took = clock() - start
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            if i >= warmup:
                samples.append(took)
    finally:
        conn.close()
    return _latency(samples)


def new_connection_latency(sock_path: str, path: str, count: int, warmup: int = 20) -> Latency:
    """connect + one request + close, repeatedly: what a docker CLI invocation pays per dial."""
    raw = request_bytes(path)
    clock = time.perf_counter_ns
    samples = []
    for i in range(warmup + count):
        start = clock()
        conn = HttpConnection(sock_path)
        status, _ = conn.exchange(raw)
        conn.close()
        took = clock() - start
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        if i >= warmup:
            samples.append(took)
    return _latency(samples)


@dataclass
class Bulk:
    ttfb_ms: float
    seconds: float
    bytes: int

    @property
    def gb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e9


def bulk_download(sock_path: str, path: str) -> Bulk:
    """One Content-Length body read into a reused buffer; throughput counts from the request."""
    sock = connect(sock_path)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    try:
        start = time.perf_counter()
        sock.sendall(request_bytes(path))
        n = sock.recv_into(view)
        first = time.perf_counter()
        data = bytes(view[:n])
        while b"\r\n\r\n" not in data:
            got = sock.recv_into(view)
            if not got:
                raise ConnectionError("closed before the head ended")
            data += bytes(view[:got])
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        remaining = length - len(rest)
        recv_into = sock.recv_into
        while remaining > 0:
            got = recv_into(view)
            if not got:
                raise ConnectionError(f"closed with {remaining} bytes missing")
            remaining -= got
        end = time.perf_counter()
    finally:
        sock.close()
    return Bulk((first - start) * 1000, end - start, length)


# -- concurrency -------------------------------------------------------------------------------


class _Counter(asyncio.Protocol):
    """Keeps one request in flight; a response is complete when its known length has arrived."""

    def __init__(self, raw: bytes, length: int, state: dict) -> None:
        self.raw = raw
        self.length = length
        self.state = state
        self.got = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got < self.length:
            return
        if self.got > self.length:
            self.state["errors"] += 1
        self.got = 0
        now = time.time()
        state = self.state
        if state["start"] <= now < state["stop"]:
            state["done"] += 1
        if now < state["stop"]:
            self.transport.write(self.raw)
        else:
            self.transport.close()


def _concurrency_worker(
    sock_path: str, raw: bytes, length: int, connections: int, start: float, stop: float, out
) -> None:
    import uvloop

    async def main() -> dict:
        loop = asyncio.get_running_loop()
        state = {"done": 0, "errors": 0, "start": start, "stop": stop}
        transports = []
        for _ in range(connections):
            # A blocking connect waits for a short accept backlog (socat's is 5) instead of EAGAIN.
            sock = connect(sock_path)
            sock.setblocking(False)
            transport, _ = await loop.create_unix_connection(lambda: _Counter(raw, length, state), sock=sock)
            transports.append(transport)
        await asyncio.sleep(max(0.0, start - time.time() - 0.2))
        for transport in transports:
            transport.write(raw)  # warm-up starts before the window; only in-window answers count
        await asyncio.sleep(max(0.0, stop - time.time()) + 0.05)
        for transport in transports:
            transport.close()
        return state

    try:
        state = uvloop.run(main())
    except Exception as exc:
        out.put((0, f"{type(exc).__name__}: {exc}"))
        return
    out.put((state["done"], state["errors"]))


def concurrent_rps(
    sock_path: str, path: str, clients: int = 64, processes: int = 4, seconds: float = 3.0
) -> float:
    """Requests per second with `clients` keep-alive connections spread over `processes` processes."""
    raw = request_bytes(path)
    # Learn the exact response length (heads of /_ping are fixed-width, Date included).
    probe = connect(sock_path)
    probe.sendall(raw)
    time.sleep(0.05)
    length = len(probe.recv(RECV))
    probe.close()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 0.5
    stop = start + seconds
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    workers = [
        ctx.Process(target=_concurrency_worker, args=(sock_path, raw, length, n, start, stop, out))
        for n in per
    ]
    for w in workers:
        w.start()
    results = [out.get(timeout=seconds + 30) for _ in workers]
    for w in workers:
        w.join()
    done = sum(r[0] for r in results)
    failed = [r[1] for r in results if isinstance(r[1], str)]
    if failed:
        raise RuntimeError(f"a concurrency client failed: {failed[0]}")
    errors = sum(r[1] for r in results)
    if errors:
        raise RuntimeError(f"{errors} responses of unexpected length in the concurrency test")
    return done / seconds


# -- held streams ------------------------------------------------------------------------------


class HeldStreams:
    """Many open `/events` streams; counts which ones delivered body bytes after a mark."""

    def __init__(self, sock_path: str, path: str, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        raw = request_bytes(path)
        for _ in range(count):
            sock = connect(sock_path)
            sock.sendall(raw)
            sock.setblocking(False)
            self.socks.append(sock)
            self.selector.register(sock, selectors.EVENT_READ, len(self.socks) - 1)
        self.headed = [False] * count
        self.bodies = [0] * count
        self.pending = [b""] * count

    def pump(self, seconds: float) -> None:
        """Read whatever arrived for `seconds` (so no relay buffer fills while we measure)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in self.selector.select(left):
                index = key.data
                try:
                    data = key.fileobj.recv(RECV)
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(key.fileobj)
                    continue
                if self.headed[index]:
                    self.bodies[index] += len(data)
                else:
                    buf = self.pending[index] + data
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        self.pending[index] = buf
                        continue
                    self.headed[index] = True
                    self.pending[index] = b""
                    self.bodies[index] += len(buf) - end - 4

    def mark(self) -> list[int]:
        return list(self.bodies)

    def delivered_since(self, mark: list[int]) -> int:
        return sum(1 for before, now in zip(mark, self.bodies, strict=True) if now > before)

    def wait_heads(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not all(self.headed) and time.monotonic() < deadline:
            self.pump(0.05)
        return sum(self.headed)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.selector.close()


def pinned_cpu_count() -> int:
    return len(os.sched_getaffinity(0))
