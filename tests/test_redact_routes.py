"""One case per place an Engine API route can carry a secret, generated from Moby's swagger.

`analyzers/data/secret_fields.json` (by `analyzers/data/gen_secret_fields.py`) lists every header,
query parameter and body field of every route where a secret can travel. Each row becomes an
exchange shaped like the real one — the secret at that field path, in that direction — run
through the `Redactor`; then the secret must be absent from everything a sink writes: the JSON
trace record, the session record (recordings, and so HAR/flows exports made from them), the
text line. A new secret field is one row of a table in `analyzers/redact.py` plus a regeneration.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import pytest

from dockertap.analyzers.redact import REDACTED, Redactor, is_secret_name
from dockertap.proxy.exchange import Capture, Exchange, PeerInfo
from dockertap.recordings.format import exchange_record
from dockertap.recordings.trace import trace_record
from dockertap.trace_view import LineRenderer

SECRET = "Zk9-s3cr3t-VALUE"
ROWS: list[dict[str, Any]] = json.loads(
    files("dockertap.analyzers").joinpath("data/secret_fields.json").read_text()
)["fields"]


def _nest(path: list[str], leaf: Any) -> Any:
    """`["Spec", "[]", "Data"]` → {"Spec": [{"Data": leaf}]}."""
    if not path:
        return leaf
    head, rest = path[0], path[1:]
    if head == "[]":
        return [_nest(rest, leaf)]
    if head == "{}":
        return {"some-key": _nest(rest, leaf)}
    return {head: _nest(rest, leaf), "Name": "harmless"}


def _target(route: str) -> tuple[str, str]:
    method, path = route.split(" ", 1)
    return method, "/v1.45" + re.sub(r"\{[^}]+\}", "abc123", path)


def _exchange(row: dict[str, Any]) -> Exchange:
    method, target = _target(row["route"])
    headers = [b"Host: api.moby.localhost"]
    request_body = b""
    response_body = b""
    leaf: Any = [f"DB_PASSWORD={SECRET}", "PATH=/bin"] if row["kind"] == "assignment" else SECRET
    if row["where"] == "header":
        headers.append(f"{row['field']}: {SECRET}".encode())
    elif row["where"] == "query":
        value = f"https://user:{SECRET}@git.example/x.git" if row["kind"] == "url" else SECRET
        target += f"?{row['field']}={quote(value, safe='')}"
    elif row["kind"] == "body":
        request_body = SECRET.encode()
        headers.append(b"Content-Type: application/octet-stream")
    else:
        document = json.dumps(_nest(row["field"].split("."), leaf)).encode()
        if row["where"] == "request":
            request_body = document
            headers.append(b"Content-Type: application/json")
        else:
            response_body = document
    if request_body:
        headers.append(f"Content-Length: {len(request_body)}".encode())
    head = f"{method} {target} HTTP/1.1\r\n".encode() + b"\r\n".join(headers) + b"\r\n\r\n"
    request_capture = Capture(limit=1 << 20)
    if request_body:
        request_capture.add(request_body)
    response_capture = Capture(limit=1 << 20)
    response_head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    if response_body:
        response_capture.add(response_body)
        response_head += f"Content-Length: {len(response_body)}\r\n".encode()
    ex = Exchange(
        id=1,
        connection_id=1,
        sequence=1,
        peer=PeerInfo(pid=1, uid=0, gid=0, command="docker x", argv=("docker", "x")),
        backend="unix:///x",
        request_head=head,
        request_body=request_capture,
        response_body=response_capture,
    )
    ex.request_ended = ex.started
    ex.response_head = response_head + b"\r\n"
    ex.response_started = ex.started
    ex.ended = ex.started + 0.01
    return ex


def test_the_swagger_rows_cover_the_cases_the_review_found() -> None:
    places = {(row["route"], row["field"]) for row in ROWS}
    for place in (
        ("GET /swarm", "JoinTokens.Worker"),
        ("GET /swarm", "JoinTokens.Manager"),
        ("POST /secrets/create", "Data"),
        ("POST /configs/create", "Data"),
        ("POST /swarm/init", "Spec.CAConfig.SigningCAKey"),
        ("POST /auth", "password"),
        ("POST /auth", "identitytoken"),
        ("POST /auth", "registrytoken"),
        ("POST /auth", "auth"),
        ("POST /images/create", "X-Registry-Auth"),
        ("POST /images/create", "fromSrc"),
        ("POST /build", "X-Registry-Config"),
        ("POST /containers/create", "Env"),
    ):
        assert place in places, place
    assert len(ROWS) >= 50


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['route']} {r['where']} {r['field']}" for r in ROWS])
def test_every_secret_carrying_place_is_redacted_in_every_sink(row: dict[str, Any]) -> None:
    ex = _exchange(row)
    Redactor()("end", ex)
    written = [
        ex.request_head,
        bytes(ex.request_body.data),
        ex.response_head or b"",
        bytes(ex.response_body.data),
        json.dumps(trace_record(ex)).encode(),
        json.dumps(exchange_record(ex)).encode(),
        LineRenderer(color=False).render([ex]).encode(),
    ]
    for text in written:
        assert SECRET.encode() not in text, (row, text)
    assert REDACTED.encode() in b"".join(written) or quote(REDACTED).encode() in b"".join(written)


def test_names_are_normalised_however_they_are_spelled() -> None:
    for name in ("SigningCAKey", "signing_ca_key", "signing-ca-key", "SIGNINGCAKEY", "JoinToken"):
        assert is_secret_name(name), name
    for name in ("SecretName", "SecretID", "DetachKeys", "SandboxKey", "CertIssuerPublicKey", "Author"):
        assert not is_secret_name(name), name
