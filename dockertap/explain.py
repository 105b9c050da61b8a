"""`dockertap explain`: show which layers an API call reaches, straight from the sourced layer model."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dockertap.analyzers.commands import (
    call_sequence,
    call_target,
    condition_text,
    find_command,
    known_commands,
    note_in,
)
from dockertap.analyzers.layer_table import GRPC_TRANSPORTS, LayerChain, all_rows, expected_chain
from dockertap.analyzers.routes import RouteMatch, match_route, route_spec
from dockertap.completion import explain_words
from dockertap.i18n import Lang, default_lang, msg
from dockertap.linebreak import wrap_text


class BackendFamily(StrEnum):
    dockerd = "dockerd"
    podman = "podman"


class ImageStore(StrEnum):
    graphdriver = "graphdriver"
    containerd = "containerd"


LAYER_STYLES = {
    "dockerd": "bold blue",
    "compat-api": "bold magenta",
    "containerd": "bold cyan",
    "shim": "cyan",
    "conmon": "magenta",
    "runc": "bold green",
    "crun": "bold green",
    "host": "yellow",
}


def _chain_tree(title: str, chain: LayerChain) -> Tree:
    tree = Tree(Text(title, style="bold"))
    for step in chain.steps:
        branch = tree.add(Text(step.layer, style=LAYER_STYLES.get(step.layer, "bold")))
        if step.operations:
            branch.add(Text.assemble(("operations: ", "dim"), ", ".join(step.operations)))
        if step.events:
            branch.add(Text.assemble(("containerd events: ", "dim"), ", ".join(step.events)))
        if step.execs:
            branch.add(Text.assemble(("execs: ", "dim"), ", ".join(step.execs)))
        if step.note:
            branch.add(Text(step.note, style="italic dim"))
    return tree


def _compact(chain: LayerChain) -> str:
    return " → ".join(
        f"{s.layer}[{' '.join(s.operations)}]"
        if s.operations and s.layer not in ("dockerd", "compat-api")
        else s.layer
        for s in chain.steps
    )


def _print_all(console: Console, lang: str) -> None:
    table = Table(title="dockertap layer model", show_lines=False, expand=True)
    for column in ("family", "store", "route", "when", "layers", "explanation", "source"):
        table.add_column(column, overflow="fold")
    for row in all_rows():
        layers = " → ".join(s.layer for s in row.steps)
        when = row.when or ""
        if row.add:
            when = ("+ " + when).strip() + (
                f" engine {row.engine_major[0]}–{row.engine_major[1]}" if row.engine_major else ""
            )
        route = f"{row.route} (group default)" if row.group else row.route
        table.add_row(
            row.family, row.image_store, route, when, layers, row.en if lang == "en" else row.ja, row.source
        )
    console.print(table)


def explain(
    ctx: typer.Context,
    request: list[str] = typer.Argument(
        None,
        metavar="REQUEST|docker COMMAND…",
        autocompletion=explain_words,
        help='A route template ("POST /containers/{id}/start"), a concrete request '
        '("POST /v1.41/containers/abc/start"), or a docker command (docker run --rm -it img sh).',
    ),
    backend_family: BackendFamily = typer.Option(
        BackendFamily.dockerd, "--backend-family", help="Which backend."
    ),
    image_store: ImageStore = typer.Option(
        ImageStore.graphdriver, "--image-store", help="dockerd's image store."
    ),
    lang: Lang = typer.Option(
        None, "--lang", help="Language (default: ja when LC_ALL, LC_MESSAGES or LANG starts with ja)."
    ),
    engine_version: str = typer.Option(
        None, "--engine-version", help="Engine version, for version-dependent extras (e.g. 20.10.24)."
    ),
    runtime: str = typer.Option(None, "--runtime", help="Podman's OCI runtime (crun or runc); default crun."),
    show_all: bool = typer.Option(False, "--all", help="Print the whole layer table."),
    grpc_methods: list[str] = typer.Option(
        None,
        "--grpc",
        metavar="METHOD",
        help="A gRPC method on POST /grpc or /session, e.g. /moby.buildkit.v1.Control/Solve (repeatable).",
    ),
) -> None:
    """Show which layers (dockerd, containerd, shim, runc, conmon, crun, host binaries) an API call reaches,
    or which API calls a docker command makes and where each one goes.

    The answer comes from dockertap's sourced layer model (layer-model.md) and its table of docker
    commands, not from a live daemon. Put dockertap's own options before `docker`.

    [bold]Examples[/bold]

      dockertap explain "POST /containers/{id}/start"

      dockertap explain "POST /v1.41/containers/abc/start" --backend-family podman --lang ja

      dockertap explain docker run --rm -it img sh

      dockertap explain "docker ps"

      dockertap explain --backend-family podman docker run --rm img echo hi

      dockertap explain "POST /grpc" --grpc /moby.buildkit.v1.Control/Solve

      dockertap explain --all
    """
    language = (lang or Lang(default_lang())).value
    console = Console()
    if show_all:
        _print_all(console, language)
        return
    words = list(request or [])
    if words and words[0] not in ("docker", "docker-compose") and "=" not in words[0]:
        # Not a docker command: options may follow the request (`explain "GET /x" --lang ja`).
        first_option = next((i for i, word in enumerate(words) if word.startswith("-")), None)
        if first_option is not None:
            reordered = [*words[first_option:], *words[:first_option]]
            params = ctx.command.make_context(ctx.info_name, reordered, parent=ctx.parent).params
            explain(ctx, **params)
            return
    if len(words) == 1 and " " in words[0].strip():
        words = shlex.split(words[0])
    if not words:
        raise _usage(msg(language, "explain_give"))
    grpc = tuple(grpc_methods) if grpc_methods else None
    context = _Context(backend_family.value, image_store.value, engine_version, runtime, language, grpc)
    assignments = []
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        assignments.append(words.pop(0))  # `DOCKER_BUILDKIT=0 docker build .`
    if words and words[0] in ("docker", "docker-compose"):
        if words[0] == "docker-compose":
            words = ["docker", "compose", *words[1:]]
        _explain_command(console, words[1:], context, assignments)
        return
    if assignments or not words:
        raise _usage(msg(language, "explain_give"))
    if len(words) != 2:
        raise _usage('expected "METHOD /path", e.g. "POST /containers/{id}/start", or a docker command')
    route = match_route(words[0], words[1].strip())
    if grpc_methods and route.template not in GRPC_TRANSPORTS:
        where = " and ".join(sorted(GRPC_TRANSPORTS))
        raise _usage(f"--grpc applies to {where}, not {route.template}")
    if not route.known:
        raise _usage(msg(language, "explain_unknown_route", route=f"{words[0]} {words[1]}"))
    _explain_route(console, route, context)


@dataclass(frozen=True, slots=True)
class _Context:
    family: str
    image_store: str
    engine_version: str | None
    runtime: str | None
    lang: str
    grpc_methods: tuple[str, ...] | None = None


def _usage(message: str) -> typer.Exit:
    """A usage error: one line on stderr, exit 2 (never a traceback, never an answer for a wrong question)."""
    typer.secho(f"dockertap: {message}", fg="red", err=True)
    return typer.Exit(2)


def _chain(route: RouteMatch, context: _Context) -> LayerChain:
    return expected_chain(
        context.family,
        context.image_store,
        route,
        engine_version=context.engine_version,
        runtime=context.runtime,
        grpc_methods=context.grpc_methods,
    )


def _explain_route(console: Console, route: RouteMatch, context: _Context) -> None:
    chain = _chain(route, context)
    store = context.image_store if context.family == "dockerd" else "containers/storage"
    console.print(_chain_tree(f"{route.template}   ({context.family}, {store})", chain))
    spec = route_spec(route.template)
    if spec is not None and (spec.hijack or spec.streaming):
        hints = ", ".join(
            x
            for x in (
                f"hijack: {spec.hijack}" if spec.hijack else "",
                f"streaming: {spec.streaming}" if spec.streaming else "",
            )
            if x
        )
        console.print(Text(hints, style="dim"))
    console.print(Text.assemble(("chain: ", "dim"), _compact(chain)))
    _say(console, Text(chain.explanation[context.lang] or chain.explanation["en"]), context.lang)
    console.print(Text.assemble(("source: ", "dim"), (chain.source, "dim")))


def _say(console: Console, text: Text, lang: str) -> None:
    """Print `text`; Japanese is broken by display width with kinsoku rules instead of at ASCII spaces."""
    if lang == "ja":
        console.print(wrap_text(text, console.width), soft_wrap=True)
    else:
        console.print(text)


def _condition(when: str, lang: str) -> str:
    needs, flag = condition_text(when)
    return msg(lang, "explain_only_with" if needs else "explain_only_without", flag=flag)


def _explain_command(console: Console, argv: list[str], context: _Context, env: list[str]) -> None:
    """`docker …`: the calls the command makes, in order, each with the layers it reaches."""
    found = find_command(argv)
    if found is None:
        raise _usage(
            msg(
                context.lang,
                "explain_unknown_command",
                command=" ".join(argv) or "",
                known=", ".join(known_commands()),
            )
        )
    row, args = found
    calls = call_sequence(row, args, env)
    console.print(Text(" ".join([*env, "docker", *argv]), style="bold"))
    for n, call in enumerate(calls, 1):
        chain = _chain(match_route(call.route.split(" ", 1)[0], call_target(call, row, args)), context)
        line = Text(f"{n:>2}. ", style="bold")
        line.append(call.route, style="bold")
        if call.query:
            line.append(f"  ?{call.query}", style="dim")
        line.append("\n      ")
        line.append(_compact(chain), style=LAYER_STYLES.get(chain.steps[-1].layer, "") if chain.steps else "")
        if call.when:
            line.append("\n      " + _condition(call.when, context.lang), style="yellow")
        if call.terminal_only:
            line.append("\n      " + msg(context.lang, "explain_terminal_only"), style="yellow")
        if call.note:
            line.append(f"\n      {note_in(context.lang, call.note)}", style="italic dim")
        _say(console, line, context.lang)
    for call in row.calls:
        if call not in calls and call.when:
            skipped = msg(
                context.lang,
                "explain_skipped",
                route=call.route,
                condition=_condition(call.when, context.lang),
            )
            _say(console, Text(f"    ({skipped})", style="dim"), context.lang)
    for note in row.notes:
        _say(console, Text("  • " + note_in(context.lang, note)), context.lang)
    console.print(Text.assemble(("source: ", "dim"), (row.source, "dim")))
