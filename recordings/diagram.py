"""The sequence diagram of a recording, computed once and drawn twice (terminal and SVG).

A pure function over a loaded recording: lanes (client, dockertap on the socket, the API server, and the
layers below it for that backend family), one arrow per exchange (client → API server) and one per observed
evidence item (from the process or layer that caused it to the lane where it happened), hijacked streams as
spans, and a "what you just saw" summary. Rows are in time order, so an arrow's row is its place in time.

Nothing here renders: `recordings/diagram_term.py` (rich) and `recordings/html_export.py` (SVG) draw it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dockertap.recordings.replayable import RecordedExchange, ReplaySession

#: Lanes per backend family, left to right: (key, title).
DOCKERD_LANES = (
    ("client", "client"),
    ("dockertap", "socket (dockertap)"),
    ("api", "dockerd"),
    ("containerd", "containerd"),
    ("shim", "shim"),
    ("runtime", "runc"),
    ("host", "host"),
)
PODMAN_LANES = (
    ("client", "client"),
    ("dockertap", "socket (dockertap)"),
    ("api", "Podman compat API"),
    ("conmon", "conmon"),
    ("runtime", "runc / crun"),
    ("host", "host"),
)

#: Which lane a layer name (from the layer model or an evidence item) is drawn in.
LANE_OF_LAYER = {
    "dockerd": "api",
    "compat-api": "api",
    "podman": "api",
    "containerd": "containerd",
    "shim": "shim",
    "conmon": "conmon",
    "runc": "runtime",
    "crun": "runtime",
    "host": "host",
}


#: Shorter lane titles where a terminal column is narrow.
SHORT_TITLES = {"socket (dockertap)": "dockertap", "Podman compat API": "podman API"}


@dataclass(frozen=True, slots=True)
class Lane:
    key: str
    title: str

    @property
    def short(self) -> str:
        return SHORT_TITLES.get(self.title, self.title)


@dataclass(frozen=True, slots=True)
class Arrow:
    """One exchange or one observed evidence item, at its row (time order)."""

    row: int
    source: str  # lane key
    target: str  # lane key
    label: str
    kind: str  # "exchange" or "evidence"
    time: float
    #: Evidence with no API call behind it (exit clean-up, health checks): drawn fainter.
    background: bool = False
    #: Exchanges: their id, HTTP status, narration step number and the lanes they reached (lane → status).
    exchange_id: int | None = None
    status: int | None = None
    step: int | None = None
    reached: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Span:
    """A hijacked stream: the connection stays open as a raw byte stream from `first_row` to `last_row`."""

    exchange_id: int
    first_row: int
    last_row: int
    label: str


@dataclass(frozen=True, slots=True)
class Summary:
    """What a learner just saw, in numbers."""

    exchanges: int
    evidence: int
    hijacked: int
    #: Per layer lane below the API: (lane, exchanges that reached it by the model or observed, observed).
    reached: tuple[tuple[str, int, int], ...]
    #: Routes that reached the OCI runtime (runc/crun), in order, without repeats.
    runtime_routes: tuple[str, ...]
    #: Routes answered by the API server alone.
    api_only_routes: tuple[str, ...]
    #: Distinct evidence in the runtime lane: `runc create`, `runc start`, …
    runtime_commands: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diagram:
    lanes: tuple[Lane, ...]
    arrows: tuple[Arrow, ...]
    spans: tuple[Span, ...]
    summary: Summary
    family: str
    rows: int = 0

    def lane_index(self, key: str) -> int:
        return next(i for i, lane in enumerate(self.lanes) if lane.key == key)


def _family(session: ReplaySession) -> str:
    return "podman" if session.backend.get("family") == "podman" else "dockerd"


def _lanes(family: str) -> tuple[Lane, ...]:
    return tuple(Lane(k, t) for k, t in (PODMAN_LANES if family == "podman" else DOCKERD_LANES))


def _lane(layer: object, lanes: tuple[Lane, ...]) -> str:
    key = LANE_OF_LAYER.get(str(layer or ""), "host")
    return key if any(lane.key == key for lane in lanes) else "host"


def evidence_label(item: dict[str, Any]) -> str:
    """A short name for an evidence item: a containerd topic, or the program and its subcommand."""
    if item.get("source") == "containerd":
        return str(item.get("topic") or "event")
    argv = item.get("argv")
    program = os.path.basename(str(argv[0])) if argv else str(item.get("program") or "?")
    command = item.get("runtime_command")
    return f"{program} {command}" if command else program


#: Who starts a process in a lane, when the evidence does not name a parent we saw (per family).
DEFAULT_PARENT = {
    "dockerd": {"containerd": "api", "shim": "containerd", "runtime": "shim", "host": "api", "api": "api"},
    "podman": {"conmon": "api", "runtime": "api", "host": "api", "api": "api"},
}


def _evidence_lane(item: dict[str, Any], lanes: tuple[Lane, ...]) -> str:
    """Where an evidence item happened: containerd for its events, else by the program exec'd."""
    if item.get("source") == "containerd":
        return _lane("containerd", lanes)
    program = os.path.basename(str((item.get("argv") or [item.get("program") or ""])[0]))
    if program.startswith("containerd-shim"):
        return _lane("shim", lanes)
    return _lane(program, lanes)


def dedupe_evidence(items: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Evidence with repeats folded: the same process exec'ing the same argv again counts once (×n).

    runc 1.1's `runc init` re-executes itself from a sealed memfd copy of its binary (CVE-2019-5736), so
    the exec watcher sees two execs of one pid with the same argv: one process, one item to show.
    """
    out: list[tuple[dict[str, Any], int]] = []
    for item in items:
        if out and item.get("source") == "exec" and out[-1][0].get("source") == "exec":
            last = out[-1][0]
            if (last.get("pid"), last.get("argv")) == (item.get("pid"), item.get("argv")):
                out[-1] = (last, out[-1][1] + 1)
                continue
        out.append((item, 1))
    return out


def flatten_evidence(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence items, with grouped records (a container's exit clean-up: `{kind, items: [...]}`) opened."""
    flat: list[dict[str, Any]] = []
    for record in records:
        items = record.get("items")
        if isinstance(items, list):
            flat += [item for item in items if isinstance(item, dict)]
        else:
            flat.append(record)
    return flat


def background_evidence(session: ReplaySession, chosen: list[RecordedExchange]) -> list[dict[str, Any]]:
    """The recording's evidence with no exchange behind it, during the chosen exchanges, in time order."""
    if not chosen:
        return []
    first = min(rec.started for rec in chosen)
    last = max(rec.ended or rec.started for rec in chosen)
    if len(chosen) == len(session.exchanges):
        last = float("inf")  # the whole recording: clean-up after the last answer belongs to it too
    timed = [item for item in flatten_evidence(session.evidence) if isinstance(item.get("time"), int | float)]
    return sorted((item for item in timed if first <= item["time"] <= last), key=lambda i: i["time"])


def _reached(layers: list[Any], lanes: tuple[Lane, ...]) -> tuple[tuple[str, str], ...]:
    """Lanes an exchange reached, with the recorded status (observed/expected/missing)."""
    reached: dict[str, str] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        lane = _lane(layer.get("layer"), lanes)
        status = str(layer.get("status") or "expected")
        if reached.get(lane) != "observed":
            reached[lane] = status
    return tuple(reached.items())


def build_diagram(
    session: ReplaySession, exchanges: list[RecordedExchange] | None = None, layers: Any = None
) -> Diagram:
    """The diagram of `exchanges` (default: all of the recording), in time order.

    `layers(rec)` may supply the layer list to use for an exchange (the narration's reconciled view);
    by default the recorded annotation is used.
    """
    family = _family(session)
    lanes = _lanes(family)
    chosen = list(session.exchanges if exchanges is None else exchanges)
    events: list[tuple[float, int, str, Any]] = []  # (time, order, kind, payload)
    for n, rec in enumerate(chosen):
        events.append((rec.started, 0, "exchange", (n + 1, rec)))
        for item, count in dedupe_evidence(list(rec.evidence)):
            at = item.get("time")
            events.append((at if isinstance(at, int | float) else rec.started, 1, "evidence", (item, count)))
        if rec.hijacked:
            end = rec.ended or rec.backend_closed_at or rec.started
            events.append((end, 2, "span_end", rec))
    for item, count in dedupe_evidence(background_evidence(session, chosen)):
        events.append((item["time"], 1, "background", (item, count)))
    events.sort(key=lambda e: (e[0], e[1]))
    arrows: list[Arrow] = []
    spans: list[Span] = []
    open_spans: dict[int, int] = {}
    lane_of_pid: dict[int, str] = {}
    row = 0
    for at, _, kind, payload in events:
        if kind == "exchange":
            step, rec = payload
            recorded = layers(rec) if layers is not None else rec.annotation.get("layers")
            label = f"{rec.route}" + (f" → {rec.status}" if rec.status else "")
            arrows.append(
                Arrow(
                    row,
                    "client",
                    "api",
                    label,
                    "exchange",
                    at,
                    exchange_id=rec.id,
                    status=rec.status,
                    step=step,
                    reached=_reached(list(recorded or []), lanes),
                )
            )
            if rec.hijacked:
                open_spans[rec.id] = row
            row += 1
        elif kind in ("evidence", "background"):
            item, count = payload
            target = _evidence_lane(item, lanes)
            ppid = item.get("ppid")
            source = lane_of_pid.get(ppid) if isinstance(ppid, int) else None
            source = source or DEFAULT_PARENT[family].get(target, "api")
            label = evidence_label(item) + (f" ×{count}" if count > 1 else "")
            arrows.append(Arrow(row, source, target, label, "evidence", at, background=kind == "background"))
            if isinstance(item.get("pid"), int):
                lane_of_pid[item["pid"]] = target
            row += 1
        else:
            rec = payload
            first = open_spans.pop(rec.id, None)
            if first is not None:
                spans.append(Span(rec.id, first, max(first, row - 1), f"{rec.route} (hijacked stream)"))
    for exchange_id, first in open_spans.items():
        spans.append(Span(exchange_id, first, max(first, row - 1), "hijacked stream"))
    return Diagram(lanes, tuple(arrows), tuple(spans), _summary(chosen, arrows, spans, lanes), family, row)


def _summary(
    chosen: list[RecordedExchange], arrows: list[Arrow], spans: list[Span], lanes: tuple[Lane, ...]
) -> Summary:
    reached: Counter[str] = Counter()
    observed: Counter[str] = Counter()
    runtime_routes: dict[str, None] = {}
    api_only: dict[str, None] = {}
    for arrow in arrows:
        if arrow.kind != "exchange":
            continue
        below = [lane for lane, status in arrow.reached if lane != "api" and status != "missing"]
        for lane in below:
            reached[lane] += 1
        for lane, status in arrow.reached:
            observed[lane] += lane != "api" and status == "observed"
        route = arrow.label.split(" → ")[0]
        if "runtime" in below:
            runtime_routes[route] = None
        if not below and arrow.status:
            api_only[route] = None
    runtime_commands = dict.fromkeys(
        a.label.split(" ×")[0] for a in arrows if a.kind == "evidence" and a.target == "runtime"
    )
    order = [lane.key for lane in lanes]
    return Summary(
        exchanges=len(chosen),
        evidence=sum(1 for a in arrows if a.kind == "evidence"),
        hijacked=len(spans),
        reached=tuple(
            (lane, n, observed[lane])
            for lane, n in sorted(reached.items(), key=lambda kv: order.index(kv[0]))
        ),
        runtime_routes=tuple(runtime_routes),
        api_only_routes=tuple(api_only),
        runtime_commands=tuple(runtime_commands),
    )
