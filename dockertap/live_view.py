"""The live terminal view of `dockertap proxy`: a scrolling log above an in-place status panel.

Finished exchanges scroll by as lines (with `--bodies`, their JSON bodies and decoded stdio
frames underneath). The panel at the bottom shows the exchanges still open — event streams,
`logs -f`, attach sessions, a `wait` — updating their byte counts and ages in place until they
end, and a status line: backend, exchange count, bytes, open streams.

Rendering and terminal writes happen on rich's refresh thread and a printer thread; the event
loop only appends to queues, so a slow terminal never slows the relay.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dockertap.analyzers.annotate import format_grpc
from dockertap.analyzers.streams import decode_stream
from dockertap.filters import ExchangeFilter, matches_all
from dockertap.i18n import counted
from dockertap.proxy.capture import body_prefix, materialize
from dockertap.proxy.exchange import Exchange
from dockertap.proxy.hub import Event
from dockertap.proxy.relay import RelayStats
from dockertap.recordings.safe_text import safe_block, safe_line
from dockertap.trace_view import client_of, exchange_line, human_bytes, human_duration, short_command

#: An exchange still open after this long is shown in the panel (a quick `ps` never is).
SHOW_OPEN_AFTER = 0.3
MAX_BODY_LINES = 24
_STREAM_STYLE = {"stdout": "green", "stderr": "red", "systemerr": "bold red", "stdin": "cyan"}
_JSON_HIGHLIGHTER = JSONHighlighter()


def _json_renderable(raw: bytes) -> RenderableType | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    text = safe_block(json.dumps(data, indent=2, ensure_ascii=False))  # dumps leaves C1 and bidi raw
    lines = text.splitlines()
    if len(lines) > MAX_BODY_LINES:
        text = (
            "\n".join(lines[:MAX_BODY_LINES])
            + f"\n… ({counted('en', len(lines) - MAX_BODY_LINES, 'line')} more)"
        )
        return Text(text, style="dim")
    # Highlighted as it is: rich's JSON() would parse and re-dump it, undoing the escapes.
    return _JSON_HIGHLIGHTER(Text(text))


def _frames_renderable(data: bytes, content_type: str | None) -> RenderableType | None:
    frames = decode_stream(data, content_type)
    if not frames:
        return None
    out = Text()
    shown = 0
    for frame in frames:
        for line in frame.data.decode("utf-8", "replace").splitlines() or [""]:
            if shown >= MAX_BODY_LINES:
                out.append("    …\n", style="dim")
                return out
            out.append(f"    {frame.stream:>6} │ ", style=_STREAM_STYLE.get(frame.stream, "dim"))
            out.append(safe_block(line) + "\n")  # container output: a line, its tabs kept
            shown += 1
    return out


def body_details(ex: Exchange) -> list[RenderableType]:
    """Pretty JSON bodies and decoded stream frames of an exchange, for `--bodies`."""
    parts: list[RenderableType] = []
    request, response = ex.request, ex.response
    if request is not None and ex.request_body.total:
        raw = body_prefix(ex.request_body, ex.request_chunked)
        if "json" in request.headers.get("content-type", ""):
            rendered = _json_renderable(raw)
            if rendered is not None:
                parts += [Text("    request body:", style="dim"), rendered]
    content_type = response.headers.get("content-type", "") if response is not None else ""
    if ex.hijack is not None:
        output = b"".join(data for _, direction, data in ex.hijack.frames if direction == "backend")
        stdin = b"".join(data for _, direction, data in ex.hijack.frames if direction == "client")
        if stdin:
            typed = safe_line(stdin[:200].decode("utf-8", "replace"))
            parts.append(Text(f"    stdin: {typed}", style="cyan"))
        rendered = _frames_renderable(output, content_type)
        if rendered is not None:
            parts.append(rendered)
    elif response is not None and ex.response_body.total:
        raw = body_prefix(ex.response_body, ex.response_chunked)
        if "docker." in content_type:
            rendered = _frames_renderable(raw, content_type)
        elif "json" in content_type:
            rendered = _json_renderable(raw) or _json_lines_renderable(raw)
        else:
            rendered = None
        if rendered is not None:
            parts += [Text("    response body:", style="dim"), rendered]
    if ex.request_body.truncated or ex.response_body.truncated:
        parts.append(Text("    (bodies truncated to the capture limit)", style="dim"))
    return parts


def _json_lines_renderable(raw: bytes) -> RenderableType | None:
    """Streams like /events and pull progress: one JSON object per line."""
    lines = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return None
    shown = lines[:MAX_BODY_LINES]
    text = Text("\n".join(f"    {safe_line(line)}" for line in shown), style="dim")
    if len(lines) > len(shown):
        text.append(f"\n    … ({len(lines) - len(shown)} more)")
    return text


class LiveView:
    """A pipeline sink drawing the live display on a terminal console."""

    def __init__(
        self,
        console: Console,
        stats: Callable[[], RelayStats],
        backend_label: str,
        filters: list[ExchangeFilter] | None = None,
        bodies: bool = False,
        dropped: Callable[[], int] = lambda: 0,
    ) -> None:
        self._console = console
        self._stats = stats
        self._backend_label = backend_label
        self._filters = filters or []
        self._bodies = bodies
        self._dropped = dropped
        self._open: dict[int, Exchange] = {}
        self._lines: queue.Queue[RenderableType | None] = queue.Queue(5000)
        self.lines_dropped = 0
        self._live = Live(
            get_renderable=self._panel,
            console=console,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._printer = threading.Thread(target=self._print_loop, name="dockertap-live", daemon=True)

    def start(self) -> None:
        self._live.start()
        self._printer.start()

    def stop(self) -> None:
        self._lines.put(None)
        self._printer.join(5)
        self._open.clear()
        self._live.refresh()
        self._live.stop()

    # -- sink -------------------------------------------------------------------------------------

    def handle_batch(self, batch: list[Event]) -> None:
        for kind, ex in batch:
            if kind == "end":
                self._open.pop(ex.id, None)
                if matches_all(self._filters, ex):
                    renderable: RenderableType = exchange_line(ex)
                    if self._bodies:
                        materialize(ex)  # the pipeline builds no mitmproxy objects of its own
                        details = body_details(ex)
                        if details:
                            renderable = Group(renderable, *details)
                    try:
                        self._lines.put_nowait(renderable)
                    except queue.Full:
                        self.lines_dropped += 1
            elif kind == "request":
                self._open[ex.id] = ex

    def handle_background(self, records: list[dict]) -> None:
        """Evidence with no exchange behind it (e.g. a container's exit clean-up) scrolls by dimmed."""
        from dockertap.evidence_wiring import background_text

        for record in records:
            try:
                self._lines.put_nowait(background_text(record))
            except queue.Full:
                self.lines_dropped += 1

    # -- threads ----------------------------------------------------------------------------------

    def _print_loop(self) -> None:
        while True:
            first = self._lines.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 200:
                try:
                    item = self._lines.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._live.console.print(Group(*batch))
                    return
                batch.append(item)
            self._live.console.print(Group(*batch))

    def _panel(self) -> RenderableType:
        now = time.time()
        open_now = [
            ex for ex in list(self._open.values()) if ex.ended is None and now - ex.started > SHOW_OPEN_AFTER
        ]
        parts: list[RenderableType] = []
        if open_now:
            table = Table(box=None, show_header=True, header_style="bold", padding=(0, 1), expand=False)
            table.add_column("open", style="yellow")
            table.add_column("client", style="magenta")
            table.add_column("request")
            table.add_column("status")
            table.add_column("age", justify="right", style="cyan")
            table.add_column("↓ so far", justify="right", style="dim")
            for ex in sorted(open_now, key=lambda e: e.started)[-12:]:
                method, target = ex.method_and_target
                route = getattr(getattr(ex.annotation, "route", None), "template", None)
                kind = "attach" if ex.hijacked else ("stream" if ex.response_started else "waiting")
                request = route or f"{method} {target.split('?', 1)[0]}"
                calls = format_grpc(getattr(ex.annotation, "grpc", None), limit=3)
                table.add_row(
                    kind,
                    short_command(client_of(ex), 22),
                    safe_line(f"{request}  {calls}" if calls else request),
                    str(ex.status or "…"),
                    human_duration(now - ex.started),
                    human_bytes(ex.response_bytes),
                )
            if len(open_now) > 12:
                table.caption = f"… and {len(open_now) - 12} more open"
            parts.append(table)
        stats = self._stats()
        status = Text()
        status.append(" dockertap ", style="reverse bold")
        status.append(f" {safe_line(self._backend_label)}  ", style="bold")
        status.append(f"exchanges {stats.exchanges}  ")
        status.append(f"open connections {stats.connections_open}  ")
        status.append(f"open streams {stats.open_streams}  ")
        status.append(f"↑{human_bytes(stats.bytes_from_clients)} ↓{human_bytes(stats.bytes_from_backend)}")
        dropped = self._dropped() + self.lines_dropped
        if dropped:
            status.append(f"  (display dropped {dropped})", style="yellow")
        parts.append(status)
        return Group(*parts)
