"""Who sent a request, in the few words that tell commands apart: `docker run`, `docker compose up`,
`docker-compose up`, `compose up` (compose v2 running as a CLI plugin), `sdk python app.py`.

Built from the client's command line (Unix peer credentials) and its User-Agent; pure, so the
trace, the live view and replays name clients alike. The full command line stays in the JSON trace.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

#: docker's global options that take a value (docker/cli cli/flags/options.go): the word after
#: them is not the subcommand.
DOCKER_VALUED_GLOBALS = frozenset(
    {"-H", "--host", "-c", "--context", "--config", "-l", "--log-level", "--tlscacert", "--tlscert",
     "--tlskey"}
)  # fmt: skip
#: compose's own options that take a value (v1 and v2), before its subcommand.
COMPOSE_VALUED_GLOBALS = frozenset(
    {"-f", "--file", "-p", "--project-name", "--env-file", "--project-directory", "--profile", "--ansi",
     "--parallel", "--progress"}
)  # fmt: skip
_VALUED = DOCKER_VALUED_GLOBALS | COMPOSE_VALUED_GLOBALS
#: Commands whose first argument is itself a command (`docker container ls`, `docker compose up`).
_GROUPS = frozenset(
    {
        "builder", "buildx", "checkpoint", "compose", "config", "container", "context", "image", "manifest",
        "network", "node", "plugin", "secret", "service", "stack", "swarm", "system", "trust", "volume",
    }
)  # fmt: skip
_INTERPRETER = re.compile(r"^(python[0-9.]*|pypy[0-9.]*|node|ruby[0-9.]*|perl|sh|bash)$")

#: User-Agent prefixes → the client they name (docker/cli, docker-py, compose v1, compose v2).
_AGENTS = (
    ("docker-sdk-python/", "sdk python"),
    ("docker-compose/", "docker-compose"),
    ("compose/", "compose"),
    ("docker-sdk-go/", "sdk go"),
    ("go-dockerclient", "sdk go"),
    ("docker-client/", "docker"),
    ("podman/", "podman"),
)

NO_PEER_OVER_TCP = "no peer credentials over TCP"


def _agent(user_agent: str) -> str | None:
    lowered = user_agent.lower()
    for prefix, name in _AGENTS:
        if lowered.startswith(prefix) or f" {prefix}" in lowered:
            return name
    return None


def _subcommands(args: list[str], depth: int) -> list[str]:
    """The first `depth` words that are not options (values of docker's valued globals skipped)."""
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--":
            break
        if arg.startswith("-"):
            skip = arg in _VALUED
            continue
        words.append(arg)
        if len(words) == 1 and words[0] not in _GROUPS:
            break
        if len(words) >= depth:
            break
    return words


@lru_cache(maxsize=1024)
def client_label(command: str | None, user_agent: str = "") -> str:
    """`docker run`, `compose up`, `sdk python app.py`… or `?` when nothing says who it was."""
    agent = _agent(user_agent) if user_agent else None
    if not command:
        return agent or "?"
    argv = command.split()
    program = os.path.basename(argv[0])
    args = argv[1:]
    if _INTERPRETER.match(program):
        script = os.path.basename(args[0]) if args and not args[0].startswith("-") else ""
        if agent == "sdk python":
            return f"sdk python {script}".rstrip()
        if script:
            program, args = script, args[1:]
    if program.startswith("docker-") and args and args[0] == program[len("docker-") :]:
        # a CLI plugin binary (compose v2, buildx) run by docker: `docker-compose compose up`
        program, args = args[0], args[1:]
    elif agent == "sdk python" and program not in ("docker", "docker-compose"):
        return f"sdk python {program}"
    words = _subcommands(args, 2 if program in ("docker", "podman") else 1)
    return " ".join([program, *words])
