"""The passive HTTP/2 + gRPC decoder, fed byte streams written by the real `h2` library (pure tests),
the chain keyed on decoded methods, and the relay's tap of a whole h2c stream (in-process relay)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import pytest

from dockertap.analyzers.annotate import annotate, format_grpc, with_grpc_methods
from dockertap.analyzers.grpc_h2 import PREFACE, GrpcDecoder
from dockertap.analyzers.layer_table import expected_chain
from dockertap.analyzers.routes import match_route
from dockertap.proxy.endpoints import parse_endpoint
from dockertap.proxy.exchange import Exchange, PeerInfo, StreamTap
from dockertap.proxy.hub import EventHub
from dockertap.proxy.relay import Relay, RelayConfig

CONTROL = "/moby.buildkit.v1.Control/"
SECRET = b"s3cr3t-value-never-kept"


def grpc_message(payload: bytes) -> bytes:
    return b"\0" + len(payload).to_bytes(4, "big") + payload


@dataclass
class Conversation:
    """Two real h2 endpoints; every byte either sends is also fed to the decoder under test."""

    caller_side: str = "client"  # which side of the Docker connection is the HTTP/2 client
    split: int | None = None  # feed the decoder in pieces of this many bytes
    decoder: GrpcDecoder = field(default_factory=lambda: GrpcDecoder(keep_messages=True))
    clock: float = 1000.0

    def __post_init__(self) -> None:
        self.caller = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.callee = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.caller.initiate_connection()
        self.callee.initiate_connection()
        self.wire: dict[str, bytearray] = {"client": bytearray(), "backend": bytearray()}
        self.pump()

    @property
    def callee_side(self) -> str:
        return "backend" if self.caller_side == "client" else "client"

    def _feed(self, side: str, data: bytes) -> None:
        self.clock += 0.001
        self.wire[side] += data
        step = self.split or len(data) or 1
        for i in range(0, len(data), step):
            self.decoder.feed(side, data[i : i + step], self.clock)  # type: ignore[arg-type]

    def pump(self) -> None:
        for _ in range(4):
            out = self.caller.data_to_send()
            if out:
                self._feed(self.caller_side, out)
                self.callee.receive_data(out)
            back = self.callee.data_to_send()
            if back:
                self._feed(self.callee_side, back)
                self.caller.receive_data(back)

    def call(
        self,
        method: str,
        request: bytes = b"req",
        responses: tuple[bytes, ...] = (b"resp",),
        status: int = 0,
        trailers_only: bool = False,
        reset: bool = False,
        metadata: tuple[tuple[str, str], ...] = (),
        padding: int | None = None,
    ) -> int:
        sid = self.caller.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", method), (":authority", "buildkit"),
                   ("content-type", "application/grpc"), *metadata]  # fmt: skip
        self.caller.send_headers(sid, headers)
        self.caller.send_data(sid, grpc_message(request), end_stream=True, pad_length=padding)
        self.pump()
        if reset:
            self.callee.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            self.pump()
            return sid
        if trailers_only:
            self.callee.send_headers(
                sid,
                [(":status", "200"), ("grpc-status", str(status)), ("grpc-message", "nope")],
                end_stream=True,
            )
            self.pump()
            return sid
        self.callee.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
        for payload in responses:
            self.callee.send_data(sid, grpc_message(payload), pad_length=padding)
            self.pump()
        self.callee.send_headers(sid, [("grpc-status", str(status))], end_stream=True)
        self.pump()
        return sid


def _calls(conv: Conversation) -> list[dict]:
    return [call.to_dict() for call in conv.decoder.snapshot()]


# -- the decoder -------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [None, 1, 7, 4096])
def test_unary_and_streaming_calls_are_decoded_whatever_the_chunking(split):
    conv = Conversation(split=split)
    conv.call(CONTROL + "ListWorkers", b"", (b"w" * 40,))
    conv.call(CONTROL + "Status", b"ref", (b"v1", b"v2", b"v3"))
    conv.call(CONTROL + "Solve", b"x" * 5000, (b"done",))
    calls = _calls(conv)
    assert conv.decoder.failure is None and conv.decoder.h2_client == "client"
    assert [c["method"] for c in calls] == [CONTROL + "ListWorkers", CONTROL + "Status", CONTROL + "Solve"]
    assert all(c["status"] == 0 and c["status_name"] == "OK" and c["http_status"] == 200 for c in calls)
    assert all(c["caller"] == "client" and c["duration_ms"] is not None for c in calls)
    assert calls[0]["request_bytes"] == 5 and calls[0]["response_bytes"] == 45
    assert calls[1]["response_messages"] == 3 and calls[1]["request_messages"] == 1
    assert calls[2]["request_bytes"] == 5005  # several DATA frames: counted, not kept


def test_session_direction_is_reversed_dockerd_calls_the_client():
    """On /session dockerd sends the preface and the request HEADERS; buildx answers."""
    conv = Conversation(caller_side="backend")
    conv.call("/moby.filesync.v1.FileSync/DiffCopy", b"pkt", (b"file",))
    conv.call("/grpc.health.v1.Health/Check")
    assert conv.decoder.h2_client == "backend"
    calls = _calls(conv)
    assert [c["caller"] for c in calls] == ["backend", "backend"]
    assert calls[0]["method"] == "/moby.filesync.v1.FileSync/DiffCopy" and calls[0]["status"] == 0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"trailers_only": True, "status": 12},
            {"status": 12, "status_name": "UNIMPLEMENTED", "message": "nope"},
        ),
        ({"status": 2}, {"status": 2, "status_name": "UNKNOWN"}),
        ({"reset": True}, {"status": None, "reset": 8}),
        ({"padding": 17}, {"status": 0, "request_bytes": 8, "response_bytes": 9}),
        ({"metadata": (("x-big", "m" * 40_000),)}, {"status": 0}),  # HEADERS + CONTINUATION frames
    ],
)
def test_call_outcomes(kwargs, expected):
    conv = Conversation()
    conv.call(CONTROL + "Solve", **kwargs)
    (call,) = _calls(conv)
    assert conv.decoder.failure is None
    for key, value in expected.items():
        assert call.get(key) == value, (key, call)


def test_no_error_reset_after_the_trailers_is_an_ordinary_end():
    """grpc-go answers a client stream that has not half-closed with trailers, then RST_STREAM(NO_ERROR)."""
    conv = Conversation(caller_side="backend")
    sid = conv.caller.get_next_available_stream_id()
    path = "/moby.filesync.v1.FileSync/DiffCopy"
    headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "b")]
    conv.caller.send_headers(sid, headers)
    conv.caller.send_data(sid, grpc_message(b"pkt"))
    conv.pump()
    conv.callee.send_headers(sid, [(":status", "200")])
    conv.callee.send_headers(sid, [("grpc-status", "0")], end_stream=True)
    conv.callee.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)
    conv.pump()
    (call,) = _calls(conv)
    assert call["status"] == 0 and "reset" not in call and call["duration_ms"] is not None


def test_hpack_dynamic_table_stays_in_step_over_many_calls():
    conv = Conversation(split=3)
    methods = [f"{CONTROL}{name}" for name in ("Info", "DiskUsage", "Prune", "Info", "DiskUsage")] * 10
    for method in methods:
        conv.call(method, metadata=(("buildkit-session", "abc"),))
    assert [c["method"] for c in _calls(conv)] == methods


def test_payloads_are_never_kept_and_messages_only_on_request():
    conv = Conversation(decoder=GrpcDecoder(keep_messages=False), split=5)
    conv.call("/moby.buildkit.secrets.v1.Secrets/GetSecret", b"id=mysecret", (SECRET,), status=0)
    conv.call("/moby.filesync.v1.Auth/Credentials", b"host", (SECRET,), trailers_only=True, status=7)
    assert SECRET in bytes(conv.wire["backend"])  # the secret did cross the wire…
    state = repr(vars(conv.decoder)) + repr(conv.decoder.snapshot()) + repr(_calls(conv))
    assert SECRET.decode() not in state and "nope" not in state  # …and nothing of it was kept
    assert all(not d.buffer for d in conv.decoder._dirs.values())


def test_open_calls_show_in_the_snapshot_and_counts_are_bounded():
    conv = Conversation(decoder=GrpcDecoder(max_calls=3))
    for _ in range(5):
        conv.call(CONTROL + "ListWorkers")
    sid = conv.caller.get_next_available_stream_id()
    conv.caller.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", CONTROL + "Status"),
                                   (":authority", "b")])  # fmt: skip
    conv.pump()
    assert len(conv.decoder.snapshot()) == 3
    assert conv.decoder.method_counts == {CONTROL + "ListWorkers": 5, CONTROL + "Status": 1}
    assert conv.decoder.omitted == 3
    small = Conversation()
    small.call(CONTROL + "Solve")
    small.caller.send_headers(5, [(":method", "POST"), (":scheme", "http"), (":path", CONTROL + "Status"),
                                  (":authority", "b")])  # fmt: skip
    small.pump()
    last = small.decoder.snapshot()[-1].to_dict()
    assert last["method"] == CONTROL + "Status" and last["duration_ms"] is None and last["status"] is None


@pytest.mark.parametrize(
    ("feed", "reason"),
    [
        ([("client", PREFACE + b"\x00\x00\x04\x04\x00\x00\x00\x00\x00garbage!")], "not valid HTTP/2"),
        ([("client", PREFACE + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01")], "SETTINGS_MAX_FRAME_SIZE"),
        # a HEADERS frame whose HPACK block is invalid
        ([("backend", b"\x00\x00\x04\x01\x04\x00\x00\x00\x01\xff\xff\xff\xff")], "not valid HTTP/2"),
    ],
)
def test_garbage_degrades_to_a_note_and_bytes_are_still_counted(feed, reason):
    decoder = GrpcDecoder()
    for side, data in feed:
        decoder.feed(side, data, 1.0)
    assert decoder.failure is not None and reason in decoder.failure, decoder.failure
    decoder.feed("client", b"more", 2.0)  # after a failure: counted, never parsed or kept
    assert decoder._dirs["client"].buffer == bytearray()


def test_memory_stays_bounded_against_a_hostile_peer(monkeypatch):
    """Streams left open, ever new method names: decoding stops with a note instead of growing."""
    monkeypatch.setattr("dockertap.analyzers.grpc_h2.MAX_OPEN_STREAMS", 5)
    conv = Conversation()
    for _ in range(6):
        sid = conv.caller.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", "/x.Y/Status"), (":authority", "")]
        conv.caller.send_headers(sid, headers)
        conv.pump()
    assert "more than 5 streams open at once" in (conv.decoder.failure or "")
    monkeypatch.setattr("dockertap.analyzers.grpc_h2.MAX_METHODS", 3)
    conv = Conversation()
    for name in ("a", "b", "c", "a", "d"):
        conv.call(f"/x.Y/{name}")
    assert "more than 3 distinct methods" in (conv.decoder.failure or "")
    assert conv.decoder.method_counts == {"/x.Y/a": 2, "/x.Y/b": 1, "/x.Y/c": 1}


def test_lost_bytes_stop_decoding_with_a_note():
    conv = Conversation()
    conv.call(CONTROL + "ListWorkers")
    conv.decoder.lost("backend", 4096)
    assert "4096 bytes sent by the backend were not captured" in (conv.decoder.failure or "")
    assert [c["method"] for c in _calls(conv)] == [CONTROL + "ListWorkers"]  # what was decoded stays


# -- the chain keyed on the methods --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ListWorkers", "DiskUsage", "Status", "Info"])
def test_calls_that_run_nothing_reach_dockerd_only(method):
    route = match_route("POST", "/grpc")
    chain = expected_chain("dockerd", "overlay2", route, grpc_methods=(CONTROL + method,))
    assert chain.layers == ("dockerd",)
    assert f"gRPC {CONTROL}{method}" in " ".join(chain.rows)


@pytest.mark.parametrize("solve", [CONTROL + "Solve", "/moby.buildkit.v1.frontend.LLBBridge/Solve"])
def test_a_solve_expects_runc_run_and_init_but_never_as_missing(solve):
    for store, has_containerd in (("overlay2", False), ("containerd", True)):
        chain = expected_chain("dockerd", store, match_route("POST", "/grpc"), grpc_methods=(solve,))
        runc = chain.step("runc")
        assert runc is not None and {"runc run", "runc init"} <= set(runc.execs)
        assert "only" in runc.note  # conditional: a fully cached build runs nothing
        assert (chain.step("containerd") is not None) == has_containerd
        assert "shim" not in chain.layers  # BuildKit's executor is runc, not a containerd task


def test_undecoded_grpc_keeps_the_opaque_chain_and_unknown_methods_stay_in_dockerd():
    route = match_route("POST", "/grpc")
    assert "runc" in expected_chain("dockerd", "overlay2", route).layers
    assert expected_chain("dockerd", "overlay2", route, grpc_methods=("/x.Y/Z",)).layers == ("dockerd",)
    assert expected_chain("dockerd", "overlay2", route, grpc_methods=()).layers == ("dockerd",)


def test_annotation_is_rekeyed_and_formatted():
    annotation = annotate("POST", "/grpc", None)
    assert "runc" in [layer.layer for layer in annotation.layers]
    with_grpc_methods(annotation, (CONTROL + "Status",))
    assert [layer.layer for layer in annotation.layers] == ["dockerd"]
    with_grpc_methods(annotation, None)  # decoding failed later: back to the opaque chain
    assert "runc" in [layer.layer for layer in annotation.layers]
    calls = [{"method": CONTROL + "Solve", "status_name": "OK", "duration_ms": 1500.0},
             {"method": CONTROL + "Status", "status_name": None, "duration_ms": None}]  # fmt: skip
    assert format_grpc(calls) == "gRPC Control/Solve OK 1.50s, Control/Status open"


# -- the relay's tap -----------------------------------------------------------------------------------


def test_stream_tap_is_bounded_and_announces_once_per_take():
    tap = StreamTap(limit=10)
    assert tap.put("client", b"abcd") is True
    assert tap.put("backend", b"efgh") is False  # already announced
    assert tap.put("client", b"ijklmn") is False and tap.lost_client == 6  # over the limit: dropped
    assert [c[2] for c in tap.take()] == [b"abcd", b"efgh"]
    assert tap.put("backend", b"x") is True and tap.lost_backend == 0


UPGRADED = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


def test_relay_taps_the_whole_h2c_stream_beyond_the_capture_prefix():
    """An h2c upgrade: the capture keeps 64 bytes, the tap hands on all of it; relayed bytes unchanged."""
    from_backend = os.urandom(300_000)
    from_client = os.urandom(200_000)

    async def scenario() -> tuple[bytes, bytes, list[Exchange], list[str]]:
        path = os.path.join(tempfile.mkdtemp(prefix="dtg"), "b.sock")
        received = bytearray()

        async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(UPGRADED)
            writer.write(from_backend)
            await writer.drain()
            while len(received) < len(from_client):
                data = await reader.read(65536)
                if not data:
                    break
                received.extend(data)
            writer.close()

        server = await asyncio.start_unix_server(backend, path)
        events: list[tuple[str, Exchange]] = []
        hub = EventHub(lambda batch: events.extend(batch))
        relay = Relay(RelayConfig(backend=parse_endpoint(f"unix://{path}"), capture_limit=64), hub)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setblocking(False)
        theirs.setblocking(False)
        task = relay.start_connection(ours, PeerInfo())
        loop = asyncio.get_running_loop()
        upgrade = b"POST /grpc HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        await loop.sock_sendall(theirs, upgrade)
        got = bytearray()
        while len(got) < len(UPGRADED) + len(from_backend):
            got += await loop.sock_recv(theirs, 65536)
        await loop.sock_sendall(theirs, from_client)
        theirs.shutdown(socket.SHUT_WR)
        while await loop.sock_recv(theirs, 65536):
            pass
        await asyncio.wait_for(task, 10)
        hub.drain()
        theirs.close()
        server.close()
        tapped: dict[str, bytearray] = {"client": bytearray(), "backend": bytearray()}
        ex = events[0][1]
        assert ex.hijack is not None and ex.hijack.tap is not None
        for _t, side, chunk in ex.hijack.tap.take():
            tapped[side] += chunk
        kinds = [kind for kind, _ in events]
        assert bytes(got[got.index(b"\r\n\r\n") + 4 :]) == from_backend  # relayed unchanged
        assert bytes(received) == from_client
        return bytes(tapped["backend"]), bytes(tapped["client"]), [ex], kinds

    backend_bytes, client_bytes, (ex,), kinds = asyncio.run(scenario())
    assert ex.hijack is not None and ex.hijack.captured == 64  # the capture is only a prefix…
    assert backend_bytes == from_backend and client_bytes == from_client  # …the tap has every byte
    assert "stream" in kinds and kinds[-1] == "end"
