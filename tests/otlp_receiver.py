"""A real OTLP/HTTP receiver for tests: decodes every export with the official protobuf messages
(`opentelemetry-proto`), so what senders (dockertap, the docker CLI, dockerd) emit is checked as a
collector would see it, not as our own exporter meant it."""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn, UnixStreamServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    scope: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int


@dataclass
class OtlpReceiver:
    """Listens on 127.0.0.1 (an ephemeral port); `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT takes."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    fail_with: int | None = None
    #: Also listen on this Unix socket (an engine in its own network namespace reaches it through
    #: a forwarder there, e.g. socat from its 127.0.0.1:4318).
    unix_path: str | None = None

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, dict(self.headers)))
                if receiver.fail_with is not None:
                    self.send_response(receiver.fail_with)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path.rstrip("/").endswith("/v1/traces"):
                    receiver._take(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._lock = threading.Lock()
        self._servers: list[Any] = [ThreadingHTTPServer(("127.0.0.1", 0), Handler)]
        if self.unix_path:
            self._servers.append(_UnixHTTPServer(self.unix_path, Handler))
        self._server = self._servers[0]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _take(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
                service = str(resource.get("service.name", ""))
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            ReceivedSpan(
                                service=service,
                                scope=scope_spans.scope.name,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                name=span.name,
                                kind=span.kind,
                                start_ns=span.start_time_unix_nano,
                                end_ns=span.end_time_unix_nano,
                                attributes={kv.key: _value(kv.value) for kv in span.attributes},
                                status_code=span.status.code,
                            )
                        )

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


class _UnixHTTPServer(ThreadingMixIn, UnixStreamServer):
    daemon_threads = True
