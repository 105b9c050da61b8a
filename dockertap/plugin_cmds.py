"""`dockertap plugin install|remove`: put `docker tap` into the docker CLI, or take it out.

The plugin is a two-line shell script in `$DOCKER_CONFIG/cli-plugins/docker-tap` that execs this
installation's Python on `dockertap.docker_plugin`, so `pipx`, `uv tool` and venv installs all work
and the plugin always runs the dockertap that installed it.
"""

from __future__ import annotations

import os
import shlex
import sys

import typer

from dockertap.atomic import write_atomically
from dockertap.docker_plugin import OWNER_MARKER, PLUGIN_FILE
from dockertap.proxy.discovery import docker_config_dir

plugin_app = typer.Typer(
    name="plugin",
    help="Install or remove `docker tap`, a docker CLI plugin that runs a docker command through dockertap.",
    no_args_is_help=True,
)


class PluginFileError(Exception):
    """A plugin file we refuse to write or delete, with the reason for the user."""


def default_plugin_dir() -> str:
    """The user's plugin directory: `$DOCKER_CONFIG/cli-plugins`, default `~/.docker/cli-plugins`
    (docker/cli cli-plugins/manager: getPluginDirs)."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(docker_config_dir(os.environ, home), "cli-plugins")


def plugin_script(python: str) -> str:
    return f'#!/bin/sh\n{OWNER_MARKER}\nexec {shlex.quote(python)} -m dockertap.docker_plugin "$@"\n'


def _is_ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return OWNER_MARKER in fh.read(4096)
    except OSError:
        return False


def install_plugin(directory: str, python: str, *, force: bool = False) -> str:
    """Write the plugin file atomically; returns its path. Somebody else's `docker-tap` is only
    replaced with `force`."""
    path = os.path.join(directory, PLUGIN_FILE)
    if os.path.lexists(path) and not _is_ours(path) and not force:
        raise PluginFileError(f"{path} exists and was not written by dockertap; use --force to replace it")
    try:
        write_atomically(path, plugin_script(python), 0o755)
    except OSError as err:
        raise PluginFileError(f"cannot write to {directory}: {err.strerror or err}") from None
    return path


def remove_plugin(directory: str) -> str | None:
    """Delete our plugin file; returns its path, or None when there was none."""
    path = os.path.join(directory, PLUGIN_FILE)
    if not os.path.lexists(path):
        return None
    if not _is_ours(path):
        raise PluginFileError(f"{path} was not written by dockertap; leaving it alone")
    os.unlink(path)
    return path


_DIR_HELP = "Plugin directory [default: $DOCKER_CONFIG/cli-plugins, else ~/.docker/cli-plugins]."


@plugin_app.command("install")
def install(
    directory: str = typer.Option(None, "--dir", help=_DIR_HELP),
    force: bool = typer.Option(False, "--force", help="Replace a docker-tap that dockertap did not write."),
) -> None:
    """Install `docker tap` for this user.

    [bold]Examples[/bold]

    [cyan]dockertap plugin install[/cyan]

    [dim]# then:[/dim] [cyan]docker tap run --rm busybox echo hi[/cyan]
    """
    target = directory or default_plugin_dir()
    try:
        path = install_plugin(target, sys.executable, force=force)
    except PluginFileError as err:
        typer.echo(f"dockertap: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"installed the docker CLI plugin: {path}")
    typer.echo("try: docker tap ps   (help: docker tap --help; undo: dockertap plugin remove)")


@plugin_app.command("remove")
def remove(directory: str = typer.Option(None, "--dir", help=_DIR_HELP)) -> None:
    """Remove the `docker tap` plugin that `dockertap plugin install` wrote.

    [bold]Examples[/bold]

    [cyan]dockertap plugin remove[/cyan]
    """
    target = directory or default_plugin_dir()
    try:
        path = remove_plugin(target)
    except PluginFileError as err:
        typer.echo(f"dockertap: {err}", err=True)
        raise typer.Exit(2) from None
    if path is None:
        typer.echo(f"no docker-tap plugin in {target}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed the docker CLI plugin: {path}")
