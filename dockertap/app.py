"""The `dockertap` command line: a thin typer layer over proxy, analyzers and recordings."""

from __future__ import annotations

import typer

from dockertap import __version__

app = typer.Typer(
    name="dockertap",
    help="See what your container tooling does: a tracing proxy for the Docker API socket.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dockertap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """dockertap sits on the Docker API socket, relays every byte, and shows what each call reaches."""


from dockertap import tapping as _tapping  # noqa: E402

app.command("proxy")(_tapping.proxy)
app.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})(
    _tapping.run
)


from dockertap.contexts import contexts_app as _contexts_app  # noqa: E402
from dockertap.doctor import doctor as _doctor  # noqa: E402

app.command("doctor")(_doctor)
app.add_typer(_contexts_app, name="context")

from dockertap import explain as _explain  # noqa: E402

app.command(
    "explain", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True}
)(_explain.explain)


from dockertap import replay_cmd as _replay_cmd  # noqa: E402

app.command("replay")(_replay_cmd.replay)
app.command("recordings")(_replay_cmd.recordings)


from dockertap import recording_cmds as _recording_cmds  # noqa: E402

app.command("export")(_recording_cmds.export)
app.command("import")(_recording_cmds.import_)


def main() -> None:
    app()
