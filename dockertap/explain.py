"""`dockertap explain`: show which layers an API call reaches, straight from the sourced layer model."""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dockertap.analyzers.layer_table import GRPC_TRANSPORTS, LayerChain, all_rows, expected_chain
from dockertap.analyzers.routes import match_route, route_spec


class BackendFamily(StrEnum):
    dockerd = "dockerd"
    podman = "podman"


class ImageStore(StrEnum):
    graphdriver = "graphdriver"
    containerd = "containerd"


class Lang(StrEnum):
    en = "en"
    ja = "ja"


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
    request: str = typer.Argument(
        None,
        help='A route template ("POST /containers/{id}/start") or a concrete request '
        '("POST /v1.41/containers/abc/start").',
    ),
    backend_family: BackendFamily = typer.Option(
        BackendFamily.dockerd, "--backend-family", help="Which backend."
    ),
    image_store: ImageStore = typer.Option(
        ImageStore.graphdriver, "--image-store", help="dockerd's image store."
    ),
    lang: Lang = typer.Option(Lang.en, "--lang", help="Language of the explanation."),
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
    """Show which layers (dockerd, containerd, shim, runc, conmon, crun, host binaries) an API call reaches.

    The answer comes from dockertap's sourced layer model (layer-model.md), not from a live daemon.

    [bold]Examples[/bold]

      dockertap explain "POST /containers/{id}/start"

      dockertap explain "POST /v1.41/containers/abc/start" --backend-family podman --lang ja

      dockertap explain "GET /containers/{id}/top"

      dockertap explain "POST /containers/create" --image-store containerd

      dockertap explain "DELETE /containers/abc?force=1"

      dockertap explain "POST /grpc" --grpc /moby.buildkit.v1.Control/Solve

      dockertap explain --all
    """
    console = Console()
    if show_all:
        _print_all(console, lang.value)
        return
    if not request:
        raise typer.BadParameter('give a request like "POST /containers/{id}/start", or --all')
    method, _, target = request.strip().partition(" ")
    if not target.strip():
        raise typer.BadParameter('expected "METHOD /path", e.g. "POST /containers/{id}/start"')
    route = match_route(method, target.strip())
    if grpc_methods and route.template not in GRPC_TRANSPORTS:
        where = " and ".join(sorted(GRPC_TRANSPORTS))
        raise typer.BadParameter(f"--grpc applies to {where}, not {route.template}")
    chain = expected_chain(
        backend_family.value,
        image_store.value,
        route,
        engine_version=engine_version,
        runtime=runtime,
        grpc_methods=tuple(grpc_methods) if grpc_methods else None,
    )
    store = image_store.value if backend_family is BackendFamily.dockerd else "containers/storage"
    title = f"{route.template}   ({backend_family.value}, {store})"
    if not route.known:
        title += "   [unknown route]"
    console.print(_chain_tree(title, chain))
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
    console.print(Text(chain.explanation[lang.value] or chain.explanation["en"]))
    console.print(Text.assemble(("source: ", "dim"), (chain.source, "dim")))
