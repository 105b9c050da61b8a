"""The narrated replay (`dockertap replay FILE`): a recording told as a story, command by command.

Exchanges are grouped by the client process that made them (one group per `docker …` invocation), and
each one says what it does (the layer model's explanation of its route), which layers it reached (with the
observed evidence when the recording has some), and what its body or stream carried, in brief: stdout and
stderr lines demultiplexed from Docker's 8-byte framing, JSON bodies summarised.

Rendering is one rich `Text` per exchange: styled on a terminal, plain lines (rich drops the styles) when
the output is a pipe or a file. The fixed phrases of the narration are a bilingual table, like the layer
model's explanations (`--lang en|ja`).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text

from dockertap.analyzers.annotate import format_grpc
from dockertap.analyzers.streams import decode_stream, looks_multiplexed
from dockertap.recordings.replayable import RecordedExchange, ReplaySession, backend_fingerprint

#: Lines of a stream or JSON message list shown per exchange before "… N more".
MAX_LINES = 12
#: Characters of a one-line JSON summary, and of an API error message (shown whole where possible).
MAX_SUMMARY = 110
MAX_MESSAGE = 400

# The narration's fixed phrases, per language. Explanations of routes come from the layer table.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "recording": "Recording {source}",
        "backend": "backend: {product} {version} ({url})",
        "started": "recorded {when}, {n} exchanges from {m} client commands",
        "command": "Command: {command}",
        "pid": "pid {pid}, {n} API calls",
        "unknown_client": "(client unknown)",
        "layers": "layers",
        "observed": "observed",
        "evidence": "evidence",
        "sent": "sent",
        "got": "got",
        "list": "a list of {n} items",
        "object": "an object with {n} fields",
        "truncated": "body truncated in the recording: {captured} of {size} bytes kept",
        "hijacked": "connection upgraded to a raw stream (hijack): {client} bytes in, {backend} bytes out",
        "synthetic": "answered by dockertap itself, not by the engine",
        "error": "error",
        "no_answer": "no answer",
        "more": "… {n} more",
        "press_enter": "[Enter: next exchange]",
        "no_match": "No exchange matches {globs}.",
        "warning": "warning",
        "end": "End of recording: {n} exchanges shown.",
        "status": "status",
        "background": "no API call behind it",
    },
    "ja": {
        "recording": "記録 {source}",
        "backend": "バックエンド: {product} {version} ({url})",
        "started": "{when} に記録、{m} 個のクライアントコマンドから {n} 件のやり取り",
        "command": "コマンド: {command}",
        "pid": "pid {pid}、API 呼び出し {n} 件",
        "unknown_client": "(クライアント不明)",
        "layers": "レイヤー",
        "observed": "観測",
        "evidence": "証拠",
        "sent": "送信",
        "got": "受信",
        "list": "{n} 件のリスト",
        "object": "{n} 個のフィールドを持つオブジェクト",
        "truncated": "記録ではボディが切り詰められている: {size} バイト中 {captured} バイトを保存",
        "hijacked": "接続が生ストリームに切り替わった (hijack): 入力 {client} バイト、出力 {backend} バイト",
        "synthetic": "エンジンではなく dockertap 自身が応答した",
        "error": "エラー",
        "no_answer": "応答なし",
        "more": "… ほか {n} 行",
        "press_enter": "[Enter: 次のやり取りへ]",
        "no_match": "{globs} に一致するやり取りはない。",
        "warning": "警告",
        "end": "記録の終わり: {n} 件のやり取りを表示した。",
        "status": "ステータス",
        "background": "API 呼び出しによらない",
    },
}
LANGUAGES = tuple(PHRASES)

_STATUS_STYLE = {1: "cyan", 2: "green", 3: "cyan", 4: "yellow", 5: "bold red"}
_STREAM_STYLE = {"stdout": "", "stderr": "red", "systemerr": "bold red", "stdin": "cyan", "raw": ""}
_LAYER_MARK = {"observed": "✓", "missing": "✗"}


def phrase(lang: str, key: str, **values: object) -> str:
    table = PHRASES.get(lang, PHRASES["en"])
    return table.get(key, PHRASES["en"][key]).format(**values)


def route_matches(rec: RecordedExchange, globs: Sequence[str]) -> bool:
    """`--only`: fnmatch on the route template (`POST /containers/*`), any of the globs."""
    return not globs or any(fnmatch.fnmatchcase(rec.route, glob) for glob in globs)


@dataclass(slots=True)
class ClientGroup:
    """The exchanges one client process made, in request order."""

    pid: int | None
    command: str | None
    exchanges: list[RecordedExchange]


def group_by_client(exchanges: Iterable[RecordedExchange]) -> list[ClientGroup]:
    """Consecutive runs of exchanges from the same process; a process that comes back starts a new group."""
    groups: list[ClientGroup] = []
    for rec in exchanges:
        if groups and (groups[-1].pid, groups[-1].command) == (rec.client_pid, rec.client_command):
            groups[-1].exchanges.append(rec)
        else:
            groups.append(ClientGroup(rec.client_pid, rec.client_command, [rec]))
    return groups


# -- summaries --------------------------------------------------------------------------------------


def _clip(text: str, width: int = MAX_SUMMARY) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _json_values(payload: bytes) -> list[Any] | None:
    """The JSON value(s) of a body: one document, or a stream of them (pull/build progress, events)."""
    text = payload.decode("utf-8", "replace").strip()
    if not text or text[0] not in '[{"':
        return None
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    decoder, values, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            break  # a truncated tail: keep what parsed
        values.append(value)
        pos = end
        while pos < len(text) and text[pos] in " \r\n\t":
            pos += 1
    return values or None


def _message_line(value: dict[str, Any]) -> str | None:
    """One line of a progress/event stream: `status id`, `error`, `stream` text, or an event."""
    if "errorDetail" in value or "error" in value:
        return f"error: {value.get('error') or value.get('errorDetail', {}).get('message')}"
    if "stream" in value:
        return str(value["stream"]).rstrip("\n") or None
    if "status" in value:
        return " ".join(str(v) for v in (value.get("status"), value.get("id"), value.get("progress")) if v)
    if "Type" in value and "Action" in value:
        return f"{value['Type']} {value['Action']} {str(value.get('Actor', {}).get('ID', ''))[:12]}".strip()
    return None


def summarise_json(values: list[Any], lang: str) -> list[str]:
    """Short lines describing a JSON body: a compact one-liner, or one line per streamed message."""
    if len(values) > 1 or (values and isinstance(values[0], dict) and _message_line(values[0])):
        lines = [line for v in values if isinstance(v, dict) and (line := _message_line(v))]
        if lines:
            return lines
    value = values[0]
    if isinstance(value, dict) and isinstance(value.get("message"), str) and len(value) <= 2:
        return [value["message"]]  # an API error: the very text the docker CLI prints
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(compact) <= MAX_SUMMARY:
        return [compact]
    if isinstance(value, list):
        first = value[0] if value else None
        keys = ", ".join(list(first)[:8]) if isinstance(first, dict) else ""
        return [phrase(lang, "list", n=len(value)) + (f" ({keys}…)" if keys else "")]
    if isinstance(value, dict):
        shown = {
            k: v for k, v in value.items() if isinstance(v, str | int | float | bool) and v not in ("", None)
        }
        head = ", ".join(
            f"{k}={_clip(json.dumps(v, ensure_ascii=False), 40)}" for k, v in list(shown.items())[:6]
        )
        return [_clip(phrase(lang, "object", n=len(value)) + (f": {head}" if head else ""))]
    return [_clip(compact)]


def stream_lines(rec: RecordedExchange) -> list[tuple[str, str]]:
    """(stream, line) pairs of a hijacked or streamed stdio body, demultiplexed."""
    if rec.hijack_frames and (rec.header("Upgrade") or "").strip().lower() == "h2c":
        return []  # BuildKit's HTTP/2, not stdio: its gRPC calls are narrated instead
    if rec.hijack_frames:
        content_type = rec.header("Content-Type")
        backend = b"".join(data for _, direction, data in rec.hijack_frames if direction == "backend")
        stdin = b"".join(data for _, direction, data in rec.hijack_frames if direction == "client")
        frames = [("stdin", stdin)] if stdin else []
        frames += [(f.stream, f.data) for f in decode_stream(backend, content_type)]
    else:
        content_type = rec.header("Content-Type") or ""
        # dockerd 20.10 sends `logs` without a Content-Type: recognise the framing itself.
        framed = not content_type and looks_multiplexed(rec.response_body)
        if not (content_type.startswith("application/vnd.docker.") or framed):
            return []
        frames = [(f.stream, f.data) for f in decode_stream(rec.response_body, content_type)]
    lines: list[tuple[str, str]] = []
    for stream, data in frames:
        text = data.decode("utf-8", "replace")
        lines += [(stream, line) for line in text.splitlines() if line.strip()]
    return lines


def _layer_chain(rec: RecordedExchange, chain_layers: list[dict[str, Any]], lang: str) -> Text:
    text = Text()
    for i, layer in enumerate(chain_layers):
        if i:
            text.append(" → ", style="dim")
        status = layer.get("status", "expected")
        style = {"observed": "bold green", "missing": "red"}.get(status, "blue")
        text.append(str(layer.get("layer")) + _LAYER_MARK.get(status, ""), style=style)
        ops = layer.get("operations") or []
        if ops and layer.get("layer") not in ("dockerd", "compat-api"):
            text.append("[" + " ".join(ops[:5]) + (" …" if len(ops) > 5 else "") + "]", style="dim")
    return text


def _short_command(command: str | None) -> str | None:
    """`/usr/local/bin/docker ps` → `docker ps`: the command as the user typed it."""
    if not command:
        return None
    program, _, rest = command.partition(" ")
    return " ".join(filter(None, (os.path.basename(program), rest)))


def _evidence_line(item: dict[str, Any], since: float | None = None) -> str:
    """One line for an evidence item: a containerd event or a runtime exec, else its fields."""
    container = item.get("container_id")
    short = f"container {container[:12]}" if isinstance(container, str) and container else None
    exec_id = item.get("exec_id")
    at = item.get("time")
    offset = f"+{(at - since) * 1000:.1f}ms" if isinstance(at, int | float) and since else None
    if item.get("source") == "containerd":
        exit_status = item.get("exit_status")
        parts = [
            "containerd",
            item.get("topic"),
            short,
            f"exec {exec_id[:12]}" if isinstance(exec_id, str) else None,
            None if exit_status is None else f"exit {exit_status}",
        ]
    elif item.get("source") == "exec":
        argv = item.get("argv")
        program = os.path.basename(argv[0]) if argv else item.get("program")
        layer = item.get("layer")
        parts = [
            f"{layer}:" if layer and layer != program else None,
            program,
            item.get("runtime_command"),
            short,
            f"pid {item.get('pid')}" if item.get("pid") else None,
        ]
    else:
        parts = [
            str(item[key])
            for key in ("source", "kind", "topic", "layer", "program", "status", "container_id")
            if item.get(key) not in (None, "", [])
        ] or [json.dumps(item, ensure_ascii=False, default=str)]
    text = " ".join(str(p) for p in parts if p)
    return _clip(f"{text}  {offset}" if offset else text)


# -- the narration ----------------------------------------------------------------------------------


class Narrator:
    """Turns a replay session into rich renderables: a title, a header per command, one per exchange."""

    def __init__(self, session: ReplaySession, lang: str = "en") -> None:
        self.session = session
        self.lang = lang if lang in PHRASES else "en"
        self._backend = backend_fingerprint(session)

    def _p(self, key: str, **values: object) -> str:
        return phrase(self.lang, key, **values)

    def title(self, groups: list[ClientGroup]) -> Text:
        session, text = self.session, Text()
        text.append(self._p("recording", source=session.source) + "\n", style="bold")
        backend = session.backend
        if backend:
            text.append(
                "  "
                + self._p(
                    "backend",
                    product=backend.get("product") or backend.get("family") or "?",
                    version=backend.get("engine_version") or "",
                    url=session.header.get("backend_url") or "?",
                )
                + "\n",
                style="dim",
            )
        when = session.header.get("started", "?")
        n = sum(len(g.exchanges) for g in groups)
        text.append("  " + self._p("started", when=when, n=n, m=len(groups)), style="dim")
        for warning in session.warnings:
            text.append(f"\n  {self._p('warning')}: {warning}", style="yellow")
        return text

    def group_header(self, group: ClientGroup) -> Text:
        text = Text("\n")
        command = _short_command(group.command) or self._p("unknown_client")
        text.append("▶ " + self._p("command", command=command), style="bold magenta")
        text.append(
            "  ("
            + self._p("pid", pid=group.pid if group.pid is not None else "?", n=len(group.exchanges))
            + ")"
        )
        return text

    def explanation(self, rec: RecordedExchange) -> tuple[str, list[dict[str, Any]]]:
        """The route's explanation in the chosen language, and the chain's layers (recorded ones first)."""
        from dockertap.analyzers.annotate import annotate, with_grpc_methods

        body = _json_values(rec.request_body) if rec.request_body else None
        try:
            annotation = annotate(rec.method, rec.target, self._backend, body[0] if body else None)
            calls = rec.annotation.get("grpc")
            if calls is not None and not rec.annotation.get("grpc_note"):
                # a BuildKit connection: explain the gRPC calls it carried, not the opaque route
                with_grpc_methods(annotation, tuple(str(c.get("method")) for c in calls))
        except Exception:  # the layer model must never stop a replay
            return "", list(rec.annotation.get("layers") or [])
        explanation = annotation.chain.explanation.get(self.lang) or annotation.chain.explanation.get(
            "en", ""
        )
        layers = rec.annotation.get("layers") or [ls.to_dict() for ls in annotation.layers]
        return explanation, list(layers)

    def exchange(self, rec: RecordedExchange) -> Text:
        """Everything about one exchange, as one renderable."""
        text = Text()
        when = datetime.fromtimestamp(rec.started).strftime("%H:%M:%S.%f")[:-3]
        text.append(f"  {when}  ", style="dim")
        text.append(f"{rec.method} ", style="bold")
        text.append(rec.route.split(" ", 1)[-1], style="bold")
        status = rec.status
        text.append("  → ")
        text.append(
            str(status) if status else self._p("no_answer"),
            style=_STATUS_STYLE.get((status or 0) // 100, "red"),
        )
        if rec.ended is not None:
            text.append(f"  {(rec.ended - rec.started) * 1000:.1f}ms", style="cyan")
        text.append(f"\n      {rec.method} {rec.target}", style="dim")
        # An answer dockertap wrote itself (backend down) reached no layer: the model does not apply.
        explanation, layers = self.explanation(rec) if not rec.synthetic else ("", [])
        if explanation:
            text.append(f"\n      {explanation}", style="italic")
        calls = format_grpc(rec.annotation.get("grpc"), limit=8)
        if calls:
            text.append(f"\n      {calls}", style="magenta")
        if layers:
            text.append(f"\n      {self._p('layers')}: ", style="dim")
            text.append_text(_layer_chain(rec, layers, self.lang))
        for item in rec.evidence[:MAX_LINES]:
            text.append(f"\n      {self._p('evidence')}: ", style="green")
            text.append(_evidence_line(item, rec.started))
        if rec.synthetic:
            text.append("\n      " + self._p("synthetic"), style="red")
        if rec.error and not rec.synthetic:
            text.append(f"\n      {self._p('error')}: {rec.error}", style="red")
        self._bodies(rec, text)
        return text

    def _bodies(self, rec: RecordedExchange, text: Text) -> None:
        if rec.request_body and not rec.hijack_frames:
            values = _json_values(rec.request_body)
            if values:
                for line in summarise_json(values, self.lang)[:1]:
                    text.append(f"\n      {self._p('sent')}: ", style="dim")
                    text.append(_clip(line))
        streamed = stream_lines(rec)
        if rec.hijack_frames:
            hijack_bytes = {"client": 0, "backend": 0}
            for _, direction, data in rec.hijack_frames:
                hijack_bytes[direction] += len(data)
            text.append("\n      " + self._p("hijacked", **hijack_bytes), style="yellow")
        if streamed:
            self._lines(text, [(stream, line) for stream, line in streamed])
        elif rec.response_body:
            values = _json_values(rec.response_body)
            if values:
                lines = summarise_json(values, self.lang)
                if len(lines) == 1:
                    text.append(f"\n      {self._p('got')}: ", style="dim")
                    text.append(_clip(lines[0], MAX_MESSAGE))
                else:
                    self._lines(text, [("json", line) for line in lines])
            elif (rec.header("Content-Type") or "").startswith("text/"):
                body = rec.response_body.decode("utf-8", "replace").strip()
                if body:
                    text.append(f"\n      {self._p('got')}: ", style="dim")
                    text.append(_clip(body.splitlines()[0]))
        if rec.response_truncated:
            captured = len(rec.response_body)
            text.append(
                "\n      " + self._p("truncated", captured=captured, size=rec.response_total), style="yellow"
            )

    def background(self, items: list[dict[str, Any]], since: float) -> Text:
        text = Text()
        for n, item in enumerate(items[:MAX_LINES]):
            text.append("\n" if n else "")
            text.append(f"      {self._p('evidence')} ({self._p('background')}): ", style="green")
            text.append(_evidence_line(item, since))
        if len(items) > MAX_LINES:
            text.append("\n      " + self._p("more", n=len(items) - MAX_LINES), style="dim")
        return text

    def _lines(self, text: Text, lines: list[tuple[str, str]]) -> None:
        for stream, line in lines[:MAX_LINES]:
            text.append(f"\n      {stream:>6} │ ", style="dim")
            text.append(_clip(line), style=_STREAM_STYLE.get(stream, ""))
        if len(lines) > MAX_LINES:
            text.append("\n      " + self._p("more", n=len(lines) - MAX_LINES), style="dim")


@dataclass(slots=True)
class NarrationItem:
    """One step of the walk: the renderable, and the exchange it shows (None for titles and headers)."""

    renderable: Text
    exchange: RecordedExchange | None = None


def narration(session: ReplaySession, lang: str = "en", only: Sequence[str] = ()) -> Iterator[NarrationItem]:
    """The whole walk, in order: title, then per client command a header and its exchanges."""
    narrator = Narrator(session, lang)
    selected = [rec for rec in session.exchanges if route_matches(rec, only)]
    groups = group_by_client(selected)
    yield NarrationItem(narrator.title(groups))
    if not selected:
        yield NarrationItem(Text(phrase(narrator.lang, "no_match", globs=", ".join(only) or "*")))
        return
    background = sorted(
        (item for item in session.evidence if isinstance(item.get("time"), int | float)),
        key=lambda i: i["time"],
    )
    for i, group in enumerate(groups):
        yield NarrationItem(narrator.group_header(group))
        for rec in group.exchanges:
            yield NarrationItem(narrator.exchange(rec), rec)
        # Background evidence (exit clean-up, health checks) shown with the command it happened during.
        until = groups[i + 1].exchanges[0].started if i + 1 < len(groups) else float("inf")
        during = [item for item in background if item["time"] < until]
        background = background[len(during) :]
        if during:
            yield NarrationItem(narrator.background(during, group.exchanges[0].started))
    yield NarrationItem(Text("\n" + phrase(narrator.lang, "end", n=len(selected)), style="bold"))


def render_text(session: ReplaySession, lang: str = "en", only: Sequence[str] = ()) -> str:
    """The narration as plain text (for tests, pipes and READMEs)."""
    return "\n".join(item.renderable.plain for item in narration(session, lang, only)) + "\n"
