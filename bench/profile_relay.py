"""Where does dockertap spend its time? Samples the proxy with py-spy under one benchmark load.

    .venv/bin/python bench/profile_relay.py [keepalive|concurrent|bulk] [--seconds 8] [--native]
                                             [--relay-only]

Starts the fake backend and `dockertap proxy --format json` (trace sink on, as in run.py),
drives the chosen load at it, records the proxy with `py-spy record --format raw`, and prints
the functions with the most samples, self and inclusive. Needs py-spy (`pip install py-spy`).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client  # noqa: E402
import procs  # noqa: E402


def drive(load: str, sock: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if load == "keepalive":
            client.keepalive_latency(sock, "/_ping", 2000, warmup=0)
        elif load == "concurrent":
            client.concurrent_rps(sock, "/_ping", seconds=min(3.0, max(0.5, deadline - time.monotonic())))
        else:
            client.bulk_download(sock, "/bulk")


def summarize(raw: Path, top: int) -> str:
    self_counts: collections.Counter[str] = collections.Counter()
    total_counts: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        self_counts[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            total_counts[frame] += n
    out = [f"{samples} samples", "", "self %  function"]
    out += [f"{100 * n / samples:5.1f}  {name}" for name, n in self_counts.most_common(top)]
    out += ["", "incl %  function"]
    out += [f"{100 * n / samples:5.1f}  {name}" for name, n in total_counts.most_common(top)]
    return "\n".join(out)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    file = where.rsplit("/", 1)[-1].split(":")[0]
    return f"{name} ({file})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("load", choices=["keepalive", "concurrent", "bulk"], nargs="?", default="concurrent")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    parser.add_argument("--relay-only", action="store_true", help="profile bench/relay_only.py (no sinks)")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(procs.ROOT / ".venv" / "bin" / "py-spy")
    base = Path(tempfile.mkdtemp(prefix="dtbp", dir="/tmp"))
    fake = tap = None
    try:
        fake = procs.start_fake_backend(str(base / "f.sock"), 2 << 30, 250)
        if args.relay_only:
            tap = procs.start_relay_only(str(base / "t.sock"), str(base / "f.sock"), str(base / "tap.log"))
        else:
            trace, tap_log = str(base / "trace.jsonl"), str(base / "tap.log")
            tap = procs.start_dockertap(str(base / "t.sock"), str(base / "f.sock"), trace, tap_log, False)
        raw = base / "profile.txt"
        argv = [spy, "record", "--format", "raw", "-r", "500", "-o", str(raw), "-p", str(tap.pid)]
        argv += ["-d", str(int(args.seconds) + 1)] + (["--native"] if args.native else [])
        recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        load = threading.Thread(target=drive, args=(args.load, str(base / "t.sock"), args.seconds))
        load.start()
        load.join()
        recorder.wait()
        print(summarize(raw, args.top))
    finally:
        procs.stop(tap)
        procs.stop(fake)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
