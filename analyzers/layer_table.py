# ruff: noqa: E501  (the table keeps one fact per line; long bilingual strings read better unwrapped)
"""The layer model as data: which layers each API route reaches, per backend family and image-store mode.

Every row comes from layer-model.md (§1 Moby v29.7.2, §2 containerd v2.3.3, §3 Podman v5.8.2) and names its
source. Routes without a specific row fall back to a per-route-group default that also names its source.
Rows are looked up by (family, image store, route template, optional query/body condition); rows marked
`add` are merged onto the base chain (the C8D extras of §1.2 and engine-version extras of §6).

Podman rows use the layer name "runtime": it becomes the backend's OCI runtime (`crun` or `runc`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockertap.analyzers.routes import RouteMatch

#: Display and merge order of layers in a chain.
LAYER_ORDER = ("dockerd", "compat-api", "containerd", "shim", "conmon", "runc", "crun", "host")
LAYERS = frozenset(LAYER_ORDER)
RUNTIME = "runtime"  # placeholder in Podman rows, resolved to crun or runc


@dataclass(frozen=True, slots=True)
class LayerStep:
    """One layer an exchange reaches: the calls made to it, the events it publishes, the processes exec'd."""

    layer: str
    operations: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    execs: tuple[str, ...] = ()
    note: str = ""
    #: Operations, event topics or exec signatures of this step that happen only sometimes (a
    #: signal that may not end the container, a port that may not be published); "*" is the whole
    #: step. Evidence confirms them when they come; their absence is never "missing".
    optional: tuple[str, ...] = ()
    #: Names (or "*") that happen only if the request's container is running when the request
    #: starts (stopping, killing or force-removing an exited container reaches nothing below dockerd).
    if_running: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.operations + self.events + self.execs

    def required(self, name: str, running: bool | None = True) -> bool:
        """Whether `name` (an operation, topic or exec of this step, or "*" for the step) must
        happen, given whether the container was running (None: not known)."""
        if "*" in self.optional or name in self.optional:
            return False
        return running is True or ("*" not in self.if_running and name not in self.if_running)

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "operations": list(self.operations),
            "events": list(self.events),
            "execs": list(self.execs),
            "note": self.note,
            "optional": list(self.optional),
            "if_running": list(self.if_running),
        }


@dataclass(frozen=True, slots=True)
class LayerChain:
    """The expected path of one exchange below the API, with a teaching explanation and its source."""

    steps: tuple[LayerStep, ...]
    explanation: dict[str, str]
    source: str
    #: Which rows produced this chain (for `dockertap explain`), e.g. "dockerd/*/POST /containers/{id}/start".
    rows: tuple[str, ...] = ()

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(s.layer for s in self.steps)

    def step(self, layer: str) -> LayerStep | None:
        return next((s for s in self.steps if s.layer == layer), None)

    def to_dict(self) -> dict:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "explanation": dict(self.explanation),
            "source": self.source,
            "rows": list(self.rows),
        }


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the table: key → chain. `add` rows extend the chain chosen for the same route."""

    family: str
    image_store: str
    route: str
    steps: tuple[LayerStep, ...]
    en: str
    ja: str
    source: str
    #: "query.force" (truthy), "query.pause=0", "body.Detach", or None. See `condition_holds`.
    when: str | None = None
    add: bool = False
    #: For `add` rows: engine versions (major) this applies to, inclusive, e.g. (20, 25).
    engine_major: tuple[int, int] | None = None
    group: bool = False  # a route-group default (route is a group name, not a template)

    @property
    def key(self) -> str:
        cond = f" [{self.when}]" if self.when else ""
        vers = f" [engine {self.engine_major[0]}–{self.engine_major[1]}]" if self.engine_major else ""
        return f"{self.family}/{self.image_store}/{self.route}{cond}{vers}"


def S(  # noqa: N802
    layer: str,
    ops: str = "",
    events: str = "",
    execs: str = "",
    note: str = "",
    optional: str = "",
    if_running: str = "",
) -> LayerStep:
    """Compact step constructor for the table: list items are separated by `;`."""

    def split(text: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in text.split(";") if item.strip())

    return LayerStep(layer, split(ops), split(events), split(execs), note, split(optional), split(if_running))


def R(
    family: str, store: str, route: str, steps: list[LayerStep], en: str, ja: str, source: str, **kw
) -> Row:  # noqa: N802
    return Row(family, store, route, tuple(steps), en, ja, source, **kw)


# --- shared step fragments (dockerd) --------------------------------------------------------------------
_D = S("dockerd")
_START_C8D = "Containers.Create; Containers.Get; Tasks.Create; Tasks.Start"
_START_EVENTS = "/containers/create; /tasks/create; /tasks/start"
_EXIT_OPS = "Tasks.Delete; Containers.Delete"
_EXIT_EVENTS = "/tasks/exit; /tasks/delete; /containers/delete"
_SHIM_EXEC = "containerd-shim-runc-v2"

_START_STEPS = [
    S("dockerd", "mount rootfs and volumes; network sandbox; OCI spec"),
    S("containerd", _START_C8D, _START_EVENTS),
    S(
        "shim",
        "Create; Start",
        execs=_SHIM_EXEC,
        note="one shim per container, exec'd by containerd on Tasks.Create",
    ),
    S("runc", "create; start", execs="runc create; runc init; runc start"),
    S(
        "host",
        "port publishing; firewall",
        execs="docker-proxy; iptables",
        note="only for published ports / networks",
        optional="*",
    ),
]
#: At a container's exit dockerd releases its network endpoint: firewall rules and port proxies go.
_NETWORK_TEARDOWN = S(
    "host",
    "network teardown",
    execs="iptables; ip6tables; nft; docker-proxy",
    optional="*",
    note="when the container had a network endpoint (moby daemon/container_operations.go: releaseNetwork)",
)
_STOP_STEPS = [
    S("dockerd", "stop timer; exit handling from /tasks/exit"),
    S("containerd", "Tasks.Kill; " + _EXIT_OPS, _EXIT_EVENTS, if_running="*"),
    S("shim", "Kill; Delete", if_running="*"),
    S(
        "runc",
        "kill; delete",
        execs="runc kill; runc delete",
        note="kill 15, then kill 9 after the timeout",
        if_running="*",
    ),
    _NETWORK_TEARDOWN,
]

#: dockerd ≤ 25 unpacks and packs tars in re-exec'd copies of itself (pkg/chrootarchive reexec).
_CHROOTARCHIVE = "docker-untar; docker-applyLayer; docker-tar"
_CHROOTARCHIVE_NOTE = "dockerd 20.10–25 re-execs itself as docker-untar/docker-applyLayer/docker-tar"

_M = "moby/moby"
_P = "containers/podman v5.8.2"

# fmt: off
ROWS: tuple[Row, ...] = (
    # ===================================== dockerd, both image stores ===============================================
    R("dockerd", "*", "GET /_ping", [_D],
      "Ping is answered by dockerd alone; it builds the API-Version/Builder-Version/Swarm headers.",
      "ping は dockerd だけが応答し、API-Version などのヘッダを組み立てる。",
      f"{_M} daemon/server/router/system/system_routes.go: pingHandler"),
    R("dockerd", "*", "HEAD /_ping", [_D],
      "The CLI's first request: dockerd answers the HEAD ping with headers only.",
      "CLI が最初に送る要求。dockerd がヘッダだけで HEAD ping に応答する。",
      f"{_M} daemon/server/router/system/system_routes.go: pingHandler"),
    R("dockerd", "*", "GET /version", [
        _D, S("containerd", "Version.Version"),
        S("host", "version probes", execs="runc --version; docker-init --version",
          note="dockerd execs the default runtime binary and the init binary on every call")],
      "Version asks containerd for its version and execs `runc --version` and `docker-init --version` each time.",
      "version は containerd に版を問い合わせ、毎回 `runc --version` と `docker-init --version` を実行する。",
      f"{_M} daemon/info_unix.go: fillPlatformVersion, populateRuncVersion, populateInitVersion"),
    R("dockerd", "*", "GET /info", [
        S("dockerd", "sysinfo; cgroups; libnetwork lists"), S("containerd", "Version.Version"),
        S("host", "version probes", execs="runc --version; docker-init --version",
          note="RuncCommit and InitCommit come from exec'ing the binaries on every call")],
      "Info gathers host facts in dockerd, asks containerd its commit and execs `runc --version`/`docker-init --version`.",
      "info は dockerd がホスト情報を集め、containerd の commit を問い合わせ、runc/docker-init を --version で実行する。",
      f"{_M} daemon/info_unix.go: fillPlatformInfo, populateRuncCommit, populateInitCommit"),
    R("dockerd", "containerd", "GET /info", [S("containerd", "Images.List")], "", "",
      f"{_M} daemon/containerd/service.go: CountImages", add=True),
    R("dockerd", "*", "GET /containers/json", [S("dockerd", "in-memory view (containersReplica)")],
      "Listing containers reads dockerd's in-memory view; nothing below dockerd is asked.",
      "コンテナ一覧は dockerd のメモリ上のビューを読むだけで、dockerd より下の層には何も問い合わせない。",
      f"{_M} daemon/list.go: Containers"),
    R("dockerd", "containerd", "GET /containers/json", [S("containerd", "Images.Get; Images.List")], "", "",
      f"{_M} daemon/list.go: refreshImage", add=True),
    R("dockerd", "containerd", "GET /containers/json", [S("containerd", "Snapshots.Usage; Snapshots.Stat")], "", "",
      f"{_M} daemon/containerd/service.go: GetContainerLayerSize", add=True, when="query.size"),
    R("dockerd", "*", "GET /containers/{id}/json", [S("dockerd", "in-memory inspect")],
      "Inspect is served from dockerd's memory.",
      "inspect は dockerd のメモリから返される。",
      f"{_M} daemon/inspect.go: ContainerInspect"),
    R("dockerd", "containerd", "GET /containers/{id}/json", [S("containerd", "Snapshots.Usage; Snapshots.Stat")],
      "", "", f"{_M} daemon/containerd/service.go: GetContainerLayerSize", add=True, when="query.size"),
    R("dockerd", "*", "POST /containers/create", [S("dockerd", "config validation; RW + init layer")],
      "Create only writes dockerd's state and the container's writable layer (RW + init layer) over the image; "
      "containerd learns about the container at start.",
      "create は dockerd 内にコンテナの設定と、イメージの上に重ねる書き込み用のレイヤー (RW レイヤーと init "
      "レイヤー) を作るだけ。containerd がコンテナを知るのは start のとき。",
      f"{_M} daemon/create.go: containerCreate; daemon/images: CreateLayer"),
    R("dockerd", "containerd", "POST /containers/create",
      [S("containerd", "Leases.Create; Snapshots.Prepare; Snapshots.Commit; Snapshots.Prepare",
         "/snapshot/prepare; /snapshot/commit")], "", "",
      f"{_M} daemon/containerd/image_snapshot.go: createLayer, prepareInitLayer", add=True),
    R("dockerd", "*", "POST /containers/{id}/start", _START_STEPS,
      "Start creates the containerd container and task: the shim runs `runc create`, dockerd wires the network, "
      "then `runc start`.",
      "start で containerd のコンテナとタスクが作られ、shim が `runc create`、dockerd がネットワークを設定し、"
      "`runc start` する。",
      f"{_M} daemon/start.go: containerStart; libcontainerd/remote/client.go: NewTask; shim process/init.go"),
    R("dockerd", "containerd", "POST /containers/{id}/start", [S("containerd", "Snapshots.Mounts; Images.Get")],
      "", "", f"{_M} daemon/containerd/image_snapshot.go; ResolveImage", add=True),
    R("dockerd", "*", "POST /containers/{id}/stop", _STOP_STEPS,
      "Stop sends the stop signal through containerd (`runc kill`); the exit event then deletes task and container.",
      "stop は containerd 経由で停止シグナルを送り (`runc kill`)、exit イベントでタスクとコンテナが削除される。",
      f"{_M} daemon/stop.go: containerStop; daemon/kill.go; daemon/monitor.go: handleContainerExit"),
    R("dockerd", "*", "POST /containers/{id}/kill", [
        S("dockerd", "signal; exit handling"),
        S("containerd", "Tasks.Kill; " + _EXIT_OPS, _EXIT_EVENTS, optional=_EXIT_OPS + "; " + _EXIT_EVENTS,
          if_running="*"),
        S("shim", "Kill; Delete", optional="Delete", if_running="*"),
        S("runc", "kill; delete", execs="runc kill; runc delete", optional="delete; runc delete", if_running="*",
          note="delete follows only if the signal ends the container (not for WINCH, HUP, USR1, …)"),
        _NETWORK_TEARDOWN],
      "Kill is `Tasks.Kill` → `runc kill <sig>`; if the process dies, the exit event triggers `runc delete`.",
      "kill は `Tasks.Kill` → `runc kill <sig>`。プロセスが終了すれば exit イベントで `runc delete` が続く。",
      f"{_M} daemon/kill.go: ContainerKill"),
    R("dockerd", "*", "POST /containers/{id}/restart", [*_STOP_STEPS, *_START_STEPS],
      "Restart is a full stop (kill, delete) followed by a full start (new task, runc create/start).",
      "restart は完全な stop (kill, delete) と完全な start (新しいタスク, runc create/start) の組み合わせ。",
      f"{_M} daemon/restart.go: containerRestart"),
    R("dockerd", "*", "POST /containers/{id}/pause", [
        S("dockerd", "state flag"), S("containerd", "Tasks.Pause", "/tasks/paused"), S("shim", "Pause"),
        S("runc", "pause", execs="runc pause")],
      "Pause freezes the cgroup via `runc pause`; containerd publishes /tasks/paused.",
      "pause は `runc pause` で cgroup を凍結し、containerd が /tasks/paused を発行する。",
      f"{_M} daemon/pause.go: containerPause"),
    R("dockerd", "*", "POST /containers/{id}/unpause", [
        S("dockerd", "state flag"), S("containerd", "Tasks.Resume", "/tasks/resumed"), S("shim", "Resume"),
        S("runc", "resume", execs="runc resume")],
      "Unpause thaws the cgroup via `runc resume`; containerd publishes /tasks/resumed.",
      "unpause は `runc resume` で cgroup を解凍し、containerd が /tasks/resumed を発行する。",
      f"{_M} daemon/unpause.go: containerUnpause"),
    R("dockerd", "*", "POST /containers/{id}/wait", [S("dockerd", "wait on in-memory state")],
      "Wait blocks in dockerd; the exit it reports comes from containerd's /tasks/exit subscription.",
      "wait は dockerd 内で待つ。終了は containerd の /tasks/exit 購読から伝わる。",
      f"{_M} daemon/wait.go: ContainerWait"),
    R("dockerd", "*", "POST /containers/{id}/attach", [S("dockerd", "hijack; copy StreamConfig")],
      "Attach hijacks the connection and copies the container's stdio FIFOs; nothing new happens below dockerd.",
      "attach は接続をハイジャックし stdio の FIFO を中継する。dockerd より下では新しい処理は起きない。",
      f"{_M} daemon/attach.go: ContainerAttach"),
    # Only an attach that carries stdin (`stdin=1`: `docker run -i`, `docker attach`) can close it: when the
    # client's stdin ends and the container has StdinOnce (and no TTY), CopyStreams closes the stdin pipe and
    # libcontainerd's stdin closer calls CloseIO. Without stdin=1 there is no stdin to close.
    R("dockerd", "*", "POST /containers/{id}/attach", [
        S("dockerd", "hijack; copy StreamConfig; stdin"),
        S("containerd", "Tasks.CloseIO", optional="*", note="only when the client's stdin ends and the container has StdinOnce, no TTY")],
      "Attach with stdin hijacks the connection and copies stdio; when your stdin ends (and the container was "
      "created with StdinOnce, without a TTY) dockerd asks containerd to close the container's stdin (CloseIO).",
      "stdin 付きの attach は接続をハイジャックして stdio を中継する。クライアントの stdin が終わると "
      "(StdinOnce で TTY なしのコンテナなら) dockerd が containerd にコンテナの stdin を閉じさせる (CloseIO)。",
      f"{_M} daemon/attach.go: containerAttach (CloseStdin = StdinOnce); container/stream/attach.go: CopyStreams; "
      "libcontainerd/remote/client.go: stdin closer → CloseIO", when="query.stdin"),
    R("dockerd", "*", "GET /containers/{id}/attach/ws", [S("dockerd", "websocket; copy StreamConfig")],
      "The websocket attach (unused by the CLI) streams stdio from dockerd.",
      "websocket attach (CLI は使わない) は dockerd から stdio を流す。",
      f"{_M} daemon/attach.go: ContainerAttach"),
    R("dockerd", "*", "GET /containers/{id}/logs", [S("dockerd", "read log driver")],
      "Logs are read by dockerd from its log driver (json-file/local/journald).",
      "ログは dockerd が自分のログドライバから読む。",
      f"{_M} daemon/logs.go: ContainerLogs"),
    R("dockerd", "*", "GET /containers/{id}/top", [
        S("dockerd", "parse ps output"), S("containerd", "Tasks.ListPids"), S("shim", "Pids"),
        S("runc", "ps", execs="runc ps"),
        S("host", "ps", execs="ps", note="dockerd execs the host `ps` with -q<pids>")],
      "Top asks runc for the container's PIDs (`runc ps`), then dockerd runs the host `ps` on those PIDs.",
      "top は `runc ps` でコンテナの PID を得て、dockerd がホストの `ps` をその PID で実行する。",
      f"{_M} daemon/top_unix.go: ContainerTop; containerd task/service.go: Pids"),
    R("dockerd", "*", "GET /containers/{id}/stats", [
        S("dockerd", "1 s stats collector"), S("containerd", "Tasks.Metrics"),
        S("shim", "Stats", note="the shim reads cgroup files itself; runc is not run")],
      "Stats polls containerd `Tasks.Metrics` about once a second; the shim reads cgroups, no runc is exec'd.",
      "stats は約 1 秒ごとに containerd の `Tasks.Metrics` を呼ぶ。shim が cgroup を読み、runc は実行されない。",
      f"{_M} daemon/stats.go: ContainerStats; containerd task/service.go: Stats"),
    R("dockerd", "*", "POST /containers/{id}/update", [
        S("dockerd", "update hostconfig"), S("containerd", "Tasks.Update", note="only when running", if_running="*"),
        S("shim", "Update", if_running="*"), S("runc", "update", execs="runc update", if_running="*")],
      "Update changes the hostconfig and, if running, the cgroup limits via `runc update --resources=-`.",
      "update は hostconfig を変え、実行中なら `runc update --resources=-` で cgroup 制限を変える。",
      f"{_M} daemon/update.go: update; remote/client_linux.go: UpdateResources"),
    R("dockerd", "*", "POST /containers/{id}/rename", [S("dockerd", "name store; DNS names")],
      "Rename only touches dockerd's name store and libnetwork DNS names.",
      "rename は dockerd の名前ストアと libnetwork の DNS 名だけを変える。",
      f"{_M} daemon/rename.go: ContainerRename"),
    R("dockerd", "*", "POST /containers/{id}/resize", [
        _D, S("containerd", "Tasks.ResizePty"), S("shim", "ResizePty", note="console ioctl, no runc")],
      "Resize reaches the shim, which resizes the pty with an ioctl.",
      "resize は shim に届き、shim が ioctl で pty の大きさを変える。",
      f"{_M} daemon/resize.go: ContainerResize"),
    R("dockerd", "*", "POST /containers/{id}/exec", [S("dockerd", "register ExecConfig")],
      "Exec create only registers the exec in dockerd's memory; nothing runs yet.",
      "exec create は dockerd のメモリに登録するだけで、まだ何も実行されない。",
      f"{_M} daemon/exec.go: ContainerExecCreate"),
    R("dockerd", "*", "POST /exec/{id}/start", [
        S("dockerd", "hijack; stream plumbing"),
        S("containerd", "Containers.Get; Tasks.Exec; Tasks.Start; Tasks.DeleteProcess",
          "/tasks/exec-added; /tasks/exec-started; /tasks/exit"),
        S("shim", "Exec; Start"), S("runc", "exec", execs="runc exec")],
      "Exec start adds a process to the running task: the shim runs `runc exec --detach` and streams its stdio.",
      "exec start は実行中のタスクにプロセスを追加する。shim が `runc exec --detach` を実行し stdio を中継する。",
      f"{_M} daemon/exec.go: ContainerExecStart; containerd process/exec.go: start"),
    R("dockerd", "*", "POST /exec/{id}/start", [
        S("dockerd", "no hijack (Detach)"),
        S("containerd", "Containers.Get; Tasks.Exec; Tasks.Start; Tasks.DeleteProcess",
          "/tasks/exec-added; /tasks/exec-started; /tasks/exit"),
        S("shim", "Exec; Start"), S("runc", "exec", execs="runc exec")],
      "A detached exec runs `runc exec --detach` the same way but returns at once, without a hijacked stream.",
      "detach した exec も同じく `runc exec --detach` を実行するが、ハイジャックせずすぐ返る。",
      f"{_M} daemon/exec.go: ContainerExecStart", when="body.Detach"),
    R("dockerd", "*", "POST /exec/{id}/resize", [_D, S("containerd", "Tasks.ResizePty"), S("shim", "ResizePty")],
      "Exec resize reaches the shim's pty ioctl for that exec process.",
      "exec resize は shim に届き、その exec プロセスの pty を ioctl で変える。",
      f"{_M} daemon/resize.go: ContainerExecResize"),
    R("dockerd", "*", "GET /exec/{id}/json", [S("dockerd", "in-memory")],
      "Exec inspect is served from dockerd's memory.", "exec inspect は dockerd のメモリから返される。",
      f"{_M} daemon/exec.go"),
    *(R("dockerd", "*", f"{m} /containers/{{id}}/archive", [S("dockerd", "mount container FS; unshare; tar",
                                                              execs=_CHROOTARCHIVE, optional="*",
                                                              note=_CHROOTARCHIVE_NOTE)],
        "docker cp: dockerd mounts the container filesystem itself and tars/untars in a private mount namespace.",
        "docker cp: dockerd 自身がコンテナのファイルシステムをマウントし、専用のマウント名前空間で tar を扱う。",
        f"{_M} daemon/archive_unix.go; daemon/containerfs_linux.go: openContainerFS") for m in ("HEAD", "GET", "PUT")),
    *(R("dockerd", "containerd", f"{m} /containers/{{id}}/archive", [S("containerd", "Snapshots.Mounts")], "", "",
        f"{_M} daemon/start.go: Mount", add=True) for m in ("HEAD", "GET", "PUT")),
    R("dockerd", "*", "GET /containers/{id}/export", [S("dockerd", "mount RW layer; tar")],
      "Export mounts the container's layer in dockerd and streams a tar.",
      "export は dockerd がコンテナのレイヤーをマウントし tar を流す。",
      f"{_M} daemon/export.go: containerExport"),
    R("dockerd", "containerd", "GET /containers/{id}/export", [S("containerd", "Snapshots.Mounts")], "", "",
      f"{_M} daemon/export.go", add=True),
    R("dockerd", "*", "GET /containers/{id}/changes", [S("dockerd", "layer diff")],
      "Changes diffs the container layer against its image inside dockerd.",
      "changes は dockerd 内でコンテナのレイヤーとイメージの差分を取る。",
      f"{_M} daemon/changes.go"),
    R("dockerd", "containerd", "GET /containers/{id}/changes",
      [S("containerd", "Snapshots.Stat; Snapshots.View; Snapshots.Remove", "/snapshot/remove")], "", "",
      f"{_M} daemon/containerd/image_changes.go: Changes", add=True),
    R("dockerd", "*", "DELETE /containers/{id}", [S("dockerd", "free layer; remove container dir"), _NETWORK_TEARDOWN],
      "Remove frees the container's layer and state in dockerd (its containerd objects went away at exit).",
      "削除は dockerd がレイヤーと状態を解放する (containerd 側のオブジェクトは終了時に消えている)。",
      f"{_M} daemon/delete.go: containerRm, cleanupContainer"),
    R("dockerd", "*", "DELETE /containers/{id}", [
        S("dockerd", "free layer; remove container dir"),
        S("containerd", "Tasks.Kill; " + _EXIT_OPS, _EXIT_EVENTS, if_running="*"),
        S("shim", "Kill; Delete", if_running="*"),
        S("runc", "kill; delete", execs="runc kill; runc delete", if_running="*"), _NETWORK_TEARDOWN],
      "Forced remove of a running container first kills it through containerd and runc, then frees its layer.",
      "実行中コンテナの強制削除は、まず containerd と runc で kill し、その後レイヤーを解放する。",
      f"{_M} daemon/delete.go: containerRm", when="query.force"),
    R("dockerd", "containerd", "DELETE /containers/{id}", [S("containerd", "Leases.Delete", "/snapshot/remove")],
      "", "", f"{_M} daemon/containerd/image_snapshot.go: ReleaseLayer", add=True),
    R("dockerd", "*", "POST /containers/prune", [S("dockerd", "remove each stopped container")],
      "Prune removes each stopped container as DELETE would.", "prune は停止中の各コンテナを DELETE と同様に削除する。",
      f"{_M} daemon/prune.go: ContainerPrune"),
    R("dockerd", "containerd", "POST /containers/prune", [S("containerd", "Leases.Delete", "/snapshot/remove")],
      "", "", f"{_M} daemon/containerd/image_snapshot.go: ReleaseLayer", add=True),
    R("dockerd", "*", "GET /images/json", [S("dockerd", "image store")],
      "Image list is read from dockerd's image store.", "イメージ一覧は dockerd のイメージストアから読む。",
      f"{_M} daemon/images/image_list.go"),
    R("dockerd", "containerd", "GET /images/json",
      [S("containerd", "Images.List; Content.Read; Snapshots.Usage; Snapshots.Stat")], "", "",
      f"{_M} daemon/containerd/image_list.go: Images", add=True),
    R("dockerd", "*", "POST /images/create", [
        S("dockerd", "registry client; download manager", execs=_CHROOTARCHIVE, optional="*",
          note=_CHROOTARCHIVE_NOTE),
        S("containerd", "Leases.Create; Content.Write", note="manifests are kept in containerd even in GD mode")],
      "Pull runs the registry client inside dockerd; even the graphdriver store writes manifests to containerd.",
      "pull はレジストリクライアントが dockerd 内で動く。graphdriver でもマニフェストは containerd に書かれる。",
      f"{_M} daemon/images/image_pull.go; daemon/internal/distribution/manifest.go"),
    R("dockerd", "containerd", "POST /images/create", [S(
        "containerd", "Content.Write; Images.Create; Images.Update; Diff.Apply; Snapshots.Prepare; Snapshots.Commit",
        "/images/create; /snapshot/prepare; /snapshot/commit; /content/create",
        note="/content/* events need containerd >= 2.1")], "", "",
      f"{_M} daemon/containerd/image_pull.go: PullImage", add=True),
    R("dockerd", "*", "POST /images/{name}/push", [S("dockerd", "registry client")],
      "Push runs the registry client inside dockerd.", "push はレジストリクライアントが dockerd 内で動く。",
      f"{_M} daemon/images/image_push.go"),
    R("dockerd", "containerd", "POST /images/{name}/push", [S("containerd", "Leases.Create; Images.Get; Content.Read")],
      "", "", f"{_M} daemon/containerd/image_push.go: PushImage", add=True),
    R("dockerd", "*", "POST /images/{name}/tag", [S("dockerd", "reference store")],
      "Tag updates dockerd's reference store.", "tag は dockerd の参照ストアを更新する。",
      f"{_M} daemon/images"),
    R("dockerd", "containerd", "POST /images/{name}/tag", [S("containerd", "Images.Create", "/images/create")], "", "",
      f"{_M} daemon/containerd/image_tag.go: TagImage", add=True),
    R("dockerd", "*", "DELETE /images/{name}", [S("dockerd", "image and layer store")],
      "Image removal happens in dockerd's image and layer store.", "イメージ削除は dockerd のイメージ/レイヤーストアで行う。",
      f"{_M} daemon/images/image_delete.go"),
    R("dockerd", "containerd", "DELETE /images/{name}",
      [S("containerd", "Images.Delete; Content.Delete", "/images/delete; /content/delete; /snapshot/remove")], "", "",
      f"{_M} daemon/containerd/image_delete.go: ImageDelete", add=True),
    *(R("dockerd", "*", route, [S("dockerd", "tar export")],
        "Save builds the image tar in dockerd.", "save は dockerd がイメージの tar を作る。",
        f"{_M} daemon/images (tarexport)") for route in ("GET /images/get", "GET /images/{name}/get")),
    *(R("dockerd", "containerd", route, [S("containerd", "Leases.Create; Content.Read")], "", "",
        f"{_M} daemon/containerd/image_exporter.go: ExportImage", add=True)
      for route in ("GET /images/get", "GET /images/{name}/get")),
    R("dockerd", "*", "POST /images/load", [S("dockerd", "tar import", execs=_CHROOTARCHIVE, optional="*",
                                              note=_CHROOTARCHIVE_NOTE)],
      "Load imports the tar into dockerd's image store.", "load は tar を dockerd のイメージストアに取り込む。",
      f"{_M} daemon/images (tarexport)"),
    R("dockerd", "containerd", "POST /images/load", [S(
        "containerd", "Content.Write; Images.Create; Snapshots.Prepare; Snapshots.Commit",
        "/images/create; /snapshot/prepare; /snapshot/commit")], "", "",
      f"{_M} daemon/containerd/image_exporter.go: LoadImage", add=True),
    R("dockerd", "*", "POST /build", [
        S("dockerd", "legacy builder: Dockerfile evaluation; commit per step", execs=_CHROOTARCHIVE,
          optional="*", note=_CHROOTARCHIVE_NOTE),
        S("containerd", _START_C8D + "; Tasks.Delete; Containers.Delete", _START_EVENTS + "; " + _EXIT_EVENTS,
          note="one full container life per RUN step"),
        S("shim", "Create; Start; Delete", execs=_SHIM_EXEC), S("runc", "create; start; delete",
                                                                 execs="runc create; runc start; runc delete"),
        S("host", "RUN step networking", execs="libnetwork-setkey; docker-proxy; iptables", optional="*",
          note="the RUN container's prestart hook (engines 20.10–25) and network rules")],
      "The legacy builder runs one full container (create, start, wait, commit, rm) per RUN step.",
      "旧来のビルダは RUN ごとにコンテナを 1 つ丸ごと (create, start, wait, commit, rm) 動かす。",
      f"{_M} daemon/builder/dockerfile/containerbackend.go"),
    R("dockerd", "*", "POST /build", [
        S("dockerd", "BuildKit solve (build session)"),
        S("runc", "run; exec; kill; delete; state", execs="runc run; runc init; runc delete",
          optional="*", note="only for uncached RUN steps: BuildKit's runc executor is exec'd by dockerd directly, not through containerd"),
        S("host", "RUN network sandbox", execs="libnetwork-setkey; iptables",
          optional="*", note="only for RUN steps on the default (bridge) network (prestart hook; dockerd >= 28 endpoint rules)")],
      "With BuildKit (version=2), RUN steps are `runc run` exec'd by dockerd itself — containerd is bypassed.",
      "BuildKit (version=2) では RUN は dockerd 自身が `runc run` を実行し、containerd を経由しない。",
      f"{_M} daemon/internal/builder-next/executor_linux.go: newExecutor", when="query.version=2"),
    R("dockerd", "*", "POST /grpc", [
        S("dockerd", "BuildKit controller (moby.buildkit.v1.Control)"),
        S("runc", "run; exec; kill; delete; state", execs="runc run; runc init; runc delete",
          optional="*", note="only for a Solve with uncached RUN steps: dockerd execs runc directly; no containerd task, no shim")],
      "buildx's docker driver speaks BuildKit gRPC over h2c; RUN steps are `runc run` exec'd by dockerd directly.",
      "buildx の docker ドライバは h2c で BuildKit gRPC を話す。RUN は dockerd が直接 `runc run` する。",
      f"{_M} daemon/server/router/grpc/grpc_routes.go: serveGRPC; buildkit executor/runcexecutor"),
    R("dockerd", "containerd", "POST /grpc", [S("containerd", "Snapshots.Prepare; Content.Write; Images.Create",
                                                note="containerd worker storage; the executor is still runc")],
      "", "", f"{_M} daemon/internal/builder-next/controller.go: newSnapshotterController", add=True),
    R("dockerd", "*", "POST /session", [S("dockerd", "BuildKit session manager (h2c)")],
      "The BuildKit session carries file sync and auth between client and dockerd; it runs nothing itself.",
      "BuildKit セッションはクライアントと dockerd の間でファイル同期や認証を運ぶだけで、何も実行しない。",
      f"{_M} daemon/server/router/session/session_routes.go"),
    R("dockerd", "*", "GET /events", [S("dockerd", "events service")],
      "Events are served from dockerd's in-memory event service (fed partly by containerd /tasks/* events).",
      "events は dockerd のメモリ上のイベントサービスから返る (一部は containerd の /tasks/* から)。",
      f"{_M} daemon/events.go: SubscribeToEvents"),
    R("dockerd", "*", "GET /system/df", [S("dockerd", "container, volume, build-cache sizes")],
      "Disk usage is computed by dockerd.", "ディスク使用量は dockerd が計算する。",
      f"{_M} daemon/disk_usage.go: SystemDiskUsage"),
    R("dockerd", "containerd", "GET /system/df", [S("containerd", "Images.List; Snapshots.Usage")], "", "",
      f"{_M} daemon/disk_usage.go", add=True),
    R("dockerd", "*", "POST /auth", [S("dockerd", "registry login")],
      "Login is checked against the registry by dockerd.", "ログインは dockerd がレジストリに確認する。",
      f"{_M} daemon/auth.go: AuthenticateToRegistry"),
    R("dockerd", "*", "POST /commit", [
        S("dockerd", "diff; image create"), S("containerd", "Tasks.Pause; Tasks.Resume", "/tasks/paused; /tasks/resumed"),
        S("shim", "Pause; Resume"), S("runc", "pause; resume", execs="runc pause; runc resume")],
      "Commit pauses the running container by default (`runc pause`/`resume`) while it snapshots the layer.",
      "commit は既定で実行中コンテナを一時停止 (`runc pause`/`resume`) してからレイヤーを保存する。",
      f"{_M} daemon/commit.go: CreateImageFromContainer"),
    R("dockerd", "*", "POST /commit", [S("dockerd", "diff; image create")],
      "With pause=0, commit snapshots the layer without pausing the container.",
      "pause=0 の commit はコンテナを止めずにレイヤーを保存する。",
      f"{_M} daemon/commit.go: CreateImageFromContainer", when="query.pause=0"),
    R("dockerd", "containerd", "POST /commit", [S(
        "containerd", "Leases.Create; Diff.Diff; Content.Write; Snapshots.Prepare; Snapshots.Commit; Images.Create",
        "/snapshot/prepare; /snapshot/commit; /images/create")], "", "",
      f"{_M} daemon/containerd/image_commit.go: CommitImage", add=True),
    # Measured on dockerd 28.5 + containerd 2.1 with the containerd image store (tests/test_engine_rows.py,
    # against containerd's own event stream). These rows only add: merged onto the rows above, their "only"
    # notes make the containerd step conditional, so what depends on the data is never marked missing.
    R("dockerd", "containerd", "POST /commit", [S(
        "containerd", "Snapshots.View; Snapshots.Remove; Images.Delete",
        "/snapshot/remove; /images/delete; /content/create",
        optional="*", note="only what the commit needs: Snapshots.Prepare/Commit (/snapshot/prepare, /snapshot/commit) only when "
             "the container changed files (createDiff found a diff); the diff's View is removed (/snapshot/remove); "
             "the dangling placeholder image is deleted; /content/create only on containerd >= 2.1")], "", "",
      f"{_M} daemon/containerd/image_commit.go: CommitImage, createDiff, applyDiffLayer; "
      "containerd core/metadata/content.go (v2.1: content events)", add=True),
    R("dockerd", "containerd", "POST /images/load", [S(
        "containerd", "Images.Update", "/images/update; /content/create",
        optional="*", note="only what is new: /snapshot/* only for layers not yet unpacked; an existing name is updated "
             "(/images/update); /content/create only on containerd >= 2.1")], "", "",
      f"{_M} daemon/containerd/image_exporter.go: LoadImage; containerd core/metadata/images.go: Update", add=True),
    R("dockerd", "containerd", "POST /images/{name}/tag", [S(
        "containerd", "Images.Delete", "/images/delete",
        optional="*", note="only when the target name's old image becomes dangling: it is replaced (/images/delete)")], "", "",
      f"{_M} daemon/containerd/image_tag.go: TagImage", add=True),
    R("dockerd", "containerd", "DELETE /images/{name}", [S(
        "containerd", "Content.Delete",
        optional="*", note="only what no other image shares: /content/delete and the GC's /snapshot/remove")], "", "",
      f"{_M} daemon/containerd/image_delete.go: ImageDelete", add=True),
    R("dockerd", "*", "POST /plugins/{name}/enable", [
        S("dockerd", "plugin manager"),
        S("containerd", "Containers.Create; Tasks.Create; Tasks.Start", _START_EVENTS,
          note="namespace plugins.moby"),
        S("shim", "Create; Start", execs=_SHIM_EXEC), S("runc", "create; start", execs="runc create; runc start")],
      "Enabling a managed plugin starts it as a containerd task in namespace plugins.moby.",
      "管理プラグインの有効化は、名前空間 plugins.moby の containerd タスクとして起動する。",
      f"{_M} daemon/pkg/plugin/manager_linux.go: enable; plugin/executor/containerd/containerd.go: Create"),
    R("dockerd", "*", "POST /plugins/{name}/disable", [
        S("dockerd", "plugin manager"), S("containerd", "Tasks.Kill; " + _EXIT_OPS, _EXIT_EVENTS,
                                          note="namespace plugins.moby"),
        S("shim", "Kill; Delete"), S("runc", "kill; delete", execs="runc kill; runc delete")],
      "Disabling a plugin kills its containerd task in plugins.moby.",
      "プラグインの無効化は plugins.moby のタスクを kill する。",
      f"{_M} daemon/pkg/plugin/manager_linux.go: disable; executor/containerd: Signal"),
    # engine-version extra (§6): 20.10–25 add a libnetwork-setkey prestart hook on every container start
    *(R("dockerd", "*", route, [S(
        "host", "OCI prestart hook", execs="libnetwork-setkey", optional="*",
        note="runc execs dockerd's own binary (/proc/<dockerd pid>/exe libnetwork-setkey) on engines 20.10–25")],
        "", "", "layer-model.md §6 (20.10–25 libnetwork-setkey prestart hook)", add=True, engine_major=(20, 25))
      for route in ("POST /containers/{id}/start", "POST /containers/{id}/restart")),

    # ============================================== Podman =========================================================
    *(R("podman", "*", f"{m} /_ping", [S("compat-api", "Ping")],
        "Podman's API service answers the ping itself (Libpod-Api-Version header).",
        "Podman の API サービスが自分で ping に応答する (Libpod-Api-Version ヘッダ)。",
        f"{_P} pkg/api/handlers/compat/ping.go") for m in ("GET", "HEAD")),
    *(R("podman", "*", route, [
        S("compat-api", "runtime.Info()"),
        S("host", "version probes", execs=f"conmon --version; {RUNTIME} --version; dpkg-query/rpm -q",
          note="podman execs conmon, the OCI runtime and package queries for version info")],
        "Version/info make Podman exec `conmon --version`, the OCI runtime's `--version` and package queries.",
        "version/info で Podman は `conmon --version`、OCI ランタイムの `--version`、パッケージ照会を実行する。",
        f"{_P} libpod/info.go; libpod/oci_conmon_common.go: getConmonVersion, getOCIRuntimeVersion")
      for route in ("GET /version", "GET /info")),
    R("podman", "*", "POST /containers/create", [S("compat-api", "DB; containers/storage layer")],
      "Create writes Podman's DB and a containers/storage layer; a missing image is a 404, not a pull.",
      "create は Podman の DB と containers/storage のレイヤーを作る。イメージが無ければ pull せず 404。",
      f"{_P} pkg/api/handlers/compat/containers_create.go"),
    R("podman", "*", "POST /containers/{id}/attach", [
        S("compat-api", "hijack; connect to conmon attach socket; init if not running"),
        S("conmon", "spawn", execs="conmon", optional="*", note="only if the container is Configured/Stopped/Exited"),
        S(RUNTIME, "create", execs=f"{RUNTIME} create", note="run by conmon"),
        S("host", "network setup", execs="netavark")],
      "On Podman, attach initialises a created container: conmon is spawned and runs the OCI `create` here.",
      "Podman では attach が作成済みコンテナを初期化する。conmon が起動し OCI の `create` をここで実行する。",
      f"{_P} libpod/container_api.go: HTTPAttach → initUnlocked"),
    R("podman", "*", "POST /containers/{id}/start", [
        S("compat-api", "state"),
        S("conmon", "spawn", execs="conmon", optional="*", note="only if attach did not already init"),
        S(RUNTIME, "create; start", execs=f"{RUNTIME} start",
          optional="*", note="podman execs `start` itself; `create` (by conmon) only if not yet initialised"),
        S("host", "network setup", execs="netavark; iptables; ip6tables; nft; conmon --version", optional="*",
          note="when the container has a network: netavark setup (Podman ≥ 4 default; it runs nft or "
               "iptables), or the CNI "
               "plugins' iptables calls (Podman with CNI); Podman 4.3 also probes `conmon --version`")],
      "Podman execs the OCI runtime's `start` directly; no containerd or shim is involved.",
      "Podman は OCI ランタイムの `start` を直接実行する。containerd も shim も関与しない。",
      f"{_P} libpod/container_internal.go: init, start; oci_conmon_common.go: StartContainer"),
    R("podman", "*", "POST /containers/{id}/stop", [
        S("compat-api", "stop"), S(RUNTIME, "kill; delete", execs=f"{RUNTIME} kill; {RUNTIME} delete",
                                   note="delete --force runs in the `podman container cleanup` conmon spawns"),
        S("host", "cleanup", execs="podman; netavark", note="conmon's exit command re-execs podman")],
      "Stop runs `<runtime> kill`; at exit conmon spawns `podman container cleanup`, which deletes the container.",
      "stop は `<runtime> kill` を実行し、終了時に conmon が `podman container cleanup` を起動して削除する。",
      f"{_P} oci_conmon_common.go: StopContainer; pkg/specgenutil/util.go: CreateExitCommandArgs"),
    R("podman", "*", "POST /containers/{id}/kill", [S("compat-api"), S(RUNTIME, "kill", execs=f"{RUNTIME} kill")],
      "Kill is Podman exec'ing `<runtime> kill <id> <sig>`.", "kill は Podman が `<runtime> kill <id> <sig>` を実行する。",
      f"{_P} oci_conmon_common.go: KillContainer"),
    R("podman", "*", "POST /containers/{id}/restart", [
        S("compat-api"), S("conmon", "spawn", execs="conmon"),
        S(RUNTIME, "kill; delete; create; start", execs=f"{RUNTIME} kill; {RUNTIME} delete; {RUNTIME} create; "
                                                        f"{RUNTIME} start"),
        S("host", "network teardown and setup", execs="netavark")],
      "Restart kills, deletes, then re-creates (new conmon) and starts the container.",
      "restart は kill と delete の後、新しい conmon で create し start する。",
      f"{_P} libpod/container_internal.go: restartWithTimeout"),
    R("podman", "*", "POST /containers/{id}/pause", [S("compat-api"), S(RUNTIME, "pause", execs=f"{RUNTIME} pause")],
      "Pause is `<runtime> pause` exec'd by Podman.", "pause は Podman が `<runtime> pause` を実行する。",
      f"{_P} oci_conmon_common.go: PauseContainer"),
    R("podman", "*", "POST /containers/{id}/unpause", [S("compat-api"), S(RUNTIME, "resume",
                                                                          execs=f"{RUNTIME} resume")],
      "Unpause is `<runtime> resume` exec'd by Podman.", "unpause は Podman が `<runtime> resume` を実行する。",
      f"{_P} oci_conmon_common.go: UnpauseContainer"),
    R("podman", "*", "GET /containers/{id}/top", [
        S("compat-api", "psgo"), S("host", "ps", execs="podman-top; ps", optional="*",
                                   note="re-execs podman as podman-top, which runs the host ps in the PID namespace"),
        S("conmon", "exec session", execs="conmon", optional="*",
          note="Podman 4.3 (seen here): `ps -ef` runs inside the container through an exec session instead"),
        S(RUNTIME, "exec", execs=f"{RUNTIME} exec", optional="*", note="the exec session's runtime exec")],
      "Top re-execs podman (`podman-top`), which runs `ps` inside the container's PID namespace.",
      "top は podman を `podman-top` として再実行し、コンテナの PID 名前空間で `ps` を実行する。",
      f"{_P} libpod/container_top_linux.go: Top, execPS"),
    R("podman", "*", "GET /containers/{id}/stats", [S("compat-api", "cgroup reads")],
      "Stats are read from cgroup files by Podman itself; no runtime or conmon is involved.",
      "stats は Podman 自身が cgroup ファイルを読む。ランタイムも conmon も関与しない。",
      f"{_P} libpod/stats_linux.go"),
    R("podman", "*", "POST /containers/{id}/update", [S("compat-api"), S(RUNTIME, "update",
                                                                         execs=f"{RUNTIME} update")],
      "Update execs `<runtime> update --resources` when the container runs.",
      "update は実行中なら `<runtime> update --resources` を実行する。",
      f"{_P} libpod/container_internal.go: update"),
    *(R("podman", "*", route, [S("compat-api"), S("conmon", "ctl FIFO resize", note="writes `1 <h> <w>`")],
        "Resize writes the new size to conmon's control FIFO.", "resize は conmon の制御 FIFO に新しい大きさを書く。",
        f"{_P} pkg/api/handlers/compat/resize.go") for route in ("POST /containers/{id}/resize",
                                                                "POST /exec/{id}/resize")),
    R("podman", "*", "POST /exec/{id}/start", [
        S("compat-api", "hijack"), S("conmon", "exec session", execs="conmon"),
        S(RUNTIME, "exec", execs=f"{RUNTIME} exec", note="run by conmon -e")],
      "Exec start spawns `conmon -e`, which runs `<runtime> exec --detach` and relays stdio.",
      "exec start は `conmon -e` を起動し、それが `<runtime> exec --detach` を実行して stdio を中継する。",
      f"{_P} libpod/oci_conmon_exec_common.go: ExecContainerHTTP, startExec"),
    R("podman", "*", "DELETE /containers/{id}", [S("compat-api", "DB and storage removal")],
      "Remove deletes Podman's DB entry and storage.", "削除は Podman の DB とストレージを消す。",
      f"{_P} pkg/api/handlers/compat/containers.go: RemoveContainer"),
    R("podman", "*", "DELETE /containers/{id}", [
        S("compat-api", "DB and storage removal"), S(RUNTIME, "kill; delete", execs=f"{RUNTIME} kill; {RUNTIME} delete"),
        S("host", "network teardown", execs="netavark")],
      "Forced remove of a running container kills it with the runtime and deletes it.",
      "実行中コンテナの強制削除はランタイムで kill して delete する。",
      f"{_P} pkg/api/handlers/compat/containers.go: RemoveContainer", when="query.force"),
    R("podman", "*", "POST /commit", [S("compat-api", "buildah commit"),
                                      S(RUNTIME, "pause; resume", execs=f"{RUNTIME} pause; {RUNTIME} resume")],
      "Commit pauses the container by default while buildah commits it.",
      "commit は既定でコンテナを一時停止し、buildah でコミットする。", f"{_P} libpod/container_commit.go"),
    R("podman", "*", "POST /build", [
        S("compat-api", "buildah (imagebuildah) in-process"),
        S(RUNTIME, "create; start; state; kill; delete", execs=f"{RUNTIME} create; {RUNTIME} start",
          note="with OCI isolation buildah runs the runtime per RUN step; chroot isolation runs none"),
        S("host", "RUN networking", execs="netavark")],
      "Podman builds with buildah in-process; each RUN runs the OCI runtime directly (no conmon).",
      "Podman は buildah でビルドし、RUN ごとに OCI ランタイムを直接実行する (conmon なし)。",
      f"{_P} vendored containers/buildah/run_common.go: runUsingRuntime"),
    *(R("podman", "*", f"POST {route}", [S("compat-api", "netavark config"),
                                         S("host", "netavark", execs="netavark")],
        "Network changes write netavark config; running containers get `netavark setup/teardown`.",
        "ネットワーク変更は netavark の設定を書き、実行中コンテナには `netavark setup/teardown` を行う。",
        f"{_P} vendored common/libnetwork/netavark/run.go")
      for route in ("/networks/{id}/connect", "/networks/{id}/disconnect")),
    # Podman's network set-up runs netavark, which execs the firewall tool of its driver: measured `nft` under
    # Podman 5.8 (netavark 1.17, nftables driver) and `iptables`/`ip6tables` under Podman 4.3 (netavark 1.4).
    *(R("podman", "*", route, [S("host", "netavark firewall", execs=f"netavark; {tool}",
                                 optional="*", note="only when this call initialises a container on a bridge network: "
                                      "netavark and its firewall driver's tool")],
        "", "", f"{_P} vendored common/libnetwork/netavark/run.go; netavark src/firewall/mod.rs "
                "(nftables driver default in Debian's netavark 1.17, iptables in 1.4: measured)",
        add=True, engine_major=majors)
      for route in ("POST /containers/{id}/attach", "POST /containers/{id}/start", "POST /containers/{id}/restart")
      for tool, majors in (("nft", (5, 99)), ("iptables; ip6tables", (4, 4)))),
    R("podman", "*", "POST /secrets/{id}/update", [S("compat-api", "503 noSwarm")],
      "Podman has no swarm; secret update answers 503.", "Podman には swarm が無く、secret update は 503 を返す。",
      f"{_P} pkg/api/server/register_swarm.go: noSwarm"),
)

#: Route-group defaults: (family, first path segment) → chain, for routes without a specific row.
GROUP_DEFAULTS: tuple[Row, ...] = (
    *(R("dockerd", "*", seg, [S("dockerd", "swarmkit (in-process)")],
        "Swarm objects live in dockerd's embedded swarmkit (Raft store); no containerd call per request.",
        "swarm のオブジェクトは dockerd 内蔵の swarmkit (Raft) にあり、要求ごとの containerd 呼び出しは無い。",
        f"{_M} daemon/cluster/*.go", group=True)
      for seg in ("swarm", "nodes", "services", "tasks", "secrets", "configs")),
    R("dockerd", "*", "networks", [S("dockerd", "libnetwork"), S("host", "firewall", execs="iptables",
                                                               optional="*", note="create/connect/disconnect/remove only")],
      "Networks are libnetwork inside dockerd; changes exec iptables/ip6tables (or nft).",
      "ネットワークは dockerd 内の libnetwork。変更時に iptables/ip6tables (または nft) を実行する。",
      f"{_M} daemon/network.go; daemon/libnetwork/iptables/iptables.go", group=True),
    R("dockerd", "*", "volumes", [S("dockerd", "VolumesService")],
      "Volumes are managed by dockerd's volume service (local driver or plugins).",
      "ボリュームは dockerd のボリュームサービス (local ドライバやプラグイン) が管理する。",
      f"{_M} daemon/volume/service/service.go", group=True),
    R("dockerd", "*", "plugins", [S("dockerd", "plugin manager")],
      "Plugin metadata and blobs are handled by dockerd's plugin manager.",
      "プラグインのメタデータと blob は dockerd のプラグインマネージャが扱う。",
      f"{_M} daemon/pkg/plugin/manager.go", group=True),
    R("dockerd", "*", "images", [S("dockerd", "image store")],
      "Image metadata operations run in dockerd's image service.",
      "イメージのメタデータ操作は dockerd のイメージサービスで行う。",
      f"{_M} daemon/images; daemon/containerd", group=True),
    R("dockerd", "*", "distribution", [S("dockerd", "registry client")],
      "Distribution inspect queries the registry from dockerd.", "distribution inspect は dockerd がレジストリに問い合わせる。",
      f"{_M} daemon/server/router/distribution", group=True),
    R("dockerd", "*", "build", [S("dockerd", "build cache")],
      "Build cache management runs in dockerd (BuildKit cache).", "ビルドキャッシュ管理は dockerd (BuildKit) で行う。",
      f"{_M} daemon/server/router/build", group=True),
    R("dockerd", "*", "containers", [S("dockerd")],
      "Handled inside dockerd; no lower layer is documented for this container route.",
      "dockerd 内で処理される。このコンテナ経路について下位層は記録されていない。",
      f"{_M} daemon/server/router/container", group=True),
    R("dockerd", "*", "libpod", [S("dockerd", "404: no libpod routes")],
      "dockerd does not serve Podman's /libpod API; it answers 404.",
      "dockerd は Podman の /libpod API を提供しないため 404 を返す。",
      f"{_M} daemon/server (no such route)", group=True),
    R("dockerd", "*", "*", [S("dockerd")],
      "Handled inside dockerd.", "dockerd 内で処理される。", f"{_M} daemon/server/router", group=True),
    *(R("podman", "*", seg, [S("compat-api", "503 noSwarm")],
        "Podman does not implement swarm; these routes answer 503.",
        "Podman は swarm を実装しておらず、これらの経路は 503 を返す。",
        f"{_P} pkg/api/server/register_swarm.go: noSwarm", group=True)
      for seg in ("swarm", "nodes", "services", "tasks", "configs")),
    *(R("podman", "*", seg, [S("compat-api", "UnsupportedHandler")],
        "Podman does not support this API; the handler reports it as unsupported.",
        "Podman はこの API を未サポートとして応答する。",
        f"{_P} pkg/api/server/register_{seg}.go: UnsupportedHandler", group=True)
      for seg in ("plugins", "distribution")),
    *(R("podman", "*", seg, [S("compat-api", "404: no route")],
        "Podman has no BuildKit; /session and /grpc are 404, so buildx's docker driver cannot build.",
        "Podman には BuildKit が無く /session と /grpc は 404。buildx の docker ドライバは使えない。",
        f"{_P} pkg/api/server (no route registered)", group=True) for seg in ("session", "grpc")),
    R("podman", "*", "networks", [S("compat-api", "netavark config files")],
      "Network objects are netavark config files managed in-process.",
      "ネットワークは Podman 内で管理される netavark の設定ファイル。",
      f"{_P} pkg/api/handlers/compat/networks.go", group=True),
    R("podman", "*", "*", [S("compat-api", "libpod / containers/storage in-process")],
      "Handled in-process by Podman's API service (libpod, containers/storage, c/image); no containerd exists.",
      "Podman の API サービス内 (libpod, containers/storage, c/image) で処理される。containerd は存在しない。",
      f"{_P} pkg/api/handlers/compat", group=True),
)
# fmt: on

# --- BuildKit gRPC methods (keyed on the `:path` decoded from the h2c stream) -----------------------
#: Routes whose hijacked stream is HTTP/2 carrying gRPC; with decoded methods their chain is built from
#: the `GRPC_ROWS` of each method instead of the opaque route row.
GRPC_TRANSPORTS = frozenset({"POST /grpc", "POST /session"})
GRPC_PREFIX = "gRPC "
_BK = f"{_M} vendor/github.com/moby/buildkit"
_CONTROL = "/moby.buildkit.v1.Control/"
_BRIDGE = "/moby.buildkit.v1.frontend.LLBBridge/"
_RUN_STEPS = [
    S(
        "runc",
        "run; delete",
        execs="runc run; runc init; runc delete",
        optional="*",
        note="only for RUN steps not in the cache: BuildKit's runc executor, exec'd by dockerd itself, not via containerd",
    ),
    S(
        "host",
        "RUN network sandbox",
        execs="libnetwork-setkey; iptables",
        optional="*",
        note="only for RUN steps on the default (bridge) network: runc runs dockerd's libnetwork-setkey prestart "
        "hook; dockerd >= 28 adds and removes the endpoint's raw-PREROUTING rules with iptables",
    ),
]
_RUN_SOURCES = (
    f"{_M} daemon/internal/builder-next/executor_linux.go: newExecutor, lnInterface.Set; "
    "daemon/libnetwork/drivers/bridge/internal/iptabler/endpoint.go: AddEndpoint, filterDirectAccess"
)


def _grpc_only(method: str, what: str, en: str, ja: str, source: str) -> Row:
    """A BuildKit call served inside dockerd: it reaches neither containerd nor a runtime."""
    return R("dockerd", "*", GRPC_PREFIX + method, [S("dockerd", what)], en, ja, source)


# fmt: off
GRPC_ROWS: tuple[Row, ...] = (
    _grpc_only(_CONTROL + "ListWorkers", "BuildKit controller: list workers",
               "ListWorkers reads the BuildKit worker list inside dockerd; nothing runs below it.",
               "ListWorkers は dockerd 内の BuildKit ワーカー一覧を読むだけで、下の層では何も動かない。",
               f"{_BK}/control/control.go: ListWorkers"),
    _grpc_only(_CONTROL + "DiskUsage", "BuildKit cache manager: disk usage",
               "DiskUsage sums BuildKit's build cache records inside dockerd.",
               "DiskUsage は dockerd 内で BuildKit のビルドキャッシュを集計する。",
               f"{_BK}/control/control.go: DiskUsage"),
    _grpc_only(_CONTROL + "Status", "BuildKit progress stream",
               "Status streams a build's progress from BuildKit's job in dockerd; it runs nothing itself.",
               "Status は dockerd 内の BuildKit ジョブから進捗を流すだけで、自分では何も実行しない。",
               f"{_BK}/control/control.go: Status"),
    _grpc_only(_CONTROL + "Info", "BuildKit version info",
               "Info reports BuildKit's version from dockerd.", "Info は dockerd 内の BuildKit の版を返す。",
               f"{_BK}/control/control.go: Info"),
    _grpc_only(_CONTROL + "Prune", "BuildKit cache prune",
               "Prune removes build-cache records in dockerd's BuildKit cache.",
               "Prune は dockerd の BuildKit キャッシュからビルドキャッシュを消す。",
               f"{_BK}/control/control.go: Prune"),
    _grpc_only(_CONTROL + "ListenBuildHistory", "BuildKit build history",
               "ListenBuildHistory streams build records kept by BuildKit in dockerd.",
               "ListenBuildHistory は dockerd 内の BuildKit が保持するビルド記録を流す。",
               f"{_BK}/control/control.go: ListenBuildHistory"),
    _grpc_only(_CONTROL + "UpdateBuildHistory", "BuildKit build history",
               "UpdateBuildHistory edits a build record in dockerd's BuildKit.",
               "UpdateBuildHistory は dockerd の BuildKit のビルド記録を更新する。",
               f"{_BK}/control/control.go: UpdateBuildHistory"),
    R("dockerd", "*", GRPC_PREFIX + _CONTROL + "Solve", [
        S("dockerd", "BuildKit solver (LLB); exporter"), *_RUN_STEPS],
      "Solve runs the build in dockerd's BuildKit; each uncached RUN step is `runc run` exec'd by dockerd "
      "(BuildKit's runc executor), with no containerd task and no shim.",
      "Solve は dockerd 内の BuildKit がビルドを実行する。キャッシュに無い RUN は dockerd が `runc run` を直接実行し"
      " (BuildKit の runc executor)、containerd のタスクも shim も使わない。",
      f"{_BK}/control/control.go: Solve; executor/runcexecutor/executor_linux.go: run; {_RUN_SOURCES}"),
    R("dockerd", "containerd", GRPC_PREFIX + _CONTROL + "Solve", [S(
        "containerd", "Leases.Create; Snapshots.Prepare; Snapshots.Commit; Content.Write; Images.Create",
        "/snapshot/prepare; /snapshot/commit; /images/create; /content/create",
        optional="*", note="only what the build does not find cached: the containerd worker's snapshots and the image export; "
             "the executor is still runc")], "", "",
      f"{_M} daemon/internal/builder-next/controller.go: newSnapshotterController", add=True),
    R("dockerd", "containerd", GRPC_PREFIX + _CONTROL + "Solve", [S(
        "containerd", "Snapshots.Remove", "/snapshot/remove",
        optional="*", note="only for what the build created and released: measured on dockerd 28.5 + containerd 2.1, which also "
             "writes the build record's content in namespace moby_history")], "", "",
      f"{_BK}/worker/base/worker.go; {_M} daemon/internal/builder-next/controller.go: newSnapshotterController",
      add=True),
    # buildx builds through the gateway API: its client-side build function calls LLBBridge on /grpc.
    R("dockerd", "*", GRPC_PREFIX + _BRIDGE + "Solve", [
        S("dockerd", "BuildKit gateway: frontend solve (dockerfile.v0)"), *_RUN_STEPS],
      "LLBBridge/Solve asks the gateway to solve the Dockerfile frontend; uncached RUN steps are `runc run` "
      "exec'd by dockerd.",
      "LLBBridge/Solve はゲートウェイに Dockerfile フロントエンドを解かせる。キャッシュに無い RUN は dockerd が "
      "`runc run` を実行する。",
      f"{_BK}/frontend/gateway/gateway.go: LLBBridgeForwarder.Solve; executor/runcexecutor/executor_linux.go: run; "
      f"{_RUN_SOURCES}"),
    R("dockerd", "containerd", GRPC_PREFIX + _BRIDGE + "Solve", [S(
        "containerd", "Leases.Create; Snapshots.Prepare; Snapshots.Commit; Content.Write",
        "/snapshot/prepare; /snapshot/commit; /content/create",
        optional="*", note="only for what is not cached: the containerd worker's snapshots")], "", "",
      f"{_M} daemon/internal/builder-next/controller.go: newSnapshotterController", add=True),
    # /session: dockerd is the gRPC client and calls what buildx serves (payloads are never kept).
    *(R("dockerd", "*", GRPC_PREFIX + path, [S("dockerd", what)], en, ja, f"{_BK}/session/{src}")
      for path, what, en, ja, src in (
        ("/moby.filesync.v1.FileSync/DiffCopy", "BuildKit session: build context sync",
         "dockerd pulls the build context from the client (fsutil DiffCopy over the session).",
         "dockerd がセッション経由でクライアントからビルドコンテキストを取り込む (fsutil DiffCopy)。",
         "filesync/filesync.go: FSSync"),
        ("/moby.filesync.v1.FileSync/TarStream", "BuildKit session: build context as tar",
         "dockerd pulls the build context from the client as a tar stream.",
         "dockerd がクライアントからビルドコンテキストを tar で取り込む。", "filesync/filesync.go: FSSync"),
        ("/moby.filesync.v1.FileSend/DiffCopy", "BuildKit session: local export",
         "dockerd sends a local export (`--output type=local`) to the client.",
         "dockerd がローカル出力 (`--output type=local`) をクライアントへ送る。", "filesync/filesync.go: FSSend"),
        ("/moby.filesync.v1.Auth/Credentials", "BuildKit session: registry credentials from the client",
         "dockerd asks the client for registry credentials (the answer is never shown or recorded).",
         "dockerd がクライアントにレジストリ認証情報を問い合わせる (応答は表示も記録もしない)。", "auth/auth.go"),
        ("/moby.filesync.v1.Auth/FetchToken", "BuildKit session: registry token from the client",
         "dockerd asks the client to fetch a registry token (never shown or recorded).",
         "dockerd がクライアントにレジストリトークンの取得を頼む (表示も記録もしない)。", "auth/auth.go"),
        ("/moby.filesync.v1.Auth/GetTokenAuthority", "BuildKit session: token authority",
         "dockerd asks the client for its token-signing authority.",
         "dockerd がクライアントにトークン署名の公開鍵を問い合わせる。", "auth/auth.go"),
        ("/moby.filesync.v1.Auth/VerifyTokenAuthority", "BuildKit session: token authority",
         "dockerd asks the client to verify its token authority.",
         "dockerd がクライアントにトークン署名の確認を頼む。", "auth/auth.go"),
        ("/moby.buildkit.secrets.v1.Secrets/GetSecret", "BuildKit session: build secret from the client",
         "dockerd fetches a `--secret` from the client for a RUN step (the value is never shown or recorded).",
         "dockerd が RUN のために `--secret` をクライアントから取得する (値は表示も記録もしない)。",
         "secrets/secrets.go: GetSecret"),
        ("/moby.sshforward.v1.SSH/CheckAgent", "BuildKit session: ssh agent check",
         "dockerd checks the client's forwarded ssh agent.", "dockerd が転送された ssh エージェントを確認する。",
         "sshforward/ssh.go"),
        ("/moby.sshforward.v1.SSH/ForwardAgent", "BuildKit session: ssh agent forwarding",
         "dockerd forwards a RUN step's ssh agent socket to the client.",
         "dockerd が RUN の ssh エージェントをクライアントへ転送する。", "sshforward/ssh.go"),
        ("/moby.upload.v1.Upload/Pull", "BuildKit session: context upload",
         "dockerd pulls an uploaded build context (a tar or URL context) from the client.",
         "dockerd がアップロードされたビルドコンテキストをクライアントから取り込む。", "upload/upload.go"),
        ("/grpc.health.v1.Health/Check", "BuildKit session health check",
         "dockerd checks that the build session's client is still alive (periodically while it is open).",
         "dockerd がビルドセッションのクライアントが生きているかを定期的に確認する。",
         "grpc.go: monitorHealth"),
      )),
)

#: A method the table has no row for: served inside dockerd (BuildKit), nothing known below it.
GRPC_DEFAULT = R("dockerd", "*", GRPC_PREFIX + "*", [S("dockerd", "BuildKit (method not in the model)")],
                 "A BuildKit gRPC call handled inside dockerd; the model has no row for this method.",
                 "dockerd 内の BuildKit が処理する gRPC 呼び出し。このメソッドの行はモデルに無い。",
                 f"{_M} daemon/server/router/grpc/grpc_routes.go: serveGRPC", group=True)
# fmt: on


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(value: object) -> str:
    text = str(value).strip().lower()
    return "1" if text in _TRUE else "0" if text in _FALSE else text


def condition_holds(when: str | None, query: Mapping[str, list[str]], body: object | None) -> bool:
    """`query.force` → the query flag is truthy; `query.pause=0` → it equals 0/false; `body.Detach` likewise."""
    if when is None:
        return True
    source, _, rest = when.partition(".")
    name, _, expected = rest.partition("=")
    if source == "query":
        values = query.get(name)
        if not values:
            return False
        value: object = values[-1]
    elif source == "body":
        if not isinstance(body, Mapping) or name not in body:
            return False
        value = body[name]
    else:
        raise ValueError(f"bad condition {when!r}")
    return _flag(value) == (_flag(expected) if expected else "1")


def _major(engine_version: str | None) -> int | None:
    m = re.match(r"v?(\d+)", engine_version or "")
    return int(m.group(1)) if m else None


@dataclass(slots=True)
class _Index:
    base: dict[tuple[str, str], list[Row]] = field(default_factory=dict)
    adds: dict[tuple[str, str], list[Row]] = field(default_factory=dict)
    groups: dict[tuple[str, str], Row] = field(default_factory=dict)


def _build_index() -> _Index:
    index = _Index()
    for row in ROWS + GRPC_ROWS:
        target = index.adds if row.add else index.base
        target.setdefault((row.family, row.route), []).append(row)
    for row in GROUP_DEFAULTS:
        index.groups[(row.family, row.route)] = row
    return index


_INDEX = _build_index()


def _group_of(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return parts[0] if parts else "*"


def _conditional(step: LayerStep, extra: LayerStep, field_name: str) -> tuple[str, ...]:
    """What stays conditional (`optional` or `if_running`) when two steps of one layer merge: a
    name is conditional only if no side names it unconditionally."""
    mine, theirs = getattr(step, field_name), getattr(extra, field_name)
    if "*" in mine and "*" in theirs:
        return ("*",)

    def unconditional(side: LayerStep, marks: tuple[str, ...], name: str) -> bool:
        return name in side.names and "*" not in marks and name not in marks

    return tuple(
        n
        for n in dict.fromkeys(step.names + extra.names)
        if not (unconditional(step, mine, n) or unconditional(extra, theirs, n))
    )


def _merge(steps: list[LayerStep], extra: LayerStep) -> None:
    for i, step in enumerate(steps):
        if step.layer == extra.layer:
            steps[i] = replace(
                step,
                operations=tuple(dict.fromkeys(step.operations + extra.operations)),
                events=tuple(dict.fromkeys(step.events + extra.events)),
                execs=tuple(dict.fromkeys(step.execs + extra.execs)),
                note="; ".join(n for n in (step.note, extra.note) if n),
                optional=_conditional(step, extra, "optional"),
                if_running=_conditional(step, extra, "if_running"),
            )
            return
    steps.append(extra)


def _resolve_runtime(step: LayerStep, runtime: str) -> LayerStep:
    if step.layer != RUNTIME and not any(RUNTIME in e for e in step.execs):
        return step
    return replace(
        step,
        layer=runtime if step.layer == RUNTIME else step.layer,
        execs=tuple(re.sub(rf"\b{RUNTIME}\b", runtime, e) for e in step.execs),
    )


def _libpod_alias(template: str) -> str:
    """`POST /libpod/containers/{name}/start` → `POST /containers/{id}/start`, to reuse the compat rows."""
    method, path = template.split(" ", 1)
    path = path.removeprefix("/libpod")
    first = _group_of(path)
    if first in ("containers", "exec", "networks"):
        path = path.replace("{name}", "{id}")
    return f"{method} {path}"


def expected_chain(
    family: str,
    image_store: str,
    route: RouteMatch,
    query: Mapping[str, list[str]] | None = None,
    body: object | None = None,
    engine_version: str | None = None,
    runtime: str | None = None,
    grpc_methods: Sequence[str] | None = None,
) -> LayerChain:
    """The layers `route` is expected to reach on this backend. `runtime` names Podman's OCI runtime.

    `grpc_methods`: the gRPC methods decoded from a `/grpc` or `/session` stream (None when not
    decoded): the chain is then keyed on those methods, not on the opaque route.
    """
    family = "podman" if family == "podman" else "dockerd"
    query = route.query if query is None else query
    template = route.template
    if grpc_methods is not None and family == "dockerd" and template in GRPC_TRANSPORTS:
        return _grpc_chain(template, image_store, grpc_methods, engine_version)
    if family == "podman" and route.family == "libpod":
        template = _libpod_alias(template)
    candidates = _INDEX.base.get((family, template), [])
    matching = [
        r for r in candidates if r.image_store in ("*", image_store) and condition_holds(r.when, query, body)
    ]
    if matching:
        # A satisfied condition is more specific than none; an exact image store more than "*".
        base = max(matching, key=lambda r: (r.when is not None, r.image_store != "*"))
    else:
        group = (
            "libpod"
            if route.family == "libpod" and family == "dockerd"
            else _group_of(template.split(" ")[1])
        )
        base = _INDEX.groups.get((family, group)) or _INDEX.groups[(family, "*")]
    steps = list(base.steps)
    used = [base]
    major = _major(engine_version)
    for extra in _INDEX.adds.get((family, template), []):
        if extra.image_store not in ("*", image_store) or not condition_holds(extra.when, query, body):
            continue
        if extra.engine_major and (
            major is None or not extra.engine_major[0] <= major <= extra.engine_major[1]
        ):
            continue
        used.append(extra)
        for step in extra.steps:
            _merge(steps, step)
    merged: list[LayerStep] = []
    for step in steps:
        _merge(merged, step)
    resolved = [_resolve_runtime(s, runtime or "crun") for s in merged]
    resolved.sort(key=lambda s: LAYER_ORDER.index(s.layer))
    return LayerChain(
        steps=tuple(resolved),
        explanation={"en": base.en, "ja": base.ja},
        source="; ".join(dict.fromkeys(r.source for r in used)),
        rows=tuple(r.key for r in used),
    )


def _grpc_chain(
    template: str, image_store: str, methods: Sequence[str], engine_version: str | None
) -> LayerChain:
    """The union of the chains of the gRPC methods one h2c connection carried."""
    transport = _INDEX.base[("dockerd", template)][0]
    steps = [S("dockerd", transport.steps[0].operations[0])]
    used: list[Row] = []
    explanations: list[tuple[str, str]] = []
    major = _major(engine_version)
    for method in dict.fromkeys(methods):
        key = ("dockerd", GRPC_PREFIX + method)
        base = next(
            (r for r in _INDEX.base.get(key, []) if r.image_store in ("*", image_store)), GRPC_DEFAULT
        )
        rows = [base] + [
            r
            for r in _INDEX.adds.get(key, [])
            if r.image_store in ("*", image_store)
            and (
                not r.engine_major or (major is not None and r.engine_major[0] <= major <= r.engine_major[1])
            )
        ]
        for row in rows:
            used.append(row)
            for step in row.steps:
                _merge(steps, step)
        explanations.append((base.en, base.ja))
    merged: list[LayerStep] = []
    for step in steps:
        _merge(merged, step)
    merged.sort(key=lambda s: LAYER_ORDER.index(s.layer))
    if not explanations:
        explanations = [
            ("No gRPC call was made on this connection.", "この接続では gRPC 呼び出しが無かった。")
        ]
    return LayerChain(
        steps=tuple(merged),
        explanation={
            "en": " ".join(dict.fromkeys(en for en, _ in explanations)),
            "ja": "".join(dict.fromkeys(ja for _, ja in explanations)),
        },
        # the transport row's first source only: the rest of it speaks for the opaque chain (Solve's runc)
        source="; ".join(dict.fromkeys([transport.source.split("; ")[0], *(r.source for r in used)])),
        rows=(transport.key, *dict.fromkeys(r.key for r in used)),
    )


def all_rows() -> tuple[Row, ...]:
    """Every specific row, `add` row and group default, for listing (`dockertap explain --all`)."""
    return ROWS + GRPC_ROWS + GROUP_DEFAULTS + (GRPC_DEFAULT,)
