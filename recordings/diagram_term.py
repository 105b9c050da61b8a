"""The session's sequence diagram and "what you just saw" summary, drawn for the terminal (rich).

The diagram model comes from `recordings/diagram.py`; this module only draws it: one column per lane, one
line per arrow (`──▶` between its lanes, a loop `↺` when a process starts another in the same lane), a `┃`
down the client lane while a hijacked stream is open, and the lanes an exchange reached marked on its line
(● observed, ○ expected by the model, ✗ missing). Every string from the recording goes in as `Text`.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.text import Text

from dockertap.i18n import counted
from dockertap.recordings.diagram import Arrow, Diagram, Summary
from dockertap.recordings.narrate import phrase
from dockertap.recordings.safe_text import safe_line

LANE_WIDTH = 13
_REACH_MARK = {"observed": "●", "expected": "○", "missing": "✗", "unexpected": "●"}
_LANE_STYLE = {
    "client": "bold",
    "dockertap": "dim",
    "api": "bold blue",
    "containerd": "bold cyan",
    "shim": "cyan",
    "conmon": "magenta",
    "runtime": "bold green",
    "host": "yellow",
}


#: Room kept for an arrow's label on the right, when the lanes are narrowed to fit the console.
LABEL_ROOM = 34
MIN_LANE_WIDTH = 9


def _lane_title(title: str, width: int) -> str:
    return title if cell_len(title) <= width - 1 else title[: width - 2] + "…"


class SequenceDiagram:
    """The diagram for a console: lanes as wide as fit (at most LANE_WIDTH), then each arrow's label."""

    def __init__(self, diagram: Diagram, lang: str = "en") -> None:
        self.diagram = diagram
        self.lang = lang

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lanes = len(self.diagram.lanes)
        room = (options.max_width - 4 - LABEL_ROOM) // max(lanes, 1)
        yield Group(*self.lines(max(MIN_LANE_WIDTH, min(LANE_WIDTH, room))))

    def lines(self, width: int = LANE_WIDTH) -> list[Text]:
        """The diagram as lines of rich `Text` (no markup: labels come from an untrusted recording)."""
        diagram = self.diagram
        lanes = [lane.key for lane in diagram.lanes]
        half = width // 2
        idle = " " * half + "│" + " " * (width - half - 1)
        lines: list[Text] = [Text(phrase(self.lang, "diagram_title"), style="bold")]
        header = Text("    ")
        for lane in diagram.lanes:
            header.append(_lane_title(lane.short, width).center(width), style=_LANE_STYLE.get(lane.key, ""))
        lines.append(header)
        open_rows = {row for span in diagram.spans for row in range(span.first_row, span.last_row + 1)}
        for arrow in diagram.arrows:
            cells = [idle for _ in lanes]
            if arrow.row in open_rows:
                cells[0] = " " * half + "┃" + " " * (width - half - 1)
            a, b = lanes.index(arrow.source), lanes.index(arrow.target)
            for key, status in arrow.reached:
                i = lanes.index(key)
                if i != b:
                    cells[i] = " " * half + _REACH_MARK.get(status, "○") + cells[i][half + 1 :]
            row = Text()
            style = _style(arrow)
            if a == b:
                for i, cell in enumerate(cells):
                    row.append(
                        cell[:half] + "↺" + cell[half + 1 :] if i == a else cell,
                        style=style if i == a else "",
                    )
            else:
                lo, hi = sorted((a, b))
                for i, cell in enumerate(cells):
                    if i < lo or i > hi:
                        row.append(cell, style="dim")
                    elif i == lo:
                        start = "◀" if a > b else cell[half]
                        row.append(cell[:half] + start + "─" * (width - half - 1), style=style)
                    elif i == hi:
                        end = "▶" if a < b else cell[half]
                        row.append("─" * half + end + cell[half + 1 :], style=style)
                    else:
                        row.append("─" * width, style=style)
            line = Text(f"{arrow.step:>3} " if arrow.step is not None else "    ", style="bold")
            line.append_text(row)
            line.append(" ")
            line.append(safe_line(arrow.label), style=style)  # labels come from the recording
            lines.append(line)
        return lines


def diagram_renderable(diagram: Diagram, lang: str = "en") -> RenderableType:
    """The diagram for the terminal, fitted to the console's width."""
    return SequenceDiagram(diagram, lang)


def _style(arrow: Arrow) -> str:
    if arrow.kind == "evidence":
        return "dim green" if arrow.background else "green"
    status = arrow.status or 0
    return "red" if status >= 500 or not status else "yellow" if status >= 400 else "bold"


def summary_lines(summary: Summary, diagram: Diagram, lang: str = "en") -> list[str]:
    """The "what you just saw" lines, computed from the diagram: counts, layers reached, runtime calls."""
    titles = {lane.key: lane.title for lane in diagram.lanes}
    runtime = titles.get("runtime", "runc")
    api = titles.get("api", "dockerd")
    lines = [
        phrase(
            lang,
            "summary_counts",
            exchanges=counted(lang, summary.exchanges, "exchange"),
            evidence=counted(lang, summary.evidence, "evidence"),
            streams=counted(lang, summary.hijacked, "stream"),
        )
    ]
    for lane, n, observed in summary.reached:
        if observed == n:
            how = phrase(lang, "reached_all_observed")
        elif observed == 0:
            how = phrase(lang, "reached_none_observed")
        else:
            how = phrase(lang, "reached_some_observed", observed=observed)
        exchanges = counted(lang, n, "exchange")
        lines.append(phrase(lang, "summary_reached", layer=titles[lane], exchanges=exchanges, how=how))
    if summary.runtime_routes:
        lines.append(
            phrase(lang, "summary_runtime", runtime=runtime, routes=", ".join(summary.runtime_routes))
        )
    else:
        lines.append(phrase(lang, "summary_runtime_none", runtime=runtime))
    if summary.runtime_commands:
        lines.append(
            phrase(
                lang,
                "summary_runtime_commands",
                runtime=runtime,
                commands=", ".join(summary.runtime_commands),
            )
        )
    if summary.api_only_routes:
        lines.append(phrase(lang, "summary_api_only", api=api, routes=", ".join(summary.api_only_routes)))
    return [safe_line(line) for line in lines]  # routes and commands come from the recording


def summary_renderable(diagram: Diagram, lang: str = "en", lesson: list[str] | None = None) -> RenderableType:
    """The summary block: the computed lines, then the lesson's own closing points when it has some."""
    out: list[Text] = [Text(phrase(lang, "summary_title"), style="bold underline")]
    out += [Text("  • " + safe_line(line)) for line in summary_lines(diagram.summary, diagram, lang)]
    if lesson:
        out.append(Text(phrase(lang, "summary_lesson"), style="bold"))
        out += [Text("  • " + safe_line(line)) for line in lesson]
    return Group(*out)
