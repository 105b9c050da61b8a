"""`dockertap replay` (narrated walk or fake daemon) and `dockertap recordings` (the bundled ones)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from enum import StrEnum

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from dockertap.completion import recording_names
from dockertap.proxy.listener import ListenError, open_unix_listener
from dockertap.recordings.narrate import narration, phrase
from dockertap.recordings.replayable import ReplaySession, bundled_recordings, load_replay
from dockertap.recordings.serve import ReplayServer, Served


class Lang(StrEnum):
    en = "en"
    ja = "ja"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"dockertap: {message}", fg="red", err=True)
    return typer.Exit(code)


def recording_title(path: os.PathLike[str] | str) -> str:
    """The `title` a bundled recording's header carries (what it teaches), or ''."""
    try:
        with open(path, encoding="utf-8") as f:
            header = json.loads(f.readline())
    except (OSError, ValueError):
        return ""
    return str(header.get("title") or "") if isinstance(header, dict) else ""


def recordings() -> None:
    """List the teaching recordings bundled with dockertap (replay one with `dockertap replay NAME`).

    [bold]Examples[/bold]

    [dim]# then: dockertap replay docker-run[/dim]
    [cyan]dockertap recordings[/cyan]
    """
    found = bundled_recordings()
    if not found:
        typer.echo("no bundled recordings are installed")
        return
    width = max(len(name) for name in found)
    for name, path in found.items():
        typer.echo(f"{name:<{width}}  {recording_title(path)}")


def _load(file: str) -> ReplaySession:
    from dockertap.recordings.format import SessionFormatError

    try:
        return load_replay(file)
    except (OSError, SessionFormatError) as exc:
        raise _fail(str(exc)) from None


def replay(
    file: str = typer.Argument(
        None,
        metavar="FILE|NAME",
        help="A session file, or the name of a bundled recording (see --list).",
        autocompletion=recording_names,
    ),
    step: bool = typer.Option(False, "--step", help="Wait for Enter between exchanges."),
    speed: float = typer.Option(
        None,
        "--speed",
        min=0,
        help="Keep the recorded pacing, scaled: 2 = twice as fast, 0 = no waiting. "
        "[default: 0 for the narration, 1 with --serve]",
    ),
    only: list[str] = typer.Option(
        None, "--only", help="Only exchanges whose route matches this glob, e.g. 'POST /containers/*'."
    ),
    lang: Lang = typer.Option(Lang.en, "--lang", help="Language of the explanations and the narration."),
    serve: bool = typer.Option(
        False, "--serve", help="Answer the real docker CLI from the recording (a fake daemon)."
    ),
    listen: str = typer.Option(
        None, "--listen", help="Unix socket path for --serve [default: /tmp/dockertap-<uid>/replay.sock]"
    ),
    list_bundled: bool = typer.Option(False, "--list", help="List the bundled recordings and exit."),
) -> None:
    """Replay a recorded session: narrated step by step, or served to the real docker CLI.

    [bold]Examples[/bold]

    [cyan]dockertap replay --list[/cyan]

    [cyan]dockertap replay docker-run --step --lang ja[/cyan]

    [dim]# a session you recorded: dockertap run --record session.jsonl -- …[/dim]
    [cyan]dockertap replay session.jsonl --only 'POST /containers/*' --speed 1[/cyan]

    [dim]# runs until Ctrl-C; in another shell paste the `export DOCKER_HOST=…` line it prints,[/dim]
    [dim]# then: docker run --rm dt-busybox echo hi[/dim]
    [cyan]dockertap replay docker-run --serve[/cyan]
    """
    if list_bundled:
        recordings()
        return
    if file is None:
        raise _fail("which recording? dockertap replay FILE (or a bundled name: dockertap replay --list)")
    session = _load(file)
    if serve:
        _serve(session, listen, 1.0 if speed is None else speed)
    else:
        _narrate(session, lang.value, only or [], step, speed or 0.0)


def _narrate(session: ReplaySession, lang: str, only: list[str], step: bool, speed: float) -> None:
    console = Console(highlight=False)
    previous: float | None = None
    stepping = step
    for item in narration(session, lang, only):
        rec = item.exchange
        if rec is not None:
            if stepping and previous is not None:
                try:
                    console.input(f"[dim]{escape(phrase(lang, 'press_enter'))}[/dim]")
                except (EOFError, KeyboardInterrupt):
                    stepping = False
            elif speed > 0 and previous is not None:
                time.sleep(max(0.0, rec.started - previous) / speed)
            previous = rec.started
        console.print(item.renderable, soft_wrap=not console.is_terminal)


def _serve(session: ReplaySession, listen: str | None, speed: float) -> None:
    private = listen is None
    path = listen or f"/tmp/dockertap-{os.getuid()}/replay.sock"
    path = path.removeprefix("unix://")
    try:
        sock = open_unix_listener(path, private_parent=private)
    except ListenError as exc:
        raise _fail(str(exc)) from None
    console = Console(highlight=False, stderr=False)

    def show(served: Served) -> None:
        line = Text()
        route = served.recorded.route if served.recorded is not None else f"{served.method} {served.target}"
        line.append(route, style="bold")
        style = "green" if served.status < 400 else "yellow" if served.status < 500 else "red"
        line.append(f"  → {served.status}", style=style)
        if served.recorded is not None:
            line.append(f"  (recorded #{served.recorded.id})", style="dim")
        if served.note:
            line.append(f"  {served.note}", style="yellow")
        console.print(line, soft_wrap=not console.is_terminal)
        console.file.flush()  # a log file or pipe sees each request as it is answered

    server = ReplayServer(session, speed=speed, on_served=show)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = loop.create_task(server.serve(sock))
        err = sys.stderr
        err.write(
            f"dockertap: serving {len(session.exchanges)} recorded exchanges from {session.source} "
            f"(speed {speed:g})\n"
        )
        for warning in session.warnings:
            err.write(f"dockertap: warning: {warning}\n")
        err.write(f"export DOCKER_HOST=unix://{path}\n")
        err.flush()
        await stop.wait()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass

    try:
        asyncio.run(main())
    finally:
        sock.close()
        try:
            os.unlink(path)
        except OSError:
            pass
