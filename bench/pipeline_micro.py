"""The sink pipeline alone, in-process: CPU per exchange, and a dump of everything it outputs.

    .venv/bin/python bench/pipeline_micro.py time [--count 20000]
    .venv/bin/python bench/pipeline_micro.py dump OUT.txt

`time` feeds keep-alive `/_ping` exchanges (request, response and end events, in hub-sized
batches) through the pipeline `dockertap proxy --format json` builds (redaction, analysis, evidence
observer, JSON trace; `--record` adds a recorder) and prints µs per exchange. `dump` runs a mixed
corpus — the bundled recordings with their evidence, planted secrets in heads, bodies and command
lines, changing `/_ping`, `/version` and `/info` answers — through the same pipeline plus text lines
and a recorder, and writes every output, so two versions of the pipeline can be diffed (run it with
PYTHONPATH pointing at the other tree).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from types import SimpleNamespace

from dockertap.evidence_wiring import Observer
from dockertap.proxy.endpoints import parse_endpoint
from dockertap.proxy.exchange import Capture, Exchange, PeerInfo
from dockertap.recordings.format import RecorderSink, SessionWriter, read_session
from dockertap.recordings.replayable import bundled_recordings
from dockertap.session import Pipeline
from dockertap.tapping import Analysis, TraceFormat, TraceSink, _processors

SECRET = "S3cretPass"
PING_HEAD = (
    b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Server: Docker/20.10.24 (linux)\r\nDate: Mon, 01 Jan 2024 00:00:%02d GMT\r\nContent-Length: 2\r\n\r\n"
)


def _discovery() -> SimpleNamespace:
    probe = SimpleNamespace(
        ok=True,
        ping_headers={"Api-Version": "1.41", "Server": "Docker/20.10.24 (linux)"},
        version={"Version": "20.10.24", "ApiVersion": "1.41"},
        info={"DefaultRuntime": "runc", "Driver": "overlay2", "Containerd": {"Address": "/run/c.sock"}},
    )
    return SimpleNamespace(probe=probe, endpoint=parse_endpoint("unix:///run/docker.sock"))


def _exchange(ident: int, head: bytes, body: bytes, response_head: bytes, response: bytes, **kw) -> Exchange:
    request_body, response_body = Capture(limit=65536), Capture(limit=65536)
    if body:
        request_body.add(body)
    if response:
        response_body.add(response)
    ex = Exchange(
        id=ident,
        connection_id=kw.get("connection", 1),
        sequence=ident,
        peer=PeerInfo(pid=42, uid=0, gid=0, command=kw.get("command", "docker ps")),
        backend="unix:///run/docker.sock",
        request_head=head,
        request_body=request_body,
        response_body=response_body,
        started=1_700_000_000.0 + ident,
    )
    ex.request_ended = ex.started + 0.0001
    ex.response_head = response_head
    ex.response_started = ex.started + 0.0002
    ex.response_chunked = b"chunked" in (response_head or b"").lower()
    ex.ended = ex.started + 0.0003
    for capture in (request_body, response_body):  # deterministic arrival marks, so dumps can be diffed
        capture.marks = [(ex.started + 0.0001, offset) for _, offset in capture.marks]
    return ex


def ping(ident: int, second: int = 0) -> Exchange:
    head = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockertap-bench\r\n\r\n"
    return _exchange(ident, head, b"", PING_HEAD % second, b"OK", command="python3 bench/client.py")


def _json_exchange(ident: int, method: str, target: str, body: object, status: str, answer: object, **kw):
    raw = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\n".encode()
    head += kw.pop("extra", b"")
    if raw:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(raw)
    head += b"\r\n"
    out = json.dumps(answer).encode()
    rhead = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(out)}\r\n\r\n"
    return _exchange(ident, head, raw, rhead.encode(), out, **kw)


def synthetic(start: int) -> list[Exchange]:
    auth = b"eyJwYXNzd29yZCI6IlMzY3JldFBhc3MifQ=="
    out = [
        _json_exchange(
            start,
            "POST",
            "/v1.41/containers/create?name=web",
            {"Env": [f"DB_PASSWORD={SECRET}", "PATH=/bin"], "Image": "img", "Labels": {"api_key": SECRET}},
            "201 Created",
            {"Id": "a" * 64, "Warnings": []},
            command=f"docker create -e DB_PASSWORD={SECRET} --name web img",
        ),
        _json_exchange(
            start + 1,
            "POST",
            "/v1.41/images/create?fromImage=x&authconfig=abc&tag=latest",
            None,
            "200 OK",
            {"status": "pulling"},
            extra=b"X-Registry-Auth: " + auth + b"\r\n",
        ),
        _json_exchange(
            start + 2,
            "POST",
            "/v1.41/auth",
            {"username": "u", "password": SECRET, "serveraddress": "reg"},
            "200 OK",
            {"Status": "Login Succeeded", "IdentityToken": SECRET},
            command=f"docker login -u u -p {SECRET} reg",
        ),
        _json_exchange(
            start + 3,
            "GET",
            "/v1.41/containers/" + "a" * 64 + "/json",
            None,
            "200 OK",
            {"Id": "a" * 64, "Name": "/web", "Config": {"Env": [f"API_TOKEN={SECRET}"]}},
        ),
        _json_exchange(
            start + 4,
            "POST",
            "/v1.41/build?buildargs=%7B%22NPM_TOKEN%22%3A%22t0k%22%7D&t=x",
            None,
            "200 OK",
            {"stream": "Step 1/1 : FROM scratch"},
            extra=b"X-Registry-Config: e30=\r\nAuthorization: Basic dTpw\r\nCookie: s=1\r\n",
        ),
        _json_exchange(
            start + 5,
            "POST",
            "/v1.41/containers/web/exec",
            {"Cmd": ["sh"], "Env": [f"MY_SECRET={SECRET}", "HOME=/"]},
            "201 Created",
            {"Id": "e" * 64},
        ),
        _json_exchange(
            start + 6,
            "GET",
            "/v1.41/containers/json?all=1",
            None,
            "200 OK",
            [{"Id": "b" * 64, "Labels": {"db.url": f"postgres://u:{SECRET}@db/x"}}],
        ),
        _json_exchange(start + 7, "POST", "/v1.41/containers/web/start", None, "204 No Content", None),
        _json_exchange(
            start + 8, "GET", "/v1.41/version", None, "200 OK", {"Version": "24.0.7", "ApiVersion": "1.43"}
        ),
        _json_exchange(
            start + 9, "GET", "/v1.41/info", None, "200 OK", {"DefaultRuntime": "runc", "Driver": "vfs"}
        ),
    ]
    chunked = json.dumps({"Config": {"Env": [f"API_TOKEN={SECRET}"]}, "IdentityToken": SECRET}).encode()
    wire = b"%x\r\n" % len(chunked) + chunked + b"\r\n0\r\n\r\n"
    ex = _exchange(
        start + 10,
        b"GET /v1.41/exec/" + b"e" * 64 + b"/json HTTP/1.1\r\nHost: d\r\n\r\n",
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        wire,
    )
    out.append(ex)
    return out


def corpus() -> tuple[list[Exchange], list[dict]]:
    exchanges: list[Exchange] = []
    items: list[dict] = []
    ident = 1
    for _name, path in sorted(bundled_recordings().items()):
        session = read_session(path)
        for rec in session.exchanges:
            ex = rec.to_exchange()
            ex.id = ident
            ident += 1
            exchanges.append(ex)
            items += [dict(i) for i in rec.get("evidence") or []]
        items += [dict(i) for r in session.evidence for i in (r.get("items") or [])]
    exchanges += synthetic(ident)
    ident += 100
    for k in range(6):
        exchanges.append(ping(ident + k, second=k // 2))
    return exchanges, items


def build(trace_write, text_write, record_to):
    analysis = Analysis(_discovery())
    pipeline = Pipeline(processors=_processors(analysis, True))
    writer = None
    if record_to is not None:
        writer = SessionWriter(record_to, backend=analysis.backend, backend_url="unix:///run/docker.sock")
        pipeline.sinks.append(RecorderSink(writer, backend=lambda: analysis.backend))
    pipeline.sinks.append(TraceSink(trace_write, TraceFormat.json, color=False))
    if text_write is not None:
        pipeline.sinks.append(TraceSink(text_write, TraceFormat.text, color=False))
    observer = Observer(analysis, "unix:///run/docker.sock", settle=0.15)
    observer.install(pipeline)
    observer.correlator.sources = {"exec": True, "containerd": True}
    observer._refresh_sources = lambda: None  # sources are not started here
    return pipeline, observer, writer


def _live_view(stage) -> tuple:
    """A live view (`--bodies`) drawing into a buffer, at a fixed clock, as the last sink."""
    from rich.console import Console

    import dockertap.live_view as live_view
    from dockertap.proxy.relay import RelayStats

    live_view.time = SimpleNamespace(time=lambda: 1_700_000_500.0)
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, force_terminal=False, color_system=None)
    view = live_view.LiveView(console, stats=RelayStats, backend_label="unix:///run/docker.sock", bodies=True)
    stage.sinks.append(view)
    return view, console, buffer


def dump(out_path: str) -> None:
    exchanges, items = corpus()
    trace, text = [], []
    record = io.BytesIO()
    pipeline, observer, writer = build(trace.append, text.append, record)
    view, console, buffer = _live_view(pipeline.sinks[0])
    ended = [ex.ended for ex in exchanges]
    for ex in exchanges:  # open while their requests are seen: the panel lists them
        ex.ended = None
    pipeline([("request", ex) for ex in exchanges])
    console.print(view._panel())
    for ex, when in zip(exchanges, ended, strict=True):
        ex.ended = when
    pipeline([("response", ex) for ex in exchanges if ex.response_head])
    observer.correlator.add(items)
    for i in range(0, len(exchanges), 7):  # ends in a few batches, as the hub delivers them
        pipeline([("end", ex) for ex in exchanges[i : i + 7]])
    observer._tick(everything=True)
    while not view._lines.empty():
        console.print(view._lines.get_nowait())
    writer.close()
    lines = record.getvalue().decode().splitlines()
    normalized = []
    for line in lines:
        data = json.loads(line)
        for key in ("started", "ended", "at", "dockertap", "host"):
            if data.get("type") in ("header", "footer", "backend"):
                data.pop(key, None)
        normalized.append(json.dumps(data, sort_keys=True))
    with open(out_path, "w") as out:
        out.write("".join(trace))
        out.write("".join(text))
        out.write("\n".join(normalized) + "\n")
        out.write(buffer.getvalue())
        out.write(f"errors {pipeline.errors}\n")
    blob = "".join(trace) + "".join(text) + record.getvalue().decode() + buffer.getvalue()
    print(f"{len(exchanges)} exchanges, {len(items)} items; secret present: {SECRET in blob}")


def timing(count: int, batch: int, record: bool) -> None:
    written = []
    pipeline, observer, writer = build(written.append, None, io.BytesIO() if record else None)
    exchanges = [ping(i) for i in range(count)]
    started = time.process_time()
    for i in range(0, count, batch):
        group = exchanges[i : i + batch]
        events = []
        for ex in group:  # the hub interleaves: request, response, end of each keep-alive exchange
            events += [("request", ex), ("response", ex), ("end", ex)]
        pipeline(events)
        observer._tick()
    observer._tick(everything=True)
    took = time.process_time() - started
    print(f"pipeline: {took / count * 1e6:.1f} µs CPU per exchange ({count} pings, batches of {batch})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["time", "dump"])
    parser.add_argument("out", nargs="?")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--record", action="store_true", help="time: with a recorder sink too (--record)")
    args = parser.parse_args()
    if args.mode == "dump":
        dump(args.out or "/dev/stdout")
    else:
        timing(args.count, args.batch, args.record)


if __name__ == "__main__":
    sys.exit(main())
