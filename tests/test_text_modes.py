"""What every text mode shows: `--bodies` under each line, and a client column that tells commands apart."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import threading
import time
from pathlib import Path

import engines
import pytest

from dockertap.analyzers.clients import NO_PEER_OVER_TCP, client_label
from dockertap.filters import matches_all, parse_filters
from dockertap.proxy.exchange import Capture, Exchange, PeerInfo

IMAGE = engines.BUSYBOX_TAG
SCRIPT = "echo from-stdout; echo from-stderr >&2"


def _has_framed_output(text: str) -> bool:
    """The demultiplexed frames, as `--bodies` prints them (not CMD's own output); colours aside."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return "stdout │ from-stdout" in text and "stderr │ from-stderr" in text


def test_run_bodies_in_the_end_of_command_trace(dockerd):
    result = subprocess.run(
        [*engines.dockertap_command(), "run", "--bodies", "--no-observe", "--backend", dockerd.url,
         "--", "docker", "run", "--rm", IMAGE, "sh", "-c", SCRIPT],
        capture_output=True, text=True, timeout=120, env=engines.docker_env("unix:///nonexistent"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _has_framed_output(result.stderr), result.stderr
    assert '"Cmd": [' in result.stderr  # the create request's JSON body


def _proxy_output(dockerd, short_tmp: Path, *extra: str, tty: bool) -> str:
    sock = short_tmp / "b.sock"
    argv = [*engines.dockertap_command(), "proxy", "--listen", f"unix://{sock}", "--backend", dockerd.url,
            "--no-observe", "--bodies", *extra]  # fmt: skip
    chunks: list[bytes] = []
    if tty:
        master, slave = pty.openpty()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL)
        os.close(slave)

        def pump() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
    else:
        out = short_tmp / "out"
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=open(out, "wb"), stderr=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        engines.docker(f"unix://{sock}", "run", "--rm", IMAGE, "sh", "-c", SCRIPT, check=True)
        time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(30)
    if tty:
        reader.join(5)
        os.close(master)
        return b"".join(chunks).decode("utf-8", "replace")
    return out.read_text()


def test_proxy_bodies_when_stdout_is_not_a_terminal(dockerd, short_tmp: Path):
    text = _proxy_output(dockerd, short_tmp, tty=False)
    assert _has_framed_output(text), text


def test_proxy_bodies_with_plain_on_a_terminal(dockerd, short_tmp: Path):
    text = _proxy_output(dockerd, short_tmp, "--plain", tty=True)
    assert _has_framed_output(text), text


# -- the client column ---------------------------------------------------------------------------

CLIENT_LABELS = [
    # (command line as /proc shows it, User-Agent, label)
    ("docker --context dockertap ps -a", "Docker-Client/20.10.24+dfsg1 (linux)", "docker ps"),
    ("/usr/bin/docker -H unix:///x run --rm busybox echo hi", "Docker-Client/28.5.1 (linux)", "docker run"),
    ("docker container ls -a", "", "docker container ls"),
    ("docker compose -f a.yml up -d", "Docker-Client/28.5.1 (linux)", "docker compose up"),
    ("/usr/libexec/docker/cli-plugins/docker-compose compose up -d", "compose/v2.39.1", "compose up"),
    ("/usr/libexec/docker/cli-plugins/docker-buildx buildx build .", "", "buildx build"),
    (
        "/usr/bin/python3 /usr/bin/docker-compose -p web up",
        "docker-compose/1.29.2 docker-py/5.0.3",
        "docker-compose up",
    ),
    ("python3 deploy.py --fast", "docker-sdk-python/7.1.0", "sdk python deploy.py"),
    ("python3 -c import docker", "docker-sdk-python/7.1.0", "sdk python"),
    (None, "Docker-Client/28.5.1 (linux)", "docker"),
    (None, "", "?"),
]


@pytest.mark.parametrize(("command", "agent", "label"), CLIENT_LABELS)
def test_client_label_tells_commands_apart(command, agent, label):
    assert client_label(command, agent) == label


def test_real_clients_are_named_by_program_and_subcommand(dockerd, short_tmp: Path):
    tap = engines.start_tap(dockerd.url, short_tmp, "--no-observe")
    compose_file = short_tmp / "compose.yml"
    compose_file.write_text(f"services:\n  app:\n    image: {IMAGE}\n")
    try:
        env = engines.docker_env(tap.url)
        run = [
            ["docker", "--host", tap.url, "ps", "-a"],
            ["docker", "container", "ls"],
            ["docker-compose", "-f", str(compose_file), "-p", "dtproj", "ps"],
            # Debian's docker SDK (python3-docker, which docker-compose v1 needs too)
            ["/usr/bin/python3", "-c", "import docker; docker.from_env().ping()"],
        ]
        for argv in run:
            done = subprocess.run(argv, env=env, capture_output=True, timeout=120)
            assert done.returncode == 0, (argv, done.stderr)
        time.sleep(0.5)
    finally:
        tap.stop()
    labels = {line["client"]["label"] for line in tap.trace_lines() if "client" in line}
    assert {"docker ps", "docker container ls", "docker-compose ps", "sdk python"} <= labels, labels
    commands = {line["client"]["command"] for line in tap.trace_lines() if "client" in line}
    assert f"docker --host {tap.url} ps -a" in commands  # the full command line stays in JSON


def test_over_tcp_the_client_is_what_its_user_agent_says_and_why_once(dockerd, short_tmp: Path):
    err = short_tmp / "err"
    argv = [*engines.dockertap_command(), "proxy", "--listen", "tcp://127.0.0.1:0", "--allow-tcp",
            "--backend", dockerd.url, "--no-observe", "--plain"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(err, "wb"), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while "export DOCKER_HOST=" not in err.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = re.search(r"export DOCKER_HOST=(\S+)", err.read_text()).group(1)
        for _ in range(2):
            engines.docker(url, "ps", check=True)
        time.sleep(0.5)
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert err.read_text().count(NO_PEER_OVER_TCP) == 1
    lines = [line for line in out.decode().splitlines() if "/containers/json" in line]
    assert len(lines) == 2 and all(line.split()[1] == "docker" for line in lines), lines


def test_client_filter_matches_the_client_column():
    head = (
        b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\nUser-Agent: docker-sdk-python/7.1.0\r\n\r\n"
    )
    ex = Exchange(
        1, 1, 1, PeerInfo(command="python3 deploy.py --fast"), "unix:///x", head, Capture(1), Capture(1)
    )
    assert matches_all(parse_filters(["client=sdk python*"]), ex)
    assert not matches_all(parse_filters(["client=docker*"]), ex)
