"""mitmproxy flow files: export a session for mitmweb/mitmdump, import captures made with mitmproxy.

Export builds real `HTTPFlow`s (client = the docker CLI process, server = the backend socket) and
writes them with `mitmproxy.io.FlowWriter`. dockertap's own facts (route, layers, client command,
hijacked streams) travel in `flow.metadata["dockertap"]`, which mitmproxy keeps and shows.

Import reads flow files and HAR alike through `mitmproxy.io.FlowReader`, rebuilds relay-style
exchanges from them, redacts them, analyses them with the same route and layer model as a live
tap, and writes a session file.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from mitmproxy import connection, http
from mitmproxy.io import FlowReader, FlowWriter

from dockertap.proxy.capture import materialize
from dockertap.proxy.exchange import Capture, Exchange, HijackCapture, PeerInfo
from dockertap.recordings.format import (
    RecordedExchange,
    Session,
    SessionWriter,
    decode_bytes,
    in_request_order,
    open_private,
)
from dockertap.recordings.har import DEFAULT_HOST, HIJACK_FACTS, response_marks, session_facts


def _address(url: str | None) -> tuple[str, int]:
    """mitmproxy wants (host, port); a Unix socket becomes (its path, 0)."""
    if not url:
        return ("docker", 0)
    if url.startswith("unix://"):
        return (url[len("unix://") :], 0)
    hostport = url.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return (host or hostport, int(port) if port.isdigit() else 0)


def _metadata(rec: RecordedExchange) -> dict[str, Any]:
    record = rec.record
    meta: dict[str, Any] = {
        "id": record.get("id"),
        "started": record.get("t_start"),
        "route": record.get("route"),
        "object_id": record.get("object_id"),
        "layers": record.get("layers", []),
        "evidence": record.get("evidence", []),
        "mismatches": record.get("mismatches", []),
        "client": record.get("client"),
        "error": record.get("error"),
        "synthetic": record.get("synthetic"),
        "response_marks": response_marks(rec),
    }
    hijack = record.get("hijack")
    if hijack is not None:
        meta["hijack"] = {
            **{key: hijack.get(key) for key in HIJACK_FACTS},
            "streams": [
                {"t": s["t"], "stream": s["stream"], "data": decode_bytes(s["encoding"], s["data"])}
                for s in hijack.get("streams", [])
            ],
            "frames": [{"t": t, "dir": d, "data": data} for t, d, data in rec.hijack_frames()],
        }
    return meta


def exchange_to_flow(rec: RecordedExchange, backend_url: str | None) -> http.HTTPFlow:
    ex = rec.to_exchange()
    materialize(ex)
    client = rec.record.get("client") or {}
    client_conn = connection.Client(
        peername=(f"pid {client.get('pid')}: {client.get('command') or '?'}", client.get("pid") or 0),
        sockname=("dockertap", 0),
        timestamp_start=ex.started,
        id=str(
            uuid.uuid5(
                uuid.NAMESPACE_URL, f"dockertap-connection-{rec.record.get('connection')}-{ex.started}"
            )
        ),
    )
    client_conn.timestamp_end = ex.ended
    server_conn = connection.Server(
        address=_address(backend_url or rec.record.get("backend_url")),
        timestamp_start=ex.started,
        timestamp_tcp_setup=ex.started,
    )
    server_conn.timestamp_end = ex.ended
    flow = http.HTTPFlow(client_conn, server_conn)
    request = ex.request or http.Request.make(rec.method, rec.target)
    request.scheme = "http"
    request.host = request.headers.get("host", DEFAULT_HOST)
    request.port = 80
    flow.request = request
    flow.response = ex.response
    if flow.response is not None:
        # proxy.capture's head parsing leaves the line end on the reason phrase.
        flow.response.reason = flow.response.reason.strip()
    flow.metadata["dockertap"] = _metadata(rec)
    if rec.record.get("error") and ex.response is None:
        from mitmproxy.flow import Error

        flow.error = Error(rec.record["error"], ex.ended or ex.started)
    return flow


def write_flows(session: Session, path: str) -> int:
    backend_url = session.header.get("backend_url")
    with open_private(path, binary=True) as out:
        writer = FlowWriter(out)
        for number, rec in enumerate(in_request_order(session)):
            flow = exchange_to_flow(rec, backend_url)
            if number == 0:  # flow files have no session-wide place: the first flow carries it
                flow.metadata["dockertap"]["session"] = session_facts(session)
            writer.add(flow)
    return len(session.exchanges)


# -- import -------------------------------------------------------------------------------------


def read_foreign_flows(path: str) -> list[http.HTTPFlow]:
    """HTTP flows from a mitmproxy flow file or a HAR file (mitmproxy's reader handles both).

    A HAR entry's dockertap fields (`_client`, `_hijack`, `_layers`…) go to the flow's
    `metadata["dockertap"]`, where a flow file exported by dockertap carries them.
    """
    with open(path, "rb") as source:
        if source.read(1).lstrip() not in (b"{", b""):  # a flow file (tnetstring), not HAR's JSON
            source.seek(0)
            return [f for f in FlowReader(source).stream() if isinstance(f, http.HTTPFlow)]
        source.seek(0)
        flows = [f for f in FlowReader(source).stream() if isinstance(f, http.HTTPFlow)]
        source.seek(0)
        try:
            log = json.load(source)["log"]
            entries = log["entries"]
        except (ValueError, KeyError, TypeError):
            return flows
    if len(entries) == len(flows):  # mitmproxy reads every entry, in order
        for flow, entry in zip(flows, entries, strict=True):
            meta = _har_metadata(entry)
            if meta:
                flow.metadata["dockertap"] = meta
            post = entry.get("request", {}).get("postData") or {}
            if post.get("_encoding") == "base64":  # mitmproxy reads postData as text only
                flow.request.content = base64.b64decode(post.get("text", ""))
        if flows and isinstance(log.get("_dockertap"), dict):
            flows[0].metadata.setdefault("dockertap", {})["session"] = log["_dockertap"]
    return flows


def _har_metadata(entry: dict[str, Any]) -> dict[str, Any]:
    """A dockertap HAR entry's custom fields, in the shape flow-file metadata has."""
    meta = {key[1:]: value for key, value in entry.items() if key.startswith("_") and key != "_hijack"}
    hijack = entry.get("_hijack")
    if isinstance(hijack, dict):
        meta["hijack"] = {
            **{key: hijack.get(key) for key in HIJACK_FACTS},
            "frames": [
                {"t": f["t"], "dir": f["dir"], "data": _har_bytes(f)} for f in hijack.get("frames") or []
            ],
        }
    return meta


def _har_bytes(item: dict[str, Any]) -> bytes:
    text = item.get("text", "")
    return base64.b64decode(text) if item.get("encoding") == "base64" else text.encode("utf-8")


def _request_head(request: http.Request) -> bytes:
    lines = [f"{request.method} {request.path} {request.http_version or 'HTTP/1.1'}".encode()]
    lines += [name + b": " + value for name, value in request.headers.fields]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _response_head(response: http.Response) -> bytes:
    lines = [
        f"{response.http_version or 'HTTP/1.1'} {response.status_code} {response.reason.strip()}".encode()
    ]
    lines += [name + b": " + value for name, value in response.headers.fields]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _capture(data: bytes, at: float) -> Capture:
    capture = Capture(limit=max(len(data), 1))
    if data:
        capture.data += data
        capture.marks.append((at, 0))
    capture.total = len(data)
    return capture


#: The most a content-encoded body may decode to in an import. Docker API bodies that are this
#: big (image tarballs, build contexts) are never content-encoded, so more is a decompression bomb.
MAX_DECODED_BODY = 64 << 20


class ImportLimitError(ValueError):
    """A capture holds something the import refuses to expand (a decompression bomb)."""


def _bounded_pieces(encoding: str, data: bytes) -> Iterable[bytes]:
    """Decode `data` piece by piece, each piece bounded, so a bomb is caught before it expands."""
    import zlib

    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
        if encoding == "deflate" and data[:1] and (data[0] & 0x0F) != 8:
            wbits = -zlib.MAX_WBITS  # raw deflate, as mitmproxy also accepts
        decoder = zlib.decompressobj(wbits)
        pending = data
        while pending:
            yield decoder.decompress(pending, 1 << 20)
            pending = decoder.unconsumed_tail
        yield decoder.flush(1 << 20)
    elif encoding == "br":
        import brotli

        decompressor = brotli.Decompressor()
        for start in range(0, len(data), 16):  # brotli cannot bound its output; small inputs do
            yield decompressor.process(data[start : start + 16])
    elif encoding == "zstd":
        import io

        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
            while piece := reader.read(1 << 20):
                yield piece


def check_decoded_size(message: http.Message, what: str, limit: int = MAX_DECODED_BODY) -> None:
    """Refuse a body whose Content-Encoding would expand it beyond `limit` bytes."""
    encoding = message.headers.get("content-encoding", "").strip().lower()
    data = message.raw_content or b""
    if not encoding or encoding == "identity" or not data:
        return
    size = 0
    try:
        for piece in _bounded_pieces(encoding, data):
            size += len(piece)
            if size > limit:
                raise ImportLimitError(
                    f"{what}: its {encoding}-encoded body ({len(data)} bytes) decodes to more than "
                    f"{limit >> 20} MiB; refusing to expand it (a decompression bomb?)"
                )
    except ImportLimitError:
        raise
    except Exception:  # undecodable: mitmproxy keeps such bodies as they are, so do we
        return


def flow_to_exchange(flow: http.HTTPFlow, number: int) -> Exchange:
    """A relay-style exchange from a mitmproxy flow (bodies unchunked, so framing is Content-Length)."""
    request = flow.request
    which = f"exchange {number} ({request.method} {request.path[:80]})"
    check_decoded_size(request, f"{which} request")
    if flow.response is not None:
        check_decoded_size(flow.response, f"{which} response")
    meta = flow.metadata.get("dockertap") or {}
    started = meta.get("started") or request.timestamp_start or time.time()
    meta_client = meta.get("client") or {}
    request_body = request.raw_content or b""
    head = _request_head(request)
    ex = Exchange(
        id=number,
        connection_id=number,
        sequence=1,
        peer=PeerInfo(
            meta_client.get("pid"), meta_client.get("uid"), meta_client.get("gid"), meta_client.get("command")
        ),
        backend=_backend_of(flow),
        request_head=_dechunked_head(head, len(request_body)),
        request_body=_capture(request_body, started),
        response_body=Capture(limit=1),
        started=started,
    )
    ex.request_ended = request.timestamp_end or started
    response = flow.response
    if response is not None:
        body = response.raw_content or b""
        ex.response_head = _dechunked_head(_response_head(response), len(body))
        ex.response_started = response.timestamp_start or ex.request_ended
        ex.response_body = _capture(body, ex.response_started)
        marks = meta.get("response_marks")
        if marks and body:  # the pacing the live tap saw, from a dockertap export
            ex.response_body.marks = [(started + float(t), int(offset)) for t, offset in marks]
        ex.ended = response.timestamp_end or ex.response_started
    else:
        ex.ended = ex.request_ended
    if flow.error is not None:
        ex.error = flow.error.msg
    ex.error = ex.error or meta.get("error")  # also for an answer cut short (no flow error then)
    ex.synthetic = bool(meta.get("synthetic"))
    if isinstance(meta.get("hijack"), dict):
        ex.hijack = _hijack_from(meta["hijack"], started)
    return ex


def _hijack_from(meta: dict[str, Any], started: float) -> HijackCapture:
    """The hijacked stream's exact bytes and timing, from a dockertap export's metadata."""
    frames = [(started + float(f["t"]), f["dir"], bytes(f["data"])) for f in meta.get("frames") or []]
    captured = sum(len(data) for _, _, data in frames)
    hijack = HijackCapture(limit=max(meta.get("captured") or captured, 1))
    hijack.frames.extend(frames)  # type: ignore[arg-type]
    hijack.captured = captured
    hijack.client_bytes = meta.get("client_bytes") or 0
    hijack.backend_bytes = meta.get("backend_bytes") or 0
    for side in ("client_closed", "backend_closed"):
        if meta.get(side) is not None:
            setattr(hijack, f"{side}_at", started + float(meta[side]))
    return hijack


def _restore_annotation(ex: Exchange, meta: dict[str, Any]) -> None:
    """What the live tap observed (layer statuses, evidence), when the export carried it: an import
    re-derives only what the model expects, so it would otherwise mark nothing observed."""
    from dockertap.analyzers.annotate import LayerStatus

    annotation = ex.annotation
    layers = meta.get("layers")
    if annotation is None or not isinstance(layers, list) or not layers:
        return
    annotation.layers = [  # type: ignore[attr-defined]
        LayerStatus(
            layer["layer"], list(layer.get("operations", [])), layer.get("status", "expected"),
            dict(layer.get("operation_status") or {}),
        )
        for layer in layers
    ]  # fmt: skip
    annotation.evidence = list(meta.get("evidence") or [])  # type: ignore[attr-defined]
    annotation.mismatches = list(meta.get("mismatches") or [])  # type: ignore[attr-defined]


def _dechunked_head(head: bytes, length: int) -> bytes:
    """Flows and HAR hold decoded bodies: replace chunked framing by the body's length."""
    lines = head.split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"transfer-encoding:")]
    if len(kept) != len(lines) and not any(line.lower().startswith(b"content-length:") for line in kept):
        kept.insert(1, f"Content-Length: {length}".encode())
    return b"\r\n".join(kept)


def _backend_of(flow: http.HTTPFlow) -> str:
    address = flow.server_conn.address if flow.server_conn else None
    if not address:
        return ""
    host, port = address
    return f"unix://{host}" if host.startswith("/") else f"tcp://{host}:{port}"


def what_the_import_lacks(flows: list[http.HTTPFlow]) -> list[str]:
    """What a replay of the imported session cannot show, said once per kind (never silently)."""
    notes = []
    bare = [f for f in flows if not f.metadata.get("dockertap")]
    if bare:
        notes.append(
            f"{len(bare)} of {len(flows)} exchanges carry no dockertap metadata (a capture made elsewhere): "
            "their client command lines and observed layers are unknown; layers show what the model expects"
        )
    streamless = [
        f for f in flows
        if f.response is not None and f.response.status_code == 101
        and not ((f.metadata.get("dockertap") or {}).get("hijack") or {}).get("frames")
    ]  # fmt: skip
    if streamless:
        notes.append(
            f"{len(streamless)} hijacked streams (attach, exec) have no bytes in the capture: "
            "container stdin/stdout/stderr of those will replay empty"
        )
    return notes


def import_flows(flows: Iterable[http.HTTPFlow], out: str, *, redact: bool = True) -> int:
    """Write a session file from foreign flows, redacted and analysed like a live tap's."""
    from dockertap.analyzers.annotate import annotate
    from dockertap.analyzers.redact import Redactor

    redactor = Redactor() if redact else None
    flows = list(flows)
    exchanges = [flow_to_exchange(flow, n) for n, flow in enumerate(flows, 1)]
    for ex in exchanges:
        materialize(ex)
    facts = (flows[0].metadata.get("dockertap") or {}).get("session") or {} if flows else {}
    first = _timestamp(facts.get("started")) or min((ex.started for ex in exchanges), default=None)
    backend_url = facts.get("backend_url") or next((ex.backend for ex in exchanges if ex.backend), None)
    # dockertap's own export carries the session's last known fingerprint (image store, versions
    # learnt after its header was written); a foreign capture's is inferred from its answers.
    backend = _recorded_backend(facts.get("backend")) or infer_backend(exchanges, backend_url)
    writer = SessionWriter(
        out,
        backend=backend,
        backend_url=backend_url,
        redacted=redact,
        started=first,
        extra={"imported": True},
    )
    try:
        for record in facts.get("evidence") or []:
            if isinstance(record, dict):
                writer.write_evidence(record)
        for ex, flow in zip(exchanges, flows, strict=True):
            if redactor is not None:
                redactor("end", ex)
            method, target = ex.method_and_target
            ex.annotation = annotate(method, target, backend, _json_body(ex))
            _restore_annotation(ex, flow.metadata.get("dockertap") or {})
            writer.write_exchange(ex)
    finally:
        writer.close()
    return len(exchanges)


def _recorded_backend(data: object):
    """The `BackendFingerprint` an export's session facts carry, or None."""
    from dockertap.analyzers.fingerprint import BackendFingerprint

    if not isinstance(data, dict):
        return None
    try:
        return BackendFingerprint(**{**data, "reasons": tuple(data.get("reasons") or ())})
    except TypeError:
        return None


def _timestamp(rfc3339_text: object) -> float | None:
    from datetime import datetime

    if not isinstance(rfc3339_text, str):
        return None
    try:
        return datetime.fromisoformat(rfc3339_text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def infer_backend(exchanges: list[Exchange], endpoint_url: str | None):
    """The backend fingerprint from the capture's own `/_ping`, `/version` and `/info` answers.

    A live tap probes the engine; an import can only learn from what the client asked, as the
    live tap's passive refresh does.
    """
    from dockertap.analyzers.fingerprint import fingerprint
    from dockertap.analyzers.routes import match_route

    ping: dict[str, str] | None = None
    documents: dict[str, dict] = {}
    for ex in exchanges:
        response = ex.response
        if response is None or response.status_code != 200:
            continue
        template = match_route(*ex.method_and_target).template
        if template.endswith(" /_ping"):
            ping = dict(response.headers.items())
        elif template in ("GET /version", "GET /info"):
            try:
                documents[template] = json.loads(response.content or b"")
            except ValueError:
                continue
    if ping is None and not documents:
        return None
    return fingerprint(
        ping, documents.get("GET /version"), documents.get("GET /info"), endpoint_url=endpoint_url
    )


def _json_body(ex: Exchange) -> object | None:
    request = ex.request
    if request is None or not request.raw_content or "json" not in request.headers.get("content-type", ""):
        return None
    try:
        return json.loads(request.raw_content)
    except ValueError:
        return None
