"""Redaction over relay-shaped exchanges: heads, bodies (plain and chunked), command lines, marks."""

from __future__ import annotations

import json

import pytest

from dockertap.analyzers.redact import (
    REDACTED,
    Redactor,
    is_secret_name,
    redact_command,
    redact_target,
    redact_text,
)
from dockertap.proxy.capture import materialize
from dockertap.proxy.exchange import Capture, Exchange, PeerInfo

SECRET = "S3cretPass"


def _exchange(
    head: bytes, body: bytes = b"", response_head: bytes | None = None, response: bytes = b""
) -> Exchange:
    request_body = Capture(limit=1 << 20)
    request_body.add(body) if body else None
    response_body = Capture(limit=1 << 20)
    response_body.add(response) if response else None
    ex = Exchange(
        id=1,
        connection_id=1,
        sequence=1,
        peer=PeerInfo(pid=1, uid=0, gid=0, command=f"docker create -e DB_PASSWORD={SECRET} img"),
        backend="unix:///x",
        request_head=head,
        request_body=request_body,
        response_body=response_body,
    )
    ex.request_ended = ex.started
    ex.response_head = response_head
    ex.response_chunked = bool(response_head and b"chunked" in response_head.lower())
    ex.ended = ex.started + 0.01
    return ex


def test_secret_names_are_data_driven_and_leave_ordinary_names_alone() -> None:
    for name in (
        "DB_PASSWORD",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "API_KEY",
        "IdentityToken",
        "password",
    ):
        assert is_secret_name(name), name
    for name in ("PATH", "HOME", "PWD", "HOSTNAME", "TERM", "Author"):
        assert not is_secret_name(name), name


def test_create_body_env_is_redacted_and_content_length_follows() -> None:
    body = json.dumps({"Env": [f"DB_PASSWORD={SECRET}", "PATH=/bin"], "Image": "img"}).encode()
    head = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n".encode()
    ex = _exchange(head, body)
    materialize(ex)
    Redactor()("end", ex)
    payload = bytes(ex.request_body.data)
    assert SECRET.encode() not in payload and SECRET not in (ex.peer.command or "")
    assert json.loads(payload)["Env"] == [f"DB_PASSWORD={REDACTED}", "PATH=/bin"]
    assert f"Content-Length: {len(payload)}".encode() in ex.request_head
    assert ex.request is not None and SECRET.encode() not in ex.request.raw_content
    assert not ex.request_body.truncated


def test_registry_headers_and_query_credentials() -> None:
    head = (
        b"POST /v1.41/images/create?fromImage=x&authconfig=abc HTTP/1.1\r\nHost: d\r\n"
        b"X-Registry-Auth: eyJwYXNzd29yZCI6IlMzY3JldFBhc3MifQ==\r\nX-Registry-Config: e30=\r\n\r\n"
    )
    ex = _exchange(head)
    Redactor()("request", ex)
    assert b"eyJwYXNz" not in ex.request_head and b"authconfig=abc" not in ex.request_head
    assert b"X-Registry-Auth: <redacted>" in ex.request_head and b"fromImage=x" in ex.request_head
    assert "%7B%22NPM_TOKEN%22" in redact_target("/build?buildargs=%7B%22NPM_TOKEN%22%3A%22t0k%22%7D")
    assert "t0k" not in redact_target("/build?buildargs=%7B%22NPM_TOKEN%22%3A%22t0k%22%7D")


def test_chunked_response_is_rechunked_with_marks_moved() -> None:
    doc = json.dumps({"Config": {"Env": [f"API_TOKEN={SECRET}"]}, "IdentityToken": SECRET}).encode()
    half = len(doc) // 2
    chunks = [doc[:half], doc[half:]]
    wire = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    response_head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ex = _exchange(b"GET /v1.41/containers/c/json HTTP/1.1\r\nHost: d\r\n\r\n", response_head=response_head)
    ex.response_body.add(wire[:40])
    ex.response_body.add(wire[40:])
    Redactor()("end", ex)
    raw = bytes(ex.response_body.data)
    assert SECRET.encode() not in raw
    from dockertap.proxy.framing import decode_chunked

    decoded = json.loads(decode_chunked(raw))
    assert decoded["IdentityToken"] == REDACTED and decoded["Config"]["Env"] == [f"API_TOKEN={REDACTED}"]
    assert raw.endswith(b"0\r\n\r\n") and ex.response_body.total == len(raw)
    assert all(0 <= offset <= len(raw) for _, offset in ex.response_body.marks)


def test_truncated_json_and_command_lines() -> None:
    cut = '{"username":"u","password":"' + SECRET + '","serveraddr'
    assert SECRET not in redact_text(cut)
    assert redact_command(f"docker login -u u -p {SECRET} reg") == f"docker login -u u -p {REDACTED} reg"
    assert (
        redact_command(f"docker login --password={SECRET} reg") == f"docker login --password={REDACTED} reg"
    )
    # -p is --publish outside `login`: left alone.
    assert redact_command("docker run -p 80:80 img") == "docker run -p 80:80 img"
    assert SECRET not in redact_command(f"docker run --env=MY_SECRET={SECRET} -eTOKEN={SECRET} img")


def test_stdio_streams_are_never_rewritten() -> None:
    frame = b"\x01\x00\x00\x00\x00\x00\x00\x10PASSWORD=visible"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n"
    ex = _exchange(
        b"GET /v1.41/containers/c/logs HTTP/1.1\r\nHost: d\r\n\r\n", response_head=head, response=frame
    )
    Redactor()("end", ex)
    assert bytes(ex.response_body.data) == frame


def test_argv_is_redacted_from_the_real_arguments() -> None:
    from dockertap.analyzers.redact import redact_argv

    assert redact_argv(["docker", "login", f"-p{SECRET}", "r"]) == ["docker", "login", f"-p{REDACTED}", "r"]
    assert redact_argv(["docker", "login", "--password", "a b", "reg"]) == [
        "docker",
        "login",
        "--password",
        REDACTED,
        "reg",
    ]
    assert redact_argv(["docker", "login", f"--password={SECRET}"])[-1] == f"--password={REDACTED}"
    assert redact_argv(["docker", "swarm", "join", "--token", SECRET, "m:2377"])[4] == REDACTED
    assert redact_argv(["docker", "run", "-e", f"API_TOKEN={SECRET} x", "i"])[3] == f"API_TOKEN={REDACTED}"
    assert redact_argv(["tool", f"--client-secret={SECRET}"])[1] == f"--client-secret={REDACTED}"
    assert redact_argv(["docker", "run", "-p", "80:80", "img"]) == ["docker", "run", "-p", "80:80", "img"]
    curl = redact_argv(["curl", "http://d/build?remote=https%3A%2F%2Fu%3Atok-1%40h%2Fx.git&t=a"])
    assert "tok-1" not in curl[1] and "t=a" in curl[1]
    assert "tok-2" not in redact_argv(["git", "clone", "https%3A%2F%2Fu%3Atok-2%40h%2Fx"])[2]


def test_peer_argv_is_what_the_redactor_uses() -> None:
    ex = _exchange(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    argv = ("docker", "login", "--password", "a b")
    ex.peer = PeerInfo(pid=1, uid=0, gid=0, command=" ".join(argv), argv=argv)
    Redactor()("request", ex)
    assert ex.peer.command == f"docker login --password {REDACTED}" and "b" not in ex.peer.command.split()


def test_a_secret_value_cut_by_the_capture_limit_loses_its_prefix_too() -> None:
    body = json.dumps({"Env": ["DB_PASSWORD=TOPSECRET-straddling-the-limit"]}).encode()
    head = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n\r\n"
    ex = _exchange(head)
    ex.request_body = Capture(limit=32)
    ex.request_body.add(body)
    assert ex.request_body.truncated and b"TOPSEC" in bytes(ex.request_body.data)
    Redactor()("end", ex)
    assert b"TOPSEC" not in bytes(ex.request_body.data)
    assert b"DB_PASSWORD=" + REDACTED.encode() in bytes(ex.request_body.data)


def test_set_cookie_is_redacted() -> None:
    ex = _exchange(
        b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        response_head=b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abcdef123; HttpOnly\r\n\r\n",
    )
    Redactor()("end", ex)
    head = ex.response_head or b""
    assert b"abcdef123" not in head and b"Set-Cookie: <redacted>" in head


def _hijacked(target: bytes) -> Exchange:
    from dockertap.proxy.exchange import HijackCapture

    ex = _exchange(
        b"POST " + target + b" HTTP/1.1\r\nHost: d\r\nUpgrade: tcp\r\n\r\n",
        response_head=b"HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\n",
    )
    ex.hijack = HijackCapture(limit=1 << 20)
    ex.hijack.add("client", b"AWS_SECRET_ACCESS_KEY=" + SECRET.encode() + b"\n")
    ex.hijack.add("backend", b"ok\n")
    return ex


def test_hijacked_stdin_is_withheld_with_size_and_time_kept() -> None:
    from dockertap.recordings.format import exchange_record

    ex = _hijacked(b"/v1.41/exec/abc/start")
    t0 = ex.hijack.frames[0][0]
    Redactor()("end", ex)
    record = json.dumps(exchange_record(ex))
    assert SECRET not in record and "AWS_SECRET" not in record
    assert ex.hijack.frames[0] == (t0, "client", b"") and ex.hijack.withheld == {0: 23 + len(SECRET)}
    assert ex.hijack.frames[1][2] == b"ok\n" and ex.hijack.client_bytes == 23 + len(SECRET)
    kept = _hijacked(b"/v1.41/exec/abc/start")
    Redactor(record_stdin=True)("end", kept)
    assert SECRET.encode() in kept.hijack.frames[0][2]


def test_buildkit_session_is_withheld_both_ways_even_with_record_stdin() -> None:
    ex = _hijacked(b"/v1.41/session")
    Redactor(record_stdin=True)("end", ex)
    assert all(data == b"" for _, _, data in ex.hijack.frames) and len(ex.hijack.withheld) == 2


def test_redaction_time_stays_linear_on_long_alphanumeric_runs() -> None:
    """A 64 KiB base64 value next to a secret-looking name: the URL rule once took 7 s on it."""
    import time

    body = '{"token_hint": "x", "blob": "' + "Qm9va3Mg" * 8192 + '"}'
    started = time.perf_counter()
    redact_text(body)
    redact_text(body[:-3])  # cut by the capture limit: the tail rules run too
    assert time.perf_counter() - started < 1.0


#: Every way a docker (or podman) command line carries a secret, one row each: (argv, the secret).
ARGV_SECRETS = [
    (["docker", "login", "-u", "u", "-p", "s3cr3t-a", "reg"], "s3cr3t-a"),
    (["docker", "login", "-u", "u", "-ps3cr3t-b", "reg"], "s3cr3t-b"),
    (["docker", "login", "--password", "two words-c", "reg"], "words-c"),
    (["docker", "login", "--password=s3cr3t-d", "reg"], "s3cr3t-d"),
    (["podman", "login", "-p", "s3cr3t-e", "reg"], "s3cr3t-e"),
    (["docker", "swarm", "join", "--token", "SWMTKN-1-f", "10.0.0.1:2377"], "SWMTKN-1-f"),
    (["docker", "swarm", "join", "--token=SWMTKN-1-g", "10.0.0.1:2377"], "SWMTKN-1-g"),
    (["docker", "run", "-e", "DB_PASSWORD=s3cr3t-h", "img"], "s3cr3t-h"),
    (["docker", "run", "-eAPI_TOKEN=s3cr3t-i", "img"], "s3cr3t-i"),
    (["docker", "run", "--env=GITHUB_TOKEN=s3cr3t-j", "img"], "s3cr3t-j"),
    (["docker", "exec", "-e", "AWS_SECRET_ACCESS_KEY=s3cr3t-k", "c", "sh"], "s3cr3t-k"),
    (["docker", "service", "create", "--env", "DB_PASS=s3cr3t-l", "img"], "s3cr3t-l"),
    (["docker", "build", "--build-arg", "NPM_TOKEN=s3cr3t-m", "."], "s3cr3t-m"),
    (["docker", "buildx", "create", "--driver-opt", "env.AWS_SECRET_ACCESS_KEY=s3cr3t-n"], "s3cr3t-n"),
    (["docker", "plugin", "set", "vieux/sshfs", "SSH_PASSWORD=s3cr3t-o"], "s3cr3t-o"),
    (["docker", "-H", "tcp://admin:s3cr3t-p@10.0.0.1:2376", "ps"], "s3cr3t-p"),
    (["docker", "swarm", "init", "--external-ca", "protocol=cfssl,url=https://u:s3cr3t-q@ca"], "s3cr3t-q"),
    (["docker", "import", "https://u:s3cr3t-r@host/rootfs.tar"], "s3cr3t-r"),
    (["docker", "compose", "run", "-e", "SECRET_KEY=s3cr3t-s", "web"], "s3cr3t-s"),
    (["curl", "--unix-socket", "/s", "http://d/build?remote=https%3A%2F%2Fu%3As3cr3t-t%40h"], "s3cr3t-t"),
]


@pytest.mark.parametrize(("argv", "secret"), ARGV_SECRETS, ids=[" ".join(a[:3]) for a, _ in ARGV_SECRETS])
def test_every_command_line_form_of_a_secret_is_redacted(argv: list[str], secret: str) -> None:
    from dockertap.analyzers.redact import redact_argv

    redacted = " ".join(redact_argv(argv))
    assert secret not in redacted and "redacted" in redacted, redacted
