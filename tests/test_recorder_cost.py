"""The recorder's cost per frame: linear for any frame pattern, and never paid on the relay's loop.

A stream of 1-byte stdio frames is the worst case (a frame header per payload byte, a chunk per
frame, a read per chunk); the fake backend below sends one (no engine coalesces on demand).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import engines
from fakesock import DOCKER_PING_HEADERS

from dockertap.proxy.exchange import Capture, Exchange, PeerInfo
from dockertap.recordings.format import exchange_record, read_session

FRAMES = 65536


def _one_byte_frames_exchange(frames: int) -> Exchange:
    """A chunked `logs` answer of `frames` 1-byte stdout frames, each its own chunk and read."""
    body = Capture(limit=1 << 30)
    for i in range(frames):
        body.add(b"9\r\n" + struct.pack(">BxxxI", 1, 1) + b"x\r\n")
        body.marks[-1] = (1000.0 + i * 1e-5, body.marks[-1][1])
    head = b"GET /containers/c/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n"
    ex = Exchange(1, 1, 1, PeerInfo(), "unix:///x", head, Capture(limit=1), body, started=1000.0)
    ex.response_head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    ex.response_chunked, ex.ended = True, 1001.0
    return ex


def test_recording_one_byte_frames_is_linear():
    ex = _one_byte_frames_exchange(FRAMES)
    started = time.perf_counter()
    record = exchange_record(ex)
    took = time.perf_counter() - started
    assert len(record["response"]["streams"]) == FRAMES
    # linear: ~0.5 s on a busy 2-core machine; the quadratic recorder took minutes for this
    assert took < 5, f"{FRAMES} frames took {took:.1f}s to record"


class _FrameServer:
    """Answers /_ping at once and `/logs` with FRAMES 1-byte frames, one chunk per send()."""

    def __init__(self, path: str) -> None:
        self.url = f"unix://{path}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                if b"/logs" in head.split(b"\r\n", 1)[0]:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n"
                    )
                    frame = b"9\r\n" + struct.pack(">BxxxI", 1, 1) + b"x\r\n"
                    for _ in range(FRAMES):
                        conn.sendall(frame)
                    conn.sendall(b"0\r\n\r\n")
                else:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\n" + DOCKER_PING_HEADERS + b"Content-Length: 2\r\n\r\nOK"
                    )

    def close(self) -> None:
        self._sock.close()


def _ping_ms(sock_path: Path) -> float:
    started = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(sock_path))
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        while not s.recv(4096).endswith(b"OK"):
            pass
    return (time.perf_counter() - started) * 1000


def _read_logs(sock_path: Path, got: list[bool]) -> None:
    """A `logs` client: reads the chunked answer to its last chunk."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(sock_path))
        s.sendall(b"GET /containers/c/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
        tail = b""
        while not tail.endswith(b"\r\n0\r\n\r\n"):
            data = s.recv(65536)
            if not data:
                break
            tail = (tail + data)[-16:]
        got.append(tail.endswith(b"\r\n0\r\n\r\n"))


def test_one_byte_frames_do_not_stall_other_clients_and_replay_fast(short_tmp: Path):
    backend = _FrameServer(str(short_tmp / "b.sock"))
    record = short_tmp / "r.jsonl"
    tap = engines.start_tap(
        backend.url, short_tmp, "--no-observe", "--record", str(record), "--capture-bytes", str(4 << 20)
    )
    try:
        got: list[bool] = []
        logs = threading.Thread(target=_read_logs, args=(tap.socket, got))
        logs.start()
        worst = 0.0
        while logs.is_alive():
            worst = max(worst, _ping_ms(tap.socket))
        for _ in range(20):  # the recorder's work on the finished stream comes after it ends
            worst = max(worst, _ping_ms(tap.socket))
            time.sleep(0.02)
        assert got == [True]
    finally:
        tap.stop()
        backend.close()
    assert worst < 500, f"a /_ping waited {worst:.0f} ms while the stream was recorded"
    session = read_session(record)
    logs_record = next(ex for ex in session.exchanges if "/logs" in ex.target)
    assert len(logs_record.streams()) == FRAMES
    started = time.perf_counter()
    replay = subprocess.run(
        [*engines.dockertap_command(), "replay", str(record), "--speed", "0"],
        capture_output=True,
        timeout=120,
    )
    took = time.perf_counter() - started
    assert replay.returncode == 0, replay.stderr.decode()
    assert took < 10, f"replaying {record.stat().st_size} bytes took {took:.1f}s"
