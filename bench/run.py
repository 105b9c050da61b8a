"""dockertap relay benchmark: direct socket vs a socat relay vs dockertap (trace sink on), in one run.

    .venv/bin/python bench/run.py [--quick] [--skip-dockerd] [--cpu N]

Backends: (a) bench/fake_backend.py, a pre-forked uvloop server that is never the bottleneck;
(b) a private real dockerd started with tests/engines.py. For each backend and each path
(direct, socat, dockertap) it measures keep-alive p50/p99, new-connection p50, 64-client req/s,
bulk throughput + time to first byte (2 GiB body / `docker save`), dockertap's peak RSS, and
ping latency while 200 `/events` streams are held (all of which must deliver).

One-at-a-time latency tests pin client, relay and backend to one CPU: cross-CPU wake-ups on
small VMs cost ~30 µs and would swamp the differences being measured. Throughput tests run
unpinned, with the concurrent clients spread over several processes.

The markdown table goes to stdout and to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import client  # noqa: E402
import procs  # noqa: E402
from procs import log  # noqa: E402

#: "relay-only" is a diagnostic column: dockertap's relay with no sink pipeline (bench/relay_only.py).
MODES = ("direct", "socat", "dockertap", "relay-only")
BIG_IMAGE = "dt-bench-big:latest"
HELD_STREAMS = 200


@dataclass
class Settings:
    latency_count: int
    connect_count: int
    rps_seconds: float
    bulk_bytes: int
    save_runs: int
    cpu: int
    interval_ms: float = 250.0


@dataclass
class Row:
    backend: str
    metric: str
    unit: str
    values: dict[str, float | None]
    target: str = ""
    passed: bool | None = None
    #: "higher" when bigger is better (throughput), "lower" for latencies and memory.
    better: str = "lower"
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


@dataclass
class Setup:
    """Where each path listens, and which processes to pin for it."""

    backend_name: str
    sockets: dict[str, str]
    backend_pids: list[int]
    socat: subprocess.Popen
    dockertap: subprocess.Popen
    relay_only: subprocess.Popen

    def pids(self, mode: str) -> list[int]:
        extra = {
            "direct": [],
            "socat": [self.socat.pid],
            "dockertap": [self.dockertap.pid],
            "relay-only": [self.relay_only.pid],
        }[mode]
        return [*self.backend_pids, *extra]


# -- measurements shared by both backends -------------------------------------------------------


#: Latency tests alternate between the paths in this many rounds and pool the samples, so a
#: burst of load from elsewhere on the machine hits every path alike instead of one.
ROUNDS = 4


def interleaved(setup: Setup, s: Settings, measure) -> dict[str, client.Latency]:
    pooled: dict[str, client.Latency] = {}
    for _ in range(ROUNDS):
        for mode in MODES:
            with procs.pinned(setup.pids(mode), s.cpu):
                got = measure(setup.sockets[mode])
            pooled[mode] = pooled[mode].merge(got) if mode in pooled else got
    return pooled


def latency_rows(setup: Setup, s: Settings, results: Results, paths: list[str]) -> None:
    for path in paths:
        keep = interleaved(
            setup, s, lambda sock, path=path: client.keepalive_latency(sock, path, s.latency_count // ROUNDS)
        )
        for mode in MODES:
            log(f"{setup.backend_name} {mode} keep-alive {path}: {keep[mode]}")
        added = keep["dockertap"].p50_us - keep["direct"].p50_us
        results.add(
            Row(
                setup.backend_name,
                f"keep-alive p50 `{path}`",
                "µs",
                {m: keep[m].p50_us for m in MODES},
                "added ≤ 100 µs",
                added <= 100,
                note=f"added {added:+.0f} µs (socat {keep['socat'].p50_us - keep['direct'].p50_us:+.0f})",
            )
        )
        results.add(
            Row(setup.backend_name, f"keep-alive p99 `{path}`", "µs", {m: keep[m].p99_us for m in MODES})
        )

    fresh = interleaved(
        setup, s, lambda sock: client.new_connection_latency(sock, "/_ping", s.connect_count // ROUNDS)
    )
    for mode in MODES:
        log(f"{setup.backend_name} {mode} new connection: {fresh[mode]}")
    results.add(
        Row(
            setup.backend_name,
            "new-connection p50 `/_ping`",
            "µs",
            {m: fresh[m].p50_us for m in MODES},
            "< socat",
            fresh["dockertap"].p50_us < fresh["socat"].p50_us,
        )
    )


def concurrency_row(setup: Setup, s: Settings, results: Results) -> None:
    rps = {}
    for mode in MODES:
        rps[mode] = client.concurrent_rps(
            setup.sockets[mode], "/_ping", clients=64, processes=4, seconds=s.rps_seconds
        )
        log(f"{setup.backend_name} {mode} 64 clients: {rps[mode]:.0f} req/s")
    results.add(
        Row(
            setup.backend_name,
            "64 clients keep-alive `/_ping`",
            "req/s",
            rps,
            "≥ 0.5× socat",
            rps["dockertap"] >= 0.5 * rps["socat"],
            better="higher",
        )
    )


def held_streams_rows(setup: Setup, s: Settings, results: Results, trigger, events_path: str) -> None:
    """Hold 200 /events streams, check every one delivers, and measure ping latency meanwhile."""
    held_p50: dict[str, float] = {}
    delivered: dict[str, float] = {}
    idle = {}
    for mode in MODES:
        # Idle baseline right before the streams open, so both sides see the same conditions.
        with procs.pinned(setup.pids(mode), s.cpu):
            idle[mode] = client.keepalive_latency(setup.sockets[mode], "/_ping", s.latency_count).p50_us
        streams = client.HeldStreams(setup.sockets[mode], events_path, HELD_STREAMS)
        try:
            heads = streams.wait_heads(15)
            streams.pump(0.2)
            mark = streams.mark()
            trigger()
            deadline = time.monotonic() + 10
            while streams.delivered_since(mark) < HELD_STREAMS and time.monotonic() < deadline:
                streams.pump(0.1)
            delivered[mode] = streams.delivered_since(mark)
            with procs.pinned(setup.pids(mode), s.cpu):
                lat = client.keepalive_latency(setup.sockets[mode], "/_ping", s.latency_count)
            held_p50[mode] = lat.p50_us
            streams.pump(0.1)
            log(
                f"{setup.backend_name} {mode} held streams: {heads} heads, {delivered[mode]} delivered, "
                f"ping {lat} (idle p50 {idle[mode]:.1f} µs)"
            )
        finally:
            streams.close()
    results.add(
        Row(
            setup.backend_name,
            f"held `/events` streams delivering (of {HELD_STREAMS})",
            "streams",
            delivered,
            "all deliver",
            delivered["dockertap"] == HELD_STREAMS,
            better="higher",
        )
    )
    ratio = held_p50["dockertap"] / idle["dockertap"]
    results.add(
        Row(
            setup.backend_name,
            f"keep-alive p50 `/_ping` with {HELD_STREAMS} streams held",
            "µs",
            held_p50,
            "≤ 2× idle",
            ratio <= 2,
            note=f"{ratio:.2f}× idle ({idle['dockertap']:.0f} µs) for dockertap; socat "
            f"{held_p50['socat'] / idle['socat']:.2f}×, direct {held_p50['direct'] / idle['direct']:.2f}×",
        )
    )


# -- (a) the synthetic backend --------------------------------------------------------------------


def bench_fake(base: Path, s: Settings, results: Results, observe: bool) -> None:
    fake_sock = str(base / "fake.sock")
    fake = procs.start_fake_backend(fake_sock, s.bulk_bytes, s.interval_ms)
    socat = dockertap = relay_only = None
    try:
        socat = procs.start_socat(str(base / "fs.sock"), fake_sock)
        relay_only = procs.start_relay_only(str(base / "fr.sock"), fake_sock, str(base / "fake-relay.log"))
        dockertap = procs.start_dockertap(
            str(base / "ft.sock"),
            fake_sock,
            str(base / "fake-trace.jsonl"),
            str(base / "fake-tap.log"),
            observe,
        )
        setup = Setup(
            "fake",
            {
                "direct": fake_sock,
                "socat": str(base / "fs.sock"),
                "dockertap": str(base / "ft.sock"),
                "relay-only": str(base / "fr.sock"),
            },
            [fake.pid],
            socat,
            dockertap,
            relay_only,
        )
        latency_rows(setup, s, results, ["/_ping"])
        concurrency_row(setup, s, results)

        bulk = {}
        rss: dict[str, float | None] = {"direct": None, "socat": None}
        relays = {"dockertap": dockertap.pid, "relay-only": relay_only.pid}
        for mode in MODES:
            if mode in relays:
                procs.reset_peak_rss(relays[mode])
            bulk[mode] = client.bulk_download(setup.sockets[mode], "/bulk")
            if mode in relays:
                rss[mode] = procs.peak_rss_mib(relays[mode])
            log(f"fake {mode} bulk: {bulk[mode].gb_per_s:.2f} GB/s, ttfb {bulk[mode].ttfb_ms:.2f} ms")
        size = f"{s.bulk_bytes / (1 << 30):g} GiB"
        results.add(
            Row(
                "fake",
                f"bulk {size} body throughput",
                "GB/s",
                {m: bulk[m].gb_per_s for m in MODES},
                "≥ 2× socat",
                bulk["dockertap"].gb_per_s >= 2 * bulk["socat"].gb_per_s,
                better="higher",
            )
        )
        results.add(Row("fake", f"bulk {size} time to first byte", "ms", {m: bulk[m].ttfb_ms for m in MODES}))
        results.add(
            Row(
                "fake",
                f"dockertap peak RSS during the {size} transfer",
                "MiB",
                rss,
                "≤ 80 MiB",
                rss["dockertap"] is not None and rss["dockertap"] <= 80,
            )
        )

        def tick() -> None:
            time.sleep(s.interval_ms / 1000 * 1.5)  # the fake backend's timer is the trigger

        held_streams_rows(setup, s, results, tick, "/events")
        procs.stop(dockertap)
        results.notes.append(trace_summary(base / "fake-trace.jsonl", "fake"))
    finally:
        procs.stop(dockertap)
        procs.stop(relay_only)
        procs.stop(socat)
        procs.stop(fake)


# -- (b) the real dockerd ---------------------------------------------------------------------------


class _Random(io.RawIOBase):
    def readinto(self, b) -> int:
        data = os.urandom(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def make_big_image(engine, base: Path, mib: int = 260) -> int:
    """`docker import` a rootfs holding one random file: a save that cannot be compressed away."""
    from engines import docker

    tar_path = base / "big.tar"
    with tarfile.open(tar_path, "w") as tar:
        info = tarfile.TarInfo("data/random.bin")
        info.size = mib << 20
        tar.addfile(info, io.BufferedReader(_Random(), 1 << 20))
        marker = tarfile.TarInfo("etc/dockertap-bench")
        marker.size = 3
        tar.addfile(marker, io.BytesIO(b"hi\n"))
    with open(tar_path, "rb") as fh:
        done = subprocess.run(
            [*_docker_argv(), "import", "-", BIG_IMAGE],
            stdin=fh,
            capture_output=True,
            env=_docker_env(engine.url),
        )
    tar_path.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"docker import failed: {done.stderr.decode()}")
    size = docker(
        engine.url, "image", "inspect", "--format", "{{.Size}}", BIG_IMAGE, check=True
    ).stdout.strip()
    return int(size)


def _docker_argv() -> list[str]:
    from engines import docker_binary

    return [docker_binary()]


def _docker_env(url: str) -> dict[str, str]:
    from engines import docker_env

    return docker_env(url)


def docker_save_seconds(url: str) -> tuple[float, int]:
    """Wall time of the real docker CLI saving the big image; output counted through a pipe."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*_docker_argv(), "save", BIG_IMAGE], stdout=subprocess.PIPE, env=_docker_env(url)
    )
    total = 0
    while chunk := proc.stdout.read1(1 << 20):
        total += len(chunk)
    code = proc.wait()
    took = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"docker save through {url} exited {code}")
    return took, total


def bench_dockerd(base: Path, s: Settings, results: Results, observe: bool) -> None:
    from engines import docker, start_dockerd

    log("starting a private dockerd")
    engine = start_dockerd(base / "engine")
    socat = dockertap = relay_only = None
    try:
        image_bytes = make_big_image(engine, base)
        log(f"imported {BIG_IMAGE}: {image_bytes / (1 << 20):.0f} MiB")
        docker_sock = str(engine.socket)
        socat = procs.start_socat(str(base / "ds.sock"), docker_sock)
        relay_only = procs.start_relay_only(
            str(base / "dr.sock"), docker_sock, str(base / "dockerd-relay.log")
        )
        dockertap = procs.start_dockertap(
            str(base / "dt.sock"),
            docker_sock,
            str(base / "dockerd-trace.jsonl"),
            str(base / "dockerd-tap.log"),
            observe,
        )
        setup = Setup(
            "dockerd",
            {
                "direct": docker_sock,
                "socat": str(base / "ds.sock"),
                "dockertap": str(base / "dt.sock"),
                "relay-only": str(base / "dr.sock"),
            },
            [engine.pid],
            socat,
            dockertap,
            relay_only,
        )
        latency_rows(setup, s, results, ["/_ping", "/containers/json"])
        concurrency_row(setup, s, results)

        best: dict[str, float] = {}
        relays = {"dockertap": dockertap.pid, "relay-only": relay_only.pid}
        for pid in relays.values():
            procs.reset_peak_rss(pid)
        for _ in range(s.save_runs):
            for mode in MODES:
                took, total = docker_save_seconds(f"unix://{setup.sockets[mode]}")
                best[mode] = min(best.get(mode, took), took)
                log(f"dockerd {mode} docker save: {total / took / 1e6:.0f} MB/s ({total} B in {took:.2f}s)")
        rss = {"direct": None, "socat": None} | {m: procs.peak_rss_mib(pid) for m, pid in relays.items()}
        rate = {m: total / best[m] / 1e6 for m in MODES}
        results.add(
            Row(
                "dockerd",
                f"`docker save` of a {total / (1 << 20):.0f} MiB image (best of {s.save_runs})",
                "MB/s",
                rate,
                "≥ 95% of direct",
                rate["dockertap"] >= 0.95 * rate["direct"],
                better="higher",
            )
        )
        results.add(
            Row(
                "dockerd",
                "dockertap peak RSS during `docker save`",
                "MiB",
                rss,
                "≤ 80 MiB",
                rss["dockertap"] is not None and rss["dockertap"] <= 80,
            )
        )

        counter = iter(range(1_000_000))

        def trigger() -> None:
            name = f"dtbench-{next(counter)}"
            docker(engine.url, "create", "--name", name, BIG_IMAGE, "/nothing", check=True)
            docker(engine.url, "rm", name, check=True)

        held_streams_rows(setup, s, results, trigger, "/events")
        procs.stop(dockertap)
        results.notes.append(trace_summary(base / "dockerd-trace.jsonl", "dockerd"))
    finally:
        procs.stop(dockertap)
        procs.stop(relay_only)
        procs.stop(socat)
        engine.stop()


# -- report ---------------------------------------------------------------------------------------


def trace_summary(path: Path, name: str) -> str:
    lines = path.read_bytes().splitlines() if path.exists() else []
    valid = 0
    for line in lines:
        try:
            json.loads(line)
            valid += 1
        except ValueError:
            pass
    return f"dockertap's JSON trace sink wrote {valid} exchange records during the {name} run."


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("req/s", "streams"):
        return f"{value:,.0f}"
    if unit == "GB/s":
        return f"{value:.2f}"
    if unit == "MB/s":
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def render(results: Results, s: Settings, started: float, quick: bool) -> str:
    out = [
        "| backend | metric | unit | direct | socat | dockertap | dockertap / direct | dockertap / socat "
        "| target | result | relay only ¹ |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in results.rows:
        v = r.values
        verdict = "" if r.passed is None else ("**pass**" if r.passed else "**FAIL**")
        if r.note:
            verdict = f"{verdict} ({r.note})" if verdict else r.note
        out.append(
            f"| {r.backend} | {r.metric} | {r.unit} | {_fmt(v.get('direct'), r.unit)} | "
            f"{_fmt(v.get('socat'), r.unit)} | {_fmt(v.get('dockertap'), r.unit)} | "
            f"{_ratio(v.get('dockertap'), v.get('direct'))} | {_ratio(v.get('dockertap'), v.get('socat'))} | "
            f"{r.target} | {verdict} | {_fmt(v.get('relay-only'), r.unit)} |"
        )
    env = (
        f"{platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {'quick' if quick else 'full'} run, "
        f"{s.latency_count} keep-alive samples, {s.connect_count} connections, {s.rps_seconds:g} s per "
        f"concurrency test (4 client processes × 16 connections); one-at-a-time tests pinned to CPU {s.cpu}; "
        f"total {time.time() - started:.0f} s."
    )
    footnote = (
        "¹ diagnostic, not a target: dockertap's relay with no sink pipeline (bench/relay_only.py); "
        "the gap to the dockertap column is what materialising, analysing and writing each exchange costs."
    )
    notes = [f"- {n}" for n in results.notes]
    return "\n".join(["# dockertap benchmark", "", env, "", *out, "", footnote, "", *notes, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter windows (< 2 minutes)")
    parser.add_argument("--skip-dockerd", action="store_true", help="only the synthetic backend")
    parser.add_argument("--skip-fake", action="store_true", help="only the real dockerd")
    parser.add_argument(
        "--cpu", type=int, default=max(procs.ALL_CPUS), help="CPU for the pinned latency tests"
    )
    args = parser.parse_args()
    if args.quick:
        s = Settings(
            latency_count=2000,
            connect_count=300,
            rps_seconds=1.5,
            bulk_bytes=2 << 30,
            save_runs=1,
            cpu=args.cpu,
        )
    else:
        s = Settings(
            latency_count=8000,
            connect_count=1500,
            rps_seconds=4.0,
            bulk_bytes=2 << 30,
            save_runs=2,
            cpu=args.cpu,
        )
    started = time.time()
    observe = procs.dockertap_supports("--observe")
    results = Results()
    results.notes.append(
        "dockertap ran as `dockertap proxy --format json` with stdout to a file (trace sink on)"
        + (
            ", evidence observers on (`--observe`)."
            if observe
            else "; this build has no `--observe` flag yet."
        )
    )
    base = Path(tempfile.mkdtemp(prefix="dtb", dir="/tmp"))
    try:
        if not args.skip_fake:
            bench_fake(base, s, results, observe)
        if not args.skip_dockerd:
            bench_dockerd(base, s, results, observe)
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    report = render(results, s, started, args.quick)
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "latest.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
