"""Load through a real `dockertap proxy` process in front of the real dockerd.

1,000 client connections held open at once send 10,000 `/_ping` requests (keep-alive, paced over
~20 s) while 200 `/events` streams stay open through the whole run; at the end one engine event
must reach all 200 streams. The proxy starts with a soft open-file limit of 1024 (as on most
desktops): 2,400 relayed descriptors only fit because it raises its own limit.

Asserted: every request answered 200 "OK", no exchange in the trace carries an error, the proxy
logged no failure, its RSS after warm-up grows ≤ 10 %. Latency percentiles are printed (and
written to $DOCKERTAP_LOAD_STATS for bench/report.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import shutil
import time

import engines
import pytest
from faultkit import ProxyProcess, rss_kib, wait_for

# Load tests dockertap's relay, not the engine behind it: one engine (see conftest).
pytestmark = [pytest.mark.slow, pytest.mark.engine, pytest.mark.engines("dockerd-28.5")]

CONNECTIONS = 1000
REQUESTS_PER_CONNECTION = 10
STREAMS = 200
PACE = 2.0  # seconds, mean pause between one connection's requests
PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
EVENTS = b"GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n"


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(path: str, proxy_pid: int, engine_url: str) -> dict:
    latencies: list[float] = []
    first: list[float] = []  # each connection's first request: 1,000 at once, each dials the engine
    failures: list[str] = []
    rss: list[tuple[float, int]] = []
    stream_events = [0] * STREAMS
    started = time.monotonic()

    async def sample_rss(stop: asyncio.Event) -> None:
        while not stop.is_set():
            rss.append((time.monotonic() - started, rss_kib(proxy_pid)))
            await asyncio.sleep(0.25)

    async def stream(i: int, ready: asyncio.Event) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(EVENTS)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        return reader, writer

    async def watch(i: int, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            stream_events[i] += data.count(b'"Type"')

    async def client(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], warm: asyncio.Event) -> None:
        reader, writer = conn
        for k in range(REQUESTS_PER_CONNECTION):
            if k == 1:
                await warm.wait()
            t0 = time.perf_counter()
            writer.write(PING)
            try:
                status, body = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                failures.append(repr(exc))
                return
            (first if k == 0 else latencies).append(time.perf_counter() - t0)
            if status != 200 or body != b"OK":
                failures.append(f"{status} {body[:60]!r}")
            await asyncio.sleep(random.expovariate(1 / PACE))
        writer.close()

    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(stop))
    streams = await asyncio.gather(*(stream(i, stop) for i in range(STREAMS)))
    watchers = [asyncio.create_task(watch(i, r)) for i, (r, _) in enumerate(streams)]
    conns = []
    for _batch in range(0, CONNECTIONS, 100):  # open in batches of 100: the listen backlog is not a test
        conns += await asyncio.gather(*(asyncio.open_unix_connection(path) for _ in range(100)))
    open_at_once = len(conns) + len(streams)
    warm = asyncio.Event()
    clients = [asyncio.create_task(client(c, warm)) for c in conns]
    while len(first) < CONNECTIONS and not all(t.done() for t in clients):
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    warm_rss = rss_kib(proxy_pid)  # after warm-up: every connection open and used once
    warm.set()
    await asyncio.gather(*clients)
    # One engine event, seen by every held stream.
    await asyncio.to_thread(engines.docker, engine_url, "volume", "create", "dt-load-probe")
    await asyncio.to_thread(engines.docker, engine_url, "volume", "rm", "dt-load-probe")
    deadline = time.monotonic() + 10
    while min(stream_events) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    end_rss = rss_kib(proxy_pid)
    stop.set()
    await sampler
    for _, writer in streams:
        writer.close()
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    return {
        "connections_open_at_once": open_at_once,
        "requests": len(first) + len(latencies),
        "burst_p50_ms": round(percentile(first, 0.50) * 1000, 2),
        "burst_p99_ms": round(percentile(first, 0.99) * 1000, 2),
        "failures": failures,
        "streams": STREAMS,
        "streams_delivering": sum(1 for n in stream_events if n >= 2),
        "seconds": round(time.monotonic() - started, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "rss_warm_kib": warm_rss,
        "rss_end_kib": end_rss,
        "rss_peak_kib": max(v for _, v in rss),
    }


def test_thousand_connections_ten_thousand_requests_two_hundred_streams(dockerd):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (CONNECTIONS + STREAMS) + 200
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, 4096)), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need, "raise the hard open-file limit"
    workdir = str(engines.short_base("dtl"))
    # The proxy starts with a desktop-like soft limit; it must raise it itself.
    low_limit = ["prlimit", f"--nofile=1024:{max(hard, need)}", "--"]
    try:
        with ProxyProcess(workdir, dockerd.url, "--no-observe", user_argv=low_limit) as px:

            def soft_limit() -> int:
                limits = open(f"/proc/{px.pid}/limits").read()
                return int(next(line for line in limits.splitlines() if "open files" in line).split()[3])

            wait_for(lambda: soft_limit() >= need, 5)  # raised as it starts serving
            assert soft_limit() >= need, f"the proxy did not raise its soft RLIMIT_NOFILE ({soft_limit()})"
            stats = asyncio.run(load(px.path, px.pid, dockerd.url))
            print("\nload:", json.dumps(stats))
            if os.environ.get("DOCKERTAP_LOAD_STATS"):
                with open(os.environ["DOCKERTAP_LOAD_STATS"], "w") as out:
                    json.dump(stats, out)
            assert stats["connections_open_at_once"] == CONNECTIONS + STREAMS
            assert stats["requests"] == CONNECTIONS * REQUESTS_PER_CONNECTION and not stats["failures"], stats
            assert stats["streams_delivering"] == STREAMS, stats
            assert stats["rss_end_kib"] <= stats["rss_warm_kib"] * 1.10, stats
            px.stop()
            trace = px.trace()
            pings = [x for x in trace if x["path"] == "/_ping"]
            assert len(pings) == CONNECTIONS * REQUESTS_PER_CONNECTION
            assert [x for x in pings if x["error"] or x["status"] != 200] == []
            assert "Traceback" not in px.log() and "failed" not in px.log()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
