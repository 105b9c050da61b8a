"""`dockertap replay` (narrated walk or fake daemon) and `dockertap recordings` (the bundled ones)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable

import typer
from rich.console import Console, RenderableType
from rich.text import Text

from dockertap.completion import recording_names
from dockertap.i18n import Lang, counted, default_lang, msg, worded
from dockertap.linebreak import wrap_text
from dockertap.proxy.discovery import default_socket_dir
from dockertap.proxy.listener import ListenError, open_unix_listener
from dockertap.recordings.narrate import NarrationItem, narration
from dockertap.recordings.replayable import ReplaySession, bundled_recordings, load_replay
from dockertap.recordings.safe_text import safe_line
from dockertap.recordings.serve import ReplayServer, Served


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"dockertap: {safe_line(message)}", fg="red", err=True)
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
        typer.echo(msg(default_lang(), "no_bundled"))
        return
    width = max(len(name) for name in found)
    for name, path in found.items():
        typer.echo(f"{name:<{width}}  {safe_line(recording_title(path))}")


def _load(file: str, lang: str) -> ReplaySession:
    from dockertap.recordings.format import SessionFormatError

    try:
        return load_replay(file)
    except (OSError, SessionFormatError) as exc:
        raise _fail(worded(lang, exc)) from None


def replay(
    file: str = typer.Argument(
        None,
        metavar="FILE|NAME",
        help="A session file, or the name of a bundled recording (see --list).",
        autocompletion=recording_names,
    ),
    step: bool = typer.Option(
        False,
        "--step",
        help="One exchange at a time: Enter/space next, b back, N+Enter jump, q quit, ? help.",
    ),
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
    lang: Lang = typer.Option(
        None,
        "--lang",
        help="Narration and messages language (default: ja when LC_ALL, LC_MESSAGES or LANG start with ja).",
    ),
    serve: bool = typer.Option(
        False, "--serve", help="Answer the real docker CLI from the recording (a fake daemon)."
    ),
    listen: str = typer.Option(
        None, "--listen", help="Unix socket path for --serve [default: replay.sock beside the proxy's socket]"
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
    language = (lang or Lang(default_lang())).value
    if list_bundled:
        recordings()
        return
    if file is None:
        raise _fail(msg(language, "which_recording"))
    session = _load(file, language)
    if serve:
        _serve(session, listen, 1.0 if speed is None else speed, language)
    else:
        _narrate(session, language, only or [], step, speed or 0.0)


#: Prints one renderable of the walk (wrapped for Japanese on a terminal).
Show = Callable[[RenderableType], None]


class _Keys:
    """Reads the stepping keys: single keypresses on a terminal, whole lines from a pipe."""

    def __init__(self) -> None:
        self.tty = sys.stdin.isatty()

    def read(self) -> str | None:
        """`next`, `back`, `quit`, `help`, a step number as text, an unknown key, or None at end of input."""
        if not self.tty:
            line = sys.stdin.readline()
            if not line:
                return None
            return _command(line.strip()) or "next"
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        digits = ""
        try:
            tty.setcbreak(fd)  # keeps ISIG: Ctrl-C still raises KeyboardInterrupt
            while True:
                ch = sys.stdin.read(1)
                if not ch:
                    return None
                if ch.isdigit():
                    digits += ch
                    sys.stdout.write(ch)
                    sys.stdout.flush()
                    continue
                if ch in "\r\n" and digits:
                    return digits
                return _command(ch if ch not in "\r\n " else "") or "next"
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _command(key: str) -> str | None:
    if key == "":
        return "next"
    if key.isdigit():
        return key
    return {"b": "back", "q": "quit", "?": "help", "h": "help", " ": "next"}.get(key.lower(), f"key:{key}")


def _narrate(session: ReplaySession, lang: str, only: list[str], step: bool, speed: float) -> None:
    console = Console(highlight=False)
    items = list(narration(session, lang, only))
    wrap = lang == "ja" and console.is_terminal

    def show(renderable: RenderableType) -> None:
        if wrap and isinstance(renderable, Text):
            renderable = wrap_text(renderable, console.width)
        console.print(renderable, soft_wrap=wrap or not console.is_terminal)

    try:
        if step:
            if not _walk_stepping(session, items, lang, console, show):
                return  # a deliberate quit: exit 0, nothing more printed
        else:
            previous: float | None = None
            for item in items:
                rec = item.exchange
                if rec is not None:
                    if speed > 0 and previous is not None:
                        time.sleep(max(0.0, rec.started - previous) / speed)
                    previous = rec.started
                show(item.renderable)
        _closing_diagram(session, lang, only, show)
    except KeyboardInterrupt:
        console.print()
        raise typer.Exit(130) from None


def _closing_diagram(session: ReplaySession, lang: str, only: list[str], show: Show) -> None:
    """The sequence diagram of what was narrated (the summary is the narration's last item)."""
    from dockertap.recordings.diagram_term import diagram_renderable
    from dockertap.recordings.narrate import Narrator, route_matches, session_diagram

    narrator = Narrator(session, lang)
    selected = [rec for rec in session.exchanges if route_matches(rec, only)]
    if selected:
        show(Text())
        show(diagram_renderable(session_diagram(session, narrator, selected), lang))


def _walk_stepping(
    session: ReplaySession, items: list[NarrationItem], lang: str, console: Console, show: Show
) -> bool:
    """`--step`: one exchange per step; Enter/space next, b back, N+Enter jump, q quit, ? help.

    Returns False when the learner quit, True when the walk reached its end.
    """
    steps = [i for i, item in enumerate(items) if item.exchange is not None]
    total = len(steps)
    keys = _Keys()
    shown_until = -1  # index of the last item printed in order

    def reveal(upto: int) -> None:
        nonlocal shown_until
        for item in items[shown_until + 1 : upto + 1]:
            show(item.renderable)
        shown_until = max(shown_until, upto)

    if not steps:
        reveal(len(items) - 1)
        return True
    current = 0
    reveal(steps[0])
    while True:
        prompt = msg(lang, "step_prompt", step=current + 1, total=total)
        # Off a terminal the prompt ends its line, so whatever comes next does not glue onto it.
        console.print(Text(prompt, style="dim"), end="" if keys.tty else "\n")
        console.file.flush()
        command = keys.read()
        if keys.tty:
            console.print()
        if command is None:  # input ended: play the rest without stopping
            break
        if command == "quit":
            return False
        if command == "help":
            console.print(Text(msg(lang, "step_help")))
            continue
        if command == "back":
            current = max(0, current - 1)
            show(items[steps[current]].renderable)
            continue
        if command.isdigit():
            wanted = int(command) - 1
            if not 0 <= wanted < total:
                console.print(Text(msg(lang, "step_no_such", n=command, total=total), style="yellow"))
                continue
            current = wanted
            if steps[current] > shown_until:
                reveal(steps[current])
            else:
                show(items[steps[current]].renderable)
            continue
        if command.startswith("key:"):
            console.print(Text(msg(lang, "step_unknown_key", pressed=command[4:]), style="yellow"))
            continue
        if current + 1 >= total:
            break
        current += 1
        if steps[current] > shown_until:
            reveal(steps[current])
        else:
            show(items[steps[current]].renderable)
    reveal(len(items) - 1)
    return True


def _serve(session: ReplaySession, listen: str | None, speed: float, lang: str = "en") -> None:
    private = listen is None
    path = listen or os.path.join(default_socket_dir(), "replay.sock")
    path = path.removeprefix("unix://")
    try:
        sock = open_unix_listener(path, private_parent=private)
    except ListenError as exc:
        raise _fail(str(exc)) from None
    console = Console(highlight=False, stderr=False)

    def show(served: Served) -> None:
        line = Text()
        route = served.recorded.route if served.recorded is not None else f"{served.method} {served.target}"
        line.append(safe_line(route), style="bold")  # crafted by the client or the recording
        style = "green" if served.status < 400 else "yellow" if served.status < 500 else "red"
        line.append(f"  → {served.status}", style=style)
        if served.recorded is not None:
            line.append("  " + msg(lang, "serve_recorded", id=safe_line(served.recorded.id)), style="dim")
        if served.notes:
            line.append(f"  {safe_line(served.note_in(lang))}", style="yellow")
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
        exchanges = counted(lang, len(session.exchanges), "exchange")
        err.write(
            "dockertap: "
            + msg(lang, "serving", exchanges=exchanges, source=safe_line(session.source), speed=f"{speed:g}")
            + "\n"
        )
        for warning in session.warnings:
            err.write("dockertap: " + msg(lang, "warning", warning=safe_line(worded(lang, warning))) + "\n")
        recorded = {rec.route for rec in session.exchanges}
        backend = session.backend
        for route in ("GET /version", "GET /info"):
            if route not in recorded:
                note = msg(
                    lang,
                    "serve_synthesised",
                    route=route,
                    product=safe_line(backend.get("product") or "?"),
                    version=safe_line(backend.get("engine_version") or ""),
                )
                err.write(f"dockertap: {note}\n")
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
