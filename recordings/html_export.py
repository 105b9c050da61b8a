# ruff: noqa: E501  (inline CSS and SVG attribute strings)
"""`dockertap export FILE --html OUT`: a self-contained page with the session's sequence diagram.

For a projector or a web site: one HTML file, inline SVG drawn here from the diagram model
(`recordings/diagram.py`), inline CSS, no script and no external resource, so it works offline. Beside the
diagram, the narration of each numbered step in the chosen language, and the "what you just saw" summary.

Recordings are untrusted: every string from them is escaped (`html.escape`, quotes included) before it is
written, in text and in attributes alike; the page carries a Content-Security-Policy that forbids scripts.
"""

from __future__ import annotations

import html
from pathlib import Path

from dockertap.linebreak import protect_spaces
from dockertap.recordings.diagram import Diagram
from dockertap.recordings.diagram_term import summary_lines
from dockertap.recordings.narrate import (
    Narrator,
    direct_commands,
    group_by_client,
    lesson_summary,
    phrase,
    route_matches,
    session_diagram,
)
from dockertap.recordings.replayable import ReplaySession

LANE_GAP = 150
ROW_HEIGHT = 30
TOP = 70
LEFT = 60
LABEL_ROOM = 330

_LANE_COLOUR = {
    "client": "#333",
    "dockertap": "#888",
    "api": "#1f5fbf",
    "containerd": "#0f8a8a",
    "shim": "#3aa6a6",
    "conmon": "#a03ca0",
    "runtime": "#2c8a2c",
    "host": "#b07800",
}
_REACH_FILL = {"observed": "#2c8a2c", "unexpected": "#2c8a2c", "expected": "none", "missing": "#c0392b"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _breakable(text: str, lang: str) -> str:
    """Japanese: no-break spaces where a line must not break (before a particle), for the browser."""
    return protect_spaces(text) if lang == "ja" else text


def svg_diagram(diagram: Diagram) -> str:
    """The diagram as an inline SVG element: lanes, arrows (class `arrow`), spans (class `span`)."""
    x = {lane.key: LEFT + i * LANE_GAP for i, lane in enumerate(diagram.lanes)}
    width = LEFT + (len(diagram.lanes) - 1) * LANE_GAP + LABEL_ROOM
    height = TOP + max(diagram.rows, 1) * ROW_HEIGHT + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="sequence diagram">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
    ]
    for lane in diagram.lanes:
        colour = _LANE_COLOUR.get(lane.key, "#444")
        lx = x[lane.key]
        out.append(
            f'<g class="lane" data-lane="{_e(lane.key)}"><text x="{lx}" y="{TOP - 30}" text-anchor="middle" '
            f'font-weight="bold" fill="{colour}">{_e(lane.title)}</text>'
            f'<line x1="{lx}" y1="{TOP - 18}" x2="{lx}" y2="{height - 10}" stroke="{colour}" '
            f'stroke-dasharray="4 4" stroke-opacity="0.6"/></g>'
        )
    for span in diagram.spans:
        top = TOP + span.first_row * ROW_HEIGHT
        bottom = TOP + (span.last_row + 1) * ROW_HEIGHT - 10
        out.append(
            f'<rect class="span" data-exchange="{span.exchange_id}" x="{x["client"] - 6}" y="{top - 8}" '
            f'width="12" height="{bottom - top + 8}" fill="#f5c542" fill-opacity="0.6" stroke="#b07800">'
            f"<title>{_e(span.label)}</title></rect>"
        )
    label_x = LEFT + (len(diagram.lanes) - 1) * LANE_GAP + 20
    for arrow in diagram.arrows:
        y = TOP + arrow.row * ROW_HEIGHT
        colour = (
            "#2c8a2c" if arrow.kind == "evidence" else "#c0392b" if (arrow.status or 500) >= 400 else "#222"
        )
        x1, x2 = x[arrow.source], x[arrow.target]
        attrs = f'class="arrow {arrow.kind}" data-kind="{arrow.kind}" stroke="{colour}" stroke-width="1.6"'
        if arrow.background:
            attrs += ' data-background="1" stroke-dasharray="5 3"'
        if arrow.exchange_id is not None:
            attrs += f' data-exchange="{arrow.exchange_id}" data-step="{arrow.step}"'
        if x1 == x2:
            out.append(
                f'<path {attrs} fill="none" marker-end="url(#head)" '
                f'd="M{x1},{y - 6} h22 v12 h-20"><title>{_e(arrow.label)}</title></path>'
            )
        else:
            out.append(
                f'<line {attrs} x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" marker-end="url(#head)">'
                f"<title>{_e(arrow.label)}</title></line>"
            )
        for lane_key, status in arrow.reached:
            if lane_key != arrow.target and lane_key in x:
                out.append(
                    f'<circle class="reach" cx="{x[lane_key]}" cy="{y}" r="5" stroke="#2c8a2c" '
                    f'fill="{_REACH_FILL.get(status, "none")}"><title>{_e(lane_key)}: {_e(status)}</title></circle>'
                )
        step = f"{arrow.step}. " if arrow.step is not None else ""
        weight = "bold" if arrow.kind == "exchange" else "normal"
        label = (
            f'<text class="label" x="{label_x}" y="{y + 4}" font-weight="{weight}" fill="{colour}">'
            f"{_e(step + arrow.label)}</text>"
        )
        # An exchange's label links to its narration beside the diagram (no script: a fragment link).
        out.append(f'<a href="#step-{arrow.step}">{label}</a>' if arrow.step is not None else label)
        if arrow.step is not None:
            out.append(
                f'<text class="step" x="{LEFT - 40}" y="{y + 4}" font-weight="bold">{arrow.step}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, "Noto Sans CJK JP", "Hiragino Sans", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.2em; }
.layout { display: grid; grid-template-columns: max-content minmax(22em, 1fr); gap: 1.5em; align-items: start; }
.diagram { overflow: auto; position: sticky; top: 0; max-height: 100vh; background: #fff; } svg text { font-size: 12px; font-family: ui-monospace, monospace; }
ol.steps { margin: 0; padding-left: 1.6em; } ol.steps li { margin-bottom: 0.9em; }
.narration { white-space: pre-wrap; line-break: strict; overflow-wrap: anywhere; font-family: ui-monospace,
  monospace; font-size: 12px; background: #f6f6f6; padding: 0.4em 0.6em; border-radius: 4px; margin: 0.2em 0; }
li.step:target .narration { outline: 3px solid #f5c542; } svg a text { text-decoration: underline; }
li.command-header { list-style: none; margin-left: -1.6em; } .command { font-weight: bold; color: #8a2c8a; } .meta { color: #666; } ul.summary li { margin: 0.2em 0; }
"""


def render_html(session: ReplaySession, lang: str = "en", only: tuple[str, ...] = ()) -> str:
    """The whole page. `lang` chooses the narration's language; the route names stay as the API spells them."""
    narrator = Narrator(session, lang)
    lang = narrator.lang
    selected = [rec for rec in session.exchanges if route_matches(rec, only)]
    diagram = session_diagram(session, narrator, selected)
    title = str(session.header.get("title") or session.source)
    steps: list[str] = [  # commands that reached no server: what the CLI printed
        f'<li class="command-header"><div class="narration">{_e(narrator.direct(live).plain.strip())}</div></li>'
        for live in direct_commands(session)
    ]
    step = 0
    for group in group_by_client(selected):
        header = narrator.group_header(group).plain.strip()
        steps.append(f'<li class="command-header"><span class="command">{_e(header)}</span></li>')
        for rec in group.exchanges:
            step += 1
            steps.append(
                f'<li class="step" id="step-{step}" value="{step}" data-exchange="{rec.id}">'
                f'<div class="narration">{_e(_breakable(narrator.exchange(rec).plain.strip(), lang))}</div></li>'
            )
    summary = [f"<li>{_e(line)}</li>" for line in summary_lines(diagram.summary, diagram, lang)]
    lesson_html = "".join(
        f"<h3>{_e(phrase(lang, title))}</h3><ul class='summary'>"
        + "".join(f"<li>{_e(line)}</li>" for line in lines)
        + "</ul>"
        for title, lines in (
            ("summary_lesson", lesson_summary(session, lang)),
            ("explanation_title", lesson_summary(session, lang, "explanation")),
        )
        if lines
    )
    return f"""<!DOCTYPE html>
<html lang="{_e(lang)}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="meta">{_e(narrator.title(group_by_client(selected)).plain)}</p>
<div class="layout">
<div class="diagram">
<h2>{_e(phrase(lang, "diagram_title"))}</h2>
{svg_diagram(diagram)}
</div>
<div>
<h2>{_e(phrase(lang, "summary_title"))}</h2>
<ul class="summary">{"".join(summary)}</ul>
{lesson_html}
<ol class="steps">
{"".join(steps)}
</ol>
</div>
</div>
</body>
</html>
"""


def write_html(session: ReplaySession, out: str | Path, lang: str = "en") -> int:
    """Write the page; returns the number of exchanges drawn."""
    Path(out).write_text(render_html(session, lang), encoding="utf-8")
    return len(session.exchanges)
