"""`docker tap`: dockertap as a docker CLI plugin, driven by the real docker CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import engines
import pytest
import typer.main

from dockertap.app import app
from dockertap.docker_plugin import (
    RUN_VALUE_OPTIONS,
    PluginInvocation,
    PluginUsageError,
    parse_invocation,
)

IMAGE = engines.BUSYBOX_TAG

# (plugin argv as the docker CLI passes it, expected invocation)
PARSE_CASES = [
    (["tap", "ps"], PluginInvocation((), ("docker", "ps"))),
    (
        ["tap", "run", "--rm", "img", "echo", "hi"],
        PluginInvocation((), ("docker", "run", "--rm", "img", "echo", "hi")),
    ),
    (["tap", "--live", "logs", "-f", "web"], PluginInvocation(("--live",), ("docker", "logs", "-f", "web"))),
    (
        ["tap", "--format", "json", "-o", "t.jsonl", "compose", "up"],
        PluginInvocation(("--format", "json", "-o", "t.jsonl"), ("docker", "compose", "up")),
    ),
    (["tap", "--settle=0.5", "ps"], PluginInvocation(("--settle=0.5",), ("docker", "ps"))),
    (["tap", "--", "ps", "-a"], PluginInvocation((), ("docker", "ps", "-a"))),
    # Endpoint-choosing globals choose the tap's backend, never the inner docker's endpoint.
    (
        ["--context", "colima", "tap", "ps"],
        PluginInvocation((), ("docker", "ps"), {"DOCKER_CONTEXT": "colima"}),
    ),
    (["-c", "x", "tap", "ps"], PluginInvocation((), ("docker", "ps"), {"DOCKER_CONTEXT": "x"})),
    (
        ["-H", "unix:///e.sock", "tap", "ps"],
        PluginInvocation(("--backend", "unix:///e.sock"), ("docker", "ps")),
    ),
    (
        ["--host=tcp://127.0.0.1:1", "tap", "ps"],
        PluginInvocation(("--backend", "tcp://127.0.0.1:1"), ("docker", "ps")),
    ),
    (["--config", "/c", "tap", "ps"], PluginInvocation((), ("docker", "ps"), {"DOCKER_CONFIG": "/c"})),
    # Harmless globals go on to the inner docker.
    (["-D", "-l", "debug", "tap", "ps"], PluginInvocation((), ("docker", "-D", "-l", "debug", "ps"))),
    (["tap"], PluginInvocation((), (), show_help=True)),
    (["tap", "--help"], PluginInvocation((), (), show_help=True)),
    (["tap", "--live"], PluginInvocation(("--live",), (), show_help=True)),
]


@pytest.mark.parametrize(("argv", "expected"), PARSE_CASES, ids=[" ".join(c[0]) for c in PARSE_CASES])
def test_plugin_argv_becomes_a_dockertap_run(argv, expected):
    assert parse_invocation(argv) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls", "tap", "ps"], "plain Unix or TCP"),
        (["--tlscacert", "ca.pem", "tap", "ps"], "TLS"),
        (["--bogus", "tap", "ps"], "unknown docker global option"),
        (["--context"], "needs a value"),
        (["ps"], "not called as a docker CLI plugin"),
        (["tap", "-o"], "needs a value"),
    ],
)
def test_plugin_refuses_what_it_cannot_honour(argv, message):
    with pytest.raises(PluginUsageError, match=message):
        parse_invocation(argv)


def test_plugin_knows_which_run_options_take_a_value():
    """The plugin's stdlib-only option table must match `dockertap run` itself."""
    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    takes_value = {
        name
        for param in run.params
        if param.param_type_name == "option" and not param.is_flag and not param.count
        for name in param.opts
    }
    assert takes_value == set(RUN_VALUE_OPTIONS)


@pytest.fixture
def plugin_config(short_tmp: Path) -> Path:
    """A private DOCKER_CONFIG with the plugin installed by `dockertap plugin install`."""
    config = short_tmp / "cfg"
    config.mkdir()
    (config / "config.json").write_text("{}\n")
    result = subprocess.run(
        [*engines.dockertap_command(), "plugin", "install"],
        env={**os.environ, "DOCKER_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (config / "cli-plugins" / "docker-tap").exists()
    return config


def _docker(
    url: str, config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return engines.docker(url, *args, env={"DOCKER_CONFIG": str(config), **(env or {})}, timeout=120)


def test_docker_lists_the_plugin_and_shows_its_help(plugin_config: Path):
    listing = _docker("unix:///nonexistent.sock", plugin_config, "--help")
    assert "tap*" in listing.stdout and "Trace a docker command" in listing.stdout
    info = _docker(
        "unix:///nonexistent.sock", plugin_config, "info", "--format", "{{json .ClientInfo.Plugins}}"
    )
    plugins = json.loads(info.stdout)
    tap = next(p for p in plugins if p["Name"] == "tap")
    assert tap["Vendor"] == "dockertap" and tap["Path"].endswith("cli-plugins/docker-tap")
    for args in (("tap",), ("tap", "--help")):
        shown = _docker("unix:///nonexistent.sock", plugin_config, *args)
        assert shown.returncode == 0, shown.stderr
        assert "Usage:  docker tap" in shown.stdout and "docker tap run --rm busybox echo hi" in shown.stdout


def test_docker_tap_runs_the_command_through_the_tap(dockerd, plugin_config: Path):
    result = _docker(dockerd.url, plugin_config, "tap", "run", "--rm", IMAGE, "echo", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    assert "POST   /containers/create" in result.stderr and "/start" in result.stderr
    failing = _docker(dockerd.url, plugin_config, "tap", "run", "--rm", IMAGE, "sh", "-c", "exit 3")
    assert failing.returncode == 3


def test_docker_tap_global_endpoint_options_choose_the_backend(dockerd, plugin_config: Path, short_tmp: Path):
    """`docker -H X tap …` and `docker --context C tap …` trace against X / C's endpoint; the inner
    docker still talks to the tap (its calls appear in the trace)."""
    trace = short_tmp / "h.jsonl"
    by_host = _docker(
        "unix:///nonexistent.sock",
        plugin_config,
        "-H",
        dockerd.url,
        "tap",
        "--format",
        "json",
        "-o",
        str(trace),
        "ps",
    )
    assert by_host.returncode == 0, by_host.stderr
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert any(r["route"] == "GET /containers/json" for r in records)
    assert {r["backend_url"] for r in records} == {dockerd.url}

    created = _docker(
        "unix:///nonexistent.sock",
        plugin_config,
        "context",
        "create",
        "eng",
        "--docker",
        f"host={dockerd.url}",
    )
    assert created.returncode == 0, created.stderr
    env = {k: v for k, v in engines.docker_env("x").items() if k != "DOCKER_HOST"}
    env["DOCKER_CONFIG"] = str(plugin_config)
    by_context = subprocess.run(
        [engines.docker_binary(), "--context", "eng", "tap", "ps"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert by_context.returncode == 0, by_context.stderr
    assert "GET    /containers/json" in by_context.stderr


def test_plugin_remove_takes_docker_tap_away(plugin_config: Path):
    env = {**os.environ, "DOCKER_CONFIG": str(plugin_config)}
    removed = subprocess.run(
        [*engines.dockertap_command(), "plugin", "remove"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert removed.returncode == 0, removed.stderr
    assert not (plugin_config / "cli-plugins" / "docker-tap").exists()
    after = _docker("unix:///nonexistent.sock", plugin_config, "tap", "ps")
    assert after.returncode != 0 and "tap" in after.stderr
    again = subprocess.run(
        [*engines.dockertap_command(), "plugin", "remove"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "no docker-tap plugin" in again.stderr


def test_plugin_install_leaves_a_foreign_docker_tap_alone(short_tmp: Path):
    plugins = short_tmp / "cfg" / "cli-plugins"
    plugins.mkdir(parents=True)
    foreign = plugins / "docker-tap"
    foreign.write_text("#!/bin/sh\necho somebody else's\n")
    env = {**os.environ, "DOCKER_CONFIG": str(short_tmp / "cfg")}
    for command in (("plugin", "install"), ("plugin", "remove")):
        result = subprocess.run(
            [*engines.dockertap_command(), *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result
        assert "not written by dockertap" in result.stderr and "Traceback" not in result.stderr
    assert "somebody else's" in foreign.read_text()
