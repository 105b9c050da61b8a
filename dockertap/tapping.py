"""`dockertap proxy` and `dockertap run`: start a tap on a socket and show what passes through it."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO

import typer

from dockertap.analyzers.clients import NO_PEER_OVER_TCP
from dockertap.filters import ExchangeFilter, FilterError, matches_all, parse_filters
from dockertap.grpc_calls import GrpcCalls
from dockertap.options import endpoint_url, output_file
from dockertap.output import BackgroundWriter
from dockertap.proxy.discovery import Discovery, cli_choice, default_listen_path, discover_backend
from dockertap.proxy.endpoints import EndpointError, parse_endpoint
from dockertap.proxy.exchange import Exchange, final_head, header_value
from dockertap.proxy.hub import Event
from dockertap.proxy.listener import ListenError
from dockertap.proxy.probe import describe_connect_error
from dockertap.proxy.relay import (
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    RelayConfig,
    RelayStats,
)
from dockertap.recordings.safe_text import safe_line
from dockertap.session import (
    Listening,
    Pipeline,
    Tap,
    install_fast_loop,
    open_listener,
    raise_open_file_limit,
)
from dockertap.trace_view import LineRenderer, json_lines


class TraceFormat(StrEnum):
    text = "text"
    json = "json"


# -- sinks -----------------------------------------------------------------------------------


class TraceSink:
    """Renders each finished exchange as a text or JSON line and hands it to `write`."""

    def __init__(
        self,
        write: Callable[[str], None],
        fmt: TraceFormat,
        color: bool,
        filters: list[ExchangeFilter] | None = None,
        bodies: bool = False,
    ) -> None:
        self._write = write
        self._fmt = fmt
        self._filters = filters or []
        self._renderer = LineRenderer(color=color, bodies=bodies) if fmt is TraceFormat.text else None
        self.count = 0

    def handle_batch(self, batch: list[Event]) -> None:
        ended = [ex for kind, ex in batch if kind == "end" and matches_all(self._filters, ex)]
        if not ended:
            return
        self.count += len(ended)
        text = self._renderer.render(ended) if self._renderer else json_lines(ended)
        self._write(text)

    def handle_background(self, records: list[dict]) -> None:
        """Evidence with no exchange behind it (exit clean-up, health checks): its own line/record."""
        from dockertap.evidence_wiring import background_json, background_lines

        color = self._renderer is not None and self._renderer._console.is_terminal
        self._write(background_lines(records, color) if self._renderer else background_json(records))


@dataclass
class _Collected:
    """Keeps finished exchanges so `run` can print them in request order when CMD ends."""

    exchanges: list[Exchange] = field(default_factory=list)
    background: list[dict] = field(default_factory=list)

    def handle_batch(self, batch: list[Event]) -> None:
        self.exchanges.extend(ex for kind, ex in batch if kind == "end")

    def handle_background(self, records: list[dict]) -> None:
        self.background.extend(records)

    def render(self, fmt: TraceFormat, color: bool, bodies: bool = False) -> str:
        from dockertap.evidence_wiring import background_json, background_lines

        ordered = sorted(self.exchanges, key=lambda ex: (ex.started, ex.id))
        # background records sit between the exchanges, in time order
        entries = [(ex.started, 0, ex) for ex in ordered] + [(r["time"], 1, r) for r in self.background]
        entries.sort(key=lambda e: (e[0], e[1]))
        out, run_of = [], []
        renderer = LineRenderer(color=color, bodies=bodies) if fmt is TraceFormat.text else None
        for _t, is_background, entry in entries:
            if not is_background:
                run_of.append(entry)
                continue
            if run_of:
                out.append(renderer.render(run_of) if renderer else json_lines(run_of))
                run_of = []
            out.append(background_lines([entry], color) if renderer else background_json([entry]))
        if run_of:
            out.append(renderer.render(run_of) if renderer else json_lines(run_of))
        return "".join(out)


# -- analysis wiring -------------------------------------------------------------------------


class Analysis:
    """Annotates exchanges with route and layers, and keeps the backend fingerprint current.

    The fingerprint starts from dockertap's own probe at start-up and is refreshed passively
    whenever the client's own `/_ping`, `/version` or `/info` exchanges pass by — recomputed only
    when what they say changed (a client pinging in a loop would otherwise pay for it every time).

    Each exchange is annotated cheaply (memoized route and chain, no body) when its request is
    seen, so the evidence correlator and the live view know open exchanges, and fully once, at
    its end, from the raw captures: no mitmproxy objects are built for it.
    """

    def __init__(self, discovery: Discovery | None) -> None:
        from dockertap.analyzers.fingerprint import fingerprint

        self._fingerprint = fingerprint
        probe = discovery.probe if discovery else None
        self._ping = dict(probe.ping_headers) if probe and probe.ok else None
        self._version = probe.version if probe else None
        self._info = probe.info if probe else None
        self._url = discovery.endpoint.url if discovery and discovery.endpoint else None
        #: The last `/_ping` head learned from, minus its Date: the same head teaches nothing new.
        self._ping_head: bytes | None = None
        self.backend = self._compute()

    def _compute(self):
        if not (self._ping or self._version or self._info):
            return None
        return self._fingerprint(self._ping, self._version, self._info, endpoint_url=self._url)

    def _learn(self, ex: Exchange, template: str) -> None:
        if template.endswith(" /_ping"):
            if ex.status != 200 or ex.response_body.truncated:
                return
            head = _DATE_LINE.sub(b"", final_head(ex.response_head) or b"")
            if head == self._ping_head:
                return  # only the Date differs, and the fingerprint reads no Date
        elif template not in ("GET /version", "GET /info"):
            return
        from dockertap.proxy.capture import response_fields, response_payload

        payload = response_payload(ex)  # raw parsing: no mitmproxy import on `run`'s path
        if payload is None or ex.status != 200:
            return
        if template.endswith(" /_ping"):
            self._ping_head = head
            self._ping = response_fields(ex)
        else:
            try:
                data = json.loads(payload or b"")
            except ValueError:
                return
            if template == "GET /version":
                self._version = data
            else:
                self._info = data
        self.backend = self._compute()

    def __call__(self, kind: str, ex: Exchange) -> None:
        from dockertap.analyzers.annotate import annotate

        if kind != "end":
            if ex.annotation is None:
                method, target = ex.method_and_target
                ex.annotation = annotate(method, target, self.backend)
            return
        body = _request_json(ex)
        annotation = ex.annotation
        if annotation is None or body is not None or annotation.backend is not self.backend:
            # (an annotation from the request event, with the same backend and no body, is the
            # one this would build again)
            method, target = ex.method_and_target
            annotation = ex.annotation = annotate(method, target, self.backend, body)
        self._learn(ex, annotation.route.template)


_DATE_LINE = re.compile(rb"(?im)^date:[^\r\n]*\r\n")


def _request_json(ex: Exchange) -> object | None:
    """The request body as JSON when it says it is JSON, straight from the (redacted) capture."""
    if not ex.request_body.data or "json" not in header_value(ex.request_head, "content-type"):
        return None
    from dockertap.proxy.capture import body_prefix

    raw = body_prefix(ex.request_body, ex.request_chunked)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# -- shared start-up -------------------------------------------------------------------------


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"dockertap: {safe_line(message)}", fg="red", err=True)
    return typer.Exit(code)


def _warn_if_the_cli_setting_is_broken() -> None:
    """Say once when the user's own DOCKER_HOST/context does not work with the docker CLI.

    `run` gives CMD a DOCKER_HOST of its own (and drops DOCKER_CONTEXT), and `proxy` tells the
    user to export one, so a broken setting would otherwise be repaired invisibly: everything
    works under dockertap and fails without it.
    """
    choice = cli_choice(os.environ)
    problem = choice.error if choice.reading is None else choice.reading.problem
    if choice.origin not in ("DOCKER_HOST", "DOCKER_CONTEXT", "currentContext") or not problem:
        return
    setting = (
        f"DOCKER_HOST={choice.reading.given}"
        if choice.origin == "DOCKER_HOST" and choice.reading
        else f"DOCKER_CONTEXT={choice.context}"
        if choice.origin == "DOCKER_CONTEXT"
        else f"the current docker context {choice.context!r}"
    )
    typer.secho(
        f"dockertap: warning: your {setting} does not work with the docker CLI: {problem}. "
        "Through dockertap it works, because dockertap sets DOCKER_HOST itself; without dockertap "
        "it fails (`dockertap doctor` shows a fix that works)",
        fg="yellow",
        err=True,
    )


def _discover(backend: str | None, own: list[str]) -> Discovery:
    _warn_if_the_cli_setting_is_broken()
    try:
        found = discover_backend(backend, own_sockets=own)
    except EndpointError as exc:
        raise _fail(str(exc)) from None
    if found.endpoint is None:
        typer.secho(f"dockertap: {safe_line(found.reason)}", fg="red", err=True)
        raise _fail(  # a second line of our own (the reason above quotes paths and answers: one line)
            "Start an engine or pass --backend; `dockertap doctor` explains this machine, "
            "and `dockertap replay docker-run` shows a recorded session with no engine at all."
        )
    return found


def _relay_config(found: Discovery, capture_bytes: int, **limits) -> RelayConfig:
    """`limits`: the client-side limits and guards of `dockertap proxy`, and `--otel-propagate`'s
    added header (RelayConfig fields)."""

    def describe(endpoint, exc: OSError) -> tuple[str, str]:
        _kind, reason, hint = describe_connect_error(endpoint, exc)
        return reason, hint

    assert found.endpoint is not None
    return RelayConfig(
        backend=found.endpoint, capture_limit=capture_bytes, describe_dial_error=describe, **limits
    )


def _seconds(value: float | None) -> float | None:
    """A timeout option: a finite number of seconds > 0 (exit 2 otherwise), or 0 for 'never'."""
    if value is None:
        return value
    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(f"{value} is not a number of seconds ≥ 0 (0 turns the timeout off)")
    return value


def _positive_seconds(value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise typer.BadParameter(f"{value} is not a number of seconds > 0")
    return value


def _connection_cap(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise typer.BadParameter(f"{value} is not a count of connections ≥ 0 (0 removes the cap)")
    return value


IDLE_TIMEOUT_HELP = (
    "Close a client connection that sends no byte for SECONDS while no exchange is in flight "
    "(streams being relayed are never idle); 0: never."
)
HEAD_TIMEOUT_HELP = "A request head must be complete SECONDS after its first byte, else 408."
MAX_CONNECTIONS_HELP = "Client connections open at once; more are answered 503 (0: no cap)."
ALLOW_TCP_HELP = (
    "Allow --listen tcp://…: every local user (and any web page that finds the port) can reach it; "
    "browser requests and foreign Host headers are refused with 403."
)


def _backend_banner(found: Discovery) -> str:
    return f"backend {found.endpoint.url} — {found.reason}"


def _processors(analysis: Analysis, redact: bool, record_stdin: bool = False) -> list:
    """Redaction runs first, so no sink (screen, JSON trace, recording) ever sees a secret; the gRPC
    decoder after the analysis that creates the annotation it re-keys."""
    if record_stdin and redact:
        typer.secho(
            "dockertap: warning: --record-stdin: what clients type into attach/exec sessions (passwords "
            "piped into `docker exec -i` too) will be shown and recorded",
            fg="yellow",
            err=True,
        )
    if not redact:
        typer.secho(
            "dockertap: warning: --no-redact: registry credentials and secret-looking environment values "
            "will be shown and recorded as they are",
            fg="yellow",
            err=True,
        )
        return [analysis, GrpcCalls()]
    from dockertap.analyzers.redact import Redactor

    return [Redactor(record_stdin=record_stdin), analysis, GrpcCalls()]


def _recorder(path: str | None, found: Discovery, analysis: Analysis, redact: bool, capture_bytes: int):
    """A RecorderSink writing the session file at PATH, or None."""
    if not path:
        return None
    from dockertap.recordings.format import RecorderSink, SessionWriter

    try:
        writer = SessionWriter(
            path,
            backend=analysis.backend,
            backend_url=found.endpoint.url if found.endpoint else None,
            redacted=redact,
            capture_limit=capture_bytes,
        )
    except OSError as exc:
        raise _fail(f"cannot record to {path}: {exc.strerror or exc}") from None
    return RecorderSink(writer, backend=lambda: analysis.backend)


def _attach_recorder(recorder, pipeline: Pipeline, observer) -> None:
    """The recorder takes exchanges as they end, not after the settle window: a `kill -9` then loses
    at most the evidence still settling, never the exchanges themselves."""
    if recorder is None:
        return
    if observer is None:
        pipeline.sinks.append(recorder)
        return
    pipeline.sinks.insert(0, recorder)
    observer.add_settled_sink(recorder.settled_sink())


OBSERVE_HELP = (
    "Observe the host below the engine (runtime execs via the kernel's process connector, containerd "
    "events via ctr) and mark layers observed/missing [default: on when root]."
)
SETTLE_HELP = "Seconds each finished exchange waits for late evidence before it is shown."


def _observer(observe: bool | None, analysis: Analysis, found: Discovery, pipeline: Pipeline, settle: float):
    """The evidence observer installed in front of the sinks, or None when observation is off."""
    from dockertap.evidence_wiring import Observer, observe_by_default

    if observe is False or (observe is None and not observe_by_default()):
        return None
    observer = Observer(analysis, found.endpoint.url if found.endpoint else None, settle=settle)
    observer.endpoint = found.endpoint
    observer.install(pipeline)
    return observer


PROPAGATE_HELP = (
    "Add a W3C traceparent to requests that carry none, so the engine's own spans join dockertap's "
    "trace. The only option that changes relayed bytes; the trace names the added header."
)
OTLP_HELP = (
    "Export spans to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (also on when the standard "
    "OTEL_EXPORTER_OTLP_ENDPOINT is set; needs the 'otel' extra)."
)


def _otel_export(otlp: str | None, propagate: bool, command: list[str] | None = None):
    """The OpenTelemetry sink, or None when no export was asked for."""
    from dockertap.otel import OtelExport, OtelUnavailable, export_requested

    if not export_requested(otlp, os.environ):
        if propagate:
            raise _fail(
                "--otel-propagate needs an OpenTelemetry export: --otlp URL or OTEL_EXPORTER_OTLP_ENDPOINT"
            )
        return None
    if otlp and not otlp.startswith(("http://", "https://")):
        raise _fail(f"--otlp takes an http:// or https:// URL of an OTLP/HTTP collector, got {otlp!r}")
    try:
        return OtelExport(endpoint=otlp, command=command)
    except OtelUnavailable as exc:
        raise _fail(str(exc)) from None


def _close_otel(export, *, report: bool = True) -> None:
    if export is not None:
        export.close()
        if report:
            _report_otel(export)


def _propagation(export, propagate: bool):
    """`--otel-propagate`: the header the relay adds to requests without one (RelayConfig)."""
    return ("traceparent", export.next_traceparent) if propagate and export is not None else None


def _report_otel(export) -> None:
    if export is not None:
        typer.secho(f"dockertap: {export.summary()}", err=True, dim=True)


BODIES_HELP = "Show JSON bodies and demultiplexed stdout/stderr under each trace line (text format)."
RECORD_HELP = "Record the session (JSON Lines, flushed per exchange) to FILE."
NO_REDACT_HELP = "Show and record registry credentials and secret-looking env values as they are."
RECORD_STDIN_HELP = (
    "Keep the stdin of attach/exec sessions (withheld by default: sizes and timing only). "
    "BuildKit session payloads stay withheld."
)


def _serve_forever(tap: Tap, on_ready: Callable[[], None], observer=None) -> int:
    """Serve until SIGINT/SIGTERM/SIGHUP; returns that signal's number (the shell's 128+N exit)."""
    raise_open_file_limit()  # two descriptors per relayed connection
    received: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal(sig: int) -> None:
            received.append(sig)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal, sig)
        await tap.start()
        if observer is not None:
            await observer.start()
        on_ready()
        await stop.wait()
        await tap.stop()
        if observer is not None:
            await observer.finish_all()
            await observer.stop()

    with asyncio.Runner(loop_factory=install_fast_loop()) as runner:
        runner.run(main())
    return received[0] if received else 0


# -- commands --------------------------------------------------------------------------------

BACKEND_HELP = "Engine socket to relay to (unix:// or tcp://) [default: discovered]"
CAPTURE_HELP = "Bytes of each body and hijacked stream to keep for display and recording (all are counted)."


def proxy(
    listen: str = typer.Option(
        None,
        "--listen",
        "-l",
        callback=endpoint_url,
        help="unix:///path or tcp://127.0.0.1:PORT [default: a private Unix socket]",
    ),
    backend: str = typer.Option(None, "--backend", "-b", callback=endpoint_url, help=BACKEND_HELP),
    fmt: TraceFormat = typer.Option(
        TraceFormat.text, "--format", "-f", help="Trace lines as text or JSON Lines."
    ),
    capture_bytes: int = typer.Option(64 * 1024, "--capture-bytes", min=0, help=CAPTURE_HELP),
    group: str = typer.Option(None, "--group", help="Let members of GROUP connect too (socket mode 0660)."),
    listen_public: bool = typer.Option(
        False, "--listen-public", help="Allow a non-loopback TCP address (root-equivalent access, no TLS)."
    ),
    allow_tcp: bool = typer.Option(False, "--allow-tcp", help=ALLOW_TCP_HELP),
    idle_timeout: float = typer.Option(
        DEFAULT_IDLE_TIMEOUT, "--idle-timeout", metavar="SECONDS", callback=_seconds, help=IDLE_TIMEOUT_HELP
    ),
    head_timeout: float = typer.Option(
        DEFAULT_HEAD_TIMEOUT,
        "--head-timeout",
        metavar="SECONDS",
        callback=_positive_seconds,
        help=HEAD_TIMEOUT_HELP,
    ),
    max_connections: int = typer.Option(
        DEFAULT_MAX_CONNECTIONS,
        "--max-connections",
        metavar="N",
        callback=_connection_cap,
        help=MAX_CONNECTIONS_HELP,
    ),
    filter_specs: list[str] = typer.Option(
        None,
        "--filter",
        help="Show only matching exchanges: route=GLOB, status=4xx|5xx|404|error, client=GLOB (repeatable).",
    ),
    bodies: bool = typer.Option(False, "--bodies", help=BODIES_HELP),
    plain: bool = typer.Option(False, "--plain", help="Plain lines even on a terminal (no live panel)."),
    record: str = typer.Option(None, "--record", metavar="FILE", callback=output_file, help=RECORD_HELP),
    no_redact: bool = typer.Option(False, "--no-redact", help=NO_REDACT_HELP),
    record_stdin: bool = typer.Option(False, "--record-stdin", help=RECORD_STDIN_HELP),
    observe: bool = typer.Option(None, "--observe/--no-observe", help=OBSERVE_HELP),
    settle: float = typer.Option(0.15, "--settle", min=0, help=SETTLE_HELP),
    otlp: str = typer.Option(None, "--otlp", metavar="URL", help=OTLP_HELP),
    otel_propagate: bool = typer.Option(False, "--otel-propagate", help=PROPAGATE_HELP),
) -> None:
    """Listen on a socket and relay every Docker API exchange to the real engine, one trace line each.

    On a terminal the trace is a live view (open streams update in place); otherwise plain lines.

    [bold]Examples[/bold]

    [dim]# runs until Ctrl-C; in another shell, paste the `export DOCKER_HOST=…` line it prints[/dim]
    [cyan]dockertap proxy[/cyan]

    [dim]# runs until Ctrl-C[/dim]
    [cyan]dockertap proxy --backend unix:///run/podman/podman.sock --format json > podman-trace.jsonl[/cyan]

    [dim]# runs until Ctrl-C[/dim]
    [cyan]dockertap proxy --filter 'route=POST /containers/*' --bodies[/cyan]

    [dim]# runs until Ctrl-C[/dim]
    [cyan]dockertap proxy --listen tcp://127.0.0.1:2399 --allow-tcp[/cyan]
    """
    otel = _otel_export(otlp, otel_propagate)  # before the socket exists: a refusal leaves nothing
    private = listen is None
    listen = listen or f"unix://{default_listen_path(group=group)}"
    found = _discover(backend, own=[listen])
    try:
        listening = open_listener(
            listen, group=group, listen_public=listen_public, allow_tcp=allow_tcp, private_parent=private
        )
    except (ListenError, EndpointError) as exc:
        raise _fail(str(exc)) from None
    try:
        filters = parse_filters(filter_specs)
    except FilterError as exc:
        _close_unused(listening)
        raise _fail(str(exc)) from None
    analysis = Analysis(found)
    pipeline = Pipeline(processors=_processors(analysis, not no_redact, record_stdin))
    try:
        recorder = _recorder(record, found, analysis, not no_redact, capture_bytes)
    except typer.Exit:
        _close_unused(listening)  # a failed start leaves no socket behind
        raise
    limits = dict(
        idle_timeout=idle_timeout or None,
        head_timeout=head_timeout,
        max_connections=max_connections or None,
        loopback_guard=listening.path is None,
        guard_allows=listening.host_names,
        guard_allows_ip=listen_public,
        add_request_header=_propagation(otel, otel_propagate),
    )
    tap = Tap(listening, _relay_config(found, capture_bytes, **limits), pipeline)
    out = BackgroundWriter(sys.stdout)
    live_view = None
    if fmt is TraceFormat.text and sys.stdout.isatty() and not plain:
        from rich.console import Console

        from dockertap.live_view import LiveView

        backend_label = found.endpoint.url
        live_view = LiveView(
            Console(),
            stats=lambda: tap.relay.stats,
            backend_label=backend_label,
            filters=filters,
            bodies=bodies,
            dropped=lambda: tap.hub.dropped,
        )
        pipeline.sinks.append(live_view)
    else:
        pipeline.sinks.append(
            TraceSink(out.write, fmt, color=sys.stdout.isatty(), filters=filters, bodies=bodies)
        )
    if otel is not None:
        pipeline.sinks.append(otel)
    observer = _observer(observe, analysis, found, pipeline, settle)
    _attach_recorder(recorder, pipeline, observer)

    def ready() -> None:
        err = sys.stderr
        err.write(f"dockertap: {safe_line(_backend_banner(found))}\n")
        if observer is not None:
            err.write(f"dockertap: {safe_line(observer.banner())}\n")
        err.write(f"dockertap: listening on {listening.url}{_who_can_connect(listening, group)}\n")
        if listening.path is None:
            err.write(f"dockertap: clients show as ? (or what their User-Agent says): {NO_PEER_OVER_TCP}\n")
        err.write(f"export DOCKER_HOST={listening.url}\n")
        err.flush()
        if live_view is not None:
            live_view.start()

    _warm_up(analysis)
    stopped_by = 0
    try:
        stopped_by = _serve_forever(tap, ready, observer)
    finally:
        if live_view is not None:
            live_view.stop()
        if recorder is not None:
            recorder.close(dropped=tap.hub.dropped)
        _close_otel(otel)
        out.close()
        if tap.hub.dropped or out.dropped:
            sys.stderr.write(
                f"dockertap: {tap.hub.dropped + out.dropped} trace events were not shown (slow output)\n"
            )
        sys.stderr.write(_limits_summary(tap.relay.stats, max_connections, idle_timeout))
    if stopped_by:
        raise typer.Exit(128 + stopped_by)  # what a shell reports for a command ended by that signal


def _limits_summary(stats: RelayStats, max_connections: int, idle_timeout: float) -> str:
    """The end-of-session line on connections the limits turned away (empty when none were)."""
    parts = []
    if stats.refused_over_cap:
        parts.append(
            f"{stats.refused_over_cap} connection(s) refused with 503 (--max-connections {max_connections})"
        )
    if stats.idle_closed:
        parts.append(f"{stats.idle_closed} idle connection(s) closed (--idle-timeout {idle_timeout:g})")
    return f"dockertap: {'; '.join(parts)}\n" if parts else ""


def _close_unused(listening: Listening) -> None:
    """Close a listener that will never serve, and remove its socket file."""
    listening.sock.close()
    if listening.path:
        try:
            os.unlink(listening.path)
        except FileNotFoundError:
            pass


def _warm_up(analysis: Analysis) -> None:
    """Pay the one-time costs (imports, compiling the route table: 30–100 ms) before listening, so the
    first exchanges reach the sinks and the recording as promptly as later ones."""
    from dockertap.analyzers.annotate import annotate

    annotate("GET", "/_ping", analysis.backend)


def _who_can_connect(listening: Listening, group: str | None) -> str:
    if listening.path is None:
        browsers = (
            "\ndockertap: requests with an Origin or Sec-Fetch-* header (web pages) or a Host that is not "
            "this listener are refused with 403"
        )
        if not parse_endpoint(listening.url).is_loopback:
            return (
                "\ndockertap: WARNING: this is not a loopback address: anyone who can reach it gets "
                "root-equivalent access to the engine — no TLS, no authentication" + browsers
            )
        return (
            "\ndockertap: WARNING: TCP loopback: every local user (not only you) gets root-equivalent access "
            "to the engine — no authentication" + browsers
        )
    if group:
        return f" (mode 0660: you and group {group})"
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        return " (mode 0600: root only — you ran dockertap with sudo; pass --group to widen)"
    return " (mode 0600: only you)"


@dataclass(frozen=True)
class GlobalFlags:
    """The connection options a Docker client reads before its subcommand, and which take a value."""

    bypass: tuple[str, ...]  # options that pick another endpoint than DOCKER_HOST
    valued: tuple[str, ...]  # options that take a value (the next word is not the subcommand)
    short_attached: bool = True  # pflag: `-Hunix:///x` is -H with a value


#: docker/cli cli/flags/options.go (InstallFlags): -H/--host, -c/--context and the other valued globals.
DOCKER_FLAGS = GlobalFlags(
    ("-H", "--host", "-c", "--context"),
    ("-H", "--host", "-c", "--context", "--config", "-l", "--log-level", "--tlscacert", "--tlscert",
     "--tlskey"),
)  # fmt: skip
#: Compose v2 standalone (docker/compose cmd/compatibility/convert.go: getStringFlags): --host/-H and
#: --context (no -c) before the first word that is not an option; `docker compose -H` is refused.
COMPOSE_V2_FLAGS = GlobalFlags(
    ("-H", "--host", "--context"),
    ("-H", "--host", "--context", "--tlscacert", "--tlscert", "--tlskey", "--log-level"),
    short_attached=False,
)
#: docker-compose 1.x (Python, `docker-compose --help`): -H/--host and -c/--context among its options.
COMPOSE_V1_FLAGS = GlobalFlags(
    ("-H", "--host", "-c", "--context"),
    ("-H", "--host", "-c", "--context", "-f", "--file", "-p", "--project-name", "--profile",
     "--log-level", "--ansi", "--tlscacert", "--tlscert", "--tlskey", "--project-directory",
     "--env-file"),
    short_attached=False,
)  # fmt: skip


def _global_flags_of(command: list[str], executable: str | None) -> GlobalFlags | None:
    """Only a docker or docker-compose command line carries docker's connection flags."""
    program = os.path.basename(command[0])
    if program == "docker":
        return DOCKER_FLAGS
    if program == "docker-compose":
        try:
            with open(executable or shutil.which(command[0]) or command[0], "rb") as fh:
                script = fh.read(2) == b"#!"  # 1.x is a Python script, 2.x a Go binary
        except OSError:
            script = False
        return COMPOSE_V1_FLAGS if script else COMPOSE_V2_FLAGS
    return None


def bypass_flags(command: list[str], executable: str | None = None) -> list[str]:
    """Global options in a docker/docker-compose command line that make it skip DOCKER_HOST (and the tap).

    Only options before the subcommand count: in `docker run img sh -c …`, `-c` is sh's; and in
    `sh -c 'docker ps'`, `-c` is the shell's, whatever the script holds.
    """
    flags = _global_flags_of(command, executable)
    if flags is None:
        return []
    found = []
    args = iter(command[1:])
    for arg in args:
        if not arg.startswith("-") or arg == "--":
            break  # the subcommand: global options end here
        name = arg.split("=", 1)[0]
        attached = (
            flags.short_attached
            and not arg.startswith("--")
            and len(arg) > 2
            and arg[:2] in flags.bypass
            and arg[2] != "="
        )
        if name in flags.bypass or attached:
            found.append(arg)
        if name in flags.valued and "=" not in arg and not attached:
            next(args, None)
    return found


class StartupGate:
    """Holds requests that can reach below the engine until `run`'s observers are up.

    Reads whose expected chain ends at the engine (`HEAD /_ping`, `GET /containers/json`) pass at
    once; anything else waits — every write, and reads like `top` or `stats` that reach the runtime.
    """

    def __init__(self, analysis: Analysis) -> None:
        self._analysis = analysis
        self._ready = asyncio.Event()
        self.held = 0

    def hold(self, method: str, target: str):
        if self._ready.is_set() or not self._reaches_below(method, target):
            return None
        self.held += 1
        return self._ready.wait()

    def _reaches_below(self, method: str, target: str) -> bool:
        if method not in ("GET", "HEAD"):
            return True
        from dockertap.analyzers.annotate import chain_of, route_of

        return len(chain_of(self._analysis.backend, route_of(method, target)).layers) > 1

    def open(self) -> None:
        self._ready.set()


def run(
    command: list[str] = typer.Argument(
        ..., metavar="-- CMD [ARGS]...", help="The command to run through the tap."
    ),
    backend: str = typer.Option(None, "--backend", "-b", callback=endpoint_url, help=BACKEND_HELP),
    trace_file: str = typer.Option(
        None, "--trace-file", "-o", callback=output_file, help="Write the trace to FILE instead of stderr."
    ),
    live: bool = typer.Option(False, "--live", help="Print trace lines while CMD runs, not after."),
    fmt: TraceFormat = typer.Option(
        TraceFormat.text, "--format", "-f", help="Trace lines as text or JSON Lines."
    ),
    capture_bytes: int = typer.Option(64 * 1024, "--capture-bytes", min=0, help=CAPTURE_HELP),
    record: str = typer.Option(None, "--record", metavar="FILE", callback=output_file, help=RECORD_HELP),
    no_redact: bool = typer.Option(False, "--no-redact", help=NO_REDACT_HELP),
    record_stdin: bool = typer.Option(False, "--record-stdin", help=RECORD_STDIN_HELP),
    observe: bool = typer.Option(None, "--observe/--no-observe", help=OBSERVE_HELP),
    settle: float = typer.Option(0.15, "--settle", min=0, help=SETTLE_HELP),
    bodies: bool = typer.Option(False, "--bodies", help=BODIES_HELP),
    otlp: str = typer.Option(None, "--otlp", metavar="URL", help=OTLP_HELP),
    otel_propagate: bool = typer.Option(False, "--otel-propagate", help=PROPAGATE_HELP),
) -> None:
    """Run CMD with DOCKER_HOST pointing at a private tap, then print the trace of its exchanges.

    CMD keeps your terminal (so `docker run -it img sh` stays interactive);
    dockertap exits with CMD's exit code.

    [bold]Examples[/bold]

    [cyan]dockertap run -- docker run --rm busybox echo hi[/cyan]

    [cyan]dockertap run --format json -o trace.jsonl -- docker ps[/cyan]

    [dim]# trace lines while the command still runs[/dim]
    [cyan]dockertap run --live -- docker run --rm busybox sh -c 'echo one; sleep 1; echo two'[/cyan]

    [dim]# keep the session: replay it, export it as HAR[/dim]
    [cyan]dockertap run --record session.jsonl -- docker run --rm busybox echo recorded[/cyan]
    """
    if not command:
        raise _fail("nothing to run: dockertap run -- docker ps")
    executable = shutil.which(command[0])
    if executable is None:
        raise _fail(f"command not found: {command[0]}", code=127)
    for flag in bypass_flags(command, executable):
        typer.secho(
            f"dockertap: warning: {flag!r} makes {os.path.basename(command[0])} talk to another endpoint "
            "directly; those calls will not go through the tap",
            fg="yellow",
            err=True,
        )
    otel = _otel_export(otlp, otel_propagate, command)
    # Discovery first: the tap's own socket does not exist yet, so no candidate can be it, and a
    # failed discovery leaves no private directory behind.
    found = _discover(backend, own=[])
    workdir = tempfile.mkdtemp(prefix="dockertap-")
    os.chmod(workdir, 0o700)
    listen_url = f"unix://{workdir}/docker.sock"
    try:
        listening = open_listener(listen_url)
    except ListenError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise _fail(str(exc)) from None

    def abandon() -> None:
        """A start that fails leaves nothing behind: no socket, no private directory."""
        _close_unused(listening)
        shutil.rmtree(workdir, ignore_errors=True)

    try:
        if trace_file:
            from dockertap.recordings.format import open_private

            trace_stream: IO[str] = open_private(trace_file)
        else:
            trace_stream = sys.stderr
    except OSError as exc:
        abandon()
        raise _fail(f"cannot write {trace_file}: {exc.strerror or exc}") from None
    color = trace_stream.isatty()
    collected = _Collected()
    writer = BackgroundWriter(trace_stream) if live else None
    sink = TraceSink(writer.write, fmt, color=color, bodies=bodies) if writer else collected
    analysis = Analysis(found)
    try:
        recorder = _recorder(record, found, analysis, not no_redact, capture_bytes)
    except typer.Exit:
        abandon()
        raise
    pipeline = Pipeline(processors=_processors(analysis, not no_redact, record_stdin), sinks=[sink])
    if otel is not None:
        pipeline.sinks.append(otel)
    observer = _observer(observe, analysis, found, pipeline, settle)
    _attach_recorder(recorder, pipeline, observer)
    config = _relay_config(found, capture_bytes, add_request_header=_propagation(otel, otel_propagate))
    gate = StartupGate(analysis) if observer is not None else None
    if gate is not None:
        config.hold = gate.hold
    tap = Tap(listening, config, pipeline)
    env = dict(os.environ, DOCKER_HOST=listening.url)
    env.pop("DOCKER_CONTEXT", None)  # DOCKER_HOST must win, whatever context is current

    evidence_banner: list[str] = []

    async def start_observing() -> None:
        assert observer is not None and gate is not None
        try:
            await observer.start()
        finally:
            config.hold = None  # from now on the relay asks nothing
            gate.open()
        evidence_banner.append(observer.banner())  # what was on while CMD ran

    async def main() -> int:
        loop = asyncio.get_running_loop()
        await tap.start()
        # CMD starts at once; the gate holds what could reach below the engine until the
        # observers are up, so starting them costs a `docker ps` nothing and a `docker run` no evidence.
        observing = loop.create_task(start_observing()) if observer is not None else None
        proc = await asyncio.create_subprocess_exec(executable, *command[1:], env=env)
        # The terminal sends ^C to CMD itself; we stay up until CMD decides to exit.
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        loop.add_signal_handler(signal.SIGTERM, lambda: proc.send_signal(signal.SIGTERM))
        loop.add_signal_handler(signal.SIGHUP, lambda: proc.send_signal(signal.SIGHUP))
        code = await proc.wait()
        if observing is not None:
            if not observing.done() and gate is not None and not gate.held:
                observing.cancel()  # nothing CMD did could reach below the engine: no evidence to wait for
            try:
                await observing
            except asyncio.CancelledError:
                evidence_banner.append("evidence: not needed (nothing CMD did reached below the engine)")
            except Exception as exc:  # the sources say why they are off; the trace goes on without them
                evidence_banner.append(f"evidence: the observers failed to start: {exc}")
        await tap.stop()
        if observer is not None:
            await observer.finish_all()
            await observer.stop()
        return code

    try:
        with asyncio.Runner(loop_factory=install_fast_loop()) as runner:
            code = runner.run(main())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if recorder is not None:
            recorder.close(dropped=tap.hub.dropped)
        _close_otel(otel, report=False)
    exit_code = 128 - code if code < 0 else code
    try:
        if writer:
            writer.close()
        else:
            trace_stream.write(collected.render(fmt, color, bodies))
            if observer is not None and fmt is TraceFormat.text:
                trace_stream.write("".join(f"dockertap: {line}\n" for line in evidence_banner))
            trace_stream.flush()
        if trace_file:
            trace_stream.close()
    except OSError as exc:  # CMD ran; only the trace could not be written: say so, keep CMD's status
        where = trace_file or "stderr"
        raise _fail(f"cannot write the trace to {where}: {exc.strerror or exc}", exit_code or 1) from None
    _report_otel(otel)  # after the trace, so it reads as a footer
    raise typer.Exit(exit_code)
