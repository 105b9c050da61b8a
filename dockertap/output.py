"""Writes text to a terminal or file from a background thread, so a stalled reader never stalls the relay.

The event loop only enqueues finished text; a daemon thread does the blocking `write()`.
When the queue is full, lines are dropped and counted — display is expendable, bytes are not.
"""

from __future__ import annotations

import queue
import threading
from typing import IO


class BackgroundWriter:
    def __init__(self, stream: IO[str], max_pending: int = 20_000, flush_each: bool = True) -> None:
        self._stream = stream
        self._queue: queue.Queue[str | None] = queue.Queue(max_pending)
        self._flush_each = flush_each
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="dockertap-writer", daemon=True)
        self._thread.start()

    def write(self, text: str) -> None:
        if not text:
            return
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            text = self._queue.get()
            if text is None:
                return
            try:
                self._stream.write(text)
                if self._flush_each and self._queue.empty():
                    self._stream.flush()
            except (OSError, ValueError):
                self.dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        """Write out what is queued, then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass
