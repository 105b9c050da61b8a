"""Observed evidence in a running tap: sources → correlator → a settle stage in front of the sinks.

Evidence lags its exchange by milliseconds (a runc exec is read from /proc, a containerd event
travels through `ctr`), so an exchange that has just ended is *held* for `settle` seconds before
the sinks see it, while evidence keeps arriving and being attributed. Requests and responses
pass straight through. None of this runs on the relay path: sources deliver batches to the event
loop, and the stage is a sink behind the hub.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from typing import Any

from rich.text import Text

from dockertap.analyzers.correlate import DEFAULT_SETTLE, Correlator, apply_outcome
from dockertap.proxy.evidence.containerd import ContainerdEvents, socket_peer_pid
from dockertap.proxy.evidence.engine_host import (
    EngineHost,
    containerd_state_dir,
    find_containerd_socket,
    mount_namespace,
    podman_runroot,
    runtime_parents,
)
from dockertap.proxy.evidence.execs import ExecWatcher, capability_reason
from dockertap.proxy.exchange import Exchange
from dockertap.proxy.hub import Event

#: Seconds an exchange that would show a layer missing may wait for late evidence (a loaded host
#: delays the exec reader and `ctr events`), beyond the settle window.
MISSING_PATIENCE = 2.0


def observe_by_default() -> bool:
    """On when this process may use the host sources (root / CAP_NET_ADMIN on Linux)."""
    return capability_reason() is None


class SettleStage:
    """A sink that holds ended exchanges for the settle window, then hands them on enriched."""

    def __init__(self, observer: Observer, sinks: list) -> None:
        self._observer = observer
        self.sinks = sinks
        self._held: deque[tuple[float, Exchange]] = deque()

    def handle_batch(self, batch: list[Event]) -> None:
        passing = [(kind, ex) for kind, ex in batch if kind != "end"]
        if passing:
            self._emit(passing)
        due = time.time() + self._observer.settle
        for kind, ex in batch:
            if kind == "end":
                self._held.append((due, ex))
        if self._held:
            self._observer.schedule(self._observer.settle)

    def release(self, now: float, everything: bool = False) -> None:
        """Hand on the exchanges whose settle window is over, in order. One that would show a
        layer *missing* waits longer (up to `MISSING_PATIENCE` after its end), and those behind
        it with it: on a loaded host evidence can trail its exchange by far more than the settle
        window, and "missing" must mean it never came, not that it came late."""
        ready: list[Event] = []
        while self._held and (everything or self._held[0][0] <= now):
            _due, ex = self._held[0]
            if not everything and self._observer.would_miss(ex, now):
                self._held[0] = (now + self._observer.settle, ex)
                break
            self._held.popleft()
            self._observer.finish(ex)
            ready.append(("end", ex))
        if ready:
            self._emit(ready)
        if self._held:
            self._observer.schedule(max(0.0, self._held[0][0] - now))

    def background(self, records: list[dict[str, Any]]) -> None:
        for sink in self.sinks:
            handler = getattr(sink, "handle_background", None)
            if handler is not None:
                handler(records)

    def _emit(self, batch: list[Event]) -> None:
        for sink in self.sinks:
            sink.handle_batch(batch)


class Observer:
    """Runs the evidence sources for one backend and attributes what they report."""

    def __init__(self, analysis: Any, backend_url: str | None, *, settle: float = DEFAULT_SETTLE) -> None:
        self.analysis = analysis
        self.settle = settle
        self.correlator = Correlator(settle=settle)
        self.execs = ExecWatcher(self._on_items)
        self.containerd: ContainerdEvents | None = None
        self._backend_path = (
            backend_url[len("unix://") :] if backend_url and backend_url.startswith("unix://") else None
        )
        self._stage: SettleStage | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.background_count = 0
        self.engine: EngineHost | None = None
        self._containerd_pid: int | None = None
        self._runtimes_scanned = 0.0
        #: The backend `Endpoint`, asked once for /version and /info at start.
        self.endpoint: Any = None

    # -- wiring ------------------------------------------------------------------------------

    def install(self, pipeline: Any) -> None:
        """Run after the other processors, and put the settle stage in front of every sink."""
        pipeline.processors.append(self)
        self._stage = SettleStage(self, list(pipeline.sinks))
        pipeline.sinks[:] = [self._stage]

    def add_settled_sink(self, sink: Any) -> None:
        """A sink that sees exchanges only once their settle window closed (evidence attached)."""
        assert self._stage is not None, "install() first"
        self._stage.sinks.append(sink)

    async def _learn_backend(self, endpoint: Any) -> None:
        """Ask `/version` and `/info` once (off the relay path): the runtime name and the containerd
        socket decide which evidence the model expects."""
        if endpoint is None or getattr(self.analysis, "_info", None) is not None:
            return
        from dockertap.proxy.probe import probe

        result = await asyncio.to_thread(probe, endpoint, timeout=3.0, full=True)
        if result.info is None and result.version is None:
            return
        self.analysis._version = self.analysis._version or result.version
        self.analysis._info = result.info
        self.analysis.backend = self.analysis._compute()

    async def start(self) -> None:
        await self._learn_backend(self.endpoint)
        backend = getattr(self.analysis, "backend", None)
        family = getattr(backend, "family", "unknown")
        location = getattr(backend, "location", "unknown")
        product = getattr(backend, "product", "")
        engine_pid = socket_peer_pid(self._backend_path) if self._backend_path else None
        engine = self.engine = EngineHost.of(engine_pid)
        if engine_pid:
            self.correlator.engine_pids.add(engine_pid)
            if engine.uid is not None:
                self.correlator.trusted_uids = {0, engine.uid}
            namespace = mount_namespace(engine_pid)
            if namespace:
                self.correlator.engine_namespaces.add(namespace)
        address = None
        why_not = None
        if location == "vm":
            why_not = (
                f"the engine runs inside a VM ({product}): its containerd and runtimes are not on this host"
            )
        elif family == "podman":
            why_not = "Podman has no containerd (conmon runs the OCI runtime directly)"
        elif family == "unknown":
            why_not = "the backend is not a Docker engine dockertap recognises (no containerd to watch)"
        elif self._backend_path is None:
            why_not = "the backend is not a local Unix socket: its host is not this one"
        else:
            info = getattr(self.analysis, "_info", None)
            hint = getattr(backend, "containerd_address", None)
            if info is None and hint:
                info = {"Containerd": {"Address": hint}}
            address, how = find_containerd_socket(info, engine)
            if address is None:
                why_not = how
        self.containerd = ContainerdEvents(self._on_items, address)
        if address:
            containerd_pid = socket_peer_pid(address)
            if containerd_pid:
                self._containerd_pid = containerd_pid
                self.correlator.engine_pids.add(containerd_pid)
                namespace = mount_namespace(containerd_pid)
                if namespace:
                    self.correlator.engine_namespaces.add(namespace)
        tasks = []
        if location == "vm" or self._backend_path is None:
            # Execs would be this host's, not the engine's: do not pretend they are evidence.
            self.execs.disable(why_not or "the engine is not on this host")
        elif engine_pid is None:
            self.execs.disable(
                "the engine's pid is unknown (its socket gives no peer: another pid namespace?), "
                "so no exec can be proven to be the engine's"
            )
        else:
            tasks.append(self.execs.start())
        if why_not:
            self.containerd.disable(why_not)
        else:
            tasks.append(self.containerd.start())
        await asyncio.gather(*tasks)
        self._find_runtimes(time.time())
        self._refresh_sources()

    def _find_runtimes(self, now: float) -> None:
        """Trust the shims and conmons running this engine's containers, including those started
        before dockertap (at most once a second: it reads the engine's state directories)."""
        if self.engine is None or self.engine.pid is None or now - self._runtimes_scanned < 1.0:
            return
        self._runtimes_scanned = now
        family = getattr(getattr(self.analysis, "backend", None), "family", "unknown")
        state = containerd_state_dir(self._containerd_pid, self.engine) if self._containerd_pid else None
        runroot = podman_runroot(self.engine) if family == "podman" else None
        self.correlator.trust_runtimes(runtime_parents(state, runroot, self.correlator.trusted_uids))

    def _refresh_sources(self) -> None:
        self.correlator.sources = {
            "exec": self.execs.status()["active"],
            "containerd": bool(self.containerd and self.containerd.status()["active"]),
        }

    def statuses(self) -> list[dict[str, Any]]:
        out = [self.execs.status()]
        if self.containerd is not None:
            out.append(self.containerd.status())
        return out

    def banner(self) -> str:
        parts = []
        for st in self.statuses():
            state = "on" if st["active"] else "off"
            parts.append(f"{st['source']} {state} ({st['reason']})")
        return "evidence: " + "; ".join(parts)

    async def finish_all(self) -> None:
        """At shutdown: let the held exchanges that expect evidence from below the engine finish
        their settle window (and late evidence for what would show a layer missing its patience),
        then release everything. Others (`docker ps`) have nothing to wait for."""
        sources_on = any(st["active"] for st in self.statuses())
        if self._stage is not None and sources_on:
            waiting = [due for due, ex in self._stage._held if _expects_evidence(ex)]
            if waiting:
                await asyncio.sleep(max(0.0, max(waiting) - time.time()))
                while any(self.would_miss(ex, time.time()) for _due, ex in self._stage._held):
                    await asyncio.sleep(self.settle)
                    self._tick()
        self._tick(everything=True)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.execs.stop()
        if self.containerd is not None:
            await self.containerd.stop()

    # -- processor: runs in the pipeline for every event ---------------------------------------

    def __call__(self, kind: str, ex: Exchange) -> None:
        annotation = ex.annotation
        route = getattr(annotation, "route", None)
        chain = getattr(annotation, "chain", None)
        if route is None or chain is None:
            return
        if kind == "request":
            self.correlator.open(
                ex.id, route.template, route.object_id, ex.started, chain, hijacked=ex.hijacked
            )
        elif kind == "stream":
            # the decoded gRPC methods re-keyed the chain: evidence arriving now is judged by it
            self.correlator.rechain(ex.id, chain)
        elif kind == "end":
            self.correlator.open(
                ex.id, route.template, route.object_id, ex.started, chain, hijacked=ex.hijacked
            )
            self.correlator.close(
                ex.id,
                ex.ended or time.time(),
                responded=ex.status is not None and not ex.synthetic and self._recognised(),
                hijacked=ex.hijacked,
                query=route.query,
                response=_response_json(ex) if self.correlator.learns_from(route.template) else None,
                chain=chain,
            )

    def _recognised(self) -> bool:
        """A response proves the API layer (dockerd ✓) only from a backend known to be an engine."""
        return getattr(getattr(self.analysis, "backend", None), "family", "unknown") != "unknown"

    def would_miss(self, ex: Exchange, now: float) -> bool:
        """Whether `ex` would now show a missing layer and may still wait for late evidence."""
        if now - (ex.ended or now) >= MISSING_PATIENCE:
            return False
        outcome = self.correlator.outcome(ex.id, finished=True)
        if outcome is None:
            return False
        return any(
            layer.status == "missing" or "missing" in layer.operation_status.values()
            for layer in outcome.layers
        )

    def finish(self, ex: Exchange) -> None:
        """Called by the stage when an exchange leaves the settle window."""
        outcome = self.correlator.outcome(ex.id, finished=True)
        if outcome is not None and ex.annotation is not None:
            apply_outcome(ex.annotation, outcome)

    # -- evidence arrival and the settle timer ---------------------------------------------------

    def _on_items(self, items: list[dict[str, Any]]) -> None:
        self.correlator.add(items)
        self.schedule(self.settle)

    def schedule(self, delay: float) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(delay + 0.001, self._tick)

    def _tick(self, everything: bool = False) -> None:
        self._timer = None
        now = time.time()
        self._refresh_sources()
        if self.correlator.has_undecided():
            self._find_runtimes(now)  # a shim or conmon we have not met yet may vouch for them
        records = self.correlator.settle_items(now + (self.settle if everything else 0.0))
        if self._stage is not None:
            self._stage.release(now, everything=everything)
            if records:
                self.background_count += len(records)
                self._stage.background(records)
        self.correlator.prune(now)
        if self.correlator._pool and not everything:
            self.schedule(self.settle)


def _expects_evidence(ex: Exchange) -> bool:
    """Whether the model expects layers below the API for this exchange (evidence could come)."""
    chain = getattr(ex.annotation, "chain", None)
    return chain is None or len(chain.layers) > 1


def _response_json(ex: Exchange) -> Any:
    """The response body as JSON (decoded as mitmproxy decodes it), for the few routes whose answer
    names ids the correlator needs."""
    from dockertap.proxy.capture import response_payload
    from dockertap.proxy.exchange import final_head, header_value

    if "json" not in header_value(final_head(ex.response_head), "content-type"):
        return None
    payload = response_payload(ex)  # raw parsing: no mitmproxy import on `run`'s path
    if payload is None:
        return None
    try:
        return json.loads(payload or b"")
    except (ValueError, UnicodeDecodeError):
        return None


# -- showing background records -------------------------------------------------------------


def background_record(record: dict[str, Any]) -> dict[str, Any]:
    """The JSON trace form of a background record (`{"type": "background", ...}`)."""
    from dockertap.recordings.trace import rfc3339

    return {**record, "time": rfc3339(record["time"])}


def background_json(records: list[dict[str, Any]]) -> str:
    from dockertap.recordings.safe_text import json_safe

    return "".join(json_safe(json.dumps(background_record(r), ensure_ascii=False)) + "\n" for r in records)


def background_text(record: dict[str, Any]) -> Text:
    """A dim line: what happened below the API with no request behind it."""
    from datetime import datetime

    from dockertap.recordings.safe_text import safe_line

    names = []
    for item in record["items"]:
        if item.get("source") == "containerd":
            names.append(item["topic"])
        elif item.get("unreadable"):
            names.append(f"{item['program']} (command line unreadable)")
        else:
            command = item.get("runtime_command")
            names.append(f"{item['program']} {command}" if command else item["program"])
    what = "container exit" if record["kind"] == "container-exit" else "no request"
    cid = (record.get("container_id") or "")[:12]
    line = Text(style="dim")
    line.append(datetime.fromtimestamp(record["time"]).strftime("%H:%M:%S.%f")[:-3])
    # Evidence fields come from /proc and ctr output: programs and ids others may have chosen.
    summary = f"  (background) {what}{' ' + cid if cid else ''}: {', '.join(dict.fromkeys(names))}"
    line.append(safe_line(summary))
    if record.get("observed_by"):
        line.append("  ← seen by wait #" + ", #".join(str(k) for k in record["observed_by"]))
    return line


def background_lines(records: list[dict[str, Any]], color: bool) -> str:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=200, soft_wrap=True)
    for record in records:
        console.print(background_text(record))
    return buffer.getvalue()


def running_as_root() -> bool:
    return os.geteuid() == 0
