"""Nothing displayed can drive the terminal: crafted recordings, client argv and engine answers.

The check is on the raw bytes the real commands write: no ESC, no C1 CSI (0x9b), no BEL, no DEL,
no bidi override, whatever the recording, the client's argv or the engine's JSON held — while the
escaped form stays visible, so the reader still sees that something was there.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakesock import DOCKER_PING_HEADERS, FakeServer
from faultkit import DOCKERTAP, wait_for

from dockertap.recordings.safe_text import json_safe, safe_block, safe_line

REPO = Path(__file__).resolve().parents[1]
OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;cHduZWQ=\x07"
OSC_LINK = "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J"
CONCEAL = "\x1b[8mhidden\x1b[0m"
C1_CSI = "\x9b2J"
BIDI = "\u202egnp.exe\u202c"
EVIL = OSC_TITLE + OSC_CLIPBOARD + OSC_LINK + CLEAR + CONCEAL + C1_CSI + BIDI + "\u200b\x7f\rX\nY"
#: Raw bytes that must never reach the terminal from content (rich's own SGR styles aside).
FORBIDDEN = [
    b"\x1b]",
    b"\x1b[2J",
    b"\x1b[8m",
    b"\xc2\x9b",
    b"\x07",
    b"\x7f",
    "\u202e".encode(),
    "\u200b".encode(),
]


def assert_inert(raw: bytes, *, styled: bool = False) -> None:
    if not styled:
        assert b"\x1b" not in raw, raw[max(0, raw.find(b"\x1b") - 80) : raw.find(b"\x1b") + 80]
    for bad in FORBIDDEN:
        assert bad not in raw, (bad, raw[max(0, raw.find(bad) - 80) : raw.find(bad) + 80])


def test_sanitiser_escapes_and_keeps_what_is_safe() -> None:
    assert safe_line(EVIL).startswith("\\x1b]0;pwned\\x07\\x1b]52;c;")
    assert "\\u202egnp.exe" in safe_line(EVIL) and "\\x9b2J" in safe_line(EVIL) and "\\x7f" in safe_line(EVIL)
    assert safe_line("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert safe_block("a\nb\tc\x1b[2J") == "a\nb\tc\\x1b[2J"
    assert safe_line("docker run 日本語 émoji 🐳 a\u3000b") == "docker run 日本語 émoji 🐳 a\u3000b"
    doc = json.dumps({"m": "\x7f\x9b\u202e🐳", "k": [1, "é"]}, ensure_ascii=False, indent=1)
    assert json.loads(json_safe(doc)) == json.loads(doc)
    assert_inert(json_safe(doc).encode())


def _crafted_recording(path: Path) -> None:
    """docker-run's recording with every displayed field replaced by terminal-driving text."""
    lines = [
        json.loads(line) for line in (REPO / "recordings/bundled/docker-run.jsonl").read_text().splitlines()
    ]
    header = lines[0]
    header["backend"] = dict(header.get("backend") or {}, product=EVIL, engine_version=EVIL)
    header["backend_url"] = EVIL
    exchanges = [rec for rec in lines if rec.get("type") == "exchange"]
    first = exchanges[0]
    for rec in exchanges:
        rec["client"]["command"] = f"/usr/bin/docker {EVIL} run"
        rec["evidence"] = [
            {"source": "exec", "argv": [EVIL], "program": EVIL, "runtime_command": EVIL, "layer": EVIL,
             "container_id": EVIL, "pid": EVIL, "time": rec["t_start"] + 0.01},
            {"source": "containerd", "topic": EVIL, "container_id": EVIL, "exec_id": EVIL,
             "time": rec["t_start"] + 0.02},
        ]  # fmt: skip
        rec["layers"] = [{"layer": EVIL, "operations": [EVIL], "status": "observed"}]
    one_line = EVIL.replace("\r", "").replace("\n", "")
    first["route"] = f"GET /containers/{EVIL}/json"
    first["method"], first["target"] = "GET", f"/v1.41/containers/{one_line}/json"
    # heads are stored as their raw bytes, latin-1 decoded
    first["request"]["head"] = f"GET {first['target']} HTTP/1.1\r\nHost: d\r\n\r\n".encode().decode("latin-1")
    first["error"] = EVIL
    message = json.dumps({"message": EVIL}).encode()
    first["response"]["head"] = (
        f"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(message)}\r\n\r\n"
    )
    first["response"]["body"] = {"encoding": "base64", "data": base64.b64encode(message).decode(),
                                 "size": len(message), "captured": len(message), "truncated": False,
                                 "chunked": False, "marks": [[0.001, 0]]}  # fmt: skip
    framed = EVIL.encode()
    stream = b"\x01\x00\x00\x00" + struct.pack(">I", len(framed)) + framed
    second = exchanges[1]
    second["hijack"] = None
    second["response"]["head"] = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n"
    )
    second["response"]["body"] = {"encoding": "base64", "data": base64.b64encode(stream).decode(),
                                  "size": len(stream), "captured": len(stream), "truncated": False,
                                  "chunked": False, "marks": [[0.001, 0]]}  # fmt: skip
    second["response"].pop("streams", None)
    background = {"type": "evidence", "source": "exec", "program": EVIL, "argv": [EVIL],
                  "time": exchanges[-1]["t_start"] + 0.5}  # fmt: skip
    path.write_text("".join(json.dumps(rec) + "\n" for rec in [*lines, background]))


def test_replay_of_a_crafted_recording_prints_no_control_bytes(tmp_path: Path) -> None:
    recording = tmp_path / "crafted.jsonl"
    _crafted_recording(recording)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TERM")}
    plain = subprocess.run([DOCKERTAP, "replay", str(recording)], capture_output=True, timeout=60, env=env)
    assert plain.returncode == 0, plain.stderr
    assert_inert(plain.stdout)
    assert_inert(plain.stderr)
    text = plain.stdout.decode()
    for shown in ("\\x1b]0;pwned\\x07", "\\x1b]52;c;", "\\x1b[2J", "\\x9b2J", "\\u202egnp.exe"):
        assert shown in text, shown  # escaped, still visible
    assert "docker \\x1b]0;pwned" in text  # the client command
    assert "error: \\x1b]0;pwned" in text  # the error
    assert "got: \\x1b]0;pwned" in text  # the JSON message
    assert "stdout │ \\x1b]0;pwned" in text  # container output
    styled = subprocess.run(
        [DOCKERTAP, "replay", str(recording)],
        capture_output=True,
        timeout=60,
        env={**env, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "200"},
    )
    assert styled.returncode == 0 and b"\x1b[" in styled.stdout  # styled: rich's own SGR codes only
    assert_inert(styled.stdout, styled=True)


def test_replay_serve_log_shows_crafted_routes_escaped(tmp_path: Path, short_tmp: Path) -> None:
    recording = tmp_path / "crafted.jsonl"
    _crafted_recording(recording)
    sock_path = short_tmp / "replay.sock"
    log, err = short_tmp / "serve.out", short_tmp / "serve.err"
    with open(log, "wb") as out, open(err, "wb") as errf:
        proc = subprocess.Popen(
            [DOCKERTAP, "replay", str(recording), "--serve", "--listen", str(sock_path), "--speed", "0"],
            stdout=out,
            stderr=errf,
            env={**os.environ, "FORCE_COLOR": "1"},
        )
    try:
        assert wait_for(lambda: b"export DOCKER_HOST" in err.read_bytes() or proc.poll() is not None, 20)
        assert proc.poll() is None, err.read_bytes()
        # one matches the crafted recorded exchange (its route is logged); one carries raw bytes itself
        # (the second is logged only if the request grammar lets its obs-text byte through)
        for target in (b"/v1.41/containers/zz/json", b"/v1.41/nothing/\x9b2J"):
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(10)
                conn.connect(str(sock_path))
                conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                while conn.recv(65536):
                    pass
        assert wait_for(lambda: b"recorded #1" in log.read_bytes(), 10), log.read_bytes()
    finally:
        proc.terminate()
        proc.wait(10)
    raw = log.read_bytes()
    assert b"/containers/\\x1b]0;pwned" in raw, raw
    assert b"/nothing/" not in raw or b"/nothing/\\x9b2J" in raw, raw
    assert_inert(raw, styled=True)
    assert_inert(err.read_bytes(), styled=True)


def _answer(head: bytes) -> bytes:
    target = head.split(b" ", 2)[1]
    if target == b"/_ping":
        return b"HTTP/1.1 200 OK\r\n" + DOCKER_PING_HEADERS + b"Content-Length: 2\r\n\r\nOK"
    if b"/logs" in target:
        framed = EVIL.encode()
        body = b"\x01\x00\x00\x00" + struct.pack(">I", len(framed)) + framed
        head_out = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
        return head_out + b"Content-Length: %d\r\n\r\n" % len(body) + body
    body = json.dumps({"message": EVIL, "Env": [EVIL]}, ensure_ascii=False).encode()
    return (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )


#: A client whose argv[0] is an escape sequence (`exec -a $'\e]0;pwn\a' …`), asking for crafted routes.
CLIENT = r"""
import socket, sys
for target in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
"""
TARGETS = ["/v1.41/containers/x/json", "/v1.41/containers/x/logs?stdout=1"]


def _run_client(sock_path: str) -> None:
    argv0 = OSC_TITLE + CLEAR + BIDI
    subprocess.run(
        ["bash", "-c", 'exec -a "$0" "$@"', argv0, sys.executable, "-c", CLIENT, sock_path, *TARGETS],
        check=True,
        timeout=30,
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_plain_proxy_output_of_a_crafted_client_argv_is_inert(short_tmp: Path, fmt: str) -> None:
    with FakeServer(str(short_tmp / "engine.sock"), _answer) as engine:
        sock_path = str(short_tmp / "dt.sock")
        proc = subprocess.Popen(
            [DOCKERTAP, "proxy", "--listen", f"unix://{sock_path}", "--backend", engine.url, "--plain",
             "--format", fmt, "--no-observe", "--settle", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert wait_for(lambda: os.path.exists(sock_path) or proc.poll() is not None, 20)
            _run_client(sock_path)
            time.sleep(1.0)
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=10)
    assert_inert(out)
    assert_inert(err)
    if fmt == "text":
        assert b"\\x1b]0;pwned" in out and len(out.splitlines()) == 2
    else:
        records = [json.loads(line) for line in out.splitlines()]
        assert records[0]["client"]["command"].startswith(OSC_TITLE)  # same data, escaped as JSON


def _read_pty(fd: int, until: float) -> bytes:
    data = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for exec -a")
def test_live_view_with_bodies_is_inert_on_a_real_terminal(short_tmp: Path) -> None:
    with FakeServer(str(short_tmp / "engine.sock"), _answer) as engine:
        sock_path = str(short_tmp / "dt.sock")
        pid, fd = pty.fork()
        if pid == 0:  # the child: dockertap proxy on a pseudo-terminal
            os.environ.update(TERM="xterm-256color", COLUMNS="200", LINES="50")
            os.execv(DOCKERTAP, [DOCKERTAP, "proxy", "--listen", f"unix://{sock_path}", "--backend",
                                 engine.url, "--bodies", "--no-observe", "--settle", "0"])  # fmt: skip
        try:
            output = _read_pty(fd, time.monotonic() + 1.0)
            assert wait_for(lambda: os.path.exists(sock_path), 20)
            _run_client(sock_path)
            output += _read_pty(fd, time.monotonic() + 2.0)
        finally:
            os.kill(pid, 15)
            output += _read_pty(fd, time.monotonic() + 2.0)
            os.waitpid(pid, 0)
    assert b"\\x1b]0;pwned" in output, output[-2000:]  # argv, JSON bodies and container output, escaped
    assert b"stdout" in output and b"\\x9b2J" in output
    assert_inert(output, styled=True)
