"""`dockertap run` and `dockertap proxy` as a user meets them: real docker CLI, real engine, real terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import engines
import pytest
from tmuxterm import TmuxTerminal

from dockertap.filters import FilterError, parse_filters
from dockertap.tapping import bypass_flags

IMAGE = engines.BUSYBOX_TAG


def dockertap(
    *args: str, input: bytes | None = None, timeout: float = 60, env=None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*engines.dockertap_command(), *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=engines.docker_env("unix:///nonexistent", env),
    )


def test_run_prints_output_then_the_trace_in_request_order(dockerd):
    result = dockertap("run", "--backend", dockerd.url, "--", "docker", "run", "--rm", IMAGE, "echo", "hi")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"hi\n"
    trace = result.stderr.decode()
    lines = [line for line in trace.splitlines() if "docker run" in line]
    routes = [line.split()[3] + " " + line.split()[4] for line in lines if len(line.split()) > 4]
    # The docker CLI's own order: ping, create, then attach/wait/start around the hijack.
    text = "\n".join(lines)
    assert "HEAD" in lines[0] and "/_ping" in lines[0]
    for piece in ("/containers/create", "/attach", "/wait", "/start"):
        assert piece in text, f"{piece} missing from trace:\n{trace}"
    assert "hijacked" in text
    assert len(routes) >= 5


def test_run_exit_code_and_stderr_are_cmds_own(dockerd):
    result = dockertap(
        "run",
        "--backend",
        dockerd.url,
        "--",
        "docker",
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    )
    assert result.returncode == 7
    assert result.stdout == b"out\n"
    assert result.stderr.startswith(b"err\n")


def test_run_json_trace_file_has_the_public_fields(dockerd, short_tmp: Path):
    trace = short_tmp / "t.jsonl"
    result = dockertap(
        "run", "--backend", dockerd.url, "--format", "json", "-o", str(trace), "--", "docker", "ps", "-q"
    )
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert records, "no trace records"
    required = {"id", "connection", "started", "method", "path", "status", "duration_ms", "request_bytes"}
    required |= {"response_bytes", "hijacked", "client"}
    for record in records:
        assert required <= record.keys()
        assert set(record["client"]) >= {"pid", "command"}
    listing = [r for r in records if r["path"].endswith("/containers/json")]
    assert listing and listing[0]["status"] == 200 and listing[0]["method"] == "GET"
    assert "docker ps -q" in listing[0]["client"]["command"]
    assert listing[0]["started"].endswith("Z")


def test_run_warns_when_cmd_would_bypass_the_tap(dockerd):
    result = dockertap("run", "--backend", dockerd.url, "--", "docker", "-H", dockerd.url, "ps", "-q")
    assert result.returncode == 0
    assert b"'-H'" in result.stderr and b"will not go through the tap" in result.stderr


def test_run_reports_unreachable_backend_as_a_docker_error(short_tmp: Path):
    missing = f"unix://{short_tmp}/nothing.sock"
    result = dockertap("run", "--backend", missing, "--", "docker", "ps")
    # The docker CLI prints our 502 message, naming the socket and a hint.
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "cannot reach" in err and "nothing.sock" in err
    assert "502" in err or "Error response from daemon" in err


def test_command_not_found_exits_127():
    result = dockertap("run", "--", "no-such-command-xyz")
    assert result.returncode == 127
    assert b"command not found" in result.stderr


def test_bypass_flag_detection():
    assert bypass_flags(["docker", "-H", "tcp://x", "ps"]) == ["-H"]
    assert bypass_flags(["docker", "--context=foo", "ps"]) == ["--context=foo"]
    assert bypass_flags(["docker", "-Htcp://x", "ps"]) == ["-Htcp://x"]
    assert bypass_flags(["docker", "run", "--rm", "img", "--", "-H"]) == []
    assert bypass_flags(["docker", "ps"]) == []
    assert bypass_flags(["docker", "run", "--rm", "img", "sh", "-c", "exit 3"]) == []
    assert bypass_flags(["docker", "--config", "/x", "-c", "ctx", "ps"]) == ["-c"]
    assert bypass_flags(["/usr/bin/docker", "-cctx", "ps"]) == ["-cctx"]


def test_bypass_flags_only_for_docker_and_compose_command_lines(short_tmp: Path):
    # A shell's -c (or any other program's) is not docker's --context.
    assert bypass_flags(["sh", "-c", "docker ps"]) == []
    assert bypass_flags(["bash", "-H", "x"]) == []
    assert bypass_flags(["python3", "-c", "import docker"]) == []
    # docker-compose 1.x (a Python script) takes -H/--host and -c/--context before its command.
    v1 = short_tmp / "docker-compose"
    v1.write_text("#!/usr/bin/python3\n")
    assert bypass_flags(["docker-compose", "-f", "x.yml", "-c", "ctx", "up"], str(v1)) == ["-c"]
    assert bypass_flags(["docker-compose", "--host=tcp://x", "up"], str(v1)) == ["--host=tcp://x"]
    # Compose v2 standalone (a Go binary) takes --host/-H/--context, but no -c.
    v2 = short_tmp / "v2" / "docker-compose"
    v2.parent.mkdir()
    v2.write_bytes(b"\x7fELF")
    assert bypass_flags(["docker-compose", "--context", "ctx", "up"], str(v2)) == ["--context"]
    assert bypass_flags(["docker-compose", "-H", "unix:///x", "up"], str(v2)) == ["-H"]
    assert bypass_flags(["docker-compose", "-c", "x", "up"], str(v2)) == []
    # `docker compose -H` is refused by the compose plugin itself; docker's own globals still count.
    assert bypass_flags(["docker", "compose", "-H", "x", "up"]) == []
    assert bypass_flags(["docker", "-H", "unix:///x", "compose", "up"]) == ["-H"]


def test_run_shell_command_gets_no_false_bypass_warning(dockerd):
    result = dockertap("run", "--backend", dockerd.url, "--", "sh", "-c", "docker ps -q")
    assert result.returncode == 0, result.stderr.decode()
    assert b"warning" not in result.stderr and b"will not go through the tap" not in result.stderr
    assert b"/containers/json" in result.stderr  # the script's docker went through the tap


def test_run_says_once_when_the_users_docker_host_does_not_work_for_the_cli(dockerd):
    result = dockertap(
        "run", "--backend", dockerd.url, "--", "docker", "ps", "-q", env={"DOCKER_HOST": str(dockerd.socket)}
    )
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert err.count("does not work with the docker CLI") == 1, err
    assert f"tcp://localhost:2375{dockerd.socket}" in err and f"unix://{dockerd.socket}" in err


def test_filter_parsing():
    filters = parse_filters(["route=POST /containers/*", "status=4xx", "client=docker*", "GET /_ping"])
    assert [(f.key, f.value) for f in filters] == [
        ("route", "POST /containers/*"),
        ("status", "4xx"),
        ("client", "docker*"),
        ("route", "GET /_ping"),
    ]
    with pytest.raises(FilterError):
        parse_filters(["status=teapot"])


# -- a real terminal ------------------------------------------------------------------------------

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _shell_env(dockerd) -> str:
    config = engines.docker_config_dir()
    return f"export DOCKER_CONFIG={config} PATH={os.environ['PATH']}; cd {Path(__file__).parent.parent}; "


@needs_tmux
def test_run_keeps_an_interactive_tty_usable(dockerd):
    term = TmuxTerminal(name=f"dt-it-{os.getpid()}")
    try:
        tap = " ".join(engines.dockertap_command())
        term.type(
            _shell_env(dockerd)
            + f"{tap} run --backend {dockerd.url} -- docker run -it --rm {IMAGE} sh; echo EXIT=$?"
        )
        term.wait_for("/ #")
        term.type("echo inside-$((6*7))")
        term.wait_for("inside-42")
        term.type("exit 5")
        screen = term.wait_for("EXIT=5")
        assert "POST" in screen and "/attach" in screen  # the trace follows on the same terminal
    finally:
        term.close()


@needs_tmux
def test_live_view_shows_open_streams_in_place_and_finished_lines(dockerd, short_tmp: Path):
    term = TmuxTerminal(name=f"dt-live-{os.getpid()}")
    sock = short_tmp / "live.sock"
    try:
        tap = " ".join(engines.dockertap_command())
        term.type(
            _shell_env(dockerd) + f"{tap} proxy --listen unix://{sock} --backend {dockerd.url} --bodies"
        )
        term.wait_for("export DOCKER_HOST=")
        env = engines.docker_env(f"unix://{sock}")
        events = subprocess.Popen(["docker", "events"], env=env, stdout=subprocess.DEVNULL)
        try:
            screen = term.wait_for("/events", timeout=10)
            panel = term.wait_for("open streams 1", timeout=10)
            assert "stream" in panel
            subprocess.run(
                ["docker", "run", "--rm", IMAGE, "sh", "-c", "echo from-stdout; echo from-stderr >&2"],
                env=env,
                capture_output=True,
                check=True,
                timeout=60,
            )
            screen = term.wait_for("from-stderr", timeout=15)
            assert "from-stdout" in screen  # --bodies decodes the attach stream
            assert "/containers/create" in screen or "containers/{id}" in screen
        finally:
            events.kill()
            events.wait()
        screen = term.wait_for("open streams 0", timeout=10)
        assert "/events" in screen  # the stream ended and scrolled into the log
    finally:
        term.close()


DEBIAN_DOCKER_CLI = "/usr/bin/docker"  # the 20.10 CLI: BuildKit through POST /session (h2c upgrade)


@pytest.mark.skipif(not os.path.exists(DEBIAN_DOCKER_CLI), reason="Debian's docker.io CLI is not installed")
def test_buildkit_session_h2c_upgrade_is_relayed(dockerd, short_tmp: Path):
    context = short_tmp / "ctx"
    context.mkdir()
    dockerfile = f'FROM {IMAGE}\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n'
    (context / "Dockerfile").write_text(dockerfile)
    (context / "hello.txt").write_text("built through dockertap\n")
    trace = short_tmp / "t.jsonl"
    result = dockertap(
        "run", "--backend", dockerd.url, "--format", "json", "-o", str(trace), "--",
        DEBIAN_DOCKER_CLI, "build", "-t", "dt-bk-session", str(context),
        env={"DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in trace.read_text().splitlines() if line.startswith("{")]
    session = [r for r in records if r.get("route") == "POST /session"]
    assert session and session[0]["status"] == 101 and session[0]["hijacked"], records
    assert session[0]["request_bytes"] > 0 and session[0]["response_bytes"] > 0  # h2c both ways
    built = engines.docker(dockerd.url, "run", "--rm", "dt-bk-session")
    assert built.stdout == "built through dockertap\n"
