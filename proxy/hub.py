"""Hands exchange events from the relay to the sink pipeline without ever making the relay wait.

The relay calls `emit()` on the forwarding path: a list append, nothing else. A timer drains
the queue in batches a few milliseconds later, so the costly work (building mitmproxy objects,
analysis, rendering) runs after the bytes have moved, and once per batch rather than per event.
If sinks fall behind, events are dropped and counted; relayed bytes never are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

from dockertap.proxy.exchange import Exchange

log = logging.getLogger(__name__)

#: `request`: request head seen; `response`: response head seen; `stream`: a hijacked stream's
#: tap has bytes to take (`HijackCapture.tap`); `end`: exchange over.
EventKind = Literal["request", "response", "stream", "end"]
Event = tuple[EventKind, Exchange]
BatchHandler = Callable[[list[Event]], None]


class EventHub:
    """Batches relay events and hands them to one handler (the sink pipeline)."""

    def __init__(
        self,
        handler: BatchHandler | None = None,
        *,
        delay: float = 0.004,
        max_pending: int = 100_000,
    ) -> None:
        self._handler = handler
        self._delay = delay
        self._max_pending = max_pending
        self._pending: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None
        self.dropped = 0
        self.delivered = 0
        self.handler_errors = 0
        self.last_error: str | None = None

    def set_handler(self, handler: BatchHandler) -> None:
        self._handler = handler

    def emit(self, kind: EventKind, exchange: Exchange) -> None:
        """Queue an event. Called on the forwarding path: must stay O(1) and never block."""
        if self._handler is None:
            return
        pending = self._pending
        if len(pending) >= self._max_pending:
            self.dropped += 1
            return
        pending.append((kind, exchange))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self.drain)

    def drain(self) -> None:
        """Deliver everything queued so far (also called at shutdown)."""
        self._timer = None
        if not self._pending or self._handler is None:
            return
        batch, self._pending = self._pending, []
        started = time.perf_counter()
        try:
            self._handler(batch)
        except Exception as exc:  # a broken sink must never take the relay down
            self.handler_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("sink pipeline failed on a batch of %d events", len(batch))
        self.delivered += len(batch)
        took = time.perf_counter() - started
        if took > 0.05:
            log.debug("sink batch of %d events took %.1f ms", len(batch), took * 1000)
