# ruff: noqa: E501  (the phrase tables keep one phrase per line)
"""The narrated replay (`dockertap replay FILE`): a recording told as a story, command by command.

Exchanges are grouped by the client process that made them (one group per `docker …` invocation), and
each one says what it does (the layer model's explanation of its route), which layers it reached (with the
observed evidence when the recording has some), and what its body or stream carried, in brief: stdout and
stderr lines demultiplexed from Docker's 8-byte framing, JSON bodies summarised.

Rendering is one rich `Text` per exchange: styled on a terminal, plain lines (rich drops the styles) when
the output is a pipe or a file. The fixed phrases of the narration are a bilingual table, like the layer
model's explanations (`--lang en|ja`).

The layers shown are the current model's chain with the statuses the recording observed (recordings outlive
model corrections); operations already observed for the same container earlier are not claimed again. The
walk ends with "what you just saw", computed from the session's diagram (`recordings/diagram.py`), then the
lesson's own points from its header (`summary`).
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
from dockertap.i18n import counted, worded
from dockertap.recordings.diagram import dedupe_evidence
from dockertap.recordings.replayable import RecordedExchange, ReplaySession, backend_fingerprint
from dockertap.recordings.safe_text import safe_line

#: Lines of a stream or JSON message list shown per exchange before "… N more".
MAX_LINES = 12
#: Evidence items shown per exchange (and per background stretch) before "… N more": they are the lesson
#: (one legacy-build RUN step on dockerd 28 is ~17 items: containerd, shim, runc, iptables).
MAX_EVIDENCE = 24
#: Characters of a one-line JSON summary, and of an API error message (shown whole where possible).
MAX_SUMMARY = 110
MAX_MESSAGE = 400

# The narration's fixed phrases, per language. Explanations of routes come from the layer table.
# Japanese: 層 is a layer of the stack (dockerd → containerd → runc), レイヤー a filesystem layer.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "recording": "Recording {source}",
        "backend": "backend: {product} {version} ({url})",
        "started": "recorded {when}, {exchanges} from {commands}",
        "command": "Command: {command}",
        "pid": "pid {pid}, {calls}",
        "unknown_client": "(client unknown)",
        "layers": "layers",
        "observed": "observed",
        "evidence": "evidence",
        "sent": "sent",
        "got": "got",
        "list": "a list of {items}",
        "object": "an object with {fields}",
        "truncated": "body truncated in the recording: {captured} of {size} kept",
        "hijacked": "connection upgraded to a raw stream (hijack): {client} in, {backend} out",
        "synthetic": "answered by dockertap itself, not by the engine",
        "error": "error",
        "no_answer": "no answer",
        "more": "… {lines} more",
        "no_match": "No exchange matches {globs}.",
        "warning": "warning",
        "end": "End of recording: {exchanges} shown.",
        "status": "status",
        "background": "no API call behind it",
        "done_earlier": "already done for this container by {route}: {operations}",
        "repeated_exec": "exec'd {times} times by one process: runc re-executes itself from a sealed copy",
        "summary_title": "What you just saw",
        "summary_counts": "{exchanges}, {evidence}, {streams}",
        "summary_reached": "reached {layer}: {exchanges} ({how})",
        "reached_all_observed": "all observed",
        "reached_none_observed": "expected by the model, not observed",
        "reached_some_observed": "observed in {observed}, the rest expected by the model",
        "summary_runtime": "calls that reached {runtime}: {routes}",
        "summary_runtime_none": "no call reached the OCI runtime ({runtime})",
        "summary_api_only": "answered by {api} alone: {routes}",
        "summary_runtime_commands": "{runtime} commands seen: {commands}",
        "summary_lesson": "The point of this lesson:",
        "explanation_title": "Not recorded here — explained from sources:",
        "recorded_on": "recorded on {engine} ({versions})",
        "direct": "run without dockertap: the CLI reached no server, so there is no exchange to show; it printed",
        "diagram_title": "Sequence of the session (one arrow per exchange and per observed evidence item)",
        "group_container-exit": "container exit",
        "group_no-exchange": "container",
        "noticed_by": ", noticed by exchange {exchanges}",
    },
    "ja": {
        "recording": "記録 {source}",
        "backend": "バックエンド: {product} {version} ({url})",
        "started": "{when} に記録。{commands}から {exchanges}",
        "command": "コマンド: {command}",
        "pid": "pid {pid}、API 呼び出し {calls}",
        "unknown_client": "(クライアント不明)",
        "layers": "到達した層",
        "observed": "観測",
        "evidence": "証拠",
        "sent": "送信",
        "got": "受信",
        "list": "{items}のリスト",
        "object": "{fields}を持つオブジェクト",
        "truncated": "記録ではボディが切り詰められている: {size}のうち {captured}を保存",
        "hijacked": "接続が生のストリームに切り替わった (hijack): 入力 {client}、出力 {backend}",
        "synthetic": "エンジンではなく dockertap 自身が応答した",
        "error": "エラー",
        "no_answer": "応答なし",
        "more": "… ほか {lines}",
        "no_match": "{globs} に一致するやり取りはない。",
        "warning": "警告",
        "end": "記録の終わり: {exchanges}を表示した。",
        "status": "ステータス",
        "background": "API 呼び出しによらない",
        "done_earlier": "このコンテナでは {route} の時点で済んでいる: {operations}",
        "repeated_exec": "1 つのプロセスが {times} 回 exec した。runc は封印したコピーから自分を再実行する",
        "summary_title": "いま見たこと",
        "summary_counts": "{exchanges}、{evidence}、{streams}",
        "summary_reached": "{layer} に届いたもの: {exchanges} ({how})",
        "reached_all_observed": "すべて観測した",
        "reached_none_observed": "モデル上の予想で、観測はしていない",
        "reached_some_observed": "{observed} 件は観測、残りはモデル上の予想",
        "summary_runtime": "{runtime} まで届いた呼び出し: {routes}",
        "summary_runtime_none": "OCI ランタイム ({runtime}) まで届いた呼び出しは無い",
        "summary_api_only": "{api} だけで応答したもの: {routes}",
        "summary_runtime_commands": "観測した {runtime} のコマンド: {commands}",
        "summary_lesson": "このレッスンの要点:",
        "explanation_title": "ここでは記録していない (ソースに基づく解説):",
        "recorded_on": "記録したエンジン: {engine} ({versions})",
        "direct": "dockertap を通さずに実行: CLI はどのサーバーにも届かず、示すやり取りは無い。CLI が表示したもの",
        "diagram_title": "セッションのシーケンス図 (やり取りと観測した証拠ごとに矢印 1 本)",
        "group_container-exit": "コンテナの終了",
        "group_no-exchange": "コンテナ",
        "noticed_by": "、やり取り {exchanges} が検知",
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
    """One line of recorded content, sanitised (a recording is someone else's bytes), then clipped."""
    text = safe_line(text)
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
        return [
            phrase(lang, "list", items=counted(lang, len(value), "item")) + (f" ({keys}…)" if keys else "")
        ]
    if isinstance(value, dict):
        shown = {
            k: v for k, v in value.items() if isinstance(v, str | int | float | bool) and v not in ("", None)
        }
        head = ", ".join(
            f"{k}={_clip(json.dumps(v, ensure_ascii=False), 40)}" for k, v in list(shown.items())[:6]
        )
        return [
            _clip(
                phrase(lang, "object", fields=counted(lang, len(value), "field"))
                + (f": {head}" if head else "")
            )
        ]
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
        text.append(safe_line(layer.get("layer")) + _LAYER_MARK.get(status, ""), style=style)
        ops = layer.get("operations") or []
        if ops and layer.get("layer") not in ("dockerd", "compat-api"):
            shown = " ".join(safe_line(op) for op in ops[:5])
            text.append("[" + shown + (" …" if len(ops) > 5 else "") + "]", style="dim")
    return text


def _short_command(command: str | None) -> str | None:
    """`/usr/local/bin/docker ps` → `docker ps`: the command as the user typed it."""
    if not command:
        return None
    program, _, rest = command.partition(" ")
    return safe_line(" ".join(filter(None, (os.path.basename(program), rest))))


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


# -- which layers to show ---------------------------------------------------------------------------


def reconcile_layers(
    model: list[dict[str, Any]], recorded: list[dict[str, Any]], sometimes: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The current layer model's chain, with what the recording observed.

    A recording keeps the chain the model expected when it was made; the model has been corrected since
    (e.g. attach without stdin does not reach containerd). Shown: every layer the model expects now, with the
    recorded status and per-operation evidence where the recording has them, plus every layer the recording
    *observed* (or saw unexpectedly) that the model does not expect — evidence is never hidden. A layer only
    the old model expected, and nothing observed, is dropped; so is a `sometimes` layer (a step the model
    marks optional as a whole) that sources were watching for and never saw: it did not happen this time.
    """
    by_layer = {str(layer.get("layer")): layer for layer in recorded if isinstance(layer, dict)}
    shown: list[dict[str, Any]] = []
    for step in model:
        seen = by_layer.pop(str(step.get("layer")), None)
        if seen is None and str(step.get("layer")) in sometimes:
            continue
        if seen is None:
            shown.append({**step, "status": step.get("status") or "expected"})
            continue
        merged = {**step, "status": seen.get("status", "expected")}
        if seen.get("operation_status"):
            merged["operation_status"] = dict(seen["operation_status"])
        shown.append(merged)
    shown += [layer for layer in by_layer.values() if layer.get("status") in ("observed", "unexpected")]
    return shown


def _container_of(rec: RecordedExchange) -> str | None:
    from dockertap.analyzers.routes import match_route

    route = match_route(rec.method, rec.target)
    if route.object_kind == "container" and route.object_id:
        return route.object_id
    if rec.route == "POST /containers/create":
        values = _json_values(rec.response_body) if rec.response_body else None
        if values and isinstance(values[0], dict) and isinstance(values[0].get("Id"), str):
            return values[0]["Id"]
    return None


class ContainerHistory:
    """Which layer operations were already observed for a container before a given exchange.

    On Podman, `docker run`'s attach initialises the container (conmon runs `runc create`), so its start
    only runs `runc start`: the model's start chain lists conmon and `create` as conditional. Knowing what
    the recording observed earlier for the same container, the narration can drop them, and say why.
    """

    def __init__(self, session: ReplaySession) -> None:
        self._order = {rec.id: n for n, rec in enumerate(session.exchanges)}
        self._observed: list[tuple[str | None, str, str, str]] = []  # (container, layer, op, route)
        self._at: list[int] = []
        for n, rec in enumerate(session.exchanges):
            container = _container_of(rec)
            for layer in rec.annotation.get("layers") or []:
                if not isinstance(layer, dict) or layer.get("status") != "observed":
                    continue
                # a layer observed as a whole (no per-operation statuses) did all its operations
                statuses = layer.get("operation_status") or dict.fromkeys(layer.get("operations") or [], "observed")
                for op, status in statuses.items():
                    if status == "observed":
                        self._observed.append((container, str(layer.get("layer")), op, rec.route))
                        self._at.append(n)

    def _earlier(self, rec: RecordedExchange) -> dict[tuple[str, str], str]:
        """(layer, op) → route that did it, for rec's container, before rec."""
        position = self._order.get(rec.id)
        container = _container_of(rec)
        if position is None or container is None:
            return {}
        done: dict[tuple[str, str], str] = {}
        for (owner, layer, op, route), at in zip(self._observed, self._at, strict=True):
            if at < position and owner and (owner.startswith(container) or container.startswith(owner)):
                done.setdefault((layer, op), route)
        return done

    def without_repeats(
        self, rec: RecordedExchange, layers: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
        """`layers` minus operations not observed now but already observed earlier for the same container.

        Returns the layers to show and the dropped (layer, operation, earlier route) triples.
        """
        done = self._earlier(rec)
        if not done:
            return layers, []
        kept: list[dict[str, Any]] = []
        dropped: list[tuple[str, str, str]] = []
        for layer in layers:
            name = str(layer.get("layer"))
            statuses = layer.get("operation_status") or {}
            ops = list(layer.get("operations") or [])
            repeat = [op for op in ops if statuses.get(op) != "observed" and (name, op) in done]
            if not repeat:
                kept.append(layer)
                continue
            dropped += [(name, op, done[(name, op)]) for op in repeat]
            rest = [op for op in ops if op not in repeat]
            if rest or layer.get("status") == "observed":
                kept.append({**layer, "operations": rest})
        return kept, dropped


# -- the narration ----------------------------------------------------------------------------------


class Narrator:
    """Turns a replay session into rich renderables: a title, a header per command, one per exchange."""

    def __init__(self, session: ReplaySession, lang: str = "en") -> None:
        self.session = session
        self.lang = lang if lang in PHRASES else "en"
        self._backend = backend_fingerprint(session)
        self._history = ContainerHistory(session)

    def _p(self, key: str, **values: object) -> str:
        return phrase(self.lang, key, **values)

    def title(self, groups: list[ClientGroup]) -> Text:
        session, text = self.session, Text()
        text.append(self._p("recording", source=safe_line(session.source)) + "\n", style="bold")
        backend = session.backend
        if backend:
            text.append(
                "  "
                + self._p(
                    "backend",
                    product=safe_line(backend.get("product") or backend.get("family") or "?"),
                    version=safe_line(backend.get("engine_version") or ""),
                    url=safe_line(session.header.get("backend_url") or "?"),
                )
                + "\n",
                style="dim",
            )
        engine = session.header.get("engine")
        if isinstance(engine, dict) and engine.get("id"):
            on = self._p(
                "recorded_on", engine=safe_line(engine["id"]), versions=safe_line(engine.get("versions") or "?")
            )
            text.append("  " + on + "\n", style="dim")
        when = safe_line(session.header.get("started", "?"))
        n = sum(len(g.exchanges) for g in groups)
        started = self._p(
            "started",
            when=when,
            exchanges=counted(self.lang, n, "exchange"),
            commands=counted(self.lang, len(groups), "command"),
        )
        text.append("  " + started, style="dim")
        for warning in session.warnings:
            text.append(f"\n  {self._p('warning')}: {safe_line(worded(self.lang, warning))}", style="yellow")
        return text

    def group_header(self, group: ClientGroup) -> Text:
        text = Text("\n")
        command = _short_command(group.command) or self._p("unknown_client")
        text.append("▶ " + self._p("command", command=command), style="bold magenta")
        text.append(
            "  ("
            + self._p(
                "pid",
                pid=safe_line("?" if group.pid is None else group.pid),
                calls=counted(self.lang, len(group.exchanges), "call"),
            )
            + ")"
        )
        return text

    def explanation(self, rec: RecordedExchange) -> tuple[str, list[dict[str, Any]]]:
        """The route's explanation in the chosen language, and the layers to show (see `reconcile_layers`)."""
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
        model = [ls.to_dict() for ls in annotation.layers]
        recorded = list(rec.annotation.get("layers") or [])
        watched = any(
            layer.get("status") in ("observed", "missing") for layer in recorded if isinstance(layer, dict)
        )
        sometimes = frozenset(step.layer for step in annotation.chain.steps if "*" in step.optional)
        return explanation, reconcile_layers(model, recorded, sometimes if watched else frozenset())

    def layers(self, rec: RecordedExchange) -> list[dict[str, Any]]:
        """The layers shown for `rec`, with operations already done for its container earlier dropped."""
        if rec.synthetic:
            return []
        _, layers = self.explanation(rec)
        layers, _ = self._history.without_repeats(rec, layers)
        return layers

    def exchange(self, rec: RecordedExchange) -> Text:
        """Everything about one exchange, as one renderable."""
        text = Text()
        when = datetime.fromtimestamp(rec.started).strftime("%H:%M:%S.%f")[:-3]
        text.append(f"  {when}  ", style="dim")
        text.append(f"{safe_line(rec.method)} ", style="bold")
        text.append(safe_line(rec.route.split(" ", 1)[-1]), style="bold")
        status = rec.status
        text.append("  → ")
        text.append(
            safe_line(status) if status else self._p("no_answer"),
            style=_STATUS_STYLE.get((status or 0) // 100, "red"),
        )
        if rec.ended is not None:
            text.append(f"  {(rec.ended - rec.started) * 1000:.1f}ms", style="cyan")
        text.append(f"\n      {safe_line(rec.method)} {safe_line(rec.target)}", style="dim")
        # An answer dockertap wrote itself (backend down) reached no layer: the model does not apply.
        explanation, layers = self.explanation(rec) if not rec.synthetic else ("", [])
        layers, done_earlier = self._history.without_repeats(rec, layers)
        if explanation:
            text.append(f"\n      {explanation}", style="italic")
        calls = format_grpc(rec.annotation.get("grpc"), limit=8)
        if calls:
            text.append(f"\n      {calls}", style="magenta")
        if layers:
            text.append(f"\n      {self._p('layers')}: ", style="dim")
            text.append_text(_layer_chain(rec, layers, self.lang))
        by_route: dict[str, list[str]] = {}
        for layer, operation, route in done_earlier:
            by_route.setdefault(route, []).append(f"{layer} {operation}")
        for route, operations in by_route.items():
            done = self._p("done_earlier", route=route, operations=", ".join(operations))
            text.append(f"\n      {done}", style="dim")
        evidence = dedupe_evidence(list(rec.evidence))
        for item, times in evidence[:MAX_EVIDENCE]:
            text.append(f"\n      {self._p('evidence')}: ", style="green")
            text.append(_evidence_line(item, rec.started))
            if times > 1:
                text.append("  (" + self._p("repeated_exec", times=times) + ")", style="dim")
        if len(evidence) > MAX_EVIDENCE:
            more = counted(self.lang, len(evidence) - MAX_EVIDENCE, "item")
            text.append("\n      " + self._p("more", lines=more), style="dim")
        if rec.synthetic:
            text.append("\n      " + self._p("synthetic"), style="red")
        if rec.error and not rec.synthetic:
            text.append(f"\n      {self._p('error')}: {safe_line(rec.error)}", style="red")
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
            # Counted by the relay: withheld (redacted) stdin and bytes past the capture limit too.
            relayed_counts = rec.record.get("hijack") or {}
            for direction in hijack_bytes:
                relayed = relayed_counts.get(f"{direction}_bytes")
                if isinstance(relayed, int) and relayed > hijack_bytes[direction]:
                    hijack_bytes[direction] = relayed
            sizes = {k: counted(self.lang, n, "byte") for k, n in hijack_bytes.items()}
            text.append("\n      " + self._p("hijacked", **sizes), style="yellow")
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
                "\n      "
                + self._p(
                    "truncated",
                    captured=counted(self.lang, captured, "byte"),
                    size=counted(self.lang, rec.response_total, "byte"),
                ),
                style="yellow",
            )

    def background(self, records: list[dict[str, Any]], since: float) -> Text:
        """Evidence no API call asked for: a container's exit clean-up is one record holding its items."""
        text = Text()
        shown = 0
        for n, record in enumerate(records):
            text.append("\n" if n else "")
            text.append(f"      {self._p('evidence')} ({self._p('background')}): ", style="green")
            items = record.get("items")
            if not isinstance(items, list):
                text.append(_evidence_line(record, since))
                continue
            text.append(self._group_title(record))
            for item, times in dedupe_evidence([i for i in items if isinstance(i, dict)]):
                if shown >= MAX_EVIDENCE:
                    break
                shown += 1
                text.append("\n        " + _evidence_line(item, since))
                if times > 1:
                    text.append("  (" + self._p("repeated_exec", times=times) + ")", style="dim")
        total = sum(len(r["items"]) if isinstance(r.get("items"), list) else 0 for r in records)
        if total > shown and shown >= MAX_EVIDENCE:
            more = counted(self.lang, total - shown, "item")
            text.append("\n      " + self._p("more", lines=more), style="dim")
        return text

    def direct(self, live: dict[str, Any]) -> Text:
        """A command the recording ran without dockertap (it reached no server): what the CLI printed."""
        env = live.get("env") if isinstance(live.get("env"), dict) else {}
        command = " ".join([*(f"{k}={v}" for k, v in env.items()), *map(str, live.get("command") or [])])
        text = Text("\n")
        text.append("▶ " + self._p("command", command=safe_line(command)), style="bold magenta")
        note = live.get("note")
        if isinstance(note, dict) and (note.get(self.lang) or note.get("en")):
            text.append("  (" + safe_line(note.get(self.lang) or note.get("en")) + ")")
        text.append("\n      " + self._p("direct") + ":", style="dim")
        lines = [("stdout", line) for line in str(live.get("stdout") or "").splitlines()]
        lines += [("stderr", line) for line in str(live.get("stderr") or "").splitlines()]
        for stream, line in lines[:MAX_LINES]:  # whole lines: the error text is the lesson
            text.append(f"\n      {stream:>6} │ ", style="dim")
            text.append(safe_line(line), style=_STREAM_STYLE.get(stream, ""))
        text.append(f"\n      exit {safe_line(live.get('exit_code'))}", style="dim")
        return text

    def _group_title(self, record: dict[str, Any]) -> str:
        """`container exit 5f182531e3bb, noticed by #12`: what a grouped background record is about."""
        kind = str(record.get("kind") or "")
        title = self._p(f"group_{kind}") if f"group_{kind}" in PHRASES["en"] else kind
        container = record.get("container_id")
        if isinstance(container, str) and container:
            title += f" {container[:12]}"
        seen_by = [f"#{i}" for i in record.get("observed_by") or [] if isinstance(i, int)]
        if seen_by:
            title += self._p("noticed_by", exchanges=", ".join(seen_by))
        return title

    def _lines(self, text: Text, lines: list[tuple[str, str]]) -> None:
        for stream, line in lines[:MAX_LINES]:
            text.append(f"\n      {stream:>6} │ ", style="dim")
            text.append(_clip(line), style=_STREAM_STYLE.get(stream, ""))
        if len(lines) > MAX_LINES:
            text.append(
                "\n      " + self._p("more", lines=counted(self.lang, len(lines) - MAX_LINES, "line")),
                style="dim",
            )


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
    for live in direct_commands(session):
        yield NarrationItem(narrator.direct(live))
    if not selected:
        globs = safe_line(", ".join(only) or "*")
        yield NarrationItem(Text(phrase(narrator.lang, "no_match", globs=globs)))
        return
    background = sorted(
        (item for item in session.evidence if isinstance(item.get("time"), int | float)),
        key=lambda i: i["time"],
    )
    if only:  # what happened before the first chosen exchange belongs to exchanges not shown
        background = [item for item in background if item["time"] >= selected[0].started]
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
    end = phrase(narrator.lang, "end", exchanges=counted(narrator.lang, len(selected), "exchange"))
    yield NarrationItem(Text("\n" + end, style="bold"))
    yield NarrationItem(summary_text(session, narrator, selected))


def lesson_summary(session: ReplaySession, lang: str, field: str = "summary") -> list[str]:
    """A lesson's own closing points: the header's `summary` {"en": [...], "ja": [...]}, as plain strings
    (`field="explanation"`: what the lesson explains from sources because it could not be recorded)."""
    table = session.header.get(field)
    if not isinstance(table, dict):
        return []
    lines = table.get(lang) or table.get("en") or []
    return [safe_line(line) for line in lines] if isinstance(lines, list) else []


def direct_commands(session: ReplaySession) -> list[dict[str, Any]]:
    """The header's recorded commands that ran without dockertap (`direct`): they reached no server."""
    live = session.header.get("live")
    return [e for e in live if isinstance(e, dict) and e.get("direct")] if isinstance(live, list) else []


def session_diagram(session: ReplaySession, narrator: Narrator, selected: list[RecordedExchange]):
    """The diagram of the narrated exchanges, with the layers the narration shows (one view everywhere)."""
    from dockertap.recordings.diagram import build_diagram

    return build_diagram(session, selected, layers=narrator.layers)


def summary_text(session: ReplaySession, narrator: Narrator, selected: list[RecordedExchange]) -> Text:
    """ "What you just saw": counts from the diagram, then the lesson's own points (all plain text)."""
    from dockertap.recordings.diagram_term import summary_lines

    diagram = session_diagram(session, narrator, selected)
    text = Text("\n" + phrase(narrator.lang, "summary_title"), style="bold underline")
    for line in summary_lines(diagram.summary, diagram, narrator.lang):
        text.append("\n  • " + line)
    lesson = lesson_summary(session, narrator.lang)
    if lesson:
        text.append("\n" + phrase(narrator.lang, "summary_lesson"), style="bold")
        for line in lesson:
            text.append("\n  • " + line)
    explanation = lesson_summary(session, narrator.lang, "explanation")
    if explanation:
        text.append("\n" + phrase(narrator.lang, "explanation_title"), style="bold")
        for line in explanation:
            text.append("\n  • " + line)
    return text


def render_text(session: ReplaySession, lang: str = "en", only: Sequence[str] = ()) -> str:
    """The narration as plain text (for tests, pipes and READMEs)."""
    return "\n".join(item.renderable.plain for item in narration(session, lang, only)) + "\n"
