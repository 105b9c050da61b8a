"""CPU per exchange of `dockertap proxy --format json` (observation on when root) against the fake backend.

    .venv/bin/python bench/pipeline_cost.py [--count 10000] [--seconds 3] [--relay-only]

Reads the proxy's utime+stime from /proc around 10,000 sequential keep-alive `/_ping`s (median of
`--rounds`), then measures 64-client throughput. This is the figure the sink pipeline work is judged
by: py-spy shares (profile_relay.py) say where the time goes, this says how much there is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client  # noqa: E402
import procs  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--relay-only", action="store_true")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dtpc", dir="/tmp"))
    fake = tap = None
    try:
        fake = procs.start_fake_backend(str(base / "f.sock"), 1 << 20, 250)
        sock = str(base / "t.sock")
        if args.relay_only:
            tap = procs.start_relay_only(sock, str(base / "f.sock"), str(base / "tap.log"))
        else:
            tap = procs.start_dockertap(
                sock, str(base / "f.sock"), str(base / "trace.jsonl"), str(base / "tap.log"), False
            )
        client.keepalive_latency(sock, "/_ping", 500, warmup=0)
        per, p50, p99 = [], [], []
        for _ in range(args.rounds):
            before = cpu_seconds(tap.pid)
            lat = client.keepalive_latency(sock, "/_ping", args.count, warmup=0)
            time.sleep(0.3)  # let the last batches (and the settle window) drain
            per.append((cpu_seconds(tap.pid) - before) / args.count * 1e6)
            p50.append(lat.p50_us)
            p99.append(lat.p99_us)
        rps = client.concurrent_rps(sock, "/_ping", seconds=args.seconds)
        rss = Path(f"/proc/{tap.pid}/status").read_text().split("VmRSS:")[1].split("\n")[0].strip()
        print(
            f"cpu/exchange {statistics.median(per):.0f} µs  keep-alive p50 {statistics.median(p50):.0f} µs"
            f"  p99 {statistics.median(p99):.0f} µs  64 clients {rps:,.0f} req/s  rss {rss}"
        )
    finally:
        procs.stop(tap)
        procs.stop(fake)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
