"""`docker tap …`: dockertap as a docker CLI plugin (the CLI's plugin protocol).

The docker CLI finds `docker-tap` in its `cli-plugins` directory, asks it for
`docker-cli-plugin-metadata` (for `docker info` and `docker --help`), and runs
`docker-tap [GLOBAL OPTIONS] tap [ARGS…]` with its own full argv — global options included
(docker/cli cli-plugins/manager/manager.go: PluginRunCommand passes os.Args[1:]) and the path
it was started as in `DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND`.

`docker tap run --rm img echo hi` becomes `dockertap run -- docker run --rm img echo hi`. The
docker global options that choose an endpoint (`--context`, `-H`) choose the tap's backend
instead, so the inner docker still talks to the tap and nothing bypasses it.

This module runs on every `docker tap` and every plugin listing, so it imports only the
standard library; the `dockertap plugin install|remove` commands live in `plugin_cmds`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PLUGIN_NAME = "tap"
PLUGIN_FILE = f"docker-{PLUGIN_NAME}"
METADATA_COMMAND = "docker-cli-plugin-metadata"
REEXEC_VARIABLE = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"
# The line that tells a plugin file we wrote from one somebody else put there.
OWNER_MARKER = "# written by `dockertap plugin install`; `dockertap plugin remove` deletes it"
SHORT_DESCRIPTION = "Trace a docker command through dockertap (layers it reaches below the API)"

# docker's global options (docker/cli cli/flags/options.go: InstallFlags), with whether each
# takes a value. `-v/--version` is the CLI's own and never reaches a plugin.
_GLOBAL_VALUE_OPTIONS = {
    "--config": "config",
    "-c": "context",
    "--context": "context",
    "-H": "host",
    "--host": "host",
    "-l": "log-level",
    "--log-level": "log-level",
    "--tlscacert": "tls",
    "--tlscert": "tls",
    "--tlskey": "tls",
}
_GLOBAL_FLAG_OPTIONS = {"-D": "debug", "--debug": "debug", "--tls": "tls", "--tlsverify": "tls"}

# `dockertap run` options that take a value (the rest are flags); kept beside the command in
# tapping.py and checked against it by the tests, so this module stays free of typer imports.
RUN_VALUE_OPTIONS = frozenset(
    {
        "--backend",
        "-b",
        "--trace-file",
        "-o",
        "--format",
        "-f",
        "--capture-bytes",
        "--record",
        "--settle",
        "--otlp",
    }
)


class PluginUsageError(Exception):
    """`docker tap` was called in a way we cannot honour; the message says why and what to do."""


@dataclass(frozen=True)
class PluginInvocation:
    """What `docker [GLOBALS] tap [RUN OPTIONS] SUBCOMMAND …` asks dockertap to do."""

    run_options: tuple[str, ...]
    docker_command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    show_help: bool = False


def _split_option(arg: str) -> tuple[str, str | None]:
    if arg.startswith("--") and "=" in arg:
        name, value = arg.split("=", 1)
        return name, value
    return arg, None


def parse_invocation(argv: Sequence[str], docker_binary: str = "docker") -> PluginInvocation:
    """Translate the plugin's argv (without argv[0]) into a `dockertap run` invocation."""
    args = list(argv)
    environment: dict[str, str] = {}
    passed_globals: list[str] = []
    index = 0
    while index < len(args) and args[index] != PLUGIN_NAME:
        if not args[index].startswith("-"):
            break
        name, value = _split_option(args[index])
        index += 1
        if name in _GLOBAL_FLAG_OPTIONS:
            kind = _GLOBAL_FLAG_OPTIONS[name]
            if kind == "tls":
                raise PluginUsageError(
                    f"{name}: dockertap relays plain Unix or TCP sockets only; run `docker tap` without TLS "
                    "options, or start `dockertap proxy --backend tcp://…` in front of a plain endpoint"
                )
            passed_globals.append(name)
            continue
        if name not in _GLOBAL_VALUE_OPTIONS:
            raise PluginUsageError(f"unknown docker global option before `{PLUGIN_NAME}`: {name}")
        if value is None:
            if index >= len(args):
                raise PluginUsageError(f"docker global option {name} needs a value")
            value = args[index]
            index += 1
        kind = _GLOBAL_VALUE_OPTIONS[name]
        if kind == "tls":
            raise PluginUsageError(
                f"{name}: dockertap relays plain Unix or TCP sockets only; TLS endpoints are not supported"
            )
        if kind == "config":
            environment["DOCKER_CONFIG"] = value
        elif kind == "context":
            environment["DOCKER_CONTEXT"] = value
        elif kind == "host":
            environment["DOCKERTAP_PLUGIN_BACKEND"] = value
        else:
            passed_globals.extend([name, value])
    if index >= len(args) or args[index] != PLUGIN_NAME:
        raise PluginUsageError(f"not called as a docker CLI plugin: no `{PLUGIN_NAME}` in the arguments")
    rest = args[index + 1 :]
    run_options: list[str] = []
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("-h", "--help"):
            return PluginInvocation((), (), environment, show_help=True)
        if option == "--":
            break
        run_options.append(option)
        name, value = _split_option(option)
        if value is None and name in RUN_VALUE_OPTIONS:
            if not rest:
                raise PluginUsageError(f"{name} needs a value")
            run_options.append(rest.pop(0))
    if not rest:
        return PluginInvocation(tuple(run_options), (), environment, show_help=True)
    if "DOCKERTAP_PLUGIN_BACKEND" in environment:
        run_options = ["--backend", environment.pop("DOCKERTAP_PLUGIN_BACKEND"), *run_options]
    return PluginInvocation(tuple(run_options), (docker_binary, *passed_globals, *rest), environment)


HELP_TEXT = f"""Usage:  docker tap [DOCKERTAP RUN OPTIONS] COMMAND [ARGS...]

{SHORT_DESCRIPTION}.
`docker tap COMMAND ARGS…` is `dockertap run -- docker COMMAND ARGS…`: the command runs
against a private tap, then dockertap prints each API call it made and the layers it reached.

Examples:
  docker tap ps
  docker tap run --rm busybox echo hi
  docker tap --live logs -f web
  docker tap --format json -o trace.jsonl compose up -d
  docker --context colima tap ps      # the context chooses the engine behind the tap

DOCKERTAP RUN OPTIONS are those of `dockertap run --help` (--live, --format, -o FILE, --record FILE, …).
Remove the plugin with: dockertap plugin remove
"""


def metadata(version: str) -> dict[str, str]:
    """The JSON object the docker CLI requires from `docker-tap docker-cli-plugin-metadata`."""
    return {
        "SchemaVersion": "0.1.0",
        "Vendor": "dockertap",
        "Version": version,
        "ShortDescription": SHORT_DESCRIPTION,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the installed `docker-tap` file: answer the CLI or exec `dockertap run`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [METADATA_COMMAND]:
        from dockertap import __version__

        print(json.dumps(metadata(__version__)))
        return 0
    docker_binary = os.environ.get(REEXEC_VARIABLE) or "docker"
    try:
        invocation = parse_invocation(args, docker_binary)
    except PluginUsageError as err:
        print(f"docker tap: {err}", file=sys.stderr)
        return 2
    if invocation.show_help:
        print(HELP_TEXT, end="")
        return 0
    environment = {**os.environ, **invocation.environment}
    argv_run = [
        sys.executable,
        "-m",
        "dockertap",
        "run",
        *invocation.run_options,
        "--",
        *invocation.docker_command,
    ]
    sys.stdout.flush()
    os.execve(sys.executable, argv_run, environment)
    return 0  # not reached: execve replaced this process


if __name__ == "__main__":
    sys.exit(main())
