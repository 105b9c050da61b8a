"""The session's sequence diagram and "what you just saw" summary, drawn for the terminal (rich).

The diagram model comes from `recordings/diagram.py`; this module only draws it: one column per lane, one
line per arrow (`──▶` between its lanes, a loop `↺` when a process starts another in the same lane), a `┃`
down the client lane while a hijacked stream is open, and the lanes an exchange reached marked on its line
(● observed, ○ expected by the model, ✗ missing). Every string from the recording goes in as `Text`.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.text import Text

from dockertap.i18n import counted
from dockertap.recordings.diagram import Arrow, Diagram, Summary
from dockertap.recordings.narrate import phrase

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


def _lane_title(title: str) -> str:
    return title if cell_len(title) < LANE_WIDTH else title[: LANE_WIDTH - 2] + "…"


def diagram_renderable(diagram: Diagram, lang: str = "en") -> RenderableType:
    """The diagram as lines of rich `Text` (no markup: labels come from an untrusted recording)."""
    lanes = [lane.key for lane in diagram.lanes]
    lines: list[Text] = [Text(phrase(lang, "diagram_title"), style="bold")]
    header = Text()
    for lane in diagram.lanes:
        header.append(_lane_title(lane.short).center(LANE_WIDTH), style=_LANE_STYLE.get(lane.key, ""))
    lines.append(header)
    open_rows = {row for span in diagram.spans for row in range(span.first_row, span.last_row + 1)}
    for arrow in diagram.arrows:
        cells = [" " * (LANE_WIDTH // 2) + "│" + " " * (LANE_WIDTH - LANE_WIDTH // 2 - 1) for _ in lanes]
        if arrow.row in open_rows:
            cells[0] = " " * (LANE_WIDTH // 2) + "┃" + " " * (LANE_WIDTH - LANE_WIDTH // 2 - 1)
        a, b = lanes.index(arrow.source), lanes.index(arrow.target)
        reached = dict(arrow.reached)
        for key, status in reached.items():
            i = lanes.index(key)
            if i != b:
                cells[i] = (
                    " " * (LANE_WIDTH // 2) + _REACH_MARK.get(status, "○") + cells[i][LANE_WIDTH // 2 + 1 :]
                )
        row = Text()
        if a == b:
            for i, cell in enumerate(cells):
                row.append(cell[: LANE_WIDTH // 2] + "↺" + cell[LANE_WIDTH // 2 + 1 :] if i == a else cell)
        else:
            lo, hi = sorted((a, b))
            for i, cell in enumerate(cells):
                half = LANE_WIDTH // 2
                if i < lo or i > hi:
                    row.append(cell, style="dim")
                elif i == lo:
                    start = "◀" if a > b else cell[half]
                    row.append(cell[:half] + start + "─" * (LANE_WIDTH - half - 1), style=_style(arrow))
                elif i == hi:
                    end = "▶" if a < b else cell[half]
                    row.append("─" * half + end + cell[half + 1 :], style=_style(arrow))
                else:
                    row.append("─" * LANE_WIDTH, style=_style(arrow))
        prefix = f"{arrow.step:>3} " if arrow.step is not None else "    "
        line = Text(prefix, style="bold")
        line.append_text(row)
        line.append(" ")
        line.append(arrow.label, style=_style(arrow))
        lines.append(line)
    return Group(*lines)


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
    return lines


def summary_renderable(diagram: Diagram, lang: str = "en", lesson: list[str] | None = None) -> RenderableType:
    """The summary block: the computed lines, then the lesson's own closing points when it has some."""
    out: list[Text] = [Text(phrase(lang, "summary_title"), style="bold underline")]
    out += [Text("  • " + line) for line in summary_lines(diagram.summary, diagram, lang)]
    if lesson:
        out.append(Text(phrase(lang, "summary_lesson"), style="bold"))
        out += [Text("  • " + line) for line in lesson]
    return Group(*out)
