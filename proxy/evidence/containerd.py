"""containerd events (topic, namespace, container/exec id, time) from the engine's containerd.

We run `ctr --address <sock> events` and read its lines asynchronously. Why not containerd's
gRPC events API directly: it needs grpcio plus containerd's protobuf definitions (and `Any`
payload decoding for every event type) — a large native dependency for one stream — whereas
Debian's containerd package ships `ctr`, which already subscribes with the right client and
prints each event as `<date> <time> <tz offset> <tz> <namespace> <topic> <payload JSON>`
(format checked against ctr 1.6.20 on Debian 12; the README explains the choice).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any

from dockertap.proxy.children import tied_to_us
from dockertap.proxy.evidence.engine_host import dialable

Item = dict[str, Any]
ItemsHandler = Callable[[list[Item]], None]

_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)


def parse_ctr_line(line: str) -> Item | None:
    """One `ctr events` line → an evidence item (pure). Unparseable lines give None."""
    parts = line.strip().split(" ", 6)
    if len(parts) < 6 or not parts[5].startswith("/"):
        return None
    date, clock, offset, _zone, namespace, topic = parts[:6]
    payload: dict[str, Any] = {}
    if len(parts) == 7:
        try:
            loaded = json.loads(parts[6])
            payload = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            payload = {}
    whole, _, fraction = clock.partition(".")
    try:
        stamp = datetime.strptime(
            f"{date} {whole}.{(fraction + '000000')[:6]} {offset}", "%Y-%m-%d %H:%M:%S.%f %z"
        )
    except ValueError:
        return None
    # /containers/* carry the container in `id`; /tasks/* in `container_id`, and `id` names the
    # process that exited (the container id for init, the exec id for an exec).
    container_id = payload.get("container_id") or (
        payload.get("id") if topic.startswith("/containers/") else None
    )
    exec_id = payload.get("exec_id")
    if exec_id is None and topic == "/tasks/exit" and payload.get("id") not in (None, container_id):
        exec_id = payload.get("id")
    return {
        "source": "containerd",
        "time": stamp.timestamp(),
        "namespace": namespace,
        "topic": topic,
        "container_id": container_id,
        "exec_id": exec_id,
        "pid": payload.get("pid"),
        "exit_status": payload.get("exit_status") if topic == "/tasks/exit" else None,
        "event": payload,
    }


def socket_peer_pid(path: str) -> int | None:
    """The pid of the process serving a Unix socket (the engine, containerd), via SO_PEERCRED."""
    dial, forget = dialable(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(dial)
            pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, 12))[0]
    except OSError:
        return None
    finally:
        forget()
    return pid or None  # 0: the engine lives in another pid namespace


class ContainerdEvents:
    """Streams containerd events into `on_items` batches on the event loop, via `ctr events`."""

    def __init__(self, on_items: ItemsHandler, address: str | None, *, ctr: str = "ctr") -> None:
        self._on_items = on_items
        self.address = address
        self._ctr = ctr
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task | None = None
        self._active = False
        self._reason = "not started" if address else "no containerd socket"
        self._stopping = False
        self._forget_alias: Callable[[], None] = lambda: None
        self.lines = 0
        self.unparsed = 0

    def status(self) -> dict[str, Any]:
        return {"source": "containerd", "active": self._active, "reason": self._reason}

    def disable(self, reason: str) -> None:
        """Mark the source unavailable for a reason found elsewhere (Podman, engine in a VM)."""
        self._active = False
        self._reason = reason

    async def start(self) -> bool:
        if not self.address:
            return False
        binary = shutil.which(self._ctr)
        if binary is None:
            self._reason = f"`{self._ctr}` not found on PATH (Debian: it ships with the containerd package)"
            return False
        reason = await self._reachable(self.address)
        if reason:
            self._reason = reason
            return False
        # a socket seen through /proc/<pid>/root is often longer than sun_path allows
        dial, self._forget_alias = dialable(self.address)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                binary, "--address", dial, "events",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, **tied_to_us(),
            )  # fmt: skip
        except OSError as exc:
            self._reason = f"cannot run {binary}: {exc}"
            return False
        # ctr prints nothing until the first event; a quick failure (bad socket, version skew)
        # shows up as an early exit with a message on stderr.
        try:
            await asyncio.wait_for(self._proc.wait(), 0.3)
        except TimeoutError:
            pass
        if self._proc.returncode is not None:
            err = await self._proc.stderr.read() if self._proc.stderr else b""
            self._reason = f"ctr events exited: {err.decode(errors='replace').strip()[:200]}"
            return False
        self._active = True
        self._reason = f"ctr events on {self.address}"
        self._pump = asyncio.get_running_loop().create_task(self._read())
        return True

    @staticmethod
    async def _reachable(path: str) -> str | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        dial, forget = dialable(path)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, dial), 1)
        except PermissionError:
            return f"containerd socket {path} not reachable: permission denied (not root?)"
        except (OSError, TimeoutError) as exc:
            return f"containerd socket {path} not reachable: {exc}"
        finally:
            sock.close()
            forget()
        return None

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stream = self._proc.stdout
        rest = b""
        while chunk := await stream.read(1 << 20):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            items = []
            for line in lines:
                self.lines += 1
                item = parse_ctr_line(line.decode("utf-8", "replace"))
                if item is None:
                    self.unparsed += 1
                else:
                    items.append(item)
            if items:
                self._on_items(items)
        await self._proc.wait()
        if not self._stopping:
            err = await self._proc.stderr.read() if self._proc.stderr else b""
            self._active = False
            self._reason = (
                f"ctr events ended (exit {self._proc.returncode}): {err.decode(errors='replace')[:200]}"
            )

    async def stop(self) -> None:
        self._stopping = True
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 2)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._pump is not None:
            try:
                await asyncio.wait_for(self._pump, 1)
            except (TimeoutError, asyncio.CancelledError):
                pass
        self._forget_alias()
        if self._active:
            self._reason = "stopped"
        self._active = False
