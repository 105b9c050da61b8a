"""What `dockertap run` adds to a docker command, measured like hyperfine: repeated wall-clock runs, medians.

    .venv/bin/python bench/run_overhead.py [--runs 15] [--backend unix:///path/docker.sock]
                                           [--baseline OLD/.venv/bin/dockertap]

Without --backend it starts a private dockerd (tests/engines.py) and imports busybox. Each row is
run `--runs` times, interleaved with the others (so a noisy neighbour hits every row alike), after
one warm-up. `added` is the row's median minus the median of the same docker command run directly.
The machine may be shared: the p10–p90 spread shows the noise; compare medians only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import engines  # noqa: E402

DOCKERTAP = engines.dockertap_command()


def rows(url: str, image: str, baseline: str | None) -> list[tuple[str, list[str], str | None]]:
    """(label, argv, the direct row it adds to)."""
    run = [*DOCKERTAP, "run", "--backend", url]
    docker_run = ["docker", "run", "--rm", image, "true"]
    before = []
    if baseline:  # another build of dockertap, measured in the same interleaved rounds
        old = [baseline, "run", "--backend", url]
        ps, docker_ps = "docker ps (direct)", ["docker", "ps"]
        before = [
            (
                "baseline: dockertap run --no-observe -- docker ps",
                [*old, "--no-observe", "--", *docker_ps],
                ps,
            ),
            ("baseline: dockertap run -- docker ps (observing)", [*old, "--observe", "--", *docker_ps], ps),
            (
                "baseline: dockertap run -- docker run --rm … (observing)",
                [*old, "--observe", "--", *docker_run],
                "docker run --rm busybox true (direct)",
            ),
        ]
    return before + [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"], None),
        ("dockertap --version (CLI import floor)", [*DOCKERTAP, "--version"], None),
        ("docker ps (direct)", ["docker", "-H", url, "ps"], None),
        (
            "dockertap run --no-observe -- docker ps",
            [*run, "--no-observe", "--", "docker", "ps"],
            "docker ps (direct)",
        ),
        (
            "dockertap run -- docker ps (observing)",
            [*run, "--observe", "--", "docker", "ps"],
            "docker ps (direct)",
        ),
        ("docker run --rm busybox true (direct)", ["docker", "-H", url, *docker_run[1:]], None),
        (
            "dockertap run -- docker run --rm … (observing)",
            [*run, "--observe", "--", *docker_run],
            "docker run --rm busybox true (direct)",
        ),
    ]


def measure(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, env=engines.docker_env("unix:///nonexistent"), timeout=120
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return took


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backend", help="engine socket URL (default: start a private dockerd)")
    parser.add_argument("--baseline", help="another build's dockertap executable to measure alongside")
    args = parser.parse_args()
    engine = None
    url = args.backend
    if url is None:
        engine = engines.start_dockerd(str(engines.short_base("dtb")))
        engines.import_busybox(engine)
        url = engine.url
    try:
        table = rows(url, engines.BUSYBOX_TAG, args.baseline)
        times: dict[str, list[float]] = {label: [] for label, _, _ in table}
        for _label, argv, _ in table:
            measure(argv)  # warm-up: page cache, first-run effects
        for _ in range(args.runs):
            for label, argv, _ in table:
                times[label].append(measure(argv))
    finally:
        if engine is not None:
            engine.stop()
    medians = {label: statistics.median(values) for label, values in times.items()}
    load = os.getloadavg()[0]
    print(f"{args.runs} runs each, interleaved; {os.cpu_count()} CPUs, load average {load:.1f} at the end\n")
    print("| command | median | p10–p90 | added to direct (median) |")
    print("|---|---:|---:|---:|")
    for label, _, direct in table:
        values = times[label]
        added = f"{(medians[label] - medians[direct]) * 1000:+.0f} ms" if direct else ""
        spread = f"{percentile(values, 0.1) * 1000:.0f}–{percentile(values, 0.9) * 1000:.0f} ms"
        print(f"| `{label}` | {medians[label] * 1000:.0f} ms | {spread} | {added} |")


if __name__ == "__main__":
    main()
