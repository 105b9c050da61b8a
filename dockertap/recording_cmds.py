"""`dockertap export` and `dockertap import`: session files to and from HAR and mitmproxy flows."""

from __future__ import annotations

import typer

from dockertap.options import output_file
from dockertap.recordings.format import SessionFormatError, read_session


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"dockertap: {message}", fg="red", err=True)
    return typer.Exit(code)


def export(
    session_file: str = typer.Argument(
        ..., metavar="FILE", help="A session file (dockertap ... --record FILE)."
    ),
    har: str = typer.Option(
        None,
        "--har",
        metavar="OUT",
        callback=output_file,
        help="Write HAR 1.2 (browser devtools, HAR viewers).",
    ),
    flows: str = typer.Option(
        None,
        "--flows",
        metavar="OUT",
        callback=output_file,
        help="Write a mitmproxy flow file (mitmweb -r OUT).",
    ),
) -> None:
    """Export a recorded session as HAR or as a mitmproxy flow file.

    [bold]Examples[/bold]

    [dim]# a session you recorded: dockertap run --record session.jsonl -- …[/dim]
    [cyan]dockertap export session.jsonl --har session.har[/cyan]

    [dim]# then look at it: mitmweb -r session.flows[/dim]
    [cyan]dockertap export session.jsonl --flows session.flows[/cyan]
    """
    if not (har or flows):
        raise _fail("nothing to do: pass --har OUT and/or --flows OUT")
    try:
        session = read_session(session_file)
    except (OSError, SessionFormatError) as exc:
        raise _fail(str(exc)) from None
    for warning in session.warnings:
        typer.secho(f"dockertap: warning: {warning}", fg="yellow", err=True)
    from dockertap.recordings.flows import write_flows
    from dockertap.recordings.har import write_har

    for path, write, what in (
        (har, write_har, "exchanges to {} (HAR 1.2)"),
        (flows, write_flows, "flows to {} (mitmproxy)"),
    ):
        if not path:
            continue
        try:
            count = write(session, path)
        except OSError as exc:
            raise _fail(f"cannot write {path}: {exc.strerror or exc}") from None
        typer.echo(f"wrote {count} {what.format(path)}", err=True)


def import_(
    source: str = typer.Argument(..., metavar="IN", help="A HAR file or a mitmproxy flow file."),
    out: str = typer.Option(
        ..., "--output", "-o", metavar="FILE", callback=output_file, help="Session file to write."
    ),
    no_redact: bool = typer.Option(False, "--no-redact", help="Keep credentials found in the capture."),
) -> None:
    """Turn a capture made elsewhere (mitmproxy, HAR) into a session file, analysed like a live tap.

    [bold]Examples[/bold]

    [dim]# a mitmproxy capture (mitmdump -w capture.flows), or dockertap export --flows[/dim]
    [cyan]dockertap import session.flows -o from-flows.jsonl[/cyan]

    [cyan]dockertap import session.har -o from-har.jsonl && dockertap replay from-har.jsonl[/cyan]
    """
    from mitmproxy.exceptions import FlowReadException

    from dockertap.recordings.flows import import_flows, read_foreign_flows

    if no_redact:
        typer.secho(
            "dockertap: warning: --no-redact: credentials in the capture are kept", fg="yellow", err=True
        )
    try:
        flows = read_foreign_flows(source)
    except (OSError, FlowReadException) as exc:
        raise _fail(f"cannot read {source}: {exc}") from None
    try:
        count = import_flows(flows, out, redact=not no_redact)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"imported {count} exchanges from {source} into {out}", err=True)
