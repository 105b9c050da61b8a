"""Tiny servers on real Unix sockets (for states a real engine cannot be put in on demand) and a fake
$DOCKER_CONFIG writer.

A Docker-like `/_ping` answerer (so discovery can be tested without starting dockerd), a
listener that answers garbage, one that speaks another HTTP service, one that never answers,
and a stale socket file (bound, then closed: the file stays, nobody listens).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from collections.abc import Callable

from dockertap.proxy.discovery import context_meta_path

DOCKER_PING_HEADERS = (
    b"Api-Version: 1.41\r\nBuilder-Version: 2\r\nCache-Control: no-cache, no-store, must-revalidate\r\n"
    b"Docker-Experimental: false\r\nOstype: linux\r\nPragma: no-cache\r\nServer: Docker/20.10.24 (linux)\r\n"
    b"Swarm: inactive\r\n"
)


def short_tmpdir() -> str:
    """A directory short enough for Unix socket paths (pytest's tmp_path can be too long)."""
    return tempfile.mkdtemp(prefix="dt-", dir="/tmp")


def _read_head(conn: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(4096)
        if not data:
            break
        buf += data
    return buf


def docker_like(name: str = "fake") -> Callable[[bytes], bytes | None]:
    """Answers /_ping like dockerd 20.10, /version chunked, /info with Content-Length."""

    def answer(head: bytes) -> bytes | None:
        target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
        if target == b"/_ping":
            return b"HTTP/1.1 200 OK\r\n" + DOCKER_PING_HEADERS + b"Content-Length: 2\r\n\r\nOK"
        if target == b"/version":
            body = json.dumps({"Version": "20.10.24", "ApiVersion": "1.41", "Os": "linux"}).encode()
            half = len(body) // 2
            chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunks
            )
        if target == b"/info":
            body = json.dumps({"Name": name, "Driver": "overlay2", "DefaultRuntime": "runc"}).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(body),
                body,
            )
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    return answer


def garbage(head: bytes) -> bytes:
    """Some non-HTTP protocol (e.g. a gRPC/HTTP2 server preface)."""
    return b"\x00\x00\x12\x04\x00\x00\x00\x00\x00garbage-not-http\n"


def other_http(head: bytes) -> bytes:
    """An HTTP service that is not Docker."""
    return b"HTTP/1.1 404 Not Found\r\nServer: nginx\r\nContent-Length: 9\r\n\r\nnot found"


def silent(head: bytes) -> None:
    """Accepts, reads the request, never answers (a hung engine)."""
    return None


class FakeServer:
    """A thread accepting connections on a Unix socket and answering each with `answer(head)`."""

    def __init__(self, path: str, answer: Callable[[bytes], bytes | None], mode: int | None = None) -> None:
        self.path = path
        self.url = f"unix://{path}"
        self.answer = answer
        self.requests: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
        self._sock.listen(16)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                head = _read_head(conn)
                self.requests.append(head)
                reply = self.answer(head)
                if reply is None:
                    self._held.append(conn)
                    continue
                conn.sendall(reply)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        for conn in self._held:
            conn.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stale_socket(path: str) -> str:
    """A socket file nobody listens on (what a killed engine leaves behind)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.close()
    return path


def write_context(config_dir: str, name: str, host: str) -> str:
    path = context_meta_path(config_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(
            {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}},
            fh,
        )
    return path


def set_current(config_dir: str, name: str) -> None:
    os.makedirs(config_dir, exist_ok=True)
    with open(os.path.join(config_dir, "config.json"), "w") as fh:
        json.dump({"auths": {}, "currentContext": name}, fh)
