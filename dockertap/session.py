"""Wires a running tap together: listener → relay → event hub → pipeline → sinks.

Data flows one way. The relay only moves bytes and emits raw exchanges; the pipeline runs the
analyzers (redaction first); sinks (trace lines, JSON, recorder, live view) consume the enriched
exchanges. mitmproxy objects are built only by the few consumers that need them
(`proxy.capture.materialize`: `--bodies`, exports), never per exchange here: the pipeline runs on
the relay's event loop, so its cost per exchange caps the relay's throughput.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dockertap.proxy.endpoints import Endpoint, parse_endpoint
from dockertap.proxy.exchange import Exchange
from dockertap.proxy.hub import Event, EventHub
from dockertap.proxy.listener import open_tcp_listener, open_unix_listener
from dockertap.proxy.peer import peer_info
from dockertap.proxy.relay import Relay, RelayConfig

log = logging.getLogger(__name__)


class Sink(Protocol):
    def handle_batch(self, batch: list[Event]) -> None: ...


Processor = Callable[[str, Exchange], None]


@dataclass
class Pipeline:
    """Enriches each event's exchange, then hands the whole batch to every sink.

    Processors see every event, but do their real work once, at `end`; for `request` and
    `response` they only do what open exchanges need (redact the head, a memoized route).
    """

    processors: list[Processor] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)
    errors: int = 0

    def __call__(self, batch: list[Event]) -> None:
        for kind, ex in batch:
            try:
                for process in self.processors:
                    process(kind, ex)
            except Exception:
                self.errors += 1
                log.exception("analysis failed for exchange %d", ex.id)
        for sink in self.sinks:
            try:
                sink.handle_batch(batch)
            except Exception:
                self.errors += 1
                log.exception("sink %r failed", sink)


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.

    Each relayed connection costs two descriptors, and the common default soft limit (1024)
    would make accept() fail with EMFILE at ~500 concurrent docker clients (or held streams).
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 1 << 20:
        hard = 1 << 20  # macOS reports "unlimited" but refuses more than its kern.maxfilesperproc
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    except (ValueError, OSError):
        return soft
    return hard


def install_fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop halves the relay's added latency; fall back to asyncio where it is missing."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@dataclass
class Listening:
    sock: socket.socket
    url: str
    path: str | None
    #: TCP: the names a client of this listener may put in Host besides loopback ones (lower-case).
    host_names: frozenset[bytes] = frozenset()


def open_listener(
    listen: str,
    *,
    group: str | None = None,
    listen_public: bool = False,
    allow_tcp: bool = False,
    private_parent: bool = False,
) -> Listening:
    endpoint: Endpoint = parse_endpoint(listen)
    if endpoint.scheme == "unix":
        sock = open_unix_listener(endpoint.path, group=group, private_parent=private_parent)
        return Listening(sock, endpoint.url, endpoint.path)
    sock = open_tcp_listener(endpoint, allow_public=listen_public, allow_tcp=allow_tcp)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    names = frozenset({endpoint.host.lower().encode("ascii", "replace"), shown.lower().encode()})
    return Listening(sock, f"tcp://{shown}:{port}", None, names)


class Tap:
    """A relay serving one listener, plus the hub and pipeline behind it."""

    def __init__(self, listening: Listening, config: RelayConfig, pipeline: Pipeline) -> None:
        self.listening = listening
        self.pipeline = pipeline
        self.hub = EventHub(pipeline)
        self.relay = Relay(config, self.hub)
        self._serve_task: asyncio.Task | None = None

    async def start(self) -> None:
        self._serve_task = asyncio.get_running_loop().create_task(
            self.relay.serve(self.listening.sock, peer_info)
        )

    async def stop(self, grace: float = 0.5) -> None:
        """Stop accepting, let short exchanges finish, cut the rest, deliver every event."""
        if self._serve_task is not None:
            self._serve_task.cancel()
            try:
                await self._serve_task
            except (asyncio.CancelledError, Exception):
                pass
        self.listening.sock.close()
        if self.listening.path:
            try:
                os.unlink(self.listening.path)
            except OSError:
                pass
        deadline = asyncio.get_running_loop().time() + grace
        while self.relay.active_tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await self.relay.close()
        self.hub.drain()
