"""A fast synthetic Docker-API-shaped backend on a Unix socket, for the relay benchmark.

It must never be the bottleneck, so it stays as close to the socket as Python allows: pre-forked
worker processes accept on one shared listening socket, each runs uvloop with raw `Protocol`
callbacks (no streams, no HTTP library), and every answer is a preallocated bytes object.

Routes (anything else answers 404):

* `/_ping` (and `/version`, `/info`): a tiny fixed response, so dockertap's start-up probe passes;
* `/bulk`: a `Content-Length` body of `--bulk-bytes` (default 2 GiB), sent from one preallocated
  buffer with transport flow control, never built per request;
* `/events`: an endless chunked stream; every worker writes one JSON line to each of its open
  streams every `--interval-ms`, all on one timer (a burst per tick, not a timer per stream).

Run: python bench/fake_backend.py --socket /tmp/x/fake.sock [--workers 2]
Prints "ready <pid>..." on stdout once every worker accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time

PING = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Server: fake-backend\r\nContent-Length: 2\r\n\r\nOK"
)
VERSION_BODY = b'{"Version":"0.0-fake","ApiVersion":"1.41","Os":"linux","Arch":"amd64"}\n'
VERSION = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(VERSION_BODY)
) + VERSION_BODY
NOT_FOUND_BODY = b'{"message":"page not found"}\n'
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(NOT_FOUND_BODY)
) + NOT_FOUND_BODY
EVENTS_HEAD = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
SLICE = 4 * 1024 * 1024
SEND_BUFFER = 4 * 1024 * 1024

STATIC = {b"/_ping": PING, b"/version": VERSION, b"/info": VERSION}


class Worker:
    """Per-process state: the bulk buffer and the open event streams."""

    def __init__(self, bulk_bytes: int, interval: float) -> None:
        self.bulk_bytes = bulk_bytes
        self.bulk_head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
            % bulk_bytes
        )
        self.block = memoryview(os.urandom(SLICE))
        self.interval = interval
        self.streams: set[asyncio.Transport] = set()
        self.sequence = 0

    def tick(self) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(self.interval, self.tick)
        if not self.streams:
            return
        self.sequence += 1
        line = b'{"Type":"fake","Action":"tick","seq":%d,"pid":%d,"timeNano":%d}\n' % (
            self.sequence,
            os.getpid(),
            time.time_ns(),
        )
        chunk = b"%x\r\n%s\r\n" % (len(line), line)
        for transport in list(self.streams):
            if transport.is_closing():
                self.streams.discard(transport)
            else:
                transport.write(chunk)


class Connection(asyncio.Protocol):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.bulk_left = 0
        self.paused = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except (OSError, AttributeError):
            pass
        transport.set_write_buffer_limits(high=SLICE)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            line_end = buf.find(b"\r\n")
            path = buf[:line_end].split(b" ", 2)[1].split(b"?", 1)[0]
            buf = buf[end + 4 :]  # requests here never carry bodies
            answer = STATIC.get(path)
            if answer is not None:
                self.transport.write(answer)
            elif path == b"/bulk":
                self.transport.write(self.worker.bulk_head)
                self.bulk_left = self.worker.bulk_bytes
                self._pump()
            elif path == b"/events":
                self.transport.write(EVENTS_HEAD)
                self.worker.streams.add(self.transport)
            else:
                self.transport.write(NOT_FOUND)
        self.buf = buf

    def _pump(self) -> None:
        block = self.worker.block
        while self.bulk_left > 0 and not self.paused:
            n = min(self.bulk_left, SLICE)
            self.transport.write(block[:n])
            self.bulk_left -= n

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()

    def connection_lost(self, exc) -> None:
        self.worker.streams.discard(self.transport)
        self.bulk_left = 0


def serve(listener: socket.socket, bulk_bytes: int, interval: float) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        worker = Worker(bulk_bytes, interval)
        loop.call_later(interval, worker.tick)
        server = await loop.create_unix_server(lambda: Connection(worker), sock=listener, backlog=4096)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bulk-bytes", type=int, default=2 << 30)
    parser.add_argument("--interval-ms", type=float, default=250.0)
    args = parser.parse_args()

    if os.path.exists(args.socket):
        os.unlink(args.socket)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(4096)
    listener.setblocking(False)

    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                serve(listener, args.bulk_bytes, args.interval_ms / 1000)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(*_):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", *children, flush=True)
    for _ in children:
        try:
            os.wait()
        except ChildProcessError:
            break
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    sys.exit(0)


if __name__ == "__main__":
    main()
