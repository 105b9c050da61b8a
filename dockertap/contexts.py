"""`dockertap context install|remove`: a docker context that points at the dockertap socket.

With it, `docker --context dockertap ps` (or `docker context use dockertap`) goes through the
proxy without touching DOCKER_HOST. The file is the docker CLI's own context store
(`$DOCKER_CONFIG/contexts/meta/<sha256(name)>/meta.json`, layer-model.md §4.3), written the
way `docker context create` writes it, so `docker context ls` shows it like any other.
"""

from __future__ import annotations

import json
import os
import shutil

import typer

from dockertap.atomic import write_atomically
from dockertap.proxy.discovery import (
    context_dir_name,
    context_meta_path,
    current_context_name,
    default_listen_path,
    docker_config_dir,
    read_context,
)
from dockertap.proxy.listener import shared_directory_reason
from dockertap.recordings.safe_text import safe_line

DEFAULT_CONTEXT_NAME = "dockertap"
DESCRIPTION = "dockertap tracing proxy (start it with: dockertap proxy)"

contexts_app = typer.Typer(
    name="context",
    help="Install or remove a docker context that routes the docker CLI through dockertap.",
    no_args_is_help=True,
)


class ContextStoreError(Exception):
    """A context change we refuse to make, with the reason for the user."""


class SharedSocketDirError(ContextStoreError):
    """The socket path is in a directory other users can write (a usage error: exit 2)."""


def _write_json_atomically(path: str, data: dict, indent: str | None = None) -> None:
    write_atomically(path, json.dumps(data, indent=indent), 0o644)


def install_context(
    config_dir: str, name: str, socket_path: str, *, force: bool = False
) -> tuple[str, str | None]:
    """Write the context; returns (meta.json path, the host it replaced or None).

    A context of the same name that points elsewhere is only replaced with `force`, because it
    may be the user's own.
    """
    if name == "default":
        raise ContextStoreError("'default' is the docker CLI's built-in context and cannot be stored")
    if not os.path.isabs(socket_path):
        raise ContextStoreError(f"the socket path must be absolute, got {socket_path!r}")
    shared = shared_directory_reason(os.path.dirname(socket_path))
    if shared:
        raise SharedSocketDirError(
            f"refusing to point the docker CLI at {socket_path}: {shared}. The context would keep sending "
            "commands there while no dockertap runs; choose a socket in a directory only you can write "
            f"(the default is {default_listen_path()})"
        )
    host = f"unix://{socket_path}"
    existing = read_context(config_dir, name)
    replaced = existing.host if existing.error is None and existing.host != host else None
    if replaced and not force:
        raise ContextStoreError(
            f"context {name!r} already exists and points at {replaced}; use --force to replace it"
        )
    meta = {
        "Name": name,
        "Metadata": {"Description": DESCRIPTION},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}},
    }
    path = context_meta_path(config_dir, name)
    _write_json_atomically(path, meta)
    return path, replaced


def remove_context(config_dir: str, name: str) -> tuple[bool, bool]:
    """Delete the context; returns (removed, was current). A current one is unset in config.json,
    so the docker CLI falls back to `default` instead of failing on a missing context."""
    meta_dir = os.path.dirname(context_meta_path(config_dir, name))
    removed = os.path.isdir(meta_dir)
    if removed:
        shutil.rmtree(meta_dir)
    tls_dir = os.path.join(config_dir, "contexts", "tls", context_dir_name(name))
    if os.path.isdir(tls_dir):
        shutil.rmtree(tls_dir)
    was_current = current_context_name(config_dir) == name
    if was_current:
        config_path = os.path.join(config_dir, "config.json")
        with open(config_path, encoding="utf-8") as fh:
            config = json.load(fh)
        config.pop("currentContext", None)
        _write_json_atomically(config_path, config, indent="\t")
    return removed, was_current


def _config_dir() -> str:
    return docker_config_dir(os.environ, os.environ.get("HOME") or os.path.expanduser("~"))


@contexts_app.command("install")
def install(
    name: str = typer.Option(DEFAULT_CONTEXT_NAME, "--name", help="Name of the docker context."),
    socket: str | None = typer.Option(
        None, "--socket", help="dockertap socket path (default: where `dockertap proxy` listens)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a context of that name pointing elsewhere."),
) -> None:
    """Create a docker context pointing at the dockertap socket.

    [bold]Examples[/bold]

    [dim]# then, while `dockertap proxy` runs: docker --context dockertap ps[/dim]
    [cyan]dockertap context install[/cyan]

    [dim]# a socket in a directory only you can write (a shared /tmp is refused)[/dim]
    [cyan]dockertap context install --name tap2 --socket "$XDG_RUNTIME_DIR/tap2.sock"[/cyan]
    """
    socket_path = os.path.abspath(socket) if socket else default_listen_path()
    try:
        path, replaced = install_context(_config_dir(), name, socket_path, force=force)
    except ContextStoreError as exc:
        typer.echo(f"dockertap: {safe_line(str(exc))}", err=True)
        raise typer.Exit(2 if isinstance(exc, SharedSocketDirError) else 1) from None
    if replaced:
        typer.echo(f"replaced context {name!r} (it pointed at {safe_line(replaced)})")
    typer.echo(f"docker context {name!r} -> unix://{socket_path}  ({path})")
    typer.echo(f"use it with: docker --context {name} ps   (or: docker context use {name})")


@contexts_app.command("remove")
def remove(
    name: str = typer.Option(DEFAULT_CONTEXT_NAME, "--name", help="Name of the docker context."),
) -> None:
    """Remove the docker context created by `dockertap context install`.

    [bold]Examples[/bold]

    [cyan]dockertap context remove[/cyan]

    [cyan]dockertap context remove --name tap2[/cyan]
    """
    removed, was_current = remove_context(_config_dir(), name)
    if not removed:
        typer.echo(f"no docker context named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed docker context {name!r}")
    if was_current:
        typer.echo("it was the current context; the docker CLI now uses 'default'")
