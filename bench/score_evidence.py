"""Score dockertap's observed layers against an independent ground truth (bench/ground_truth.py).

For each engine: start it (tests/engines.py), put `dockertap proxy --observe --format json` in front
of it, and the ground-truth relay in front of the tap; start the ground-truth process-events reader
and `ctr events` (the engine root's own ctr, run in its namespaces); run a fixed list of docker
commands through the relay; then compare.

Ground truth, per request window W (from the relay) and layer L: L *really ran* for W when one of the
engine's processes (same mount namespace as the engine, or forked below its pid) exec'd a program of
layer L, or the engine's containerd published an event, while W was the most recently started open
request (the cause comes before the effect; ties go to the newer request). A runtime exec whose
parent is a shim or conmon also means that layer ran. dockertap *observed* L for W when its trace
says `observed`/`unexpected` on the matching exchange. Recall = observed ∩ ran / ran; precision =
observed ∩ ran / observed; and every `missing` on a (W, L) that ran is listed. dockertap reports a
container's exit clean-up as a background record "seen by wait #k", not on the wait itself; the
table gives recall both ways (strict: background credits nothing; and crediting those records to
their wait, for recall and precision alike).

    sudo .venv/bin/python bench/score_evidence.py [engine-id …]      # default: every engine id

Prints a Markdown table (README "Measured against an independent ground truth") on stdout, and on
stderr the details per engine as JSON: per docker command, each request and what really ran below
it (`commands`), the layers dockertap missed or added, and any exchange marked missing that ran.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import engines  # noqa: E402
from ground_truth import ContainerdEvents, ProcessEvents, Relay, Window  # noqa: E402

#: Programs of each layer below the API (comm, or argv[0]'s basename for re-execs), per the engines'
#: sources; API-level re-execs (dockerd's docker-untar, podman's cleanup) are not scored.
LAYER_OF = {
    "runc": "runc",
    "crun": "crun",
    "containerd-shim-runc-v2": "shim",
    "containerd-shim": "shim",
    "conmon": "conmon",
    "ps": "host",
    "iptables": "host",
    "ip6tables": "host",
    "nft": "host",
    "netavark": "host",
    "docker-proxy": "host",
    "docker-init": "host",
    "catatonit": "host",
    "libnetwork-setkey": "host",
}
#: A runtime exec whose parent is one of these reached that layer too (the shim or conmon ran it).
PARENT_LAYER = {"containerd-shim-runc-v2": "shim", "containerd-shim": "shim", "conmon": "conmon"}
SCORED_LAYERS = frozenset({"containerd", *LAYER_OF.values()})
LATE = 0.05  # seconds an effect may trail the end of its request (containerd stamps on forwarding)


def scenarios(image: str, workdir: Path) -> list[tuple[str, list[list[str]]]]:
    """(label, docker commands) in order; names are unique per run."""
    tag = f"dt-gt-{os.getpid()}"
    (workdir / "ctx").mkdir(exist_ok=True)
    (workdir / "ctx" / "Dockerfile").write_text(f"FROM {image}\nRUN echo built > /built\n")
    archive = str(workdir / "image.tar")
    return [
        ("ps", [["ps"], ["ps", "-a"]]),
        ("run --rm", [["run", "--rm", image, "echo", "hi"]]),
        (
            "run -d, top, stop, rm",
            [
                ["run", "-d", "--name", f"{tag}-a", image, "sleep", "60"],
                ["top", f"{tag}-a"],
                ["stop", "-t", "1", f"{tag}-a"],
                ["rm", f"{tag}-a"],
            ],
        ),  # fmt: skip
        (
            "exec",
            [
                ["run", "-d", "--name", f"{tag}-b", image, "sleep", "60"],
                ["exec", f"{tag}-b", "true"],
                ["pause", f"{tag}-b"],
                ["unpause", f"{tag}-b"],
                ["rm", "-f", f"{tag}-b"],
            ],
        ),  # fmt: skip
        (
            "logs",
            [["run", "--name", f"{tag}-c", image, "echo", "hi"], ["logs", f"{tag}-c"], ["rm", f"{tag}-c"]],
        ),
        ("build", [["build", "-q", "-t", f"{tag}:built", str(workdir / "ctx")], ["rmi", f"{tag}:built"]]),
        (
            "image ops",
            [
                ["tag", image, f"{tag}:t"],
                ["save", "-o", archive, f"{tag}:t"],
                ["rmi", f"{tag}:t"],
                ["load", "-i", archive],
                ["rmi", f"{tag}:t"],
                ["version"],
                ["info"],
            ],
        ),  # fmt: skip
    ]


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def engine_processes(execs: list[dict], engine: engines.Engine) -> list[dict[str, Any]]:
    """Execs of this engine's programs: in its mount namespace or below its pid."""
    try:
        namespace = os.readlink(f"/proc/{engine.pid}/ns/mnt")
    except OSError:
        namespace = None
    kept = []
    for item in execs:
        name = item["comm"] if item["comm"] in LAYER_OF else os.path.basename((item["argv"] or [""])[0])
        if name not in LAYER_OF:
            continue
        ours = item.get("mnt") == namespace or any(pid == engine.pid for pid, _ in item["chain"])
        # what the OCI runtime started in another mount namespace is the container's workload
        # (`ps -ef` through an exec session), not a layer below the API
        workload = item.get("mnt") != namespace and any(name in ("runc", "crun") for _, name in item["chain"])
        if not ours or workload or item.get("uid") not in (0, None):
            continue
        what = " ".join([name, *item["argv"][1:]])[:160]
        # `runc --version`, `conmon --version`: the engine probing versions (moby daemon/info_unix.go,
        # podman libpod/info.go), not the runtime doing container work
        layer = "host" if "--version" in item["argv"][1:2] else LAYER_OF[name]
        kept.append({**item, "layer": layer, "what": what})
        parent = item["chain"][0][1] if item["chain"] else ""
        if layer in ("runc", "crun") and parent in PARENT_LAYER:
            kept.append({**item, "layer": PARENT_LAYER[parent], "what": f"{what} (by {parent})"})
    return kept


def ground_truth(windows: list[Window], happenings: list[dict]) -> dict[int, dict[str, list[str]]]:
    """window index → layer → what ran, each happening given to the newest request open at its time."""
    truth: dict[int, dict[str, list[str]]] = {}
    for happening in happenings:
        when = happening["time"]
        open_now = [
            (w.started, i) for i, w in enumerate(windows) if w.started <= when <= (w.ended or when) + LATE
        ]
        if not open_now:
            continue
        _, index = max(open_now)
        truth.setdefault(index, {}).setdefault(happening["layer"], []).append(happening["what"])
    return truth


def per_command(
    spans: list[tuple[str, float, float]], windows: list[Window], truth: dict[int, dict[str, list[str]]]
) -> list[dict[str, Any]]:
    """The ground truth written per docker command: each request it made, and what ran below it."""
    out = []
    for command, began, ended in spans:
        requests = [
            {"request": w.request_line, "ran": truth.get(i, {})}
            for i, w in enumerate(windows)
            if began <= w.started <= ended
        ]
        out.append({"command": command, "requests": requests})
    return out


def match(windows: list[Window], records: list[dict]) -> dict[int, dict]:
    """window index → dockertap exchange record (same method and target, nearest start)."""
    free = [r for r in records if "type" not in r]
    matched: dict[int, dict] = {}
    for i, w in enumerate(windows):
        candidates = [r for r in free if r["method"] == w.method and r["target"] == w.target]
        if not candidates:
            continue
        best = min(candidates, key=lambda r: abs(_seconds(r["started"]) - w.started))
        if abs(_seconds(best["started"]) - w.started) < 1.0:
            matched[i] = best
            free.remove(best)
    return matched


def observed_layers(record: dict, background: list[dict] | None = None) -> set[str]:
    """Layers dockertap says this exchange reached; with `background`, plus the container-exit
    records it says this exchange (a wait) saw."""
    layers = {e["layer"] for e in record["layers"] if e["status"] in ("observed", "unexpected")}
    for entry in background or []:
        if record["id"] in entry.get("observed_by", []):
            layers |= {
                "containerd" if i.get("source") == "containerd" else str(i.get("layer"))
                for i in entry["items"]
            }
    return layers & SCORED_LAYERS


def score(
    windows: list[Window], records: list[dict], truth: dict[int, dict[str, list[str]]]
) -> dict[str, Any]:
    background = [r for r in records if r.get("type") == "background"]
    matched = match(windows, records)
    ran = observed = both = 0
    credited = {"observed": 0, "both": 0}
    missed: list[str] = []
    false_missing: list[str] = []
    extra: list[str] = []
    for i, record in matched.items():
        real = set(truth.get(i, {})) & SCORED_LAYERS
        seen = observed_layers(record)
        with_exits = observed_layers(record, background)
        credited["observed"] += len(with_exits)
        credited["both"] += len(real & with_exits)
        ran += len(real)
        observed += len(seen)
        both += len(real & seen)
        for layer in sorted(real - seen):
            missed.append(f"{record['route']} {layer}: {', '.join(truth[i][layer][:3])}")
        extra += [f"{record['route']} {layer}" for layer in sorted(seen - real)]
        for entry in record["layers"]:
            if entry["status"] == "missing" and entry["layer"] in real:
                false_missing.append(f"{record['route']} {entry['layer']}")
    return {
        "exchanges": len(matched),
        "windows": len(windows),
        "ran": ran,
        "observed": observed,
        "both": both,
        "recall": both / ran if ran else 1.0,
        "precision": both / observed if observed else 1.0,
        "recall_exits_credited": credited["both"] / ran if ran else 1.0,
        "precision_exits_credited": credited["both"] / credited["observed"] if credited["observed"] else 1.0,
        "missing_that_ran": false_missing,
        "not_observed": missed,
        "observed_not_ran": extra,
    }


def measure(engine_id: str) -> dict[str, Any]:
    base = engines.short_base("gt")
    work = Path(tempfile.mkdtemp(prefix="gtw", dir=engines.engine_root()))
    engine = engines.start_engine(engine_id, base)
    tap = relay = procs = events = None
    try:
        engines.import_busybox(engine)
        procs = ProcessEvents()
        if engine.name == "dockerd":
            events = ContainerdEvents(engine.command("ctr", f"--address={engines.CONTAINERD_SOCKET_INSIDE}"))
        tap = engines.start_tap(engine.url, work, "--observe")
        relay = Relay(str(work / "gt.sock"), str(tap.socket))
        time.sleep(0.5)
        failures = []
        spans: list[tuple[str, float, float]] = []
        for label, commands in scenarios(engines.BUSYBOX_TAG, work):
            for argv in commands:
                began = time.time()
                done = engines.docker(f"unix://{relay.listen}", *argv, timeout=180)
                spans.append((f"docker {' '.join(argv)}", began, time.time()))
                if done.returncode != 0:
                    failures.append(f"{label}: docker {' '.join(argv)}: {str(done.stderr).strip()[:160]}")
        time.sleep(1.5)  # let the tap's settle window and the readers drain
        tap.stop()
        records = tap.trace_lines()
        procs.close()
        if events is not None:
            events.close()
        happenings = engine_processes(procs.execs, engine)
        if events is not None:
            happenings += [
                {"time": e["time"], "layer": "containerd", "what": e["topic"]}
                for e in events.events
                if e["namespace"] == "moby"
            ]
        truth = ground_truth(relay.windows, happenings)
        result = score(relay.windows, records, truth)
        result["failures"] = failures
        result["commands"] = per_command(spans, relay.windows, truth)
        return result
    finally:
        if relay is not None:
            relay.close()
        if tap is not None:
            tap.stop()
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    ids = argv or list(engines.ENGINE_SPECS)
    rows = []
    details = {}
    for engine_id in ids:
        try:
            result = measure(engine_id)
        except (
            engines.EngineStartError,
            getattr(engines, "EngineUnsupported", engines.EngineStartError),
        ) as err:
            print(f"{engine_id}: skipped: {str(err).splitlines()[0]}", file=sys.stderr)
            continue
        details[engine_id] = result
        rows.append(
            f"| {engine_id} | {result['exchanges']} | {result['ran']} | {result['observed']} | "
            f"{result['recall']:.0%} | {result['precision']:.0%} | "
            f"{result['recall_exits_credited']:.0%} / {result['precision_exits_credited']:.0%} | "
            f"{len(result['missing_that_ran'])} |"
        )
    print(
        "| engine | exchanges | layers that ran | layers observed | recall | precision "
        "| exits credited to wait: recall / precision | missing that ran |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(json.dumps(details, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
