"""OpenTelemetry export, checked by a real OTLP/HTTP receiver decoding the official protobufs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import engines
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the 'otel' extra is not installed")

from otlp_receiver import OtlpReceiver, ReceivedSpan  # noqa: E402

from dockertap.otel import exchange_attributes, export_requested, parse_traceparent  # noqa: E402

IMAGE = engines.BUSYBOX_TAG


@pytest.mark.parametrize(
    ("otlp", "env", "wanted"),
    [
        (None, {}, False),
        ("http://c:4318", {}, True),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        (None, {"OTEL_TRACES_EXPORTER": "otlp"}, True),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ("http://c:4318", {"OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_export_is_on_exactly_when_asked(otlp, env, wanted):
    assert export_requested(otlp, env) is wanted


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        (
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-00",
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
        ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", None),
        ("garbage", None),
    ],
)
def test_traceparent_is_parsed_as_w3c_says(value, parsed):
    assert parse_traceparent(value) == parsed


def test_exchange_attributes_follow_the_http_conventions():
    record = {
        "id": 3,
        "connection": 1,
        "method": "POST",
        "path": "/v1.41/containers/abc/start",
        "status": 204,
        "request_bytes": 193,
        "response_bytes": 165,
        "hijacked": False,
        "client": {"pid": 7, "command": "docker start abc"},
        "backend_url": "unix:///run/docker.sock",
        "route": "POST /containers/{id}/start",
        "backend": {"family": "dockerd", "engine_version": "28.5.2"},
        "layers": [{"layer": "dockerd", "status": "observed"}, {"layer": "runc", "status": "missing"}],
    }
    attributes = exchange_attributes(record)
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/containers/{id}/start"
    assert attributes["http.response.status_code"] == 204
    assert attributes["server.address"] == "unix:///run/docker.sock"
    assert attributes["network.transport"] == "unix"
    assert attributes["dockertap.layers"] == ["dockerd:observed", "runc:missing"]
    assert attributes["dockertap.backend.engine_version"] == "28.5.2"


@pytest.fixture
def receiver():
    server = OtlpReceiver()
    try:
        yield server
    finally:
        server.close()


def _dockertap(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*engines.dockertap_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=engines.docker_env("unix:///nonexistent", env),
    )


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id and s.trace_id == parent.trace_id]


def test_run_exports_one_trace_root_exchanges_and_evidence(dockerd, receiver):
    result = _dockertap(
        "run",
        "--backend",
        dockerd.url,
        "--otlp",
        receiver.endpoint,
        "--",
        "docker",
        "run",
        "--rm",
        IMAGE,
        "echo",
        "hi",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    assert "OpenTelemetry:" in result.stderr and "spans exported" in result.stderr, result.stderr
    ours = [s for s in receiver.spans if s.service == "dockertap"]
    roots = [s for s in ours if s.name == "docker run" and not s.parent_span_id]
    assert len(roots) == 1, [s.name for s in ours]
    root = roots[0]
    assert "echo hi" in root.attributes["process.command_line"]
    exchanges = _children(ours, root)
    names = [s.name for s in sorted(exchanges, key=lambda s: s.start_ns)]
    assert names[0] == "HEAD /_ping"
    for route in ("POST /containers/create", "POST /containers/{id}/attach", "POST /containers/{id}/start"):
        assert route in names, names
    # Everything but background evidence (a trace of its own: nobody asked for it) is one trace.
    background = [s for s in ours if s.trace_id != root.trace_id]
    assert all(s.name.startswith("background: ") or s.parent_span_id for s in background), background
    assert {s.name for s in background if not s.parent_span_id} <= {
        "background: container exit",
        "background: no request",
    }
    start = next(s for s in exchanges if s.name == "POST /containers/{id}/start")
    assert start.attributes["http.response.status_code"] == 204
    assert start.attributes["server.address"] == dockerd.url
    assert start.attributes["http.route"] == "/containers/{id}/start"
    assert any(layer.startswith("containerd:") for layer in start.attributes["dockertap.layers"])
    assert root.start_ns <= min(s.start_ns for s in exchanges) and root.end_ns >= max(
        s.end_ns for s in exchanges
    )
    if os.geteuid() == 0:  # observation is on by default as root: evidence becomes child spans
        evidence = _children(ours, start)
        assert evidence, "no evidence child spans under the start exchange"
        assert any(s.name.startswith(("runc ", "containerd /")) for s in evidence), [s.name for s in evidence]
        assert all(e.start_ns >= start.start_ns - 1_000_000_000 for e in evidence)


def test_standard_environment_variables_turn_export_on(dockerd, receiver):
    result = _dockertap(
        "run",
        "--backend",
        dockerd.url,
        "--no-observe",
        "--",
        "docker",
        "ps",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
    )
    assert result.returncode == 0, result.stderr
    assert any(s.name == "GET /containers/json" for s in receiver.spans)


def test_unreachable_collector_costs_a_warning_and_counted_drops(dockerd):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there once closed
    began = time.monotonic()
    result = _dockertap(
        "run",
        "--backend",
        dockerd.url,
        "--no-observe",
        "--otlp",
        f"http://127.0.0.1:{port}",
        "--",
        "docker",
        "ps",
        "-q",
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("OpenTelemetry export failed") <= 1
    assert "dropped" in result.stderr
    assert elapsed < 30, f"an unreachable collector held `dockertap run` for {elapsed:.1f}s"


def test_a_request_with_traceparent_joins_the_callers_trace(dockerd, receiver, short_tmp: Path):
    tap = engines.start_tap(dockerd.url, short_tmp, "--no-observe", "--otlp", receiver.endpoint)
    try:
        caller = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(tap.socket))
            traceparent = f"00-{caller[0]}-{caller[1]}-01"
            request = f"GET /_ping HTTP/1.1\r\nHost: docker\r\ntraceparent: {traceparent}\r\n\r\n"
            client.sendall(request.encode())
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        tap.stop()
    joined = [s for s in receiver.spans if s.name == "GET /_ping"]
    assert joined and joined[0].trace_id == caller[0] and joined[0].parent_span_id == caller[1]


def test_without_the_extra_the_option_says_how_to_get_it(short_tmp: Path):
    """`--otlp` with the SDK missing: one clear line naming the extra, exit 2 (simulated by a
    Python path where opentelemetry cannot be imported)."""
    blocker = short_tmp / "block"
    (blocker / "opentelemetry").mkdir(parents=True)
    (blocker / "opentelemetry" / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    result = _dockertap(
        "run",
        "--backend",
        "unix:///nonexistent.sock",
        "--otlp",
        "http://127.0.0.1:4318",
        "--",
        "true",
        env={"PYTHONPATH": str(blocker)},
    )
    assert result.returncode == 2, result.stderr
    assert "dockertap[otel]" in result.stderr and "Traceback" not in result.stderr
    assert json.dumps(result.returncode)


def test_one_trace_holds_the_command_dockertaps_exchanges_and_dockerds_own_spans(short_tmp: Path):
    """dockerd 28 exports its own spans (OTEL_EXPORTER_OTLP_ENDPOINT); with --otel-propagate they hang
    under dockertap's exchange spans, all in the trace whose root is the docker command."""
    if shutil.which("socat") is None or shutil.which("nsenter") is None:
        pytest.skip("needs socat and nsenter")
    base = engines.short_base("dto")
    (base / "run").mkdir(parents=True)
    receiver = OtlpReceiver(unix_path=str(base / "run" / "otlp.sock"))
    engine = None
    forward = None
    try:
        engine = engines.start_dockerd(
            base,
            engine_id="dockerd-28.5",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
        )
        # The engine has its own network namespace: its 127.0.0.1:4318 forwards to our receiver.
        forward = subprocess.Popen(
            [
                "nsenter",
                f"--net=/proc/{engine.pid}/ns/net",
                "socat",
                "TCP-LISTEN:4318,bind=127.0.0.1,fork,reuseaddr",
                f"UNIX-CONNECT:{base / 'run' / 'otlp.sock'}",
            ]
        )
        engines.import_busybox(engine)
        result = _dockertap(
            "run", "--backend", engine.url, "--otlp", receiver.endpoint, "--otel-propagate",
            "--format", "json", "--", "docker", "run", "--rm", IMAGE, "echo", "hi",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout == "hi\n"
        records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        exchanges = [r for r in records if "method" in r]
        assert exchanges and all(r.get("added_headers") == ["traceparent"] for r in exchanges), exchanges[:2]
        root = next(s for s in receiver.spans if s.service == "dockertap" and s.name == "docker run")
        ours = {
            s.span_id: s for s in receiver.spans if s.service == "dockertap" and s.trace_id == root.trace_id
        }
        deadline = time.monotonic() + 30
        theirs: list[ReceivedSpan] = []
        while time.monotonic() < deadline:
            theirs = [s for s in receiver.spans if s.service != "dockertap" and s.trace_id == root.trace_id]
            if any(
                ours.get(s.parent_span_id) and ours[s.parent_span_id].name.endswith("/start") for s in theirs
            ):
                break
            time.sleep(0.5)
        services = {s.service for s in receiver.spans}
        assert theirs, f"no engine span joined the trace (services seen: {services})"
        under = {ours[s.parent_span_id].name for s in theirs if s.parent_span_id in ours}
        assert "POST /containers/{id}/start" in under and "POST /containers/create" in under, under
        # dockerd starts its containerd with the same variables: the layers below join the trace too.
        names = {(s.service, s.name) for s in theirs}
        assert ("containerd", "containerd.services.tasks.v1.Tasks/Start") in names, sorted(names)
    finally:
        if forward is not None:
            forward.terminate()
            forward.wait(timeout=30)
        if engine is not None:
            engine.stop()
        receiver.close()
        shutil.rmtree(base, ignore_errors=True)


def test_propagate_without_export_is_a_usage_error():
    result = _dockertap("run", "--backend", "unix:///nonexistent.sock", "--otel-propagate", "--", "true")
    assert (
        result.returncode == 2
        and "--otel-propagate needs" in result.stderr
        and "Traceback" not in result.stderr
    )
