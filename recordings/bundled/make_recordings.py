"""Re-create the bundled teaching recordings from REAL engines (run as root from the repository).

    .venv/bin/python recordings/bundled/make_recordings.py [NAME ...]

Starts a private dockerd and a private Podman service (`tests/engines.py`), records each scenario through
`dockertap run --record` exactly as a user would, and writes `recordings/bundled/<name>.jsonl`. When
`dockertap run` offers evidence capture (`--evidence`), it is switched on, so re-running this script after
the evidence observers land refreshes the recordings with containerd events and runtime execs.

Each file's header gains what the replay tests and `dockertap recordings` need: a `title` (what it
teaches), the docker `commands` that were recorded, and their `live` stdout, stderr and exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

import engines  # noqa: E402

#: Bodies and hijacked streams are cut at this many bytes, to keep every file well under 200 KB.
CAPTURE_BYTES = 8192
MAX_FILE_BYTES = 200_000
IMAGE = engines.BUSYBOX_TAG
#: The exec observer needs a moment after `dockertap run` starts; without it the first runtime execs of a
#: short command are missed (and shown as "missing"). `exec` keeps the docker CLI as the recorded client.
WARM_UP_SCRIPT = 'sleep 1\nexec "$@"\n'
DOCKERFILE = f"FROM {IMAGE}\nRUN echo built by the legacy builder > /built.txt\nCMD cat /built.txt\n"


@dataclass
class Scenario:
    name: str
    engine: str  # "dockerd" | "podman" | "none"
    title: str
    commands: list[list[str]]
    #: Commands run against the engine before recording (not recorded), e.g. a container to exec into.
    setup: list[list[str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    backend: Callable[[engines.Engine | None], str] = lambda engine: engine.url if engine else ""


SCENARIOS = [
    Scenario(
        "docker-run",
        "dockerd",
        "docker run on dockerd: create, attach (hijack), wait, start, exit — containerd and runc below",
        [["docker", "run", "--rm", IMAGE, "echo", "hello from a container"]],
    ),
    Scenario(
        "docker-exec",
        "dockerd",
        "docker exec: inspect, exec create, exec start (hijack), exec inspect — runc exec in a container",
        [["docker", "exec", "web", "echo", "hello from exec"]],
        setup=[["docker", "run", "-d", "--name", "web", IMAGE, "sleep", "600"]],
    ),
    Scenario(
        "docker-build-legacy",
        "dockerd",
        "legacy docker build (DOCKER_BUILDKIT=0): the context tar goes up; each RUN is a container life",
        [["docker", "build", "-t", "dt-built", "-"]],
        env={"DOCKER_BUILDKIT": "0"},
        stdin=DOCKERFILE.encode(),
    ),
    Scenario(
        "docker-pull-no-registry",
        "dockerd",
        "a failing docker pull: dockerd itself dials the registry, and its error comes back as JSON",
        [["docker", "pull", "busybox:latest"]],
    ),
    Scenario(
        "podman-run",
        "podman",
        "the same docker run through Podman's Docker-compatible API: conmon and runc, no containerd",
        [["docker", "run", "--rm", IMAGE, "echo", "hello from a container"]],
    ),
    Scenario(
        "backend-down",
        "none",
        "the engine is down: dockertap answers 502 itself, and the docker CLI prints its error",
        [["docker", "ps"]],
        backend=lambda engine: "unix:///nonexistent-engine.sock",
    ),
]


def _run_supports(option: str) -> bool:
    help_text = subprocess.run(
        [*engines.dockertap_command(), "run", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return option in help_text


def record(scenario: Scenario, engine: engines.Engine | None, out: Path) -> None:
    """Record the scenario's commands into `out`, then add the header facts the replay tests need."""
    backend = scenario.backend(engine)
    for argv in scenario.setup:
        engines.docker(backend, *argv[1:], check=True)
    work = Path(tempfile.mkdtemp(prefix="dtmk", dir="/tmp"))
    observe = _run_supports("--observe")
    warm_up = work / "warm-up.sh"
    warm_up.write_text(WARM_UP_SCRIPT)
    evidence = ["--observe"] if observe else []
    live = []
    try:
        for i, argv in enumerate(scenario.commands):
            part = work / f"{i}.jsonl"
            cmd = [
                *engines.dockertap_command(), "run",
                "--backend", backend,
                "--record", str(part),
                "--capture-bytes", str(CAPTURE_BYTES),
                "--trace-file", str(work / f"{i}.trace"),
                *evidence,
                "--", *(["sh", str(warm_up)] if observe else []), *argv,
            ]  # fmt: skip
            env = engines.docker_env("unix:///nonexistent-dockertap.sock", scenario.env)
            result = subprocess.run(cmd, input=scenario.stdin, env=env, capture_output=True, timeout=300)
            live.append(
                {
                    "command": argv,
                    "env": scenario.env,
                    "stdin": scenario.stdin.decode() if scenario.stdin else None,
                    "stdout": result.stdout.decode(errors="replace"),
                    "stderr": result.stderr.decode(errors="replace"),
                    "exit_code": result.returncode,
                }
            )
            print(f"  $ {' '.join(argv)} → exit {result.returncode}", file=sys.stderr)
        _merge([work / f"{i}.jsonl" for i in range(len(scenario.commands))], out, scenario, live)
    finally:
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    size = out.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SystemExit(f"{out.name} is {size} bytes (> {MAX_FILE_BYTES}); lower CAPTURE_BYTES")


def _merge(parts: list[Path], out: Path, scenario: Scenario, live: list[dict]) -> None:
    """One file: the first part's header (plus title, commands, live output), then every record."""
    lines: list[str] = []
    for i, part in enumerate(parts):
        records = part.read_text(encoding="utf-8").splitlines()
        if i == 0:
            header = json.loads(records[0])
            header.update(title=scenario.title, commands=scenario.commands, live=live)
            lines.append(json.dumps(header, ensure_ascii=False, separators=(",", ":")))
        lines += [r for r in records[1:] if json.loads(r).get("type") != "footer" or i == len(parts) - 1]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(names: list[str]) -> int:
    if os.geteuid() != 0:
        print("make_recordings.py starts private engines and needs root", file=sys.stderr)
        return 2
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    needed = {s.engine for s in chosen}
    started: dict[str, engines.Engine] = {}
    try:
        for kind in ("dockerd", "podman"):
            if kind in needed:
                starter = engines.start_dockerd if kind == "dockerd" else engines.start_podman
                started[kind] = starter(engines.short_base())
                engines.import_busybox(started[kind])
                print(f"started {engines.describe(started[kind])}", file=sys.stderr)
        for scenario in chosen:
            print(f"recording {scenario.name}", file=sys.stderr)
            record(scenario, started.get(scenario.engine), HERE / f"{scenario.name}.jsonl")
    finally:
        for engine in started.values():
            engine.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
