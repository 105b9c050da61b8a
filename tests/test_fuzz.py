"""Fuzzing the framing boundary THROUGH THE REAL RELAY (hypothesis).

Every case is a whole conversation: the client's bytes (split at random points, shut down for
writing at the end) against a scripted backend's bytes (split too). Three generators:

* well-formed conversations (pipelined requests with Content-Length/chunked bodies, 1xx, HEAD,
  204/304, close, until-close, 101 and raw-stream hijacks with arbitrary bytes after them):
  everything must arrive unchanged both ways and no exchange may carry an error;
* the same conversations MUTATED (bytes flipped, inserted, deleted, duplicated, truncated, framing
  numbers replaced by absurd ones): the relay may stop early, but only with an error recorded on an
  exchange or a synthetic answer, or where nothing an engine could act on was left (an unfinished
  head at EOF, a response nobody asked for, after a close);
* "token soup": streams assembled from HTTP fragments, which reaches the odd parser states fastest.

Always: what each side received is a prefix of what the other sent (plus, for the client, at most
one synthetic error answer at the end) — the relay never alters or injects bytes; the relay's
`stats.errors` stays 0; the event loop reports no unhandled exception; no task is left behind;
and a long-lived keep-alive connection through the same relay answers a ping in every case.

Profiles (tests/conftest.py): HYPOTHESIS_PROFILE=ci (default, ≥ 10,000 cases over this module)
or deep (local soak).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time

import pytest
from conftest import selected_engines
from go_oracle import GoOracle, GoUnavailable
from hypothesis import example, given, settings
from hypothesis import strategies as st
from relay_harness import CONTROL_RESPONSE, Conversation, RelayRig, bulk_roundtrip, split_at

from dockertap.proxy.framing import find_head_end

# -- generators ------------------------------------------------------------------------------

METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"HEAD"]
TARGETS = [b"/_ping", b"/v1.41/containers/json?all=1", b"/v1.41/events", b"/v1.41/images/create?fromImage=x"]
# Cheap to draw but sometimes long: a few arbitrary bytes, or a short pattern repeated up to 3 KB
# (long enough to span several socket reads and the relay's head-read size boundaries).
payloads = st.one_of(
    st.binary(max_size=12),
    st.tuples(st.integers(0, 3000), st.binary(min_size=1, max_size=3)).map(lambda t: (t[1] * t[0])[: t[0]]),
)


@st.composite
def chunked_body(draw) -> bytes:
    chunks = [c for c in draw(st.lists(payloads, max_size=4)) if c]
    ext = draw(st.sampled_from([b"", b";ext=1"]))
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks)
    trailer = draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"]))
    return out + b"0\r\n" + trailer + b"\r\n"


@st.composite
def request(draw, last: bool, routes: list[tuple[bytes, bytes]] | None = None) -> tuple[bytes, bytes]:
    """(request bytes, method)."""
    if routes:
        method, target = draw(st.sampled_from(routes))
    else:
        method, target = draw(st.sampled_from(METHODS)), draw(st.sampled_from(TARGETS))
    headers = [b"Host: docker", b"User-Agent: Docker-Client/28.2.2 (linux)"]
    kind = draw(st.sampled_from(["none", "length", "chunked"]))
    body = b""
    if kind == "length":
        body = draw(payloads)
        headers.append(b"Content-Length: %d" % len(body))
    elif kind == "chunked":
        body = draw(chunked_body())
        headers.append(b"Transfer-Encoding: chunked")
    if last and draw(st.booleans()):
        headers.append(b"Connection: close")
    return b"%s %s HTTP/1.1\r\n%s\r\n\r\n%s" % (method, target, b"\r\n".join(headers), body), method


@st.composite
def response(draw, method: bytes, last: bool) -> tuple[bytes, bool]:
    """(response bytes, whether it ends the conversation)."""
    informational = draw(st.sampled_from([b"", b"HTTP/1.1 100 Continue\r\n\r\n"]))
    kinds = ["length", "chunked", "empty", "204"]
    if last:
        kinds += ["until-close", "close"]
    kind = draw(st.sampled_from(kinds))
    head, body, ends = [b"Api-Version: 1.41", b"Content-Type: application/json"], b"", False
    status = b"200 OK"
    if kind == "length" or kind == "close":
        body = draw(payloads)
        head.append(b"Content-Length: %d" % len(body))
        if kind == "close":
            head.append(b"Connection: close")
            ends = True
    elif kind == "chunked":
        body = draw(chunked_body())
        head.append(b"Transfer-Encoding: chunked")
    elif kind == "empty":
        head.append(b"Content-Length: 0")
    elif kind == "204":
        status = b"204 No Content"
    elif kind == "until-close":
        body = draw(payloads)
        ends = True
    if method == b"HEAD":
        body = b""  # a HEAD response has no body, whatever its headers say (RFC 9112 §6.3)
    return informational + b"HTTP/1.1 %s\r\n%s\r\n\r\n%s" % (status, b"\r\n".join(head), body), ends


HIJACK_HEADS = [
    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
    b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n",
]


@st.composite
def conversation(draw) -> tuple[bytes, bytes]:
    """A well-formed conversation: (client bytes, backend bytes)."""
    count = draw(st.integers(1, 4))
    hijack = draw(st.integers(0, 3)) == 0  # the last exchange hijacks: attach / exec start
    client, backend = [], []
    for i in range(count):
        last = i == count - 1 and not hijack
        req, method = draw(request(last))
        client.append(req)
        resp, _ends = draw(response(method, last))
        backend.append(resp)
    if hijack:
        client.append(
            b"POST /v1.41/containers/c1/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + draw(payloads)
        )
        backend.append(draw(st.sampled_from(HIJACK_HEADS)) + draw(payloads))
    return b"".join(client), b"".join(backend)


def splits(data_len_hint: int = 2000):
    return st.lists(st.integers(0, data_len_hint), max_size=6)


# -- mutations ---------------------------------------------------------------------------------

ABSURD_NUMBERS = [b"-1", b"99999999999999999999", b"ffffffffffffffffff", b"0x10", b"1_0", b"+5", b" ", b""]
_NUMBER = re.compile(rb"(?<=Content-Length: )\d+|(?<=\r\n)[0-9a-f]+(?=\r\n)")


@st.composite
def mutated(draw, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate", "number"]))
        n = len(data)
        pos = draw(st.integers(0, n))
        if op == "flip" and n:
            pos = min(pos, n - 1)
            data = data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1 :]
        elif op == "insert":
            data = data[:pos] + draw(st.binary(min_size=1, max_size=20)) + data[pos:]
        elif op == "delete":
            data = data[:pos] + data[pos + draw(st.integers(1, 20)) :]
        elif op == "truncate":
            data = data[:pos]
        elif op == "duplicate":
            data = data[:pos] + data[pos : pos + draw(st.integers(1, 80))] + data[pos:]
        elif op == "number":
            numbers = list(_NUMBER.finditer(data))
            if numbers:
                m = draw(st.sampled_from(numbers))
                data = data[: m.start()] + draw(st.sampled_from(ABSURD_NUMBERS)) + data[m.end() :]
    return data


TOKENS = [
    b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.1\r\n", b"HEAD / HTTP/1.1\r\n", b"CONNECT h:1 HTTP/1.1\r\n",
    b"GET / HTTP/1.0\r\n", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 101 UPGRADED\r\n", b"HTTP/1.1 100 Continue\r\n",
    b"HTTP/1.1 204 No Content\r\n", b"HTTP/1.0 200 OK\r\n", b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 99999\r\n", b"Content-Length: 3, 4\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n", b"Connection: Upgrade\r\nUpgrade: tcp\r\n",
    b"Content-Type: application/vnd.docker.raw-stream\r\n", b"\r\n", b"\r\n\r\n", b"5\r\nhello\r\n",
    b"0\r\n\r\n", b"ffffffffffff\r\n", b"zz\r\n", b"hello", b"\x00\x01\xff", b" folded\r\n", b"\n",
]  # fmt: skip


def token_soup():
    return st.lists(st.sampled_from(TOKENS), max_size=14).map(b"".join)


# -- the invariant ----------------------------------------------------------------------------


def _synthetic_answer(result: Conversation) -> bytes:
    synthetic = [ex for ex in result.exchanges if ex.synthetic]
    assert len(synthetic) <= 1, "more than one synthetic answer on one connection"
    if not synthetic:
        return b""
    ex = synthetic[0]
    if "could not be delivered" in (ex.error or ""):
        return b""  # the relay had already closed the client's side (e.g. after an until-close body)
    return (ex.response_head or b"") + bytes(ex.response_body.data)


def _loss_explained(result: Conversation, relayed_to_client: bytes) -> bool:
    if result.flagged:
        return True
    lost_upstream = result.client_sent[len(result.backend_received) :]
    lost_downstream = result.backend_sent[len(relayed_to_client) :]
    closes = any(
        re.search(rb"(?i)\r\nconnection:[^\r]*close|^[^\r]* HTTP/1\.0\r\n", ex.request_head)
        or (ex.response_head and re.search(rb"(?i)\r\nconnection:[^\r]*close|^HTTP/1\.0 ", ex.response_head))
        or (
            ex.response_head
            and not re.search(rb"(?i)\r\n(content-length|transfer-encoding):", ex.response_head)
        )
        for ex in result.exchanges
    )
    # Upstream: an unfinished head at EOF, which no engine could act on, or bytes after a close.
    upstream_ok = not lost_upstream or closes or find_head_end(lost_upstream.lstrip(b"\r\n")) < 0
    # Downstream: bytes no request asked for (every exchange answered), or after a close.
    answered = all(ex.response_head for ex in result.exchanges)
    downstream_ok = not lost_downstream or closes or answered
    return upstream_ok and downstream_ok


class Tally:
    """Outcome counts, published for bench/report.py (DOCKERTAP_FUZZ_STATS=path)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, test: str, outcome: str, relayed: int) -> None:
        row = self.counts.setdefault(
            test, {"cases": 0, "complete": 0, "flagged": 0, "explained": 0, "bytes": 0}
        )
        row["cases"] += 1
        row[outcome] += 1
        row["bytes"] += relayed

    def publish(self) -> None:
        path = os.environ.get("DOCKERTAP_FUZZ_STATS")
        if path:
            with open(path, "w") as out:
                json.dump(self.counts, out, indent=1)


TALLY = Tally()


@pytest.fixture(scope="module")
def rig():
    rig = RelayRig(head_timeout=2.0)
    try:
        yield rig
    finally:
        rig.close()
        TALLY.publish()


def check(rig: RelayRig, test: str, client: bytes, backend: bytes, client_splits, backend_splits,
          well_formed: bool) -> None:  # fmt: skip
    tasks_before = rig.relay.active_tasks

    async def case():
        import asyncio

        convo, ping = await asyncio.gather(
            rig.converse(split_at(client, client_splits), split_at(backend, backend_splits)),
            rig.control_ping(),
        )
        return convo, ping

    result, ping = rig.run(case())
    assert ping == CONTROL_RESPONSE, "the concurrent keep-alive connection was disturbed"
    assert rig.relay.stats.errors == 0, "the relay hit an unhandled exception (see log)"
    assert not rig.loop_errors, rig.loop_errors
    assert rig.relay.active_tasks == tasks_before, "a connection task was left behind"
    assert all(ex.ended is not None for ex in result.exchanges)

    # Never altered, never injected: prefixes, plus at most one synthetic answer at the end.
    synthetic = _synthetic_answer(result)
    assert result.client_received.endswith(synthetic)
    relayed_to_client = result.client_received[: len(result.client_received) - len(synthetic)]
    assert result.backend_sent.startswith(relayed_to_client), "client received bytes the backend never sent"
    assert result.client_sent.startswith(result.backend_received), (
        "backend received bytes the client never sent"
    )

    if well_formed:
        assert not result.flagged, [(ex.error, ex.request_head[:60]) for ex in result.exchanges]
        assert result.complete
        outcome = "complete"
    elif result.complete:
        outcome = "complete"
    else:
        assert _loss_explained(result, relayed_to_client), (
            "bytes lost without an error recorded",
            result.client_sent,
            result.backend_received,
            result.backend_sent,
            result.client_received,
        )
        outcome = "flagged" if result.flagged else "explained"
    TALLY.add(test, outcome, len(result.backend_received) + len(relayed_to_client))


# -- the properties ---------------------------------------------------------------------------


@given(convo=conversation(), client_splits=splits(), backend_splits=splits())
def test_well_formed_conversations_relay_unchanged(rig, convo, client_splits, backend_splits):
    client, backend = convo
    check(rig, "well-formed", client, backend, client_splits, backend_splits, well_formed=True)


@given(data=st.data(), convo=conversation(), client_splits=splits(), backend_splits=splits())
def test_mutated_conversations_never_break_the_relay(rig, data, convo, client_splits, backend_splits):
    client, backend = convo
    side = data.draw(st.sampled_from(["client", "backend", "both"]))
    if side in ("client", "both"):
        client = data.draw(mutated(client))
    if side in ("backend", "both"):
        backend = data.draw(mutated(backend))
    check(rig, "mutated", client, backend, client_splits, backend_splits, well_formed=False)


@given(client=token_soup(), backend=token_soup(), client_splits=splits(300), backend_splits=splits(300))
def test_token_soup_never_breaks_the_relay(rig, client, backend, client_splits, backend_splits):
    check(rig, "token-soup", client, backend, client_splits, backend_splits, well_formed=False)


@given(client=st.binary(max_size=400), backend=st.binary(max_size=400))
def test_arbitrary_bytes_never_break_the_relay(rig, client, backend):
    check(rig, "arbitrary", client, backend, [], [], well_formed=False)


@pytest.mark.parametrize("framing", ["length", "chunked", "hijack"])
def test_bulk_bytes_arrive_with_equal_sha256_both_ways(rig, framing):
    outcome = bulk_roundtrip(rig, 32 << 20, framing)
    assert outcome["client_to_backend_equal"] and outcome["backend_to_client_equal"], outcome
    assert outcome["errors"] == [] and rig.relay.stats.errors == 0


# -- differential oracle 1: Go's own parser (net/http.ReadRequest, as in dockerd and Podman) ----------
#
# Request streams built from the fields and body shapes where HTTP/1 parsers are known to disagree
# (bare LF/CR, obs-fold, TE with CL, TE on HTTP/1.0, TE variants, CL lists and duplicates, whitespace
# before the colon, odd chunk lines), sent through the real relay. Go then parses exactly the bytes
# the backend received: every request Go finds must be one the trace shows, at the same byte
# boundaries, with the same method and target. Anything else dockertap must have refused.

SMUGGLING_FIELDS = [
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: Chunked", b"Transfer-Encoding: chunked, chunked",
    b"Transfer-Encoding:  chunked ", b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: identity",
    b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: 12", b"Content-Length: 5, 5",
    b"Content-Length: +5", b"Content-Length:5", b"Content-Length : 5", b"Content-Length:\t5\t",
    b"Content-Length: 05", b"Content-Length: ", b"X-Trace: a\n", b"X-Trace: a\nContent-Length: 5",
    b"X-Trace: a\r", b"X: a\x00b", b" folded", b"\tContent-Length: 5", b"Connection: close",
    b"Connection: keep-alive", b"Expect: 100-continue", b"Host: docker", b"host: localhost",
    b"Connection: Upgrade\r\nUpgrade: tcp", b"X-Empty:", b"X-Obs: caf\xc3\xa9", b"Transfer_Encoding: chunked",
    b"\nGET /v1.41/containers/json HTTP/1.1", b"Content-Length: 99999999999999999999",
]  # fmt: skip
CHUNKED_SHAPES = [
    b"5\r\nhello\r\n0\r\n\r\n", b"5\nhello\n0\n\n", b"5\r\nhello\r\n0\r\n\n", b"5 \r\nhello\r\n0\r\n\r\n",
    b"5;x=1\r\nhello\r\n0\r\n\r\n", b"05\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXY0\r\n\r\n",
    b"0\r\nX-T: 1\r\n\r\n", b"0\r\nX-T: 1\n\r\n", b"A\r\n0123456789\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r\nGET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
]  # fmt: skip
ORACLE_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@st.composite
def suspicious_request(draw, routes: list[tuple[bytes, bytes]] | None = None) -> bytes:
    if routes:
        method, target = draw(st.sampled_from(routes))
    else:
        method, target = draw(st.sampled_from(METHODS)), draw(st.sampled_from(TARGETS))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]))
    fields = [b"Host: docker"] if draw(st.integers(0, 9)) else []
    fields += draw(st.lists(st.sampled_from(SMUGGLING_FIELDS), max_size=draw(st.sampled_from([1, 1, 2, 4]))))
    body = draw(
        st.one_of(st.just(b""), st.sampled_from([b"hello", b"hello world!"]), st.sampled_from(CHUNKED_SHAPES))
    )
    return b"%s %s %s\r\n%s\r\n\r\n%s" % (
        method,
        target,
        version,
        b"".join(f + b"\r\n" for f in fields),
        body,
    )


@st.composite
def suspicious_stream(draw) -> bytes:
    stream = b"".join(draw(st.lists(st.one_of(suspicious_request(), request(last=False).map(lambda r: r[0])),
                                    min_size=1, max_size=4)))  # fmt: skip
    return draw(mutated(stream)) if draw(st.integers(0, 4)) == 0 else stream


@pytest.fixture(scope="module")
def go_parser():
    try:
        oracle = GoOracle()
    except GoUnavailable as err:
        if os.environ.get("DOCKERTAP_REQUIRE_ENGINES") == "1":  # CI installs golang-go: never skip there
            pytest.fail(str(err), pytrace=False)
        pytest.skip(str(err))
    try:
        yield oracle
    finally:
        oracle.close()


def traced_requests(result: Conversation) -> list[tuple]:
    """What the trace says the backend was sent: (method, target, start, head end, end, complete)."""
    rows, offset = [], 0
    # dockertap's own refusals (400/403/408/431) never reach the backend; a synthetic 502 answers a
    # request that did (the backend failed or was cut off after it).
    relayed = (ex for ex in result.exchanges if not (ex.synthetic and ex.status != 502))
    for ex in sorted(relayed, key=lambda ex: ex.sequence):
        method, target = ex.method_and_target
        head_end = offset + len(ex.request_head)
        end = head_end + ex.request_body.total
        rows.append((method, target, offset, head_end, end, ex.request_ended is not None))
        offset = end
    assert offset == len(result.backend_received), "the backend received bytes no traced request accounts for"
    return rows


def assert_go_agrees(go_view: dict, traced: list[tuple]) -> None:
    seen = [(m["method"], m["target"], m["start"], m["head_end"], m["end"], m["complete"])
            for m in go_view["messages"]]  # fmt: skip
    assert len(seen) <= len(traced), ("Go finds a request the trace does not show", seen, traced)
    assert len(seen) == len(traced), ("dockertap relayed a request Go cannot parse", go_view["error"], traced)
    for go_row, our_row in zip(seen, traced, strict=True):
        if our_row[5]:
            assert go_row == our_row, (go_row, our_row)
        else:  # cut short (client gone, bad chunk): same request, same head; the body was never whole
            assert go_row[:4] == our_row[:4] and not go_row[5], (go_row, our_row)


SMUGGLED_CREATE = b'{"Image":"dt-busybox:latest","HostConfig":{"Privileged":true,"Binds":["/:/host"]}}'
HIDDEN_DELETE = b"DELETE /containers/dt-victim?force=1&oracle=1 HTTP/1.1\r\nHost: docker\r\n\r\n"
ISSUE_10_REPRODUCERS = [
    # bare-LF smuggling: Go ends the GET at "\n\n" and runs the hidden POST; a CRLF-only reader
    # saw one GET with an odd header, and took the client's next request for the smuggled 201's
    b"GET /_ping?oracle=1 HTTP/1.1\r\nHost: docker\r\nX-Trace: a\n\n"
    b"POST /containers/create?name=dt-smuggled&oracle=1 HTTP/1.1\r\nHost: docker\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    b"GET /containers/json?oracle=1 HTTP/1.1\r\nHost: docker\r\n\r\n"
    % (len(SMUGGLED_CREATE), SMUGGLED_CREATE),
    # HTTP/1.0 with TE and CL: Go ignores TE there and frames by Content-Length, so the "body"
    # holds a complete DELETE request that Go then runs as the next request
    b"POST /containers/dt-web/stop?oracle=1 HTTP/1.0\r\nHost: docker\r\nConnection: keep-alive\r\n"
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + HIDDEN_DELETE,
]


@example(stream=ISSUE_10_REPRODUCERS[0], client_splits=[])
@example(stream=ISSUE_10_REPRODUCERS[1], client_splits=[])
@given(stream=suspicious_stream(), client_splits=splits(300))
def test_go_frames_every_relayed_request_as_the_trace_shows(rig, go_parser, stream, client_splits):
    result = rig.run(rig.converse(split_at(stream, client_splits), [ORACLE_RESPONSE] * 8))
    assert result.client_sent.startswith(result.backend_received)
    assert_go_agrees(go_parser.frame(result.backend_received), traced_requests(result))
    TALLY.add("go-oracle", "flagged" if result.flagged else "complete", len(result.backend_received))


def test_go_oracle_detects_a_smuggled_request(go_parser):
    """The oracle can fail: a CRLF-only reader's view of the bare-LF reproducer disagrees with Go's."""
    stream = ISSUE_10_REPRODUCERS[0]
    naive_head_end = stream.index(b"\r\n\r\n") + 4  # what dockertap used to take as the GET's head
    naive = [("GET", "/_ping", 0, naive_head_end, naive_head_end, True)]
    with pytest.raises(AssertionError, match="Go finds a request the trace does not show"):
        assert_go_agrees(go_parser.frame(stream[:naive_head_end]), naive)


# -- differential oracle 2: the engine itself --------------------------------------------------------
#
# dockerd started with --debug logs one line per API request its router hands to a handler
# (`Calling METHOD TARGET` in 20.10, `handling METHOD request … request-url=TARGET` in 28). Byte
# streams with the same suspicious shapes go through the real relay to a real dockerd (20.10 built
# with Go 1.19, 28.5 with a current Go): the engine's list must equal the trace's, in order. Routes
# are ones dockerd has and whose handlers change nothing (or fail: no JSON Content-Type, no such
# container), so every request that reaches a handler is logged; a final `Connection: close` ping
# ends each case.

# Every target carries `oracle=1`, replaced per case by a fresh number: the engine's log is compared
# only on lines carrying it (other local tools may probe the engine's socket meanwhile).
ENGINE_ROUTES = [
    (b"GET", b"/_ping?oracle=1"), (b"HEAD", b"/_ping?oracle=1"), (b"GET", b"/v1.41/version?oracle=1"),
    (b"GET", b"/containers/json?all=1&oracle=1"), (b"GET", b"/v1.41/images/json?oracle=1"),
    (b"POST", b"/containers/create?name=dt-oracle&oracle=1"),
    (b"DELETE", b"/containers/dt-oracle-none?oracle=1"),
    (b"POST", b"/v1.41/containers/dt-oracle-none/stop?oracle=1"),
]  # fmt: skip
LAST_PING = b"GET /_ping?last=1&oracle=1 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
ENGINE_ROUTE_KEYS = {(m.decode(), t.decode().split("?")[0]) for m, t in ENGINE_ROUTES} | {
    ("GET", "/_ping"),
    ("DELETE", "/containers/dt-victim"),
    ("POST", "/containers/dt-web/stop"),
    ("POST", "/containers/create"),
    ("GET", "/containers/json"),
}


def _route_of(call: tuple[str, str]) -> tuple[str, str]:
    return call[0], call[1].split("?")[0]


ROUTER_NOT_FOUND = b'{"message":"page not found"}'  # moby's router: no handler ran, nothing logged
# dockerd 20.10: `msg="Calling GET /_ping"`; dockerd 28: `msg="handling GET request" [form-data=…]
# method=GET module=api request-url=/_ping` (logfmt: the URL quoted when it holds `=` or spaces).
_CALLING = re.compile(
    rb'level=debug msg="Calling ([A-Za-z]+) ([^"\s]*)"'
    rb'|level=debug msg="handling [^"]* request" .*?\bmethod=([A-Za-z]+) .*?request-url=(?:"([^"]*)"|(\S+))'
)


ORACLE_DOCKERDS = selected_engines(("dockerd-20.10", "dockerd-28.5"))  # Go 1.19 and a current Go


@pytest.fixture(scope="module", params=ORACLE_DOCKERDS)
def debug_dockerd(request):
    import engines

    try:
        engine = engines.start_dockerd(engines.short_base("dto"), engine_id=request.param, debug=True)
    except engines.EngineStartError as err:
        if os.environ.get("DOCKERTAP_REQUIRE_ENGINES") == "1":
            pytest.fail(f"engine required but unavailable: {err}", pytrace=False)
        pytest.skip(f"engine unavailable: {err}")
    try:
        engines.import_busybox(engine)
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def engine_rig(debug_dockerd):
    rig = RelayRig(head_timeout=2.0, engine_socket=str(debug_dockerd.socket))
    try:
        yield rig
    finally:
        rig.close()


class EngineCalls:
    """The `Calling` lines dockerd logs from one point on."""

    def __init__(self, engine) -> None:
        self.path = engine.log_path
        self.offset = self.path.stat().st_size

    def since(self) -> list[tuple[str, str]]:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            text = log.read()
        calls = []
        for m in _CALLING.finditer(text):
            if m.group(1):
                method, target = m.group(1), m.group(2)
            else:
                method, target = m.group(3), m.group(4) or m.group(5)
            calls.append((method.decode(), target.decode()))
        return calls


def traced_calls(exchanges) -> list[tuple[str, str]]:
    """Requests the trace shows relayed to a handler (not refused by dockertap or the engine's router)."""
    relayed = [
        ex
        for ex in exchanges
        if not (ex.synthetic and ex.status != 502)
        and not (ex.status == 404 and bytes(ex.response_body.data).startswith(ROUTER_NOT_FOUND))
        and ex.status != 405  # dockerd 28's router: a method no route has (e.g. `D` after a short body)
    ]
    return [ex.method_and_target for ex in sorted(relayed, key=lambda ex: ex.sequence)]


def engine_agrees(rig: RelayRig, engine, stream: bytes, splits=()) -> tuple[list, list]:
    """Send `stream` through the relay to the engine; (what the engine ran, what the trace shows)."""
    marker = f"oracle={secrets.randbelow(10**9)}"  # not `random`: hypothesis seeds it per case
    stream = stream.replace(b"oracle=1", marker.encode())
    calls = EngineCalls(engine)
    _received, exchanges = rig.run(rig.send(split_at(stream, splits)), timeout=20)
    # Only routes dockerd has can run a handler: a method the body swallowed half of (`D`, `loGET`) is
    # answered by the router (404/405), or cut off by dockertap before any answer (then a 502).
    traced = [
        call for call in traced_calls(exchanges) if marker in call[1] and _route_of(call) in ENGINE_ROUTE_KEYS
    ]

    def ran() -> list[tuple[str, str]]:
        return [call for call in calls.since() if marker in call[1]]

    deadline = time.monotonic() + 1
    while ran() != traced and time.monotonic() < deadline:
        time.sleep(0.05)  # a request the engine got last may be logged a moment after the answer
    return ran(), traced


@pytest.mark.engine
@settings(max_examples=int(os.environ.get("DOCKERTAP_ENGINE_FUZZ_CASES", "300")))
@example(stream=ISSUE_10_REPRODUCERS[0] + LAST_PING, client_splits=[])
@example(stream=ISSUE_10_REPRODUCERS[1] + LAST_PING, client_splits=[])
@given(
    stream=st.lists(
        st.one_of(suspicious_request(ENGINE_ROUTES), request(False, ENGINE_ROUTES).map(lambda r: r[0])),
        min_size=1,
        max_size=3,
    ).map(lambda r: b"".join(r) + LAST_PING),
    client_splits=splits(300),
)
def test_the_engine_runs_exactly_what_the_trace_shows(engine_rig, debug_dockerd, stream, client_splits):
    ran, traced = engine_agrees(engine_rig, debug_dockerd, stream, client_splits)
    assert ran == traced, ("the engine ran", ran, "the trace shows", traced)
    finished = any(target.startswith("/_ping?last=1") for _method, target in traced)
    TALLY.add("engine-oracle", "complete" if finished else "flagged", len(stream))


def _straight_to_engine(engine, stream: bytes) -> bytes:
    """The reproducer without dockertap in between (proves it is live on this engine)."""
    import socket

    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(10)
        conn.connect(str(engine.socket))
        conn.sendall(stream)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while data := conn.recv(65536):
            answer += data
    return answer


def _container_names(engine) -> set[str]:
    import engines

    out = engines.docker(engine.url, "ps", "-a", "--format", "{{.Names}}", check=True).stdout
    return set(out.split())


@pytest.mark.engine
@pytest.mark.parametrize("case", ["bare-lf-smuggling", "http10-te-and-cl"])
def test_issue_10_reproducers_run_nothing_the_trace_does_not_show(engine_rig, debug_dockerd, case):
    import engines

    stream = ISSUE_10_REPRODUCERS[0 if case == "bare-lf-smuggling" else 1]
    hidden = "dt-smuggled" if case == "bare-lf-smuggling" else "dt-victim"

    def reset() -> None:
        engines.docker(debug_dockerd.url, "rm", "-f", "dt-smuggled", "dt-victim")
        engines.docker(debug_dockerd.url, "create", "--name", "dt-victim", "dt-busybox:latest", check=True)

    # Straight at dockerd, the reproducer works: the hidden request runs.
    reset()
    calls = EngineCalls(debug_dockerd)
    _straight_to_engine(debug_dockerd, stream)
    ran_directly = [call for call in calls.since() if "oracle=1" in call[1]]
    assert ("dt-smuggled" in _container_names(debug_dockerd)) == (hidden == "dt-smuggled")
    assert ("dt-victim" in _container_names(debug_dockerd)) == (hidden != "dt-victim")
    assert len(ran_directly) == 2 + (hidden == "dt-smuggled"), ran_directly

    # Through dockertap: refused before a byte reaches the engine; nothing ran that the trace hides.
    reset()
    ran, traced = engine_agrees(engine_rig, debug_dockerd, stream)
    assert ran == traced == []
    assert "dt-smuggled" not in _container_names(debug_dockerd)
    assert "dt-victim" in _container_names(debug_dockerd)
