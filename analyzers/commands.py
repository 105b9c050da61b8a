# ruff: noqa: E501  (one fact per line)
"""Which API calls a docker CLI command makes, in order: knowledge as data, a source per row.

`dockertap explain docker run --rm -it img sh` looks the command up here, drops the calls its flags skip,
and hands each call to the layer model (`analyzers/layer_table.py`) for the layers it reaches. Rows follow
docker/cli (CLI 20.10 and current releases agree on these sequences except where
a row's notes say otherwise; checked against docker/cli at v20.10.24 and at 28f7560, 2026-08) and against real
traces of the docker CLI 28.2.2 through dockertap (tests/test_teaching.py: test_explain_sequences_match_real_dockerd_traces).

A call's `when` is a flag condition: `detach` (present with -d/--detach), `!detach` (absent), `tty`, `stdin`
(-i), `rm`, `force` (-f), `all` (-a). Notes say where a sequence depends on flags or on the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_CLI = "docker/cli"


@dataclass(frozen=True, slots=True)
class Call:
    """One API call of a command: method and route template, the flag it depends on, a short note."""

    route: str
    when: str | None = None
    query: str = ""
    note: str = ""
    #: Only made when the CLI's stdin/stdout is a terminal (resizes): absent from piped or scripted runs.
    terminal_only: bool = False
    #: Query parameters a flag adds, as the layer model needs them: (condition, "stdin=1").
    flag_query: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CommandRow:
    words: tuple[str, ...]  # ("run",), ("compose", "up")
    calls: tuple[Call, ...]
    source: str
    notes: tuple[str, ...] = ()
    #: Flags (short letters and long names) mapped to the condition names above.
    flags: tuple[tuple[str, str], ...] = ()
    #: Environment assignments typed before `docker` that switch a condition: ("DOCKER_BUILDKIT=0", "!buildkit").
    env: tuple[tuple[str, str], ...] = ()
    #: Conditions on by default (what the current CLI does without flags or environment).
    defaults: tuple[str, ...] = ()


_PING = Call("HEAD /_ping", note="API version negotiation, before the first real call")
_RUN_FLAGS = (("d", "detach"), ("detach", "detach"), ("t", "tty"), ("tty", "tty"), ("i", "stdin"),
              ("interactive", "stdin"), ("rm", "rm"))

# fmt: off
COMMANDS: tuple[CommandRow, ...] = (
    CommandRow(("ps",), (_PING, Call("GET /containers/json", query="all=1 with -a")),
               f"{_CLI} cli/command/container/list.go: runPs",
               ("answered from dockerd's memory: nothing below dockerd is asked",)),
    CommandRow(("images",), (_PING, Call("GET /images/json")), f"{_CLI} cli/command/image/list.go: runImages"),
    CommandRow(("version",), (_PING, Call("GET /version")), f"{_CLI} cli/command/system/version.go: runVersion",
               ("the Server section is whatever answers the socket: dockerd, or Podman's compat API",)),
    CommandRow(("info",), (_PING, Call("GET /info")), f"{_CLI} cli/command/system/info.go: runInfo"),
    CommandRow(("run",), (
        _PING,
        Call("POST /containers/create", note="a 404 'No such image' makes the CLI pull (POST /images/create) and create again"),
        Call("POST /containers/{id}/attach", when="!detach", note="before start, so no output is lost",
             flag_query=(("stdin", "stdin=1"),)),
        Call("POST /containers/{id}/wait", query="condition=removed with --rm, else next-exit",
             note="opened before start even with -d (so an early exit is not missed)"),
        Call("POST /containers/{id}/start"),
        Call("POST /containers/{id}/resize", when="tty", note="the CLI sends the terminal size once the container runs", terminal_only=True),
    ), f"{_CLI} cli/command/container/run.go: runContainer; cli/command/container/create.go: createContainer; cli/command/container/utils.go: waitExitOrRemoved",
        ("-d skips the attach: the CLI prints the id after start (the wait is still opened before start)",
         "--rm: dockerd removes the container itself (HostConfig.AutoRemove, wait condition=removed); docker CLI ≤ 20.10 talking to an API older than 1.30 watches GET /events instead of the wait, and below API 1.25 removes the container itself with DELETE /containers/{id} (cli/command/container/utils.go: legacyWaitExitOrRemoved, v20.10.24)",
         "Podman: the attach initialises the created container (conmon runs `runc create`), start only runs `runc start`",
         "only start reaches containerd and runc on dockerd; create, attach and wait stay in dockerd"),
        _RUN_FLAGS),
    CommandRow(("create",), (_PING, Call("POST /containers/create")), f"{_CLI} cli/command/container/create.go: createContainer"),
    CommandRow(("start",), (
        _PING,
        Call("POST /containers/{id}/attach", when="attach", note="with -a/-i"),
        Call("POST /containers/{id}/wait", when="attach"),
        Call("POST /containers/{id}/start"),
    ), f"{_CLI} cli/command/container/start.go: RunStart", (), (("a", "attach"), ("attach", "attach"), ("i", "attach"), ("interactive", "attach"))),
    CommandRow(("exec",), (
        _PING,
        Call("GET /containers/{id}/json", note="the CLI checks that the container exists before creating the exec"),
        Call("POST /containers/{id}/exec"),
        Call("POST /exec/{id}/start", note="hijacked stream unless -d"),
        Call("POST /exec/{id}/resize", when="tty", note="the terminal size of the exec'd process", terminal_only=True),
        Call("GET /exec/{id}/json", when="!detach", note="the exit code"),
    ), f"{_CLI} cli/command/container/exec.go: RunExec, interactiveExec, getExecExitStatus",
        ("exec create only registers the exec in dockerd; exec start is what reaches containerd and runc (`runc exec`)",),
        (("d", "detach"), ("detach", "detach"), ("t", "tty"), ("tty", "tty"))),
    CommandRow(("logs",), (
        _PING,
        Call("GET /containers/{id}/json", note="to learn whether the container has a TTY (no demultiplexing then)"),
        Call("GET /containers/{id}/logs"),
    ), f"{_CLI} cli/command/container/logs.go: runLogs"),
    CommandRow(("top",), (_PING, Call("GET /containers/{id}/top")), f"{_CLI} cli/command/container/top.go: runTop",
               ("dockerd runs `runc ps` for the PIDs, then the host's ps on them: host PIDs, not the container's",)),
    CommandRow(("update",), (_PING, Call("POST /containers/{id}/update")), f"{_CLI} cli/command/container/update.go: runUpdate",
               ("on a running container dockerd → containerd → shim → `runc update`: the new limits land in the cgroup files",)),
    CommandRow(("stop",), (_PING, Call("POST /containers/{id}/stop")), f"{_CLI} cli/command/container/stop.go: runStop"),
    CommandRow(("kill",), (_PING, Call("POST /containers/{id}/kill")), f"{_CLI} cli/command/container/kill.go: runKill"),
    CommandRow(("restart",), (_PING, Call("POST /containers/{id}/restart")), f"{_CLI} cli/command/container/restart.go: runRestart"),
    CommandRow(("rm",), (_PING, Call("DELETE /containers/{id}", query="force=1 with -f")), f"{_CLI} cli/command/container/rm.go: runRm",
               ("-f on a running container: dockerd kills it through containerd and runc first",)),
    CommandRow(("inspect",), (_PING, Call("GET /containers/{id}/json", note="the CLI tries object kinds in turn when --type is not given")),
               f"{_CLI} cli/command/system/inspect.go: inspectAll"),
    CommandRow(("pull",), (_PING, Call("POST /images/create", query="fromImage=…&tag=…")), f"{_CLI} cli/command/image/pull.go: runPull",
               ("the registry client runs inside dockerd (or Podman's c/image), not in the CLI",
                "with the containerd image store, dockerd writes content and snapshots through containerd")),
    CommandRow(("push",), (_PING, Call("POST /images/{name}/push")), f"{_CLI} cli/command/image/push.go: runPush"),
    CommandRow(("rmi",), (_PING, Call("DELETE /images/{name}")), f"{_CLI} cli/command/image/remove.go: runRemove"),
    CommandRow(("build",), (
        _PING,
        Call("POST /build", when="!buildkit", note="legacy builder: the build context is the request body; one container per RUN step"),
        Call("HEAD /_ping", when="buildkit", note="the CLI hands `docker build` to the docker-buildx plugin, a second process that pings again"),
        Call("POST /grpc", when="buildkit", note="BuildKit's control API (gRPC over h2c, hijacked): solve, status, workers — several connections"),
        Call("GET /version", when="buildkit"),
        Call("POST /session", when="buildkit", note="the build session (h2c, hijacked): the context files and registry auth flow through it"),
    ), f"{_CLI} cli/command/image/build.go: runBuild; cli-plugins (docker build → docker buildx build); docker/buildx driver/docker",
        ("engine and client dependent: BuildKit (through buildx) is the default since Docker 23; DOCKER_BUILDKIT=0 selects the legacy builder "
         "(explain it with `dockertap explain DOCKER_BUILDKIT=0 docker build .`)",
         "with BuildKit the calls run on concurrent connections, so their order varies; RUN steps are `runc run` exec'd by dockerd directly, "
         "bypassing containerd; Podman has no BuildKit (/grpc and /session are 404) and builds with buildah"),
        (), (("DOCKER_BUILDKIT=0", "!buildkit"),), ("buildkit",)),
    CommandRow(("compose", "up"), (
        _PING,
        Call("GET /images/{name}/json", note="each service's image, to decide whether to pull or build"),
        Call("GET /networks/{id}", note="the project network by name (404 the first time)"),
        Call("GET /networks", query="filters=name"),
        Call("POST /networks/create", note="only when the project network does not exist yet"),
        Call("GET /containers/json", query="all=1&filters=label com.docker.compose.project", note="what the project already runs"),
        Call("GET /version"),
        Call("POST /containers/create", query="name=PROJECT-SERVICE-1"),
        Call("GET /containers/{id}/json"),
        Call("POST /containers/{id}/attach", when="!detach", note="attached `up` follows each container's output"),
        Call("GET /containers/json", query="all=1&filters=label com.docker.compose.project"),
        Call("POST /containers/{id}/start"),
    ), "docker/compose v2 pkg/compose/up.go, create.go, convergence.go, start.go, attach.go (sequence traced with compose 2.40.3, `up -d`)",
        ("one service, first `up -d` of the project; more services, volumes, builds or pulls add their own calls, and an existing network skips the create",
         "each service container then follows the create → start path of docker run: only start reaches containerd and runc"),
        (("d", "detach"), ("detach", "detach"))),
)
# fmt: on


#: How a condition is spelled on the command line, for messages.
CONDITION_FLAGS = {
    "detach": "-d",
    "tty": "-t",
    "stdin": "-i",
    "attach": "-a/-i",
    "rm": "--rm",
    "buildkit": "BuildKit",
}


def condition_text(when: str) -> tuple[bool, str]:
    """(`True` when the call needs the flag, the flag as typed): `!detach` → (False, "-d")."""
    name = when.lstrip("!")
    return not when.startswith("!"), CONDITION_FLAGS.get(name, name)


#: The notes above in Japanese, keyed by the English text (tests check that every note has one).
NOTES_JA: dict[str, str] = {
    "API version negotiation, before the first real call": "API バージョンの取り決め。実際の呼び出しの前に送る",
    "answered from dockerd's memory: nothing below dockerd is asked": "dockerd のメモリから応答する。dockerd より下の層には何も問い合わせない",
    "the Server section is whatever answers the socket: dockerd, or Podman's compat API": "Server の欄に出るのはソケットで応答したもの: dockerd か、Podman の互換 API",
    "a 404 'No such image' makes the CLI pull (POST /images/create) and create again": "「No such image」の 404 が返ると、CLI は pull (POST /images/create) してから create し直す",
    "before start, so no output is lost": "出力を取りこぼさないよう、start より前に接続する",
    "opened before start even with -d (so an early exit is not missed)": "-d でも start より前に開く (すぐ終了しても見逃さないため)",
    "the CLI sends the terminal size once the container runs": "コンテナが動き出すと、CLI が端末の大きさを送る",
    "-d skips the attach: the CLI prints the id after start (the wait is still opened before start)": "-d では attach を省き、start の後に ID を表示する (wait は start の前に開く)",
    "--rm: dockerd removes the container itself (HostConfig.AutoRemove, wait condition=removed); docker CLI ≤ 20.10 talking to an API older than 1.30 watches GET /events instead of the wait, and below API 1.25 removes the container itself with DELETE /containers/{id} (cli/command/container/utils.go: legacyWaitExitOrRemoved, v20.10.24)": "--rm: コンテナの削除は dockerd 自身が行う (HostConfig.AutoRemove、wait の condition=removed)。docker CLI 20.10 以前は、API 1.30 未満の相手には wait の代わりに GET /events を見張り、API 1.25 未満では自分で DELETE /containers/{id} を送って削除した (cli/command/container/utils.go: legacyWaitExitOrRemoved, v20.10.24)",
    "Podman: the attach initialises the created container (conmon runs `runc create`), start only runs `runc start`": "Podman では attach が作成済みのコンテナを初期化し (conmon が `runc create` を実行)、start は `runc start` だけを実行する",
    "only start reaches containerd and runc on dockerd; create, attach and wait stay in dockerd": "dockerd で containerd と runc まで届くのは start だけ。create、attach、wait は dockerd の中で終わる",
    "with -a/-i": "-a か -i を付けたとき",
    "the CLI checks that the container exists before creating the exec": "exec を作る前に、CLI がコンテナの存在を確かめる",
    "hijacked stream unless -d": "-d でなければ接続をハイジャックしてストリームにする",
    "the terminal size of the exec'd process": "exec したプロセスの端末の大きさ",
    "the exit code": "終了コードを得る",
    "exec create only registers the exec in dockerd; exec start is what reaches containerd and runc (`runc exec`)": "exec create は dockerd に登録するだけ。containerd と runc (`runc exec`) まで届くのは exec start",
    "to learn whether the container has a TTY (no demultiplexing then)": "コンテナに TTY があるかを調べる (TTY なら多重化を解かない)",
    "dockerd runs `runc ps` for the PIDs, then the host's ps on them: host PIDs, not the container's": "dockerd は `runc ps` で PID を得て、その PID でホストの ps を実行する。表示されるのはコンテナ内ではなくホストの PID",
    "on a running container dockerd → containerd → shim → `runc update`: the new limits land in the cgroup files": "実行中のコンテナなら dockerd → containerd → shim → `runc update` と進み、新しい制限が cgroup のファイルに書かれる",
    "-f on a running container: dockerd kills it through containerd and runc first": "実行中のコンテナに -f を付けると、dockerd はまず containerd と runc を通して kill する",
    "the CLI tries object kinds in turn when --type is not given": "--type が無ければ、CLI はオブジェクトの種類を順に試す",
    "the registry client runs inside dockerd (or Podman's c/image), not in the CLI": "レジストリクライアントは CLI ではなく dockerd (Podman なら c/image) の中で動く",
    "with the containerd image store, dockerd writes content and snapshots through containerd": "containerd イメージストアでは、dockerd が containerd を通してコンテンツとスナップショットを書く",
    "legacy builder: the build context is the request body; one container per RUN step": "旧来のビルダ。ビルドコンテキストは要求のボディで、RUN ごとにコンテナを 1 つ動かす",
    "the CLI hands `docker build` to the docker-buildx plugin, a second process that pings again": "CLI は `docker build` を docker-buildx プラグイン (別のプロセス) に渡し、そのプロセスが改めて ping する",
    "BuildKit's control API (gRPC over h2c, hijacked): solve, status, workers — several connections": "BuildKit の制御 API (h2c 上の gRPC、ハイジャック): solve、status、workers。接続は複数",
    "the build session (h2c, hijacked): the context files and registry auth flow through it": "ビルドセッション (h2c、ハイジャック): コンテキストのファイルとレジストリの認証がここを通る",
    "engine and client dependent: BuildKit (through buildx) is the default since Docker 23; DOCKER_BUILDKIT=0 selects the legacy builder (explain it with `dockertap explain DOCKER_BUILDKIT=0 docker build .`)": "エンジンとクライアント次第: Docker 23 以降は (buildx 経由の) BuildKit が既定。DOCKER_BUILDKIT=0 で旧来のビルダになる (`dockertap explain DOCKER_BUILDKIT=0 docker build .` で確認できる)",
    "with BuildKit the calls run on concurrent connections, so their order varies; RUN steps are `runc run` exec'd by dockerd directly, bypassing containerd; Podman has no BuildKit (/grpc and /session are 404) and builds with buildah": "BuildKit では呼び出しが並行する接続で進むため、順序は一定しない。RUN は dockerd が直接 `runc run` を実行し、containerd を通らない。Podman には BuildKit が無く (/grpc と /session は 404)、buildah でビルドする",
    "each service's image, to decide whether to pull or build": "各サービスのイメージ。pull かビルドが要るかを判断する",
    "the project network by name (404 the first time)": "プロジェクトのネットワークを名前で調べる (初回は 404)",
    "only when the project network does not exist yet": "プロジェクトのネットワークがまだ無いときだけ",
    "what the project already runs": "プロジェクトで既に動いているもの",
    "attached `up` follows each container's output": "-d なしの `up` は各コンテナの出力を追う",
    "one service, first `up -d` of the project; more services, volumes, builds or pulls add their own calls, and an existing network skips the create": "サービス 1 つで、プロジェクト初回の `up -d` の場合。サービス、ボリューム、ビルド、pull が増えればそれぞれの呼び出しが加わり、ネットワークが既にあれば create は省かれる",
    "each service container then follows the create → start path of docker run: only start reaches containerd and runc": "各サービスのコンテナは docker run と同じ create → start の道をたどる。containerd と runc まで届くのは start だけ",
}


def note_in(lang: str, note: str) -> str:
    """A note of the table in `lang` (the English text when no translation exists)."""
    return NOTES_JA.get(note, note) if lang == "ja" else note


def known_commands() -> list[str]:
    return [" ".join(row.words) for row in COMMANDS]


#: compose's global options that take a value (`docker compose -p NAME up`).
_COMPOSE_VALUE_OPTIONS = frozenset(
    "-p --project-name -f --file --env-file --profile --project-directory --ansi --progress --parallel".split()
)


def _without_compose_options(words: list[str]) -> list[str]:
    """`compose -p teach up -d` → `compose up -d`: compose's global options sit between its words."""
    if words[:1] != ["compose"]:
        return words
    rest, i = words[1:], 0
    while i < len(rest) and rest[i].startswith("-"):
        i += 2 if rest[i] in _COMPOSE_VALUE_OPTIONS else 1
    return ["compose", *rest[i:]]


def find_command(argv: Sequence[str]) -> tuple[CommandRow, list[str]] | None:
    """The row for `argv` (without the leading `docker`), and the arguments after the command words.

    `docker container run` and `docker run` are the same command.
    """
    words = list(argv)
    if words[:1] in (["container"], ["image"], ["system"]) and len(words) > 1:
        words = words[1:]
    words = _without_compose_options(words)
    for row in sorted(COMMANDS, key=lambda r: -len(r.words)):
        if tuple(words[: len(row.words)]) == row.words:
            return row, words[len(row.words) :]
    return None


#: Short options of docker commands that take no value (all others, like -e, -p, -v, -w, -u, -m, take one).
_BOOLEAN_SHORT = frozenset("dtiPqaf")
_BOOLEAN_LONG = frozenset(
    "rm init privileged read-only detach tty interactive all force quiet no-trunc oom-kill-disable help "
    "sig-proxy disable-content-trust no-healthcheck latest size".split()
)


def active_conditions(row: CommandRow, args: Sequence[str], env: Sequence[str] = ()) -> set[str]:
    """The row's default conditions, switched by `NAME=value` words typed before `docker`, plus flags."""
    on = set(row.defaults)
    for assignment, condition in row.env:
        if assignment in env:
            on.discard(condition.lstrip("!")) if condition.startswith("!") else on.add(condition)
    return on | active_flags(row, args)


def active_flags(row: CommandRow, args: Sequence[str]) -> set[str]:
    """The conditions the given flags switch on (`-dit` → detach, stdin, tty), up to the first operand.

    Options that take a value (`--name tc`, `-e A=1`) skip their value, so the image is the first operand;
    what follows it belongs to the container's command and is never read as a docker flag.
    """
    names = dict(row.flags)
    on: set[str] = set()
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0]
            if name in names:
                on.add(names[name])
            elif "=" not in arg and name not in _BOOLEAN_LONG:
                i += 1  # a long option with its value in the next word
        else:
            letters = arg[1:]
            on.update(names[letter] for letter in letters if letter in names)
            if len(letters) == 1 and letters not in _BOOLEAN_SHORT:
                i += 1
        i += 1
    return on


def call_target(call: Call, row: CommandRow, args: Sequence[str]) -> str:
    """The call's path with the query its flags add (`…/attach?stdin=1` with -i), for the layer model."""
    on = active_flags(row, args)
    query = "&".join(q for condition, q in call.flag_query if condition in on)
    path = call.route.split(" ", 1)[1]
    return f"{path}?{query}" if query else path


def call_sequence(row: CommandRow, args: Sequence[str], env: Sequence[str] = ()) -> list[Call]:
    """The calls this invocation makes, in order: those whose flag or environment condition holds."""
    on = active_conditions(row, args, env)

    def holds(when: str | None) -> bool:
        if when is None:
            return True
        return when[1:] not in on if when.startswith("!") else when in on

    return [call for call in row.calls if holds(call.when)]
