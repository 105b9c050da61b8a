"""`dockertap web` and `dockertap addon-path`: mitmweb as dockertap's live web UI.

dockertap ships no web UI of its own: mitmweb (installed with mitmproxy, a dependency) shows the
flows, and `dockertap.mitmweb_addon` feeds it a running tap's session as it is written.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer

WEB_COLUMNS = ("icon", "path", "method", "status", "size", "time", "comment")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def addon_file() -> str:
    """The addon's path, for `mitmweb -s` / `mitmdump -s`."""
    from dockertap import mitmweb_addon

    return str(Path(mitmweb_addon.__file__).resolve())


def addon_path() -> None:
    """Print the path of dockertap's mitmproxy addon, for `mitmweb -s`.

    [bold]Examples[/bold]

    [cyan]dockertap addon-path[/cyan]

    [dim]# then: mitmweb -s "$(dockertap addon-path)" --set dockertap_follow=session.jsonl[/dim]
    [dim]# or annotate your own mitmproxy in front of a TCP Docker endpoint:[/dim]
    [dim]# mitmweb -s "$(dockertap addon-path)" --mode reverse:http://127.0.0.1:2375[/dim]
    """
    typer.echo(addon_file())


def web(
    session: str = typer.Argument(
        ..., metavar="FILE", help="The session a running tap records (--record FILE)."
    ),
    port: int = typer.Option(8081, "--port", min=1, max=65535, help="mitmweb's web UI port."),
    host: str = typer.Option("127.0.0.1", "--host", help="mitmweb's web UI address: a loopback one only."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open a browser on the UI."),
) -> None:
    """Follow a running tap's session in mitmweb's flow list (each exchange with its layers).

    [bold]Examples[/bold]

    [dim]# in one shell; runs until Ctrl-C[/dim]
    [cyan]dockertap proxy --record session.jsonl[/cyan]

    [dim]# in another; runs until Ctrl-C: open http://127.0.0.1:8081/[/dim]
    [cyan]dockertap web session.jsonl[/cyan]
    """
    if not _is_loopback(host):
        # mitmweb's UI has no authentication here: the whole session (heads, bodies) would be public.
        typer.secho(
            f"dockertap: --host {host}: the web UI shows every recorded exchange to whoever reaches it; "
            "use a loopback address (127.0.0.1, ::1, localhost) and an SSH tunnel to share it",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    mitmweb = shutil.which("mitmweb") or str(Path(sys.executable).with_name("mitmweb"))
    if not os.path.exists(mitmweb):
        typer.secho("dockertap: mitmweb is not installed (it comes with mitmproxy)", fg="red", err=True)
        raise typer.Exit(2)
    argv = [
        mitmweb,
        "-s",
        addon_file(),
        "--set",
        f"dockertap_follow={os.path.abspath(session)}",
        "--set",
        "server=false",  # a viewer only: no proxy listener of mitmproxy's own
        "--set",
        f"web_host={host}",
        "--set",
        f"web_port={port}",
        "--set",
        f"web_open_browser={'true' if browser else 'false'}",
        # The flow list with a comment column: that is where each exchange's layers are.
        *[arg for column in WEB_COLUMNS for arg in ("--set", f"web_columns={column}")],
    ]
    sys.stdout.flush()
    os.execv(mitmweb, argv)
