"""Every command's `--help` has Examples, and every example works: each one is parsed out of the help
text a user reads and run, as written, in a private sandbox against a real dockerd.

Conventions the help text follows (and a reader sees): an example is a command line under "Examples";
`# …` lines are comments; a comment right above an example that says "runs until Ctrl-C" marks a
server (started, awaited until it says it serves, then stopped with Ctrl-C),
and one that says "exits N" gives its exit status (else 0). The sandbox is shared and the commands run
in the order below, as a reader following the help would (run's `--record session.jsonl` example
makes the session that export and replay use).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import engines
import pytest
import typer

from dockertap.app import app

pytestmark = pytest.mark.engines("dockerd-28.5")

# Every command and subcommand, in the order a reader would try them.
COMMANDS = [
    ["doctor"],
    ["context", "install"],
    ["context", "remove"],
    ["plugin", "install"],
    ["plugin", "remove"],
    ["recordings"],
    ["explain"],
    ["run"],
    ["proxy"],
    ["replay"],
    ["export"],
    ["import"],
    ["addon-path"],
    ["web"],  # last: its proxy example records a fresh session.jsonl
]
#: What a server example prints once it serves: dockertap's own, or mitmweb's (dockertap web).
READY = re.compile(r"export DOCKER_HOST=|Web server listening at")
BIN = Path(sys.executable).parent  # the venv's dockertap script lives beside its python


@dataclass
class Example:
    command: str
    server: bool
    exit_status: int


def help_text(*words: str) -> str:
    done = subprocess.run(
        [*engines.dockertap_command(), *words, "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def examples_in(text: str) -> list[Example]:
    """The examples of one `--help` page, with what their comments say about them."""
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index("Examples") + 1
    found: list[Example] = []
    comments: list[str] = []
    for line in lines[start:]:
        if line.startswith("╭"):
            break
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line)
            continue
        said = " ".join(comments)
        status = re.search(r"exits (\d+)", said)
        found.append(Example(line, "runs until Ctrl-C" in said, int(status.group(1)) if status else 0))
        comments = []
    return found


def all_commands() -> list[list[str]]:
    """Every leaf command the CLI has (so a new one without examples fails the test below)."""
    out: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            out.append(path)

    walk(typer.main.get_command(app), [])
    return out


def test_every_command_is_covered_and_has_examples():
    assert sorted(map(tuple, all_commands())) == sorted(map(tuple, COMMANDS))
    for words in COMMANDS:
        assert examples_in(help_text(*words)), f"dockertap {' '.join(words)} --help has no examples"


@pytest.fixture
def sandbox(short_tmp: Path, dockerd) -> dict[str, str]:
    """A private HOME, docker config, runtime dir and cwd; `docker` talks to the test's dockerd."""
    for sub in ("home", "cfg", "run", "tmp", "work"):
        (short_tmp / sub).mkdir()
    os.chmod(short_tmp / "run", 0o700)
    # The examples say `busybox`, as a user would; the test engine's busybox answers to that name.
    engines.docker(dockerd.url, "tag", engines.BUSYBOX_TAG, "busybox:latest", check=True)
    env = engines.docker_env(dockerd.url)
    env.update(
        HOME=str(short_tmp / "home"),
        DOCKER_CONFIG=str(short_tmp / "cfg"),
        XDG_RUNTIME_DIR=str(short_tmp / "run"),
        TMPDIR=str(short_tmp / "tmp"),
        PATH=f"{BIN}:{os.environ['PATH']}",
        COLUMNS="200",
    )
    env["SANDBOX"] = str(short_tmp / "work")
    return env


def run_example(example: Example, env: dict[str, str]) -> str:
    """Run one example in a shell, as a user pasting it would; returns what it printed."""
    cwd = env["SANDBOX"]
    if not example.server:
        done = subprocess.run(
            ["sh", "-c", example.command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == example.exit_status, (
            f"{example.command!r} exited {done.returncode}:\n{output}"
        )
        assert "Traceback" not in output, output
        return output
    proc = subprocess.Popen(
        ["sh", "-c", f"exec {example.command}"], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    seen = ""
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not READY.search(seen) and time.monotonic() < deadline and proc.poll() is None:
            seen += proc.stdout.readline()
        assert READY.search(seen), f"{example.command!r} never became ready:\n{seen}"
        proc.send_signal(signal.SIGINT)  # the Ctrl-C the help tells the user to press
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = seen + (rest or "")
    assert proc.returncode in (0, 130), f"{example.command!r} ended with {proc.returncode}:\n{output}"
    assert "Traceback" not in output and "Fatal Python error" not in output, output
    return output


def test_every_help_example_runs(sandbox):
    ran = []
    for words in COMMANDS:
        for example in examples_in(help_text(*words)):
            output = run_example(example, sandbox)
            ran.append((example.command, output))
    outputs = dict(ran)
    work = Path(sandbox["SANDBOX"])
    # What the examples promise, checked on what they produced.
    assert "hi\n" in outputs["dockertap run -- docker run --rm busybox echo hi"]
    assert "/containers/create" in outputs["dockertap run -- docker run --rm busybox echo hi"]
    assert (work / "session.jsonl").stat().st_size > 0
    assert "/containers/json" in (work / "trace.jsonl").read_text()
    assert (work / "session.har").exists() and (work / "from-har.jsonl").exists()
    assert "works" in outputs["dockertap doctor"]
    assert "has no scheme" in outputs["DOCKER_HOST=/var/run/docker.sock dockertap doctor"]
    assert "docker-run" in outputs["dockertap recordings"]
    assert len(ran) >= 25, [command for command, _ in ran]
