"""One line per exchange: time, client command, method and route, status, duration, bytes, layers."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from datetime import datetime

from rich.console import Console
from rich.text import Text

from dockertap.analyzers.clients import client_label
from dockertap.proxy.exchange import Exchange, header_value
from dockertap.recordings.safe_text import json_safe, safe_line
from dockertap.recordings.trace import trace_record

_STATUS_STYLE = {2: "green", 3: "cyan", 4: "yellow", 5: "bold red"}


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return f"{n}B"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "open"
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    return f"{seconds:.2f}s"


def short_command(command: str | None, width: int = 28) -> str:
    """The client's command line for one column, sanitised (argv is whatever the client chose)."""
    if not command:
        return "?"
    words = command.split(" ")
    words[0] = os.path.basename(words[0])
    text = safe_line(" ".join(words))
    return text if len(text) <= width else text[: width - 1] + "…"


def client_of(ex: Exchange) -> str:
    """The client column: program and subcommand (`docker run`, `compose up`), not a cut command line."""
    return client_label(ex.peer.command, header_value(ex.request_head, "user-agent"))


def exchange_line(ex: Exchange, show_chain: bool = True) -> Text:
    """A rich Text line summarising one exchange."""
    method, target = ex.method_and_target
    annotation = ex.annotation
    route = getattr(getattr(annotation, "route", None), "template", None)
    where = route.split(" ", 1)[1] if route and route.startswith(method + " ") else target.split("?", 1)[0]
    status = ex.status
    line = Text()
    line.append(datetime.fromtimestamp(ex.started).strftime("%H:%M:%S.%f")[:-3], style="dim")
    line.append("  ")
    line.append(f"{short_command(client_of(ex), 22):<22}", style="magenta")
    line.append(" ")
    line.append(f"{safe_line(method):<6}", style="bold")
    line.append(f" {safe_line(where)}")
    object_id = getattr(getattr(annotation, "route", None), "object_id", None)
    if object_id and "{" in where:
        line.append(f" {safe_line(object_id[:12])}", style="dim")
    line.append("  ")
    line.append(str(status) if status else "---", style=_STATUS_STYLE.get((status or 0) // 100, "red"))
    if ex.synthetic:
        line.append(" (dockertap)", style="red")
    line.append(f"  {human_duration(ex.duration)}", style="cyan")
    line.append(f"  ↑{human_bytes(ex.request_bytes)} ↓{human_bytes(ex.response_bytes)}", style="dim")
    if ex.hijacked:
        line.append("  hijacked", style="yellow")
    for name in ex.added_headers:
        line.append(f"  +{name}", style="yellow")  # a header dockertap added (--otel-propagate)
    calls = _format_grpc(annotation)
    if calls:
        line.append(f"  {calls}", style="magenta")
    if show_chain and annotation is not None:
        chain = _format_chain(annotation)
        if chain:
            line.append(f"  {safe_line(chain)}", style="blue")
    if ex.error and not ex.synthetic:
        line.append(f"  ! {safe_line(ex.error)}", style="red")
    return line


def _format_grpc(annotation: object) -> str:
    """The gRPC calls decoded from a BuildKit h2c stream, or its decoding note."""
    from dockertap.analyzers.annotate import format_grpc

    calls = format_grpc(getattr(annotation, "grpc", None))
    note = getattr(annotation, "grpc_note", None)
    return f"{calls} ({note})" if calls and note else calls or (f"({note})" if note else "")


def _format_chain(annotation: object) -> str:
    try:
        from dockertap.analyzers.annotate import format_chain
    except ImportError:
        return ""
    return format_chain(annotation)


class LineRenderer:
    """Renders exchanges to text (with colour when the target is a terminal)."""

    def __init__(
        self, color: bool, width: int | None = None, show_chain: bool = True, bodies: bool = False
    ) -> None:
        self._buffer = io.StringIO()
        self._console = Console(
            file=self._buffer,
            force_terminal=color,
            no_color=not color,
            width=width or 200,
            soft_wrap=True,
            highlight=False,
        )
        self._show_chain = show_chain
        self._bodies = bodies

    def render(self, exchanges: Iterable[Exchange]) -> str:
        for ex in exchanges:
            self._console.print(exchange_line(ex, self._show_chain))
            if self._bodies:
                for part in _body_parts(ex):
                    self._console.print(part)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def _body_parts(ex: Exchange) -> list:
    """`--bodies`: the same JSON bodies and demultiplexed stdout/stderr as the live view shows."""
    from dockertap.live_view import body_details
    from dockertap.proxy.capture import materialize

    materialize(ex)  # the pipeline builds no mitmproxy objects of its own
    return body_details(ex)


def json_lines(exchanges: Iterable[Exchange]) -> str:
    return "".join(json_safe(json.dumps(trace_record(ex), ensure_ascii=False)) + "\n" for ex in exchanges)
