"""Session recordings made through the real relay against a real dockerd: format, crash safety,
redaction on every output channel, and HAR / mitmproxy-flow export and import."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import engines
import pytest
from mitmproxy.io.har import request_to_flow

from dockertap.recordings.format import FORMAT_VERSION, SessionFormatError, read_session

IMAGE = engines.BUSYBOX_TAG
SECRET = "S3cretPass"
MITMDUMP = str(Path(sys.executable).parent / "mitmdump")


def dockertap(*args: str, env: dict | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*engines.dockertap_command(), *args],
        capture_output=True,
        timeout=timeout,
        env=engines.docker_env("unix:///nonexistent", env),
    )


def record(dockerd, path: Path, *command: str, extra: tuple[str, ...] = (), env=None):
    return dockertap("run", "--backend", dockerd.url, "--record", str(path), *extra, "--", *command, env=env)


def test_run_record_writes_header_exchanges_demuxed_streams_and_footer(dockerd, tmp_path: Path) -> None:
    name = f"rec{os.getpid()}"
    session_file = tmp_path / "run.jsonl"
    result = record(
        dockerd, session_file, "docker", "run", "--name", name, IMAGE, "sh", "-c", "echo out; echo err >&2"
    )
    assert result.returncode == 0, result.stderr.decode()
    logs_file = tmp_path / "logs.jsonl"
    assert record(dockerd, logs_file, "docker", "logs", name).returncode == 0
    engines.docker(dockerd.url, "rm", "-f", name)

    session = read_session(session_file)
    assert session.warnings == [] and session.complete
    header = session.header
    assert (header["format"], header["version"], header["redacted"]) == (
        "dockertap-session",
        FORMAT_VERSION,
        True,
    )
    assert header["backend_url"] == dockerd.url and header["host"]["kernel"] == os.uname().release
    assert header["backend"]["family"] == "dockerd"
    assert session.footer["exchanges"] == len(session.exchanges) >= 4

    attach = next(ex for ex in session.exchanges if ex.route == "POST /containers/{id}/attach")
    hijack = attach["hijack"]
    assert attach.status == 101 and hijack["multiplexed"] is True
    # dockerd copies stdout and stderr in separate goroutines: their order on the wire varies.
    assert sorted((s, d) for _, s, d in attach.streams()) == [("stderr", b"err\n"), ("stdout", b"out\n")]
    # Raw frames give back exactly the bytes relayed, 8-byte headers included.
    backend_raw = attach.hijack_bytes("backend")
    assert len(backend_raw) == hijack["backend_bytes"]
    frames = (b"\x01\0\0\0\0\0\0\x04out\n", b"\x02\0\0\0\0\0\0\x04err\n")
    assert backend_raw in (frames[0] + frames[1], frames[1] + frames[0])  # exact framed bytes, either order
    create = next(ex for ex in session.exchanges if ex.route == "POST /containers/create")
    assert json.loads(create.request_body())["Image"] == IMAGE
    assert create.request_head().startswith(b"POST /v") and create.response_head().startswith(b"HTTP/1.1 201")
    rebuilt = create.to_exchange()
    assert rebuilt.request_head == create.request_head() and rebuilt.status == 201

    logs = next(ex for ex in read_session(logs_file).exchanges if ex.route == "GET /containers/{id}/logs")
    # The engine may interleave the two streams either way: compare contents, not order.
    assert sorted((s, d) for _, s, d in logs.streams()) == [("stderr", b"err\n"), ("stdout", b"out\n")]
    assert logs["response"]["body"]["chunked"] is True  # dockerd 20.10 streams logs chunked, unlabelled


def test_kill_9_loses_at_most_the_exchange_in_flight(dockerd, short_tmp: Path, tmp_path: Path) -> None:
    session_file = tmp_path / "crash.jsonl"
    sock = short_tmp / "p.sock"
    proxy = subprocess.Popen(
        [
            *engines.dockertap_command(),
            "proxy",
            "--plain",
            "--backend",
            dockerd.url,
            "--listen",
            f"unix://{sock}",
            "--record",
            str(session_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=engines.docker_env("unix:///nonexistent"),
    )
    try:
        deadline = time.time() + 20
        while not sock.exists() and time.time() < deadline:
            time.sleep(0.05)
        for _ in range(3):
            assert engines.docker(f"unix://{sock}", "version").returncode == 0
        time.sleep(0.3)  # the hub delivers in batches a few ms later
    finally:
        proxy.send_signal(signal.SIGKILL)
        proxy.communicate(timeout=10)
    session = read_session(session_file)
    assert len(session.exchanges) == 6  # 3 × (HEAD /_ping, GET /version)
    assert session.footer is None and any("no footer" in w for w in session.warnings)
    # A crash mid-write leaves half a line: the reader keeps the rest and says so.
    with open(session_file, "ab") as out:
        out.write(b'{"type":"exchange","id":99,"meth')
    torn = read_session(session_file)
    assert len(torn.exchanges) == 6 and any("truncated last record" in w for w in torn.warnings)


def test_reader_refuses_newer_major_version_and_ignores_unknown_fields(tmp_path: Path) -> None:
    newer = tmp_path / "v2.jsonl"
    newer.write_text(
        json.dumps({"type": "header", "format": "dockertap-session", "version": FORMAT_VERSION + 1}) + "\n"
    )
    with pytest.raises(SessionFormatError, match="newer than this dockertap"):
        read_session(newer)
    additive = tmp_path / "extra.jsonl"
    header = {"type": "header", "format": "dockertap-session", "version": FORMAT_VERSION, "future": 1}
    additive.write_text(json.dumps(header) + "\n" + json.dumps({"type": "future-kind"}) + "\n")
    assert read_session(additive).exchanges == []
    with pytest.raises(SessionFormatError, match="not a dockertap session"):
        read_session(Path(__file__))


def test_planted_secrets_reach_no_recording_trace_export_or_terminal(dockerd, tmp_path: Path) -> None:
    config = tmp_path / "dockercfg"
    config.mkdir()
    auth = base64.b64encode(f"u:{SECRET}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {"127.0.0.1:1": {"auth": auth}}}))
    env = {"DOCKER_CONFIG": str(config)}
    name = f"sec{os.getpid()}"
    runs = {
        "login": ("docker", "login", "-u", "u", "-p", SECRET, "127.0.0.1:1"),
        "pull": ("docker", "pull", "127.0.0.1:1/x"),
        "create": ("docker", "create", "--name", name, "-e", f"DB_PASSWORD={SECRET}", IMAGE, "true"),
        "inspect": ("docker", "container", "inspect", "--format", "{{.Id}}", name),
    }
    outputs: list[bytes] = []
    files: list[Path] = []
    try:
        for label, command in runs.items():
            session_file, trace = tmp_path / f"{label}.jsonl", tmp_path / f"{label}.trace.json"
            json_run = record(
                dockerd, session_file, *command, extra=("--format", "json", "-o", str(trace)), env=env
            )
            text_run = dockertap("run", "--backend", dockerd.url, "--", *command, env=env)
            outputs += [json_run.stdout, json_run.stderr, text_run.stdout, text_run.stderr]
            files += [session_file, trace]
            har, flows = tmp_path / f"{label}.har", tmp_path / f"{label}.flows"
            exported = dockertap("export", str(session_file), "--har", str(har), "--flows", str(flows))
            assert exported.returncode == 0, exported.stderr.decode()
            files += [har, flows]
            dumped = subprocess.run(
                [MITMDUMP, "-nr", str(flows), "--flow-detail", "4"], capture_output=True, timeout=60
            )
            outputs += [dumped.stdout, dumped.stderr]
    finally:
        engines.docker(dockerd.url, "rm", "-f", name)

    login = read_session(tmp_path / "login.jsonl")
    auth_exchange = next(ex for ex in login.exchanges if ex.route == "POST /auth")
    assert json.loads(auth_exchange.request_body())["password"] == "<redacted>"
    pull = read_session(tmp_path / "pull.jsonl")
    pull_exchange = next(ex for ex in pull.exchanges if ex.route == "POST /images/create")
    assert b"X-Registry-Auth: <redacted>" in pull_exchange.request_head()
    create = read_session(tmp_path / "create.jsonl")
    create_exchange = next(ex for ex in create.exchanges if ex.route == "POST /containers/create")
    assert "DB_PASSWORD=<redacted>" in json.loads(create_exchange.request_body())["Env"]
    assert any(
        b"DB_PASSWORD=<redacted>" in ex.response_body()
        for ex in read_session(tmp_path / "inspect.jsonl").exchanges
    )
    planted = [SECRET.encode(), auth.encode(), base64.b64encode(SECRET.encode())]
    for path in files:
        data = path.read_bytes()
        assert data and not any(p in data for p in planted), f"secret leaked into {path.name}"
    for i, output in enumerate(outputs):
        assert not any(p in output for p in planted), f"secret leaked into terminal output #{i}"


def test_no_redact_keeps_secrets_and_says_so(dockerd, tmp_path: Path) -> None:
    session_file = tmp_path / "raw.jsonl"
    result = record(
        dockerd,
        session_file,
        "docker",
        "login",
        "-u",
        "u",
        "-p",
        SECRET,
        "127.0.0.1:1",
        extra=("--no-redact",),
    )
    assert b"--no-redact" in result.stderr
    session = read_session(session_file)
    assert session.header["redacted"] is False and SECRET.encode() in session_file.read_bytes()


def test_har_and_flows_round_trip_through_mitmproxy_and_import(dockerd, tmp_path: Path) -> None:
    session_file = tmp_path / "s.jsonl"
    result = record(
        dockerd,
        session_file,
        "sh",
        "-c",
        f"echo hi | docker run -i --rm {IMAGE} cat; docker ps -a",
        extra=("--record-stdin",),  # stdin is withheld by default; this checks its round trip
    )
    assert result.returncode == 0, result.stderr.decode()
    session = read_session(session_file)
    session.exchanges.sort(key=lambda ex: ex["t_start"])  # exports list exchanges in request order
    har, flows = tmp_path / "s.har", tmp_path / "s.flows"
    assert dockertap("export", str(session_file), "--har", str(har), "--flows", str(flows)).returncode == 0

    entries = json.loads(har.read_text())["log"]["entries"]
    loaded = [request_to_flow(entry) for entry in entries]  # mitmproxy's own HAR reader
    assert [(f.request.method, f.request.path, f.response.status_code) for f in loaded] == [
        (ex.method, ex.target, ex.status) for ex in session.exchanges
    ]
    attach = next(e for e in entries if e["_route"] == "POST /containers/{id}/attach")
    assert {(s["stream"], s["text"]) for s in attach["_hijack"]["streams"]} >= {
        ("stdin", "hi\n"),
        ("stdout", "hi\n"),
    }
    assert attach["_client"]["command"].endswith(f"docker run -i --rm {IMAGE} cat")
    assert all(e["_layers"] and e["_layers"][0]["layer"] == "dockerd" for e in entries)

    dumped = subprocess.run([MITMDUMP, "-nr", str(flows)], capture_output=True, text=True, timeout=60)
    assert dumped.returncode == 0, dumped.stderr
    assert dumped.stdout.count("<< ") == len(session.exchanges)
    assert "/containers/json" in dumped.stdout

    for source in (har, flows):
        imported = tmp_path / f"{source.suffix[1:]}.jsonl"
        done = dockertap("import", str(source), "-o", str(imported))
        assert done.returncode == 0, done.stderr.decode()
        back = read_session(imported)
        assert back.header["imported"] is True
        assert [(ex.route, ex.status) for ex in back.exchanges] == [
            (ex.route, ex.status) for ex in session.exchanges
        ]
        # Same expected chains; a live tap may also have *observed* evidence an import cannot have.
        assert [_chain(ex) for ex in back.exchanges] == [_chain(ex) for ex in session.exchanges]
        assert back.backend["engine_version"] == session.backend["engine_version"]


def _chain(ex) -> list[tuple[str, list[str]]]:
    return [(layer["layer"], layer["operations"]) for layer in ex["layers"]]
