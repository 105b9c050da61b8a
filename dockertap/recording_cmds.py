"""`dockertap export` and `dockertap import`: session files to and from HAR and mitmproxy flows."""

from __future__ import annotations

import typer

from dockertap.i18n import Lang, counted, default_lang, msg, worded
from dockertap.options import output_file
from dockertap.recordings.format import SessionFormatError, read_session
from dockertap.recordings.safe_text import safe_line


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"dockertap: {safe_line(message)}", fg="red", err=True)
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
    html: str = typer.Option(
        None,
        "--html",
        metavar="OUT",
        callback=output_file,
        help="Write a self-contained HTML page: sequence diagram (inline SVG) and narration, no network.",
    ),
    lang: Lang = typer.Option(
        None, "--lang", help="Language of the HTML page's narration and of the messages [default: from LANG]."
    ),
) -> None:
    """Export a recorded session as HAR, as a mitmproxy flow file, or as a teaching HTML page.

    [bold]Examples[/bold]

    [dim]# a session you recorded: dockertap run --record session.jsonl -- …[/dim]
    [cyan]dockertap export session.jsonl --har session.har[/cyan]

    [dim]# then look at it: mitmweb -r session.flows[/dim]
    [cyan]dockertap export session.jsonl --flows session.flows[/cyan]

    [cyan]dockertap export docker-run --html docker-run.html --lang ja[/cyan]
    """
    language = (lang or Lang(default_lang())).value
    if not (har or flows or html):
        raise _fail(msg(language, "export_nothing"))
    if html:
        _export_html(session_file, html, language)
        if not (har or flows):
            return
    try:
        session = read_session(session_file)
    except (OSError, SessionFormatError) as exc:
        raise _fail(worded(language, exc)) from None
    for warning in session.warnings:
        shown = msg(language, "warning", warning=safe_line(worded(language, warning)))
        typer.secho(f"dockertap: {shown}", fg="yellow", err=True)
    from dockertap.recordings.flows import write_flows
    from dockertap.recordings.har import write_har

    for path, write, noun, what in (
        (har, write_har, "exchange", "HAR 1.2"),
        (flows, write_flows, "flow", "mitmproxy"),
    ):
        if not path:
            continue
        try:
            count = write(session, path)
        except OSError as exc:
            raise _fail(msg(language, "cannot_write", path=path, error=exc.strerror or exc)) from None
        wrote = msg(language, "wrote_export", count=counted(language, count, noun), out=path, what=what)
        typer.echo(wrote, err=True)


def _export_html(name_or_path: str, out: str, lang: str) -> None:
    from dockertap.recordings.html_export import write_html
    from dockertap.recordings.replayable import load_replay

    try:
        session = load_replay(name_or_path)
        count = write_html(session, out, lang)
    except (OSError, SessionFormatError) as exc:
        raise _fail(worded(lang, exc)) from None
    typer.echo(
        msg(lang, "wrote_html", exchanges=counted(lang, count, "exchange"), out=out, language=lang), err=True
    )


def import_(
    source: str = typer.Argument(..., metavar="IN", help="A HAR file or a mitmproxy flow file."),
    out: str = typer.Option(
        ..., "--output", "-o", metavar="FILE", callback=output_file, help="Session file to write."
    ),
    no_redact: bool = typer.Option(False, "--no-redact", help="Keep credentials found in the capture."),
    force: bool = typer.Option(False, "--force", help="Overwrite FILE if it exists."),
) -> None:
    """Turn a capture made elsewhere (mitmproxy, HAR) into a session file, analysed like a live tap.

    [bold]Examples[/bold]

    [dim]# a mitmproxy capture (mitmdump -w capture.flows), or dockertap export --flows[/dim]
    [cyan]dockertap import session.flows -o from-flows.jsonl[/cyan]

    [cyan]dockertap import session.har -o from-har.jsonl && dockertap replay from-har.jsonl[/cyan]

    [dim]# replace an earlier import[/dim]
    [cyan]dockertap import session.har -o from-har.jsonl --force[/cyan]
    """
    import os

    from mitmproxy.exceptions import FlowReadException

    from dockertap.recordings.flows import (
        ImportLimitError,
        import_flows,
        read_foreign_flows,
        what_the_import_lacks,
    )

    if os.path.lexists(out) and not force:
        raise _fail(f"{out} exists; pass --force to overwrite it")

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
    except ImportLimitError as exc:
        raise _fail(f"cannot import {source}: {exc}") from None
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    for note in what_the_import_lacks(flows):
        typer.secho(f"dockertap: note: {note}", fg="yellow", err=True)
    typer.echo(f"imported {counted('en', count, 'exchange')} from {source} into {out}", err=True)
