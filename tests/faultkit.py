"""Helpers for fault, load and permission tests: a real `dockertap proxy` process, an in-process
relay serving a real listener, small fake engines on Unix sockets, and process measurements.

Fakes are only for states a real engine cannot be put in on demand (answers garbage, closes in the
middle of a body, streams forever at a fixed pace). Plain module so `bench/report.py` reuses it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dockertap.proxy.endpoints import Endpoint
from dockertap.proxy.exchange import Exchange
from dockertap.proxy.hub import EventHub
from dockertap.proxy.listener import open_unix_listener
from dockertap.proxy.relay import Relay, RelayConfig
from dockertap.session import install_fast_loop

DOCKERTAP = str(Path(sys.executable).with_name("dockertap"))
PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"


# -- measurements ------------------------------------------------------------------------------


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> float | None:
    """Seconds until `predicate()` held, or None if it never did within `timeout`."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(interval)


# -- clients -----------------------------------------------------------------------------------


def connect(path: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    return sock


def exchange(path: str, request: bytes, timeout: float = 5.0) -> bytes:
    """Send `request`, half-close, read until EOF: everything the proxy answered."""
    with connect(path, timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while data := sock.recv(65536):
                chunks.append(data)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head[9:12]), body


def ping_ok(path: str, timeout: float = 5.0) -> bool:
    try:
        answer = exchange(path, PING.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), timeout)
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.1 200")


# -- fake engines ------------------------------------------------------------------------------


class StreamingEngine:
    """Answers every request with an endless chunked stream (like `/events` or `logs -f`), one
    chunk every `interval` seconds, and records when each connection was closed from the far side.
    `reply` overrides the whole answer for a request head (then the connection closes); where it
    returns None, the request is streamed to as usual."""

    def __init__(
        self, path: str, interval: float = 0.02, reply: Callable[[bytes], bytes | None] | None = None
    ) -> None:
        self.path = path
        self.url = f"unix://{path}"
        self.interval = interval
        self.reply = reply
        self.open = 0
        self.accepted = 0
        self.closed_at: list[float] = []
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(4096)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.open += 1
                self.accepted += 1
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            self.received.append(head)
            answer = self.reply(head) if self.reply is not None else None
            if answer is not None:
                conn.sendall(answer)
                return
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            line = b'{"status":"tick"}\n'
            while not self._stop.is_set():
                conn.sendall(b"%x\r\n%s\r\n" % (len(line), line))
                time.sleep(self.interval)
        except OSError:
            pass
        finally:
            conn.close()
            with self._lock:
                self.open -= 1
                self.closed_at.append(time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# -- an in-process relay on a real listener ----------------------------------------------------


class LiveRelay:
    """The real Relay serving a real Unix listener from a background event-loop thread, so a test
    can look inside (stats, active tasks, recorded exchanges) while real clients connect."""

    def __init__(self, listen_path: str, backend: str, **config) -> None:
        self.path = listen_path
        self.exchanges: list[Exchange] = []
        self.loop_errors: list[dict] = []
        factory = install_fast_loop()
        self.loop = factory() if factory else asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda _l, ctx: self.loop_errors.append(ctx))
        self.hub = EventHub(self._collect, delay=0.002)
        self.relay = Relay(RelayConfig(backend=Endpoint("unix", path=backend), **config), self.hub)
        self.listener = open_unix_listener(listen_path)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._serve = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    def _collect(self, batch) -> None:
        self.exchanges.extend(ex for kind, ex in batch if kind == "end")

    async def _start(self) -> asyncio.Task:
        return asyncio.get_running_loop().create_task(self.relay.serve(self.listener))

    def call(self, fn: Callable[[], object]) -> object:
        """Run `fn` on the loop thread (relay state is only consistent there)."""

        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    @property
    def active_tasks(self) -> int:
        return self.call(lambda: self.relay.active_tasks)

    def ended(self) -> list[Exchange]:
        self.call(self.hub.drain)
        return list(self.exchanges)

    def close(self) -> None:
        async def stop():
            self._serve.cancel()
            await self.relay.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.listener.close()
        self.loop.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# -- the real `dockertap proxy` process --------------------------------------------------------


class ProxyProcess:
    """`dockertap proxy --format json` on a private socket; the trace goes to a file."""

    def __init__(self, directory: str, backend: str, *args: str, user_argv: list[str] | None = None) -> None:
        self.dir = Path(directory)
        self.path = str(self.dir / "dt.sock")
        self.url = f"unix://{self.path}"
        self.trace_path = self.dir / "trace.jsonl"
        self.log_path = self.dir / "proxy.log"
        argv = [DOCKERTAP, "proxy", "--listen", self.url, "--backend", backend, "--format", "json", *args]
        with open(self.trace_path, "wb") as out, open(self.log_path, "wb") as err:
            self.process = subprocess.Popen(
                [*(user_argv or []), *argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        if wait_for(lambda: _connectable(self.path) or self.process.poll() is not None, 20) is None:
            raise RuntimeError(f"proxy did not start: {self.log()}")
        if self.process.poll() is not None:
            raise RuntimeError(f"proxy exited {self.process.returncode}: {self.log()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def trace(self) -> list[dict]:
        text = self.trace_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]

    def trace_until(self, predicate: Callable[[list[dict]], bool], timeout: float = 5.0) -> list[dict]:
        records: list[dict] = []

        def check() -> bool:
            nonlocal records
            records = self.trace()
            return predicate(records)

        wait_for(check, timeout, 0.05)
        return records

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _connectable(path: str) -> bool:
    try:
        connect(path, 1).close()
    except OSError:
        return False
    return True


def json_message(body: bytes) -> str:
    return json.loads(body)["message"]
