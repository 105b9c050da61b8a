"""Checks for command-line values, run while typer parses them (before anything is opened or started).

One mechanism for every usage error: a value that cannot work raises `typer.BadParameter` from a
callback here (or fails a typer `min=`/`max=` bound), and `dockertap.app.main` turns any click usage
error into one line on stderr and exit status 2. So a bad `--record` path fails before the proxy
creates its socket, and nothing is left behind.
"""

from __future__ import annotations

import os

import typer

from dockertap.proxy.endpoints import EndpointError, parse_endpoint


def output_file(value: str | None) -> str | None:
    """A file we are about to create or overwrite: its directory must exist and be writable."""
    if value is None or value == "-":
        return value
    if os.path.isdir(value):
        raise typer.BadParameter(f"{value} is a directory, not a file")
    parent = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(parent):
        raise typer.BadParameter(f"cannot write {value}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot write {value}: no permission to create files in {parent}")
    if os.path.exists(value) and not os.access(value, os.W_OK):
        raise typer.BadParameter(f"cannot write {value}: permission denied")
    return value


def endpoint_url(value: str | None) -> str | None:
    """A unix:// or tcp:// endpoint (`--listen`, `--backend`), refused with the reason at parse time."""
    if value is None:
        return value
    try:
        parse_endpoint(value)
    except EndpointError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value
