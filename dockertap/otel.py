"""OpenTelemetry export: each exchange as a span, its evidence as child spans, over OTLP/HTTP.

The sink only copies the finished exchange's trace record into a bounded queue on the relay's
loop; a worker thread builds the spans with the official SDK and exports them in batches, so a
slow or absent collector can never slow the relay: when the queue is full the record is dropped
and counted, and failed exports are counted too (one warning, a total at the end).

Span shape (HTTP semantic conventions, span kind CLIENT: dockertap makes the call to the engine):
  dockertap run's command (root, only for `dockertap run`)
  └── POST /containers/{id}/start             one per exchange (hijacked streams: their whole life)
      ├── containerd /tasks/start             one per observed evidence item
      └── runc create
Evidence with no request behind it is a trace of its own (`background: …`). A request that
carries a W3C `traceparent` is joined: its exchange span becomes a child of the caller's span.

Optional: needs `pip install 'dockertap[otel]'` (opentelemetry-sdk and the OTLP/HTTP exporter).
"""

from __future__ import annotations

import os
import queue
import random
import re
import shlex
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockertap import __version__
from dockertap.proxy.exchange import Exchange, header_value
from dockertap.proxy.hub import Event

INSTALL_HINT = "pip install 'dockertap[otel]'"
QUEUE_LIMIT = 10_000
BATCH_SPANS = 512
BATCH_SECONDS = 1.0
CLOSE_SECONDS = 5.0
EXPORT_TIMEOUT_SECONDS = 3.0
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class OtelUnavailable(Exception):
    """Export was asked for but cannot run (the extra is not installed); the message says how."""


def export_requested(otlp: str | None, env: Mapping[str, str]) -> bool:
    """`--otlp URL`, or the standard variables that turn an OTLP exporter on (honouring
    `OTEL_SDK_DISABLED` and `OTEL_TRACES_EXPORTER=none`)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if otlp:
        return True
    exporters = {name.strip() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()}
    if "none" in exporters:
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return bool("otlp" in exporters or endpoint)


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """(trace id, parent span id) of a valid W3C traceparent, else None (all-zero ids are invalid)."""
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16 or match.group(3) == "ff":
        return None
    return match.group(1), match.group(2)


def new_traceparent(trace_id: str) -> str:
    """A traceparent for a request dockertap relays: the caller's trace, a fresh span id (which the
    exchange's own span then takes), sampled."""
    return f"00-{trace_id}-{random.getrandbits(64) or 1:016x}-01"


@dataclass(frozen=True)
class SpanJob:
    """What the worker needs to draw one exchange: its trace record and the raw timing floats."""

    record: dict[str, Any]
    started: float
    ended: float
    traceparent: str
    injected: bool


@dataclass(frozen=True)
class BackgroundJob:
    record: dict[str, Any]


@dataclass
class ExportStats:
    spans_exported: int = 0
    spans_dropped: int = 0
    records_dropped: int = 0
    last_error: str | None = None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _command_name(argv: Sequence[str]) -> str:
    """`docker run`, `docker compose up`: the program and its subcommand words, as a span name."""
    words = [os.path.basename(argv[0])] if argv else ["?"]
    for word in argv[1:]:
        if word.startswith("-") or len(words) >= 3:
            break
        words.append(word)
    return " ".join(words)


def _layers_attribute(layers: Any) -> list[str]:
    return [f"{item.get('layer')}:{item.get('status')}" for item in layers or () if isinstance(item, dict)]


def exchange_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """HTTP semantic-convention attributes plus dockertap's own, for one exchange's span."""
    backend_url = str(record.get("backend_url") or "")
    route = str(record.get("route") or "")
    attributes: dict[str, Any] = {
        "http.request.method": record.get("method") or "",
        "url.path": record.get("path") or "",
        "server.address": backend_url,
        "network.transport": "unix" if backend_url.startswith("unix://") else "tcp",
        "http.request.body.size": int(record.get("request_bytes") or 0),
        "http.response.body.size": int(record.get("response_bytes") or 0),
        "dockertap.exchange.id": int(record.get("id") or 0),
        "dockertap.connection.id": int(record.get("connection") or 0),
        "dockertap.hijacked": bool(record.get("hijacked")),
    }
    if route:
        attributes["http.route"] = route.split(" ", 1)[-1]
    if record.get("status") is not None:
        attributes["http.response.status_code"] = int(record["status"])
    client = record.get("client") or {}
    if client.get("command"):
        attributes["dockertap.client.command"] = str(client["command"])
    if client.get("pid") is not None:
        attributes["dockertap.client.pid"] = int(client["pid"])
    backend = record.get("backend") or {}
    for key in ("family", "product", "engine_version"):
        if backend.get(key):
            attributes[f"dockertap.backend.{key}"] = str(backend[key])
    layers = _layers_attribute(record.get("layers"))
    if layers:
        attributes["dockertap.layers"] = layers
    if record.get("object_id"):
        attributes["dockertap.object_id"] = str(record["object_id"])
    if record.get("error"):
        attributes["error.type"] = str(record["error"])
    return attributes


def evidence_span_name(item: Mapping[str, Any]) -> str:
    if item.get("source") == "containerd":
        return f"containerd {item.get('topic') or '?'}"
    program = item.get("program") or os.path.basename(str((item.get("argv") or ["?"])[0]))
    command = item.get("runtime_command")
    return f"{program} {command}" if command else str(program)


def evidence_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {"dockertap.evidence.source": str(item.get("source") or "")}
    if item.get("layer"):
        attributes["dockertap.layer"] = str(item["layer"])
    if item.get("topic"):
        attributes["dockertap.containerd.topic"] = str(item["topic"])
    if item.get("namespace"):
        attributes["dockertap.containerd.namespace"] = str(item["namespace"])
    if item.get("container_id"):
        attributes["container.id"] = str(item["container_id"])
    if item.get("pid") is not None:
        attributes["process.pid"] = int(item["pid"])
    if item.get("argv"):
        attributes["process.command_args"] = [str(arg) for arg in item["argv"]]
    return attributes


class OtelExport:
    """A sink: exchanges in (on the relay's loop), spans out (on a worker thread)."""

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        warn: Any = None,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self._sdk = _load_sdk()
        self.stats = ExportStats()
        self._warn = warn or (lambda text: print(f"dockertap: {text}", file=sys.stderr))
        self._warned = False
        self._jobs: queue.Queue[SpanJob | BackgroundJob | None] = queue.Queue(QUEUE_LIMIT)
        self._endpoint = endpoint
        self._command = list(command) if command else None
        self._started = time.time()
        #: The trace every exchange of `dockertap run` belongs to (and `--otel-propagate` sends on).
        self.trace_id = f"{random.getrandbits(128) or 1:032x}"
        self._root_span_id = f"{random.getrandbits(64) or 1:016x}"
        self._in_flight = 0
        self._collected: list[Any] = []
        _quiet_sdk_logging()
        self._worker = threading.Thread(target=self._work, name="dockertap-otel", daemon=True)
        self._closed = threading.Event()
        self._worker.start()

    def next_traceparent(self) -> str:
        """The traceparent `--otel-propagate` adds: `dockertap run`'s trace, or (proxy) a new one."""
        trace_id = self.trace_id if self._command is not None else f"{random.getrandbits(128) or 1:032x}"
        return new_traceparent(trace_id)

    # -- on the relay's loop: copy, enqueue, never wait -------------------------------------

    def handle_batch(self, batch: list[Event]) -> None:
        from dockertap.recordings.trace import trace_record

        for kind, ex in batch:
            if kind == "end":
                self._offer(self._job(ex, trace_record(ex)))

    def handle_background(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._offer(BackgroundJob(dict(record)))

    def _job(self, ex: Exchange, record: dict[str, Any]) -> SpanJob:
        injected = "traceparent" in ex.added_headers
        return SpanJob(
            record=record,
            started=ex.started,
            ended=ex.ended or time.time(),
            traceparent=header_value(ex.request_head, "traceparent"),
            injected=injected,
        )

    def _offer(self, job: SpanJob | BackgroundJob) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.stats.records_dropped += 1

    # -- the worker thread --------------------------------------------------------------------

    def _work(self) -> None:
        try:
            self._run_worker()
        except Exception as err:  # a bug here must cost spans, never the relay or the command
            self.stats.last_error = f"{type(err).__name__}: {err}"
            self.stats.records_dropped += self._jobs.qsize()
            self._warn(f"warning: OpenTelemetry export stopped ({self.stats.last_error})")
        finally:
            self._closed.set()

    def _run_worker(self) -> None:
        sdk = self._sdk
        self._ids = _PresetIds(sdk)
        provider = sdk.TracerProvider(
            resource=sdk.Resource.create({"service.name": "dockertap", "service.version": __version__}),
            id_generator=self._ids,
        )
        provider.add_span_processor(_Collect(self._collected))
        self._tracer = provider.get_tracer("dockertap", __version__)
        self._exporter = sdk.OTLPSpanExporter(**self._exporter_options())
        last_export = time.monotonic()
        while True:
            try:
                job = self._jobs.get(timeout=BATCH_SECONDS)
            except queue.Empty:
                job = False  # type: ignore[assignment]
            if job is None:
                break
            if isinstance(job, SpanJob):
                self._draw_exchange(job)
            elif isinstance(job, BackgroundJob):
                self._draw_background(job.record)
            if len(self._collected) >= BATCH_SPANS or time.monotonic() - last_export >= BATCH_SECONDS:
                self._export()
                last_export = time.monotonic()
        if self._command is not None:
            self._draw_root()
        self._export()
        self._exporter.shutdown()

    def _exporter_options(self) -> dict[str, Any]:
        """The SDK reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, headers, timeout and compression
        itself; `--otlp` sets the endpoint, and an unset timeout is kept short (the SDK retries
        a refused connection until it runs out), so `dockertap run` never lingers at exit."""
        options: dict[str, Any] = {}
        if self._endpoint:
            options["endpoint"] = self._endpoint.rstrip("/") + "/v1/traces"
        env = self._env
        if not (env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT")):
            options["timeout"] = EXPORT_TIMEOUT_SECONDS
        return options

    def _root_context(self) -> Any:
        sdk = self._sdk
        parent = sdk.SpanContext(
            trace_id=int(self.trace_id, 16),
            span_id=int(self._root_span_id, 16),
            is_remote=False,
            trace_flags=sdk.TraceFlags(sdk.TraceFlags.SAMPLED),
        )
        return sdk.set_span_in_context(sdk.NonRecordingSpan(parent))

    def _parent_for(self, job: SpanJob) -> Any:
        sdk = self._sdk
        parsed = parse_traceparent(job.traceparent) if job.traceparent else None
        if parsed is not None and job.injected:
            # dockertap wrote this traceparent: the engine's spans name its span id as their
            # parent, so the exchange span takes exactly that id.
            self._ids.next_span_id = int(parsed[1], 16)
            return self._root_context() if self._command is not None else self._bare_trace_context(parsed[0])
        if parsed is not None:
            remote = sdk.SpanContext(
                trace_id=int(parsed[0], 16),
                span_id=int(parsed[1], 16),
                is_remote=True,
                trace_flags=sdk.TraceFlags(sdk.TraceFlags.SAMPLED),
            )
            return sdk.set_span_in_context(sdk.NonRecordingSpan(remote))
        return self._root_context() if self._command is not None else None

    def _bare_trace_context(self, trace_id: str) -> Any:
        """A parent that fixes the trace id for a root exchange span (proxy mode, injected id)."""
        self._ids.next_trace_id = int(trace_id, 16)
        return None

    def _draw_exchange(self, job: SpanJob) -> None:
        sdk = self._sdk
        record = job.record
        name = record.get("route") or f"{record.get('method') or '?'} {record.get('path') or '?'}"
        context = self._parent_for(job)
        span = self._tracer.start_span(
            str(name),
            context=context,
            kind=sdk.SpanKind.CLIENT,
            attributes=exchange_attributes(record),
            start_time=_ns(job.started),
        )
        status = record.get("status")
        if record.get("error") or (isinstance(status, int) and status >= 500):
            span.set_status(sdk.Status(sdk.StatusCode.ERROR, str(record.get("error") or status)))
        self._draw_evidence(record.get("evidence") or (), sdk.set_span_in_context(span), job.ended)
        span.end(end_time=_ns(max(job.ended, job.started)))

    def _draw_evidence(self, items: Any, context: Any, fallback_end: float) -> None:
        for item in items:
            if not isinstance(item, dict):
                continue
            start = float(item.get("time") or fallback_end)
            end = float(item.get("ended") or start)
            child = self._tracer.start_span(
                evidence_span_name(item),
                context=context,
                kind=self._sdk.SpanKind.INTERNAL,
                attributes=evidence_attributes(item),
                start_time=_ns(start),
            )
            child.end(end_time=_ns(max(end, start)))

    def _draw_background(self, record: Mapping[str, Any]) -> None:
        items = [item for item in record.get("items") or () if isinstance(item, dict)]
        when = float(record.get("time") or time.time())
        ended = max([float(i.get("ended") or i.get("time") or when) for i in items] + [when])
        what = "container exit" if record.get("kind") == "container-exit" else "no request"
        attributes: dict[str, Any] = {"dockertap.background": str(record.get("kind") or "")}
        if record.get("container_id"):
            attributes["container.id"] = str(record["container_id"])
        if record.get("observed_by"):
            attributes["dockertap.observed_by"] = [int(k) for k in record["observed_by"]]
        span = self._tracer.start_span(
            f"background: {what}",
            context=None,
            kind=self._sdk.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(when),
        )
        self._draw_evidence(items, self._sdk.set_span_in_context(span), ended)
        span.end(end_time=_ns(ended))

    def _draw_root(self) -> None:
        from dockertap.analyzers.redact import redact_command

        assert self._command is not None
        self._ids.next_trace_id = int(self.trace_id, 16)
        self._ids.next_span_id = int(self._root_span_id, 16)
        span = self._tracer.start_span(
            _command_name(self._command),
            context=None,
            kind=self._sdk.SpanKind.INTERNAL,
            attributes={
                "process.command_line": redact_command(shlex.join(self._command)) or "",
                "dockertap.run": True,
            },
            start_time=_ns(self._started),
        )
        span.end(end_time=_ns(time.time()))

    def _export(self) -> None:
        if not self._collected:
            return
        batch, self._collected[:] = list(self._collected), []
        self._in_flight = len(batch)
        try:
            result = self._exporter.export(batch)
            ok = result == self._sdk.SpanExportResult.SUCCESS
            error = None if ok else "the collector is unreachable or refused them"
        except Exception as err:  # the exporter's own errors are many; none may reach the relay
            ok, error = False, f"{type(err).__name__}: {err}"
        self._in_flight = 0
        if ok:
            self.stats.spans_exported += len(batch)
            return
        self.stats.spans_dropped += len(batch)
        self.stats.last_error = error
        if not self._warned:
            self._warned = True
            self._warn(f"warning: OpenTelemetry export failed ({error}); spans are dropped and counted")

    # -- closing --------------------------------------------------------------------------------

    def close(self, timeout: float = CLOSE_SECONDS) -> ExportStats:
        """Draw what is queued, export it within TIMEOUT, and count what could not go."""
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            pass
        if not self._closed.wait(timeout):
            # The collector is still not answering: what it never received is lost.
            self.stats.spans_dropped += self._in_flight + len(self._collected)
            self.stats.records_dropped += self._jobs.qsize()
            waited = f"no answer from the collector within {timeout:.0f}s"
            self.stats.last_error = self.stats.last_error or waited
        return self.stats

    def summary(self) -> str:
        stats = self.stats
        text = f"OpenTelemetry: {_count(stats.spans_exported, 'span')} exported"
        if stats.spans_dropped or stats.records_dropped:
            spans, exchanges = _count(stats.spans_dropped, "span"), _count(stats.records_dropped, "exchange")
            text += f", {spans} and {exchanges} dropped"
            if stats.last_error:
                text += f" ({stats.last_error})"
        return text


def _quiet_sdk_logging() -> None:
    """The SDK logs every failed attempt to stderr, in the middle of the docker command's output;
    dockertap says it once itself and counts the rest."""
    import logging

    sdk_log = logging.getLogger("opentelemetry")
    sdk_log.addHandler(logging.NullHandler())
    sdk_log.propagate = False


@dataclass
class _Sdk:
    """The SDK names we use, imported once (the extra is optional)."""

    TracerProvider: Any
    Resource: Any
    OTLPSpanExporter: Any
    SpanExportResult: Any
    SpanContext: Any
    TraceFlags: Any
    NonRecordingSpan: Any
    SpanKind: Any
    Status: Any
    StatusCode: Any
    set_span_in_context: Any
    RandomIdGenerator: Any
    SpanProcessor: Any


def _load_sdk() -> _Sdk:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.export import SpanExportResult
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceFlags,
            set_span_in_context,
        )
    except ImportError as err:
        needs = f"OpenTelemetry export needs the optional packages: {INSTALL_HINT} ({err})"
        raise OtelUnavailable(needs) from None
    return _Sdk(
        TracerProvider=TracerProvider,
        Resource=Resource,
        OTLPSpanExporter=OTLPSpanExporter,
        SpanExportResult=SpanExportResult,
        SpanContext=SpanContext,
        TraceFlags=TraceFlags,
        NonRecordingSpan=NonRecordingSpan,
        SpanKind=SpanKind,
        Status=Status,
        StatusCode=StatusCode,
        set_span_in_context=set_span_in_context,
        RandomIdGenerator=RandomIdGenerator,
        SpanProcessor=SpanProcessor,
    )


@dataclass
class _PresetIds:
    """Random ids, except where the next span must take an id already on the wire (a traceparent
    dockertap sent to the engine, the `run` root span its children already point at)."""

    sdk: Any
    next_span_id: int | None = None
    next_trace_id: int | None = None
    _random: Any = field(default=None)

    def __post_init__(self) -> None:
        self._random = self.sdk.RandomIdGenerator()

    def generate_span_id(self) -> int:
        preset, self.next_span_id = self.next_span_id, None
        return preset if preset is not None else int(self._random.generate_span_id())

    def is_trace_id_random(self) -> bool:
        return True  # preset ids were drawn at random too (ours, or the caller's)

    def generate_trace_id(self) -> int:
        preset, self.next_trace_id = self.next_trace_id, None
        return preset if preset is not None else int(self._random.generate_trace_id())


class _Collect:
    """A span processor that hands finished spans to the worker's own batch (so every export and
    every failure is ours to count)."""

    def __init__(self, sink: list[Any]) -> None:
        self._sink = sink

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        self._sink.append(span)

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
