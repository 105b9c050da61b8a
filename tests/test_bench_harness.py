"""The benchmark's own fake backend and clients: if they lie, every number in the table does.

Runs the real `bench/fake_backend.py` processes on a Unix socket and talks to them with the
benchmark's clients, directly and through a real socat relay.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import client  # noqa: E402
import procs  # noqa: E402

BULK = 3 * 1024 * 1024 + 17  # not a multiple of the backend's 4 MiB slice nor of the client's buffer


@pytest.fixture(scope="module")
def fake():
    base = Path(tempfile.mkdtemp(prefix="dtbt", dir="/tmp"))
    sock = str(base / "fake.sock")
    proc = procs.start_fake_backend(sock, BULK, interval_ms=50)
    try:
        yield sock, base
    finally:
        procs.stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def test_ping_answers_with_a_docker_like_ping(fake):
    sock, _ = fake
    conn = client.HttpConnection(sock)
    try:
        assert conn.exchange(client.request_bytes("/_ping")) == (200, 2)
        assert conn.exchange(client.request_bytes("/nope")) == (404, len(b'{"message":"page not found"}\n'))
        assert conn.exchange(client.request_bytes("/_ping")) == (200, 2)  # keep-alive still in step
    finally:
        conn.close()


def test_bulk_body_has_exactly_the_announced_length(fake):
    sock, _ = fake
    result = client.bulk_download(sock, "/bulk")
    assert result.bytes == BULK
    assert result.seconds > 0 and result.ttfb_ms >= 0


def test_every_held_event_stream_delivers(fake):
    sock, _ = fake
    streams = client.HeldStreams(sock, "/events", 20)
    try:
        assert streams.wait_heads(10) == 20
        mark = streams.mark()
        streams.pump(0.3)  # six ticks of 50 ms
        assert streams.delivered_since(mark) == 20
    finally:
        streams.close()


def test_latency_and_concurrency_clients_measure_through_socat(fake):
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    sock, base = fake
    relay = procs.start_socat(str(base / "socat.sock"), sock)
    try:
        keep = client.keepalive_latency(str(base / "socat.sock"), "/_ping", 200, warmup=10)
        fresh = client.new_connection_latency(str(base / "socat.sock"), "/_ping", 20, warmup=2)
        assert keep.count == 200 and 0 < keep.p50_us <= keep.p99_us
        assert fresh.count == 20 and fresh.p50_us > 0
        rps = client.concurrent_rps(str(base / "socat.sock"), "/_ping", clients=8, processes=2, seconds=0.5)
        assert rps > 100
    finally:
        procs.stop(relay)
