"""The `dockertap` command line: a thin typer layer over proxy, analyzers and recordings."""

from __future__ import annotations

import sys

import typer

from dockertap.completion import complete_zsh_on_first_tab

complete_zsh_on_first_tab()

app = typer.Typer(
    name="dockertap",
    help="See what your container tooling does: a tracing proxy for the Docker API socket.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from dockertap import __version__

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
# Options end at CMD (`run -- docker ps -a`), but an unknown option before it is an error, not CMD.
app.command("run", context_settings={"allow_interspersed_args": False})(_tapping.run)


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


from dockertap.plugin_cmds import plugin_app as _plugin_app  # noqa: E402

app.add_typer(_plugin_app, name="plugin")

from dockertap import web_cmds as _web_cmds  # noqa: E402

app.command("web")(_web_cmds.web)
app.command("addon-path")(_web_cmds.addon_path)


#: click's exception classes (typer ≥ 0.2x vendors its own copy of click; older ones use click's).
_errors = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_errors, "NoArgsIsHelpError", ())


def main() -> None:
    """Run the CLI. Every usage error (unknown option, bad value, missing argument) is one line on
    stderr naming the command, and exit status 2; the commands' own checks live in options.py."""
    try:
        code = app(standalone_mode=False)
    except _NoArgsIsHelp as exc:  # type: ignore[misc]
        if exc.ctx is not None:
            exc.ctx.get_help()  # typer's rich help prints itself (and returns what it printed)
        sys.exit(2)
    except _errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "dockertap"
        message = " ".join(exc.format_message().split())
        typer.secho(f"{where}: {message} (see: {where} --help)", fg="red", err=True)
        sys.exit(2)
    except _errors.ClickException as exc:
        typer.secho(f"dockertap: {' '.join(exc.format_message().split())}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
