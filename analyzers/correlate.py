"""Attribute host evidence (containerd events, runtime execs) to the exchanges that caused them.

Pure: no sockets, no /proc, no clock. The caller feeds exchanges (`open`/`close`) and evidence
items (`add`) with their own timestamps, and asks for results with an explicit `now`.

Attribution is causal, not by overlap:

1. An item belongs to an exchange only if that exchange's expected chain (the layer model)
   names it — a containerd topic in `LayerStep.events` or an exec in `LayerStep.execs` — and
   the item falls inside the exchange's lifetime, on the same object (container or exec id).
   Names are mapped to ids from the exchanges themselves (create/inspect/exec responses).
2. A container's exit clean-up (`/tasks/exit` → `runc delete` → `/tasks/delete` →
   `/containers/delete`) is caused by the exit. Unless an exchange asks for it (stop, kill,
   forced rm), it becomes a *container event*, linked to the waits that observe it — never
   pinned on the attach or wait that happens to be open.
3. An item on the same container as a short-lived exchange that no exchange expects is shown on
   that exchange as *unexpected* (a mismatch with the model). Long-lived exchanges (attach,
   wait, events, logs, stats, hijacked streams) overlap everything and never collect those.
4. Everything else with no exchange behind it (health checks, restart policies, `--rm`
   clean-up) is a *background* record.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockertap.analyzers.layer_table import LayerChain, LayerStep

Item = dict[str, Any]

#: Seconds an item may come after its exchange ended (containerd timestamps events when it
#: forwards them, which can be just after dockerd has answered) or before it started (clocks).
LATE_GRACE = 0.05
EARLY_GRACE = 0.002
#: Unclaimed items older than this become background records.
DEFAULT_SETTLE = 0.15

#: containerd operation → the event topic(s) it publishes (layer-model.md §2.1). Operations not
#: listed publish nothing (Containers.Get, Tasks.Kill, Tasks.Metrics, Leases, …): evidence cannot
#: confirm or refute them, so they keep their "expected" status.
OPERATION_EVENTS: dict[str, tuple[str, ...]] = {
    "Containers.Create": ("/containers/create",),
    "Containers.Update": ("/containers/update",),
    "Containers.Delete": ("/containers/delete",),
    "Tasks.Create": ("/tasks/create",),
    "Tasks.Start": ("/tasks/start", "/tasks/exec-started"),
    "Tasks.Exec": ("/tasks/exec-added",),
    "Tasks.Delete": ("/tasks/delete",),
    "Tasks.Pause": ("/tasks/paused",),
    "Tasks.Resume": ("/tasks/resumed",),
    "Snapshots.Prepare": ("/snapshot/prepare",),
    "Snapshots.Commit": ("/snapshot/commit",),
    "Snapshots.Remove": ("/snapshot/remove",),
    "Images.Create": ("/images/create",),
    "Images.Update": ("/images/update",),
    "Images.Delete": ("/images/delete",),
}

#: Shim TTRPC call → the runc subcommand it runs (layer-model.md §2.2): a runc exec whose parent
#: is the container's shim confirms the shim call.
SHIM_OPERATION_RUNC: dict[str, tuple[str, ...]] = {
    "Create": ("create",),
    "Start": ("start", "exec"),
    "Kill": ("kill",),
    "Delete": ("delete",),
    "Pause": ("pause",),
    "Resume": ("resume",),
    "Pids": ("ps",),
    "Update": ("update",),
}

#: One-shot OCI runtime programs: what they exec is part of the same request.
OCI_RUNTIMES = frozenset({"runc", "crun"})

#: The exit clean-up chain (layer-model.md §1.0 #2, §2.1): caused by the container's exit.
EXIT_TOPICS = frozenset({"/tasks/exit", "/tasks/delete", "/containers/delete"})
EXIT_EXECS = frozenset(
    {"runc delete", "crun delete", "containerd-shim-runc-v2 delete", "podman container cleanup"}
)

#: Routes whose exchanges stay open across unrelated work (layer-model.md §5).
LONG_LIVED_ROUTES = frozenset(
    {
        "POST /containers/{id}/attach",
        "GET /containers/{id}/attach/ws",
        "POST /containers/{id}/wait",
        "GET /events",
        "GET /containers/{id}/logs",
        "GET /containers/{id}/stats",
    }
)
WAIT_ROUTE = "POST /containers/{id}/wait"

#: Routes whose responses reveal ids (`_learn`): create/inspect of containers and execs.
_LEARNING_SUFFIXES = (
    "/containers/create",
    "/containers/{id}/json",
    "/containers/{id}/exec",
    "/exec/{id}/json",
)

#: Layers whose handling of an exchange is proven by the response itself.
API_LAYERS = frozenset({"dockerd", "compat-api"})
_FULL_ID = re.compile(r"^[0-9a-f]{64}$")


def exec_signature(item: Item) -> str:
    """`runc create`, `ps`, `conmon create`: how an exec item is named in the layer table."""
    command = item.get("runtime_command")
    return f"{item['program']} {command}" if command else str(item["program"])


def _exec_matches(expected: str, item: Item, layer: str) -> bool:
    """Whether exec `item` is what a step of `layer` names as `expected` (`runc create`, `ps`)."""
    if item.get("unreadable"):
        return False  # never guessed: an unreadable command line confirms nothing specific
    signature = exec_signature(item)
    if signature in EXIT_EXECS:
        return expected == signature  # clean-up is claimed only by name, never by program alone
    if item.get("runtime_command") == "--version" and layer != "host":
        # a `conmon --version` probe is not conmon running a container
        return expected == signature
    return expected == signature or expected == item["program"]


def _same_program(expected: str, item: Item) -> bool:
    """An unreadable exec of a program the step names: it ran, but what it did is unknown."""
    return bool(item.get("unreadable")) and expected.split(" ", 1)[0] == item.get("program")


#: Finished exchanges kept for late evidence: at most this many, for at most this long (seconds).
#: Their outcome is taken when their settle window ends; what arrives later for an exchange
#: that has been dropped becomes a background record instead.
MAX_FINISHED = 4096
FINISHED_HORIZON = 300.0


@dataclass(slots=True)
class _Exchange:
    key: int
    template: str
    object_ref: str | None
    started: float
    chain: LayerChain
    hijacked: bool = False
    ended: float | None = None
    responded: bool = False
    items: list[Item] = field(default_factory=list)
    unexpected: list[Item] = field(default_factory=list)

    @property
    def long_lived(self) -> bool:
        return self.hijacked or self.template in LONG_LIVED_ROUTES

    def covers(self, when: float, late: float = LATE_GRACE) -> bool:
        if when < self.started - EARLY_GRACE:
            return False
        return self.ended is None or when <= self.ended + late


@dataclass(frozen=True, slots=True)
class LayerResult:
    layer: str
    operations: list[str]
    status: str
    operation_status: dict[str, str]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What evidence says about one exchange."""

    items: list[Item]
    layers: list[LayerResult]
    mismatches: list[str]


class Correlator:
    """Holds recent exchanges and unclaimed evidence; attributes items when it is safe to."""

    def __init__(
        self,
        *,
        engine_pids: Iterable[int] = (),
        trusted_uids: Iterable[int] = (0,),
        engine_namespaces: Iterable[str] = (),
        sources: Mapping[str, bool] | None = None,
        settle: float = DEFAULT_SETTLE,
        max_finished: int = MAX_FINISHED,
    ) -> None:
        #: The engine's own processes (engine, containerd): an exec must descend from one of them,
        #: from a shim/conmon of this engine, or from an exec already accepted.
        self.engine_pids = set(engine_pids)
        #: uids the engine's processes run as (0, or a rootless engine's uid).
        self.trusted_uids = set(trusted_uids)
        #: Mount namespaces of the engine and its containerd: a container's processes are elsewhere.
        self.engine_namespaces = set(engine_namespaces)
        #: Which evidence sources are active ("exec", "containerd"): "missing" needs an active one.
        self.sources: dict[str, bool] = dict(sources or {})
        self.settle = settle
        self._exchanges: dict[int, _Exchange] = {}
        #: (ended, key) of closed exchanges in the order they closed: pruning pops from the left.
        self._finished: deque[tuple[float, int]] = deque()
        self.max_finished = max_finished
        self._pool: list[Item] = []
        self._names: dict[str, str] = {}  # container name → id
        self._ids: set[str] = set()  # container ids known to belong to this engine
        self._exec_container: dict[str, str] = {}  # exec id → container id
        self._pid_container: dict[int, str] = {}
        self._our_pids: set[int] = set()
        self._shim_pids: set[int] = set()
        #: exec pid → key of the exchange its item went to: a child exec (`runc init`) follows it.
        self._pid_exchange: dict[int, int] = {}
        #: container id → (time, running?) from the last start/exit seen.
        self._running: dict[str, tuple[float, bool]] = {}
        self._undecided: list[Item] = []
        self.foreign = 0  # exec items not from this engine's processes, dropped

    def trust_runtimes(self, runtime_pids: Mapping[int, tuple[str, str]]) -> None:
        """Shims and conmons found running this engine's containers (pid → (container id, program))."""
        for pid, (cid, program) in runtime_pids.items():
            self._our_pids.add(pid)
            if program.startswith("containerd-shim"):
                self._shim_pids.add(pid)
            self._pid_container.setdefault(pid, cid)
            self._ids.add(cid)
            if cid not in self._running:
                self._running[cid] = (0.0, True)  # a shim or conmon with a live init: it runs

    # -- exchanges ----------------------------------------------------------------------------

    def open(
        self,
        key: int,
        template: str,
        object_ref: str | None,
        started: float,
        chain: LayerChain,
        *,
        hijacked: bool = False,
    ) -> None:
        if key not in self._exchanges:
            self._exchanges[key] = _Exchange(key, template, object_ref, started, chain, hijacked)

    def rechain(self, key: int, chain: LayerChain) -> None:
        """An open exchange's expected chain changed (e.g. BuildKit gRPC methods decoded from it)."""
        ex = self._exchanges.get(key)
        if ex is not None:
            ex.chain = chain

    def close(
        self,
        key: int,
        ended: float,
        *,
        responded: bool,
        hijacked: bool = False,
        query: Mapping[str, list[str]] | None = None,
        response: Any = None,
        chain: LayerChain | None = None,
    ) -> None:
        """The exchange is over; learn the ids its response reveals (and its final chain, which
        may depend on the request body)."""
        ex = self._exchanges.get(key)
        if ex is None:
            return
        if chain is not None:
            ex.chain = chain
        if ex.ended is None:
            self._finished.append((ended, key))
        ex.ended = ended
        ex.responded = responded
        ex.hijacked = ex.hijacked or hijacked
        self._learn(ex, query or {}, response)

    @staticmethod
    def learns_from(template: str) -> bool:
        """Whether `close` reads the response of this route (so callers parse only those)."""
        return template.endswith(_LEARNING_SUFFIXES)

    def _learn(self, ex: _Exchange, query: Mapping[str, list[str]], response: Any) -> None:
        if not isinstance(response, dict):
            return
        template = ex.template
        if template.endswith("/containers/create") and isinstance(response.get("Id"), str):
            self._ids.add(response["Id"])
            for name in query.get("name", []):
                self._names[name.lstrip("/")] = response["Id"]
        elif template.endswith("/containers/{id}/json") and isinstance(response.get("Id"), str):
            self._ids.add(response["Id"])
            if isinstance(response.get("Name"), str):
                self._names[response["Name"].lstrip("/")] = response["Id"]
            if ex.object_ref:
                self._names.setdefault(ex.object_ref, response["Id"])
        elif template.endswith("/containers/{id}/exec") and isinstance(response.get("Id"), str):
            container = self.resolve(ex.object_ref)
            if container:
                self._exec_container[response["Id"]] = container
        elif template.endswith("/exec/{id}/json") and isinstance(response.get("ContainerID"), str):
            self._exec_container[str(response.get("ID"))] = response["ContainerID"]

    def resolve(self, ref: str | None) -> str | None:
        """A container name, short id or full id → the full id, when known."""
        if not ref:
            return None
        if ref in self._names:
            return self._names[ref]
        if ref in self._ids or _FULL_ID.match(ref):
            return ref
        matches = [cid for cid in self._ids if cid.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def _target(self, ex: _Exchange) -> tuple[str | None, str | None]:
        """(container id, exec id) an exchange works on."""
        if ex.template.split(" ", 1)[-1].startswith("/exec/"):
            exec_id = ex.object_ref
            return self._exec_container.get(exec_id or ""), exec_id
        if "/containers/{id}" in ex.template:
            return self.resolve(ex.object_ref), None
        return None, None

    # -- evidence -----------------------------------------------------------------------------

    def add(self, items: Iterable[Item]) -> None:
        for item in items:
            if item.get("source") == "exec":
                if not self._accept_exec(item):
                    self._undecided.append(item)  # a containerd event may vouch for it shortly
                    continue
            elif item.get("container_id"):
                self._ids.add(item["container_id"])
                if item.get("exec_id"):
                    self._exec_container[item["exec_id"]] = item["container_id"]
                self._note_state(item)
            self._pool.append(item)

    def _accept_exec(self, item: Item) -> bool:
        """Keep execs of this engine's own processes only; argv proves nothing.

        The exec must run as a trusted uid and descend from the engine, its containerd, one of its
        shims or conmons, or an exec already accepted — with at most one unknown process between
        (the daemonised half of a conmon, podman's `podman-top` re-exec). Below a shim, conmon or
        runtime it must also run in the engine's (or its containerd's) mount namespace, where
        container processes never are. Other engines on this host, other users and container
        processes named `runc` are all dropped.
        """
        if item.get("uid") not in self.trusted_uids:
            return False
        pid = item.get("pid")
        lineage = item.get("ancestors") or ([item["ppid"]] if item.get("ppid") else [])
        unknown = 0
        for ancestor in lineage:
            if ancestor in self.engine_pids:
                break  # the engine's own child (host ps, podman's `ps` in a container, buildah's runc)
            if ancestor in self._our_pids:
                # below a shim, conmon or runtime: container processes live there too, and they
                # run in the container's mount namespace, never the engine's
                namespace = item.get("mount_ns")
                if namespace and self.engine_namespaces and namespace not in self.engine_namespaces:
                    return False
                break
            unknown += 1
            if unknown > 1:
                return False
        else:
            return False
        cid = item.get("container_id") or next(
            (self._pid_container[p] for p in [pid, *lineage] if p in self._pid_container), None
        )
        if cid and not item.get("container_id"):
            item["container_id"] = cid
        if pid is not None and item.get("runtime_command") != "init":
            # `runc init` becomes the container's process: nothing it runs is the engine's
            self._our_pids.add(pid)
            if str(item.get("program", "")).startswith("containerd-shim"):
                self._shim_pids.add(pid)
            if cid:
                self._pid_container[pid] = cid
        self._note_state(item)
        return True

    def _note_state(self, item: Item) -> None:
        """Track whether containers run (steps that need a running container depend on it)."""
        cid = item.get("container_id")
        if not cid:
            return
        if item.get("source") == "containerd":
            if item.get("topic") == "/tasks/start" and not item.get("exec_id"):
                self._running[cid] = (item["time"], True)
            elif item.get("topic") == "/tasks/exit" and not item.get("exec_id"):
                self._running[cid] = (item["time"], False)
        elif item.get("program") in ("runc", "crun"):
            if item.get("runtime_command") == "start":
                self._running[cid] = (item["time"], True)
            elif item.get("runtime_command") == "delete":
                self._running[cid] = (item["time"], False)

    def running_at(self, cid: str | None, when: float) -> bool | None:
        """Whether the container ran at `when`, as far as evidence tells (None: unknown)."""
        state = self._running.get(cid or "")
        if state is None or state[0] > when:
            return None
        return state[1]

    def _expects(self, ex: _Exchange, item: Item) -> LayerStep | None:
        for step in ex.chain.steps:
            if item.get("source") == "containerd":
                if item.get("topic") in step.events:
                    return step
            elif any(_exec_matches(e, item, step.layer) or _same_program(e, item) for e in step.execs):
                return step
        return None

    def _on_object(self, ex: _Exchange, item: Item) -> bool:
        """Whether the item concerns the object the exchange works on (or has no object)."""
        cid = item.get("container_id")
        target, exec_id = self._target(ex)
        if cid is None:
            return True  # runc --version, host ps: attributed by expectation and time only
        if target is None:
            return True  # no object, or a name we never saw resolved: time and expectation decide
        if cid != target:
            return False
        if exec_id and item.get("source") == "containerd" and item.get("exec_id"):
            return item["exec_id"] == exec_id
        return True

    def _is_exit_cleanup(self, item: Item) -> bool:
        if item.get("source") == "containerd":
            return item.get("topic") in EXIT_TOPICS and not item.get("exec_id")
        return exec_signature(item) in EXIT_EXECS

    def _best(self, item: Item) -> tuple[_Exchange | None, bool]:
        """The exchange that caused `item`, and whether it expected it."""
        when = item["time"]
        expecting = [
            ex
            for ex in self._exchanges.values()
            if ex.covers(when) and self._on_object(ex, item) and self._expects(ex, item)
        ]
        if expecting:
            signature = exec_signature(item) if item.get("source") == "exec" else item.get("topic")

            def already(ex: _Exchange) -> int:
                return sum(
                    1
                    for seen in ex.items
                    if (exec_signature(seen) if seen.get("source") == "exec" else seen.get("topic"))
                    == signature
                )

            # the cause comes before the effect: the most recent request that still needs one
            return min(expecting, key=lambda ex: (already(ex), -ex.started)), True
        if self._is_exit_cleanup(item) or item.get("container_id") is None:
            return None, False
        suspects = [
            ex
            for ex in self._exchanges.values()
            if not ex.long_lived
            and ex.covers(when, late=0.0)
            and self._target(ex)[0] == item.get("container_id")
        ]
        if suspects:
            return max(suspects, key=lambda ex: ex.started), False
        return None, False

    def _by_parent(self, item: Item) -> tuple[_Exchange, bool] | None:
        """An exec whose parent is a runtime exec that went to an exchange belongs to it too
        (`runc exec` → `runc init`, `runc create` → a prestart hook): causality by process
        ancestry, not by which request happens to be open. Long-lived parents (shims, conmon)
        serve many requests and decide nothing."""
        if item.get("source") != "exec":
            return None
        key = self._pid_exchange.get(item.get("ppid") or -1)
        ex = self._exchanges.get(key) if key is not None else None
        return (ex, True) if ex is not None else None

    def has_undecided(self) -> bool:
        return bool(self._undecided)

    def settle_items(self, now: float) -> list[dict[str, Any]]:
        """Attribute what can be attributed; return background records for items nobody caused.

        An item waits in the pool until its best exchange has ended (it may still gain better
        candidates) or, without any candidate, until it is `settle` seconds old.
        """
        undecided = self._undecided
        self._undecided = []
        for item in undecided:
            if self._accept_exec(item):
                self._pool.append(item)
            elif now - item["time"] < self.settle:
                self._undecided.append(item)
            else:
                self.foreign += 1
        keep: list[Item] = []
        orphans: list[Item] = []
        young: list[Item] = []
        for item in self._pool:
            ex, expected = self._by_parent(item) or self._best(item)
            if ex is not None and expected and item.get("program") in OCI_RUNTIMES and item.get("pid"):
                self._pid_exchange[item["pid"]] = ex.key
            if ex is None:
                (orphans if now - item["time"] >= self.settle else young).append(item)
                continue
            if ex.ended is None and now - item["time"] < self.settle:
                keep.append(item)  # a later request could not have caused it, but be patient
                continue
            (ex.items if expected else ex.unexpected).append(item)
        # an exit's clean-up comes out as one record, not split across timer ticks
        due = {self._group(i) for i in orphans}
        orphans += [i for i in young if self._group(i) in due]
        keep += [i for i in young if self._group(i) not in due]
        keep.sort(key=lambda i: i["time"])
        self._pool = keep
        return self._background(orphans)

    def _group(self, item: Item) -> tuple[str | None, bool]:
        return item.get("container_id"), self._is_exit_cleanup(item)

    def _background(self, orphans: list[Item]) -> list[dict[str, Any]]:
        groups: dict[tuple[str | None, bool], list[Item]] = {}
        for item in orphans:
            groups.setdefault(self._group(item), []).append(item)
        records = []
        for (cid, exit_cleanup), items in groups.items():
            items.sort(key=lambda i: i["time"])
            first = items[0]["time"]
            waits = [
                ex.key
                for ex in self._exchanges.values()
                if ex.template == WAIT_ROUTE
                and cid is not None
                and self._target(ex)[0] == cid
                and ex.covers(first, late=1.0)
            ]
            records.append(
                {
                    "type": "background",
                    "kind": "container-exit" if exit_cleanup else "no-exchange",
                    "container_id": cid,
                    "time": first,
                    "observed_by": waits,
                    "items": items,
                }
            )
        records.sort(key=lambda r: r["time"])
        return records

    # -- results ------------------------------------------------------------------------------

    def outcome(self, key: int, *, finished: bool) -> Outcome | None:
        """Layer statuses for one exchange. `finished`: it ended and the settle window passed."""
        ex = self._exchanges.get(key)
        if ex is None:
            return None
        layers = [self._layer(ex, step, finished) for step in ex.chain.steps]
        mismatches = []
        for result, step in zip(layers, ex.chain.steps, strict=True):
            if result.status == "missing":
                mismatches.append(f"{step.layer}: expected {', '.join(self._observables(step))}, not seen")
            else:
                gone = [op for op, st in result.operation_status.items() if st == "missing"]
                if gone:
                    mismatches.append(f"{step.layer}: {', '.join(gone)} not seen")
        chain_layers = {s.layer for s in ex.chain.steps}
        extra: dict[str, list[str]] = {}
        for item in ex.unexpected:
            layer = "containerd" if item.get("source") == "containerd" else str(item.get("layer") or "host")
            name = item.get("topic") if item.get("source") == "containerd" else exec_signature(item)
            extra.setdefault(layer, []).append(str(name))
        for layer, names in extra.items():
            unique = list(dict.fromkeys(names))
            where = "an extra" if layer in chain_layers else "an unexpected layer"
            mismatches.append(f"{layer}: {', '.join(unique)} seen ({where}, not in the model)")
            if layer not in chain_layers:
                layers.append(LayerResult(layer, unique, "unexpected", {}))
        items = sorted(ex.items + ex.unexpected, key=lambda i: i["time"])
        return Outcome(items, layers, mismatches)

    def _observables(self, step: LayerStep) -> list[str]:
        out = []
        if self.sources.get("containerd"):
            out += list(step.events)
        if self.sources.get("exec"):
            out += list(step.execs)
        return out

    def _layer(self, ex: _Exchange, step: LayerStep, finished: bool) -> LayerResult:
        ops = list(step.operations)
        if step.layer in API_LAYERS:
            return LayerResult(step.layer, ops, "observed" if ex.responded else "expected", {})
        events = [i for i in ex.items if i.get("source") == "containerd" and i.get("topic") in step.events]
        execs = [
            i
            for i in ex.items
            if i.get("source") == "exec"
            and any(_exec_matches(e, i, step.layer) or _same_program(e, i) for e in step.execs)
        ]
        op_status: dict[str, str] = {}
        running = self.running_at(self._target(ex)[0], ex.started)
        for op in ops:
            seen = self._operation_seen(ex, step, op)
            if seen is True:
                op_status[op] = "observed"
            elif seen is False and finished and step.required(op, running):
                op_status[op] = "missing"
        can_miss = finished and step.required("*", running)
        required = [name for name in self._observables(step) if step.required(name, running)]
        if events or execs or "observed" in op_status.values():
            status = "observed"
        elif required and can_miss:
            status = "missing"
        else:
            status = "expected"
        return LayerResult(step.layer, ops, status, op_status)

    def _operation_seen(self, ex: _Exchange, step: LayerStep, op: str) -> bool | None:
        """True/False when evidence can tell for this operation, None when it cannot."""
        if step.layer == "containerd":
            topics = [t for t in OPERATION_EVENTS.get(op, ()) if t in step.events]
            if not topics or not self.sources.get("containerd"):
                return None
            return any(i.get("topic") in topics for i in ex.items if i.get("source") == "containerd")
        if not self.sources.get("exec"):
            return None
        runs = [i for i in ex.items if i.get("source") == "exec" and not i.get("unreadable")]
        if step.layer in ("runc", "crun"):
            if f"{step.layer} {op}" not in step.execs:
                return None
            if any(i["program"] == step.layer and i.get("runtime_command") == op for i in runs):
                return True
            if any(i.get("unreadable") and i.get("program") == step.layer for i in ex.items):
                return None  # a runtime exec we could not read may have been this one
            return False
        if step.layer == "shim" and op in SHIM_OPERATION_RUNC:
            if op == "Create" and any(i["program"].startswith("containerd-shim") for i in runs):
                return True  # containerd execs the shim on Tasks.Create
            if not self._shim_pids:
                return None  # the shims predate dockertap: their runc children cannot be told apart
            return any(
                i.get("ppid") in self._shim_pids and i.get("runtime_command") in SHIM_OPERATION_RUNC[op]
                for i in runs
            )
        if step.layer == "conmon":
            return any(i["program"] == "conmon" for i in runs) if "conmon" in step.execs else None
        return None

    def forget(self, key: int) -> None:
        """Drop a finished exchange (its outcome has been taken)."""
        self._exchanges.pop(key, None)

    def prune(self, now: float, horizon: float = FINISHED_HORIZON) -> None:
        """Forget ended exchanges older than `horizon`, and the oldest beyond `max_finished`.

        Bounded memory under any load, and O(pruned) per call: the finished exchanges are kept in
        the order they closed, so this never scans the ones it keeps.
        """
        if len(self._pid_exchange) > 2 * self.max_finished:
            self._pid_exchange = dict(list(self._pid_exchange.items())[self.max_finished :])
        finished = self._finished
        while finished and (len(finished) > self.max_finished or now - finished[0][0] > horizon):
            _ended, key = finished.popleft()
            ex = self._exchanges.get(key)
            if ex is not None and ex.ended is not None:
                del self._exchanges[key]


def apply_outcome(annotation: Any, outcome: Outcome) -> None:
    """Write an outcome onto an `Annotation` (statuses, per-operation marks, items, mismatches)."""
    from dockertap.analyzers.annotate import LayerStatus

    annotation.layers = [
        LayerStatus(r.layer, list(r.operations), r.status, dict(r.operation_status))  # type: ignore[arg-type]
        for r in outcome.layers
    ]
    annotation.evidence = list(outcome.items)
    annotation.mismatches = list(outcome.mismatches)
