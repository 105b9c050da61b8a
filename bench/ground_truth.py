"""An independent record of what really ran below the Docker API, to score dockertap's evidence against.

Written separately on purpose: nothing here imports dockertap's evidence or analyzers modules, so a
mistake there cannot be repeated here. Three sources, all raw:

* the kernel's process-events connector (netlink `CN_IDX_PROC`): every fork and exec on the host,
  with `/proc/<pid>/cmdline`, `comm`, `status` (uid) read at once, and the fork-time parent chain;
* containerd's own event stream (`ctr --address <sock> events`) of the engine's containerd;
* a byte-copying relay in front of the tap that logs each request's window: the request line, when
  its first byte arrived, and when the last byte of its answer left (the next request on the same
  connection, or the close, ends it).

`python -m bench.ground_truth` is not a CLI; `bench/score_evidence.py` drives it.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# linux/netlink.h, linux/connector.h, linux/cn_proc.h
_NETLINK_CONNECTOR = 11
_CN_IDX_PROC = 1
_CN_VAL_PROC = 1
_PROC_CN_MCAST_LISTEN = 1
_FORK, _EXEC = 0x1, 0x2
_HEADER = struct.Struct("=IHHII")
_CN = struct.Struct("=IIIIHH")
_EVENT = struct.Struct("=IIQ")


def _read(path: str, limit: int = 65536) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return b""


def _stat_parent(pid: int) -> int:
    raw = _read(f"/proc/{pid}/stat", 1024)
    try:
        return int(raw[raw.rindex(b")") + 2 :].split(b" ", 2)[1])
    except (ValueError, IndexError):
        return 0


class ProcessEvents:
    """Every exec on the host, with uid, comm, argv and the chain of fork-time parents."""

    def __init__(self) -> None:
        self.execs: list[dict[str, Any]] = []
        self._parents: dict[int, int] = {}
        self._comms: dict[int, str] = {}
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_CONNECTOR)
        self._sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
        self._sock.bind((0, _CN_IDX_PROC))
        payload = struct.pack("=I", _PROC_CN_MCAST_LISTEN)
        cn = _CN.pack(_CN_IDX_PROC, _CN_VAL_PROC, 0, 0, len(payload), 0) + payload
        self._sock.send(_HEADER.pack(_HEADER.size + len(cn), 3, 0, 0, self._sock.getsockname()[0]) + cn)
        self._offset = time.time() - time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:  # this thread only: runc and ps live for milliseconds, /proc must be read at once
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(os.sched_get_priority_min(os.SCHED_RR)))
        except OSError:
            pass
        buf = bytearray(65536)
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.1)
            if not ready:
                continue
            try:
                n = self._sock.recv_into(buf)
            except OSError:
                continue
            at = 0
            while at + _HEADER.size + _CN.size + _EVENT.size <= n:
                length = _HEADER.unpack_from(buf, at)[0]
                if length < _HEADER.size:
                    break
                body = at + _HEADER.size + _CN.size
                what, _cpu, stamp = _EVENT.unpack_from(buf, body)
                if what == _FORK:
                    _pp, parent, child, child_tgid = struct.unpack_from("=iiii", buf, body + _EVENT.size)
                    if child == child_tgid:
                        self._parents[child] = parent
                        self._comms[child] = self._comms.get(parent, "")
                elif what == _EXEC:
                    pid = struct.unpack_from("=ii", buf, body + _EVENT.size)[1]
                    self._exec(pid, stamp / 1e9 + self._offset)
                at += (length + 3) & ~3

    def _exec(self, pid: int, when: float) -> None:
        comm = _read(f"/proc/{pid}/comm", 64).decode("utf-8", "replace").strip()
        argv = [a.decode("utf-8", "replace") for a in _read(f"/proc/{pid}/cmdline").split(b"\0")[:-1]]
        uid = None
        for line in _read(f"/proc/{pid}/status", 4096).split(b"\n"):
            if line.startswith(b"Uid:"):
                uid = int(line.split()[1])
        try:
            mount_ns = os.readlink(f"/proc/{pid}/ns/mnt")
        except OSError:
            mount_ns = None
        self._comms[pid] = comm
        chain: list[tuple[int, str]] = []
        parent = self._parents.get(pid) or _stat_parent(pid)
        while parent > 1 and len(chain) < 16:
            name = (
                self._comms.get(parent)
                or _read(f"/proc/{parent}/comm", 64).decode("utf-8", "replace").strip()
            )
            chain.append((parent, name))
            parent = self._parents.get(parent) or _stat_parent(parent)
        self.execs.append(
            {
                "time": when,
                "pid": pid,
                "uid": uid,
                "comm": comm,
                "argv": argv,
                "chain": chain,
                "mnt": mount_ns,
            }
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


class ContainerdEvents:
    """`ctr events` of the engine's containerd: (time received, namespace, topic, raw line)."""

    def __init__(self, ctr: list[str]) -> None:
        self.events: list[dict[str, Any]] = []
        self._proc = subprocess.Popen(
            [*ctr, "events"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            parts = line.split(" ", 6)
            if len(parts) >= 6 and parts[5].startswith("/"):
                payload = parts[6] if len(parts) == 7 else ""
                self.events.append(
                    {"time": time.time(), "namespace": parts[4], "topic": parts[5], "payload": payload}
                )

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(3)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._thread.join(2)


@dataclass
class Window:
    connection: int
    request_line: str
    started: float
    ended: float | None = None

    @property
    def method(self) -> str:
        return self.request_line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        parts = self.request_line.split(" ")
        return parts[1] if len(parts) > 1 else ""


@dataclass
class Relay:
    """Copies bytes between clients on `listen` and the server on `upstream`; logs request windows.

    A request starts when a client sends bytes while no request is open on its connection, or
    after the server has answered the previous one (HTTP/1.1 without pipelining, as the docker
    CLI and SDK speak); it ends with the last byte the server sent before the next request or
    the close. Hijacked streams stay open until the close.
    """

    listen: str
    upstream: str
    windows: list[Window] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.listen)
        self._server.listen(64)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections += 1
                number = self._connections
            threading.Thread(target=self._pump, args=(client, number), daemon=True).start()

    def _pump(self, client: socket.socket, number: int) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(self.upstream)
        except OSError:
            client.close()
            return
        current: Window | None = None
        answered = True  # the server has spoken since the current request began
        hijacked = False  # after a 101 or a raw stream, the client's bytes are stdin, not requests
        last_answer = 0.0
        peers = {client: server, server: client}
        open_ends = {client, server}
        while open_ends and not self._stop.is_set():
            ready, _, _ = select.select(list(open_ends), [], [], 0.2)
            for end in ready:
                try:
                    data = end.recv(65536)
                except OSError:
                    data = b""
                now = time.time()
                if not data:
                    open_ends.discard(end)
                    try:
                        peers[end].shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                if end is client and not hijacked and (current is None or answered):
                    if current is not None and current.ended is None:
                        current.ended = last_answer or now
                    line = data.split(b"\r\n", 1)[0].decode("latin-1")
                    current = Window(number, line, now)
                    with self._lock:
                        self.windows.append(current)
                    answered = False
                elif end is server:
                    if not answered and (
                        data.startswith(b"HTTP/1.1 101")
                        or b"application/vnd.docker.raw-stream" in data[:2048]
                        or b"application/vnd.docker.multiplexed-stream" in data[:2048]
                    ):
                        hijacked = True
                    answered = True
                    last_answer = now
                try:
                    peers[end].sendall(data)
                except OSError:
                    open_ends.clear()
        if current is not None and current.ended is None:
            current.ended = time.time() if hijacked else (last_answer or time.time())
        client.close()
        server.close()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        try:
            os.unlink(self.listen)
        except OSError:
            pass
