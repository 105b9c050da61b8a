# ruff: noqa: E501  (the lessons' bilingual texts keep one sentence per line)
"""Re-create the bundled teaching recordings from REAL engines (run as root from the repository).

    .venv/bin/python recordings/bundled/make_recordings.py [NAME ...]

Starts each engine the chosen lessons need (`tests/engines.py`: dockerd 28.5, dockerd 28.5 with the
containerd image store, Podman 5.8 — one at a time, each in its own namespaces), records each lesson's
commands through `dockertap run --record --observe` exactly as a user would, with the testing root's docker
CLI 28.5, and writes `recordings/bundled/<name>.jsonl`. A command may reach the tap through a docker context
while DOCKER_HOST points elsewhere (`Step.context`), or run without dockertap in a fresh mount namespace
when the point is that the CLI reaches no server (`Step.direct`: "Cannot connect to the Docker daemon…").

Each file's header gains what the replay tests and `dockertap recordings` need: a `title` (what it
teaches), the `engine` it was recorded on, the lesson's `summary` (en, ja) and, where something could not be
recorded here, its `explanation` from sources; the docker `commands`, and their `live` stdout, stderr and
exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

import engine_roots  # noqa: E402
import engines  # noqa: E402

#: Bodies and hijacked streams are cut at this many bytes, to keep every file well under 200 KB.
CAPTURE_BYTES = 8192
MAX_FILE_BYTES = 200_000
IMAGE = engines.BUSYBOX_TAG
#: The exec observer needs a moment after `dockertap run` starts; without it the first runtime execs of a
#: short command are missed (and shown as "missing"). `exec` keeps the docker CLI as the recorded client.
#: A lesson about contexts creates its context on the tap's socket, then points DOCKER_HOST elsewhere.
WARM_UP_SCRIPT = """sleep 1
if [ -n "$LESSON_CONTEXT" ]; then docker context create "$LESSON_CONTEXT" --docker "host=$DOCKER_HOST" >/dev/null 2>&1; fi
if [ -n "$LESSON_DOCKER_HOST" ]; then export DOCKER_HOST="$LESSON_DOCKER_HOST"; fi
unset LESSON_CONTEXT LESSON_DOCKER_HOST
exec "$@"
"""
DOCKERFILE = f"FROM {IMAGE}\nRUN echo built by the legacy builder > /built.txt\nCMD cat /built.txt\n"


@dataclass
class Step:
    """One recorded docker command (one `dockertap run`, or run directly when it cannot reach any server)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    #: The CLI reaches the tap through this docker context (created in a private DOCKER_CONFIG), while
    #: DOCKER_HOST may point elsewhere: shows the CLI's precedence.
    context: str | None = None
    #: Run without dockertap, in a fresh mount namespace, by this `sh -c` script (argv follows as "$@"):
    #: for what the CLI prints when it never reaches a server. `$LESSON_SOCKET` is an engine's socket.
    direct: str | None = None
    #: What this command shows, when its command line alone does not say it (en, ja).
    note: dict[str, str] = field(default_factory=dict)
    #: Why `replay --serve` cannot play this command back to the CLI (None: it can, byte for byte).
    not_servable: str | None = None


@dataclass
class Scenario:
    name: str
    engine: str  # an engines.ENGINE_SPECS id
    title: str
    steps: list[Step]
    summary: dict[str, list[str]]
    #: What cannot be recorded here (Docker Desktop, Rancher Desktop, Colima), explained from sourced facts.
    explanation: dict[str, list[str]] = field(default_factory=dict)
    #: Commands run against the engine before recording (not recorded): `docker …` or `podman …`.
    setup: list[list[str]] = field(default_factory=list)
    #: The CLI gets buildx and compose v2 (so `docker build` is BuildKit's).
    plugins: bool = False
    backend: Callable[[engines.Engine], str] = lambda engine: engine.url
    #: `/info` is ~9 KB: the lessons that serve it back to the CLI keep whole bodies.
    capture_bytes: int = CAPTURE_BYTES


def _run(*argv: str) -> list[str]:
    return ["docker", "run", "--rm", IMAGE, *argv]


NOWHERE = "unix:///run/nothing-listens-here.sock"
#: The three ways the CLI ends with "Cannot connect…"/"permission denied": each in a fresh mount namespace
#: whose /run is empty, so the host's own sockets can never answer.
NOT_RUNNING = 'mount -t tmpfs tmpfs /run && unset DOCKER_HOST && exec "$@"'
WRONG_HOST = 'mount -t tmpfs tmpfs /run && exec "$@"'
NO_PERMISSION = (
    "mount -t tmpfs tmpfs /run && touch /run/docker.sock && mount --bind \"$LESSON_SOCKET\" /run/docker.sock"
    " && unset DOCKER_HOST && mkdir /run/cfg && echo '{}' > /run/cfg/config.json && chmod -R a+rX /run/cfg"
    ' && DOCKER_CONFIG=/run/cfg exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"'
)
V1_MEMORY = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
V1_CPU = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
#: `docker ps` with the columns the server decides: the default CREATED column is computed by the CLI from
#: the time now, so a served replay would print "3 weeks ago" instead of what was recorded.
PS = ["docker", "ps", "--format", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Names}}"]
BUILD_DOCKERFILE = f'FROM {IMAGE}\nRUN echo built by BuildKit > /built.txt\nCMD ["cat", "/built.txt"]\n'

PLATFORMS = {
    "en": [
        "Docker Desktop runs a real dockerd inside a Linux VM and forwards that dockerd's socket to your machine"
        " (~/.docker/run/docker.sock on macOS, ~/.docker/desktop/docker.sock on Linux), with the docker"
        " context desktop-linux; /var/run/docker.sock is only a link to it if you allow that.",
        "Rancher Desktop in moby mode: a dockerd inside its Lima VM, socket ~/.rd/docker.sock, context"
        " rancher-desktop. In containerd mode there is NO Docker API socket: nerdctl talks to the VM's"
        " containerd (/run/k3s/containerd/containerd.sock) directly, so the docker CLI has nothing to talk to.",
        "Colima with the docker runtime: an upstream dockerd in a Lima VM, socket"
        " ~/.colima/<profile>/docker.sock, context colima; its containerd runtime has no Docker API either.",
        "So the docker CLI on your machine does exactly what you saw here: HTTP to one socket. The containers"
        " live where the daemon behind that socket lives — inside the VM, with its containerd and runc.",
    ],
    "ja": [
        "Docker Desktop は Linux VM の中で本物の dockerd を動かし、その dockerd のソケットを手元のマシンに転送する (macOS は ~/.docker/run/docker.sock、"
        "Linux は ~/.docker/desktop/docker.sock)。docker コンテキストは desktop-linux。/var/run/docker.sock は、"
        "許可した場合だけそこへのリンクになる。",
        "Rancher Desktop の moby モード: Lima VM の中の dockerd。ソケットは ~/.rd/docker.sock、コンテキストは "
        "rancher-desktop。containerd モードには Docker API のソケットが無い。nerdctl が VM 内の containerd "
        "(/run/k3s/containerd/containerd.sock) と直接話すので、docker CLI には話し相手がいない。",
        "Colima の docker ランタイム: Lima VM の中のアップストリームの dockerd。ソケットは "
        "~/.colima/<profile>/docker.sock、コンテキストは colima。containerd ランタイムには、やはり Docker API が無い。",
        "つまり手元の docker CLI がしているのは、ここで見たことと同じ: 1 つのソケットへの HTTP だけ。コンテナは、"
        "そのソケットの向こうのデーモンがいる場所 (VM の中) に、その containerd と runc と一緒に存在する。",
    ],
}

SCENARIOS = [
    Scenario(
        "docker-ps",
        "dockerd-28.5",
        "docker ps: how the CLI picks its socket (--context beats DOCKER_HOST), and dockerd answers alone",
        [
            Step(["docker", "--context", "lesson", *PS[1:]], env={"DOCKER_HOST": NOWHERE}, context="lesson"),
            Step(PS),
        ],
        {
            "en": [
                "The docker CLI only speaks HTTP to one socket, chosen in this order (docker/cli"
                " resolveContextName): --context, -H/--host, DOCKER_HOST, DOCKER_CONTEXT, the current context"
                " in ~/.docker/config.json, else unix:///var/run/docker.sock. The first command had"
                f" DOCKER_HOST={NOWHERE} and still reached the engine: --context won.",
                "docker ps is one GET /containers/json, answered by dockerd from its own memory: no"
                " containerd call, no shim, no runc. The common drawing \"docker ps → containerd → runc\" is"
                " wrong — docker ps stops at dockerd.",
                "The container it lists was started earlier by another docker command, outside this recording:"
                " containers belong to the daemon behind the socket, not to the CLI that started them.",
                "Lines like `runc --version` / `docker-init --version` with no API call behind them are not"
                " docker ps: they are dockerd answering dockertap's own /version and /info (asked once when"
                " dockertap starts, to find containerd). They start no container.",
            ],
            "ja": [
                "docker CLI は 1 つのソケットに HTTP で話すだけ。どのソケットかは次の順で決まる (docker/cli の "
                "resolveContextName): --context、-H/--host、DOCKER_HOST、DOCKER_CONTEXT、~/.docker/config.json の"
                f"現在のコンテキスト、最後に unix:///var/run/docker.sock。最初のコマンドは DOCKER_HOST={NOWHERE} "
                "のままエンジンに届いた。--context が勝ったからだ。",
                "docker ps は GET /containers/json が 1 回だけで、dockerd が自分のメモリから答える。containerd も"
                " shim も runc も呼ばれない。よく見る「docker ps → containerd → runc」という図は誤りで、docker ps は"
                " dockerd で止まる。",
                "一覧に出たコンテナは、この記録の外で別の docker コマンドが起動したもの。コンテナを持っているのは"
                "ソケットの向こうのデーモンで、それを起動した CLI ではない。",
                "API 呼び出しの無い `runc --version` や `docker-init --version` の行は docker ps ではない。dockertap が"
                "起動時に一度だけ (containerd を見つけるために) 尋ねる /version と /info に dockerd が答えたもの。"
                "コンテナは何も起動していない。",
            ],
        },
        explanation=PLATFORMS,
        setup=[["docker", "run", "-d", "--name", "started-earlier", IMAGE, "sleep", "600"]],
    ),
    Scenario(
        "docker-ps-podman",
        "podman-5.8",
        "the same docker ps against Podman: it lists a container the podman CLI started",
        [Step(PS)],
        {
            "en": [
                "The same docker CLI, pointed (DOCKER_HOST) at Podman's service socket, sends the same"
                " GET /containers/json. Podman's Docker-compatible API answers it from its own database.",
                "The container listed was started by the podman CLI, not by docker: both are just clients of"
                " the same store. There is no dockerd and no containerd anywhere on this path.",
                "Rootful Podman's socket is /run/podman/podman.sock; the podman-docker package links"
                " /run/docker.sock to it, which is why an unchanged docker CLI can work with Podman.",
            ],
            "ja": [
                "同じ docker CLI を DOCKER_HOST で Podman のサービスのソケットに向けると、同じ GET /containers/json を"
                "送る。Podman の Docker 互換 API が自分のデータベースから答える。",
                "一覧のコンテナは docker ではなく podman CLI が起動したもの。どちらも同じストアのクライアントに"
                "すぎない。この経路には dockerd も containerd も一切無い。",
                "rootful の Podman のソケットは /run/podman/podman.sock。podman-docker パッケージが /run/docker.sock を"
                "そこへリンクするので、手を加えていない docker CLI がそのまま Podman で動く。",
            ],
        },
        setup=[["podman", "run", "-d", "--name", "started-by-podman", IMAGE, "sleep", "600"]],
    ),
    Scenario(
        "docker-version",
        "dockerd-28.5",
        "docker version / docker info on dockerd: the client and the server are separate programs",
        [Step(["docker", "version"]), Step(["docker", "info"])],
        {
            "en": [
                "docker version prints two halves: Client (the CLI binary itself, no request needed) and Server"
                " (GET /version: whatever answers the socket). Here the server is Docker Engine with its"
                " containerd, runc and docker-init components.",
                "docker info is GET /info: dockerd's view — storage driver, cgroup driver, the containerd it"
                " uses, runtimes. To fill in the versions, dockerd asks containerd and runs `runc --version`"
                " and `docker-init --version` (the evidence lines): programs run, but no container is started.",
                "Compare with docker-version-podman: the same CLI, another server.",
            ],
            "ja": [
                "docker version は 2 つに分かれる。Client は CLI のバイナリ自身 (リクエスト不要)、Server は GET /version で、"
                "ソケットの向こうで答えたもの。ここではサーバーは Docker Engine で、containerd、runc、docker-init を"
                "コンポーネントとして持つ。",
                "docker info は GET /info で、dockerd から見た情報 (ストレージドライバー、cgroup ドライバー、使っている"
                " containerd、ランタイム)。バージョンを埋めるために dockerd は containerd に尋ね、`runc --version` と"
                " `docker-init --version` を実行する (証拠の行)。プログラムは動くが、コンテナは起動しない。",
                "docker-version-podman と比べてほしい: 同じ CLI で、サーバーが違う。",
            ],
        },
        capture_bytes=65536,
    ),
    Scenario(
        "docker-version-podman",
        "podman-5.8",
        "docker version / docker info on Podman: the same CLI, and the server is \"Podman Engine\"",
        [Step(["docker", "version"]), Step(["docker", "info"])],
        {
            "en": [
                "The same docker CLI binary as in docker-version; only the socket differs. GET /version is"
                " answered by Podman: under \"Server:\" the CLI prints \"Podman Engine\", with Conmon and the OCI runtime as"
                " components — no containerd.",
                "docker info shows Podman's storage (Driver: overlay, not overlay2) and runtime. The CLI"
                " cannot tell the difference until it reads these answers: it is just HTTP on a socket.",
                "To answer, Podman runs `conmon --version`, `runc --version` and `netavark --version` (the"
                " evidence lines): programs, but no container.",
            ],
            "ja": [
                "docker-version と同じ docker CLI のバイナリで、違うのはソケットだけ。GET /version には Podman が"
                "答え、CLI は「Server:」の下に「Podman Engine」と表示する。コンポーネントは Conmon と OCI ランタイムで、containerd は無い。",
                "docker info には Podman のストレージ (Driver: overlay。overlay2 ではない) とランタイムが出る。"
                "CLI はこの答えを読むまで違いが分からない。ソケット越しの HTTP にすぎないからだ。",
                "答えるために Podman は `conmon --version`、`runc --version`、`netavark --version` を実行する (証拠の行)。"
                "プログラムは動くが、コンテナは起動しない。",
            ],
        },
        capture_bytes=65536,
    ),
    Scenario(
        "docker-run",
        "dockerd-28.5",
        "docker run on dockerd: create, attach (hijack), wait, start, exit — containerd and runc below",
        [Step(_run("echo", "hello from a container"))],
        {
            "en": [
                "docker run is four API calls: create, attach, wait, then start. The CLI attaches and waits"
                " BEFORE start so it cannot miss the first output or the exit.",
                "create only writes dockerd's state and the container's writable layer; attach and wait stay"
                " in dockerd. Only start reaches containerd (Containers.Create, Tasks.Create, Tasks.Start),"
                " the shim, and runc (create, init, start).",
                "The output came back over the hijacked attach connection, framed by Docker's 8-byte headers.",
            ],
            "ja": [
                "docker run は API 呼び出し 4 回: create、attach、wait、最後に start。最初の出力や終了を取りこぼさない"
                "ように、CLI は start の前に attach と wait をしておく。",
                "create は dockerd の状態とコンテナの書き込み可能レイヤーを作るだけ。attach と wait も dockerd の中で"
                "終わる。containerd (Containers.Create、Tasks.Create、Tasks.Start)、shim、runc (create、init、start) に"
                "届くのは start だけ。",
                "出力は、ハイジャックされた attach の接続を通って、Docker の 8 バイトのヘッダーで区切られて返ってきた。",
            ],
        },
    ),
    Scenario(
        "docker-exec",
        "dockerd-28.5",
        "docker exec: inspect, exec create, exec start (hijack), exec inspect — runc exec in a container",
        [Step(["docker", "exec", "web", "echo", "hello from exec"])],
        {
            "en": [
                "exec create only records the command in dockerd's memory; exec start asks containerd for a"
                " new process in the running task (Tasks.Exec, Tasks.Start), and the shim runs `runc exec`"
                " into the container's namespaces.",
                "The output streams back over the hijacked exec start connection; exec inspect then reads the"
                " exit code from dockerd.",
            ],
            "ja": [
                "exec create は dockerd のメモリにコマンドを記録するだけ。exec start で containerd に、動いているタスクの"
                "中の新しいプロセスを頼み (Tasks.Exec、Tasks.Start)、shim が `runc exec` でコンテナの名前空間に入る。",
                "出力はハイジャックされた exec start の接続で返り、最後の exec inspect が dockerd から終了コードを読む。",
            ],
        },
        setup=[["docker", "run", "-d", "--name", "web", IMAGE, "sleep", "600"]],
    ),
    Scenario(
        "exit-cleanup",
        "dockerd-28.5",
        "the exit clean-up nobody asked for: a container exits during docker wait, and dockerd tidies up",
        [Step(["docker", "wait", "short-lived"]), Step(["docker", "rm", "short-lived"])],
        {
            "en": [
                "The only request was docker wait, which just blocks in dockerd. When the process exited,"
                " containerd published /tasks/exit, and dockerd — on its own, because of that event — deleted"
                " the task (runc delete through the shim) and the containerd container, and released the"
                " network and the rootfs mount.",
                "That clean-up is not the answer to any API call: it is shown as background evidence."
                " docker rm afterwards only removes dockerd's state and the writable layer.",
            ],
            "ja": [
                "リクエストは docker wait だけで、これは dockerd の中で待つだけ。プロセスが終了すると containerd が"
                " /tasks/exit を発行し、dockerd はそのイベントを受けて自分から、タスク (shim 経由の runc delete) と"
                " containerd のコンテナを削除し、ネットワークとルートファイルシステムのマウントを解放した。",
                "この後始末はどの API 呼び出しへの応答でもないので、バックグラウンドの証拠として表示される。後の"
                " docker rm が消すのは dockerd の状態と書き込み可能レイヤーだけ。",
            ],
        },
        setup=[["docker", "run", "-d", "--name", "short-lived", IMAGE, "sleep", "6"]],
    ),
    Scenario(
        "cgroup-limits",
        "dockerd-28.5",
        "namespaces and cgroups: --memory/--cpus in the request body become cgroup files; update; top",
        [
            Step(["docker", "run", "--rm", "--memory", "512m", "--cpus", "2", IMAGE, "cat", V1_MEMORY, *V1_CPU]),
            Step(["docker", "update", "--memory", "256m", "--memory-swap", "256m", "limited"]),
            Step(["docker", "exec", "limited", "cat", V1_MEMORY]),
            Step(["docker", "top", "limited"]),
        ],
        {
            "en": [
                "--memory 512m --cpus 2 travel in the create body as HostConfig.Memory=536870912 and"
                " HostConfig.NanoCpus=2000000000. dockerd writes them into the OCI spec (linux.resources:"
                " memory.limit, cpu.quota/period), containerd hands the spec to the shim, and runc writes the"
                " cgroup files before the process starts.",
                "The container read them back: memory.limit_in_bytes 536870912, cpu.cfs_quota_us 200000 per"
                " cfs_period_us 100000 (two CPUs). This host uses cgroup v1; on cgroup v2 the same limits are"
                " /sys/fs/cgroup/memory.max and cpu.max (\"200000 100000\").",
                "docker update goes dockerd → containerd Tasks.Update → the shim runs `runc update`: the running"
                " container's cgroup now says 268435456. docker top asks the shim for the PIDs (`runc ps`) and"
                " shows them as HOST PIDs: the container's PID 1 is an ordinary process of this machine, in its"
                " own namespaces.",
            ],
            "ja": [
                "--memory 512m --cpus 2 は create のボディの HostConfig.Memory=536870912 と HostConfig.NanoCpus=2000000000"
                " として運ばれる。dockerd がそれを OCI spec (linux.resources の memory.limit と cpu.quota/period) に書き、"
                "containerd が spec を shim に渡し、runc がプロセスの開始前に cgroup のファイルへ書き込む。",
                "コンテナ自身が読み返した値: memory.limit_in_bytes は 536870912、cpu.cfs_quota_us は cfs_period_us 100000"
                " あたり 200000 (CPU 2 個分)。このホストは cgroup v1。cgroup v2 なら同じ制限は /sys/fs/cgroup/memory.max と"
                " cpu.max (「200000 100000」) になる。",
                "docker update は dockerd → containerd の Tasks.Update → shim の `runc update` と進み、動いているコンテナの"
                " cgroup が 268435456 になった。docker top は shim に PID を尋ね (`runc ps`)、ホストの PID として表示する。"
                "コンテナの PID 1 は、自分の名前空間の中にいるだけの、このマシンの普通のプロセスだ。",
            ],
        },
        setup=[["docker", "run", "-d", "--name", "limited", "--memory", "512m", "--cpus", "2", IMAGE, "sleep", "600"]],
    ),
    Scenario(
        "backend-down",
        "dockerd-28.5",
        "\"Cannot connect to the Docker daemon\": what the real CLI prints, and its three causes",
        [
            Step(
                ["docker", "ps"],
                direct=NOT_RUNNING,
                note={"en": "cause 1: no engine is running (nothing listens on the default socket)", "ja": "原因 1: エンジンが動いていない (既定のソケットで誰も待ち受けていない)"},
            ),
            Step(
                ["docker", "ps"],
                env={"DOCKER_HOST": "unix:///run/user/1000/docker.sock"},
                direct=WRONG_HOST,
                note={"en": "cause 2: DOCKER_HOST names a socket where no engine is", "ja": "原因 2: DOCKER_HOST がエンジンのいないソケットを指している"},
            ),
            Step(
                ["docker", "ps"],
                direct=NO_PERMISSION,
                note={"en": "cause 3: a running dockerd's socket, but the CLI runs as an ordinary user (uid 65534)", "ja": "原因 3: dockerd は動いているが、CLI が一般ユーザー (uid 65534) として動いている"},
            ),
            Step(
                ["docker", "ps"],
                note={"en": "through dockertap, whose backend is gone", "ja": "dockertap 経由。その先のバックエンドが無い"},
            ),
        ],
        {
            "en": [
                "The first three commands never reached any server, so there is nothing to trace: the CLI"
                " printed its own error. Engine not running: nothing listens on unix:///var/run/docker.sock"
                " (the default when neither --context, DOCKER_HOST nor a current context says otherwise).",
                "Wrong DOCKER_HOST: the CLI tried exactly the socket it was told (here rootless Docker's"
                " /run/user/1000/docker.sock) and names it in the message — check `echo $DOCKER_HOST` and"
                " `docker context ls`.",
                "Permission: the socket exists but belongs to root (mode 0660, group docker); an ordinary user"
                " gets \"permission denied while trying to connect\". Join the docker group (which is root-"
                "equivalent) or use rootless Docker or Podman.",
                "Last, through dockertap to a backend that is gone: the CLI reached dockertap, which answered"
                " 502 itself with the reason, and the CLI printed it as \"Error response from daemon\".",
            ],
            "ja": [
                "最初の 3 つのコマンドはどのサーバーにも届いていないので、トレースするものが無い。CLI が自分のエラーを"
                "出しただけだ。エンジンが動いていない場合: unix:///var/run/docker.sock で誰も待ち受けていない (--context"
                " も DOCKER_HOST も現在のコンテキストも指定が無いときの既定値)。",
                "DOCKER_HOST の誤り: CLI は指定されたソケット (ここでは rootless Docker の /run/user/1000/docker.sock) を"
                "そのまま試し、メッセージにその名前を出す。`echo $DOCKER_HOST` と `docker context ls` を確かめる。",
                "権限: ソケットはあるが root のもの (モード 0660、グループ docker) なので、一般ユーザーには「permission"
                " denied while trying to connect」が出る。docker グループに入る (root と同等の権限になる) か、rootless の"
                " Docker や Podman を使う。",
                "最後は dockertap 経由で、もう無いバックエンドへ: CLI は dockertap に届き、dockertap が理由付きの 502 を"
                "自分で返し、CLI はそれを「Error response from daemon」として表示した。",
            ],
        },
        backend=lambda engine: "unix:///nonexistent-engine.sock",
    ),
    Scenario(
        "docker-pull-no-registry",
        "dockerd-28.5",
        "a failing docker pull: dockerd itself dials the registry, and its error comes back as JSON",
        [Step(["docker", "pull", "busybox:latest"])],
        {
            "en": [
                "docker pull is one POST /images/create; the CLI never talks to the registry. The registry"
                " client runs inside dockerd (its distribution code, with the overlay2 image store), so the DNS"
                " failure is dockerd's and comes back in the progress stream as JSON.",
                "With the containerd image store (docker-pull-no-registry-c8d) dockerd uses containerd's"
                " resolver and content store instead: the same request, the same kind of error, another"
                " registry client.",
                "No registry is reachable on this machine; a real pull would stream layer downloads the same way.",
            ],
            "ja": [
                "docker pull は POST /images/create が 1 回だけで、CLI はレジストリと話さない。レジストリのクライアントは"
                " dockerd の中で動く (overlay2 のイメージストアでは dockerd の distribution のコード)。だから DNS の失敗は"
                " dockerd のもので、進捗のストリームの中に JSON で返ってくる。",
                "containerd のイメージストアでは (docker-pull-no-registry-c8d)、dockerd は代わりに containerd のリゾルバーと"
                "コンテントストアを使う。リクエストは同じ、エラーの種類も同じで、レジストリのクライアントが違う。",
                "このマシンからはレジストリに届かない。本当の pull なら、同じ形でレイヤーのダウンロードが流れてくる。",
            ],
        },
    ),
    Scenario(
        "docker-pull-no-registry-c8d",
        "dockerd-28.5-c8d",
        "the same failing docker pull with the containerd image store: containerd's resolver dials the registry",
        [Step(["docker", "pull", "busybox:latest"])],
        {
            "en": [
                "Same CLI, same POST /images/create, but this dockerd keeps images in containerd"
                " (features.containerd-snapshotter): the pull is containerd's image resolver and content store,"
                " driven from dockerd's process. Compare the error text with docker-pull-no-registry.",
                "The error is containerd's resolver (\"failed to resolve reference … Head …/manifests/latest\");"
                " with the overlay2 store it is dockerd's distribution client (\"Get https://registry-1.docker.io/v2/\").",
                "containerd✗: the model expects a pull to write into containerd (leases, content, images); this one"
                " failed at the resolver, before anything was written, so nothing was there to see.",
            ],
            "ja": [
                "同じ CLI、同じ POST /images/create。ただしこの dockerd はイメージを containerd に置く"
                " (features.containerd-snapshotter)。pull は、dockerd のプロセスから動かす containerd のイメージリゾルバーと"
                "コンテントストアになる。docker-pull-no-registry とエラーの文面を比べてほしい。",
                "エラーは containerd のリゾルバーのもの (「failed to resolve reference … Head …/manifests/latest」)。"
                "overlay2 のストアでは dockerd の distribution のクライアントのもの (「Get https://registry-1.docker.io/v2/」) だった。",
                "containerd✗: モデルは pull が containerd に書き込む (リース、コンテント、イメージ) と予想する。この pull は"
                "リゾルバーで失敗し、何も書き込む前に終わったので、見えるものが無かった。",
            ],
        },
    ),
    Scenario(
        "docker-build",
        "dockerd-28.5",
        "docker build with buildx: BuildKit lives inside dockerd, reached over /session and /grpc",
        [
            Step(
                ["docker", "build", "-t", "dt-built", "-"],
                stdin=BUILD_DOCKERFILE.encode(),
                not_servable="BuildKit's /grpc and /session are live HTTP/2 conversations (gRPC over a hijacked"
                " connection, with ids the client picks): replaying recorded frames cannot answer a new client",
            )
        ],
        {
            "en": [
                "With buildx, docker build is BuildKit. BuildKit is not a separate daemon here: it runs inside"
                " dockerd. The CLI opens POST /session (an HTTP/2 connection for files and secrets the build"
                " asks for) and POST /grpc (BuildKit's control API: ListWorkers, Solve, Status…).",
                "The RUN step ran as `runc run`, started by the BuildKit inside dockerd itself — no containerd"
                " task, no shim (recorded here with the overlay2 image store) — in a container no docker ps"
                " ever lists. Its runtime execs are attributed to the Solve that caused them.",
                "Compare with docker-build-legacy: the classic builder makes one full container per RUN step"
                " through ordinary container calls.",
            ],
            "ja": [
                "buildx があると docker build は BuildKit になる。ここの BuildKit は別のデーモンではなく dockerd の中で"
                "動く。CLI は POST /session (ビルドが求めるファイルやシークレットのための HTTP/2 接続) と POST /grpc"
                " (BuildKit の制御 API: ListWorkers、Solve、Status…) を開く。",
                "RUN ステップは `runc run` として動いた。起動したのは dockerd の中の BuildKit 自身で、containerd のタスクも"
                " shim も使わない (ここでは overlay2 のイメージストアで記録)。docker ps には決して出ないコンテナだ。"
                "そのランタイムの実行は、原因となった Solve に結び付けて表示される。",
                "docker-build-legacy と比べてほしい: 従来のビルダーは RUN ステップごとに、普通のコンテナ用の呼び出しで"
                "コンテナを丸ごと 1 つ作る。",
            ],
        },
        plugins=True,
    ),
    Scenario(
        "docker-build-legacy",
        "dockerd-28.5",
        "legacy docker build (DOCKER_BUILDKIT=0): the context tar goes up; each RUN is a container life",
        [Step(["docker", "build", "-t", "dt-built", "-"], env={"DOCKER_BUILDKIT": "0"}, stdin=DOCKERFILE.encode())],
        {
            "en": [
                "DOCKER_BUILDKIT=0 (and no buildx) selects the classic builder: one POST /build carries the"
                " context as a tar, and the build log streams back as JSON messages.",
                "Each RUN step is a whole container life inside dockerd — create, start, wait, commit, remove —"
                " so containerd and runc appear under the single /build request.",
            ],
            "ja": [
                "DOCKER_BUILDKIT=0 (かつ buildx 無し) で従来のビルダーになる。1 回の POST /build がコンテキストを tar で"
                "運び、ビルドのログが JSON のメッセージとして流れてくる。",
                "RUN ステップごとに dockerd の中でコンテナの一生 (create、start、wait、commit、削除) があり、1 回の"
                " /build の下に containerd と runc が現れる。",
            ],
        },
    ),
    Scenario(
        "podman-run",
        "podman-5.8",
        "the same docker run through Podman's Docker-compatible API: conmon and runc, no containerd",
        [Step(_run("echo", "hello from a container"))],
        {
            "en": [
                "The same four calls as on dockerd (create, attach, wait, start), answered by Podman's"
                " Docker-compatible API. Below it there is no containerd and no shim: Podman spawns conmon,"
                " which runs the OCI runtime (runc here) and holds the container's stdio.",
                "On Podman the attach already initialises the container (conmon + `runc create`), so start"
                " only runs `runc start`: the same API calls reach different layers than on dockerd.",
                "At the exit nobody asked for anything, yet conmon ran `podman container cleanup` (network"
                " teardown by netavark, `runc delete`): Podman's counterpart of dockerd's exit clean-up.",
            ],
            "ja": [
                "dockerd と同じ 4 回の呼び出し (create、attach、wait、start) に、Podman の Docker 互換 API が答える。"
                "その下には containerd も shim も無い。Podman は conmon を起動し、conmon が OCI ランタイム (ここでは"
                " runc) を実行してコンテナの標準入出力を持つ。",
                "Podman では attach の時点でコンテナが初期化される (conmon と `runc create`) ので、start は `runc start`"
                " だけになる。同じ API 呼び出しでも、届く層が dockerd とは違う。",
                "終了時には誰も何も頼んでいないのに、conmon が `podman container cleanup` を実行した (netavark による"
                "ネットワークの片付け、`runc delete`)。dockerd の終了時の後始末に当たるものだ。",
            ],
        },
    ),
]


def _run_supports(option: str) -> bool:
    help_text = subprocess.run(
        [*engines.dockertap_command(), "run", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return option in help_text


def _setup(engine: engines.Engine, argv: list[str]) -> None:
    if argv[0] == "podman":
        result = engine.podman_cli(*argv[1:])
        if result.returncode != 0:
            raise SystemExit(f"setup {argv} failed: {result.stderr}")
    else:
        engines.docker(engine.url, *argv[1:], check=True)


def _config_dir(work: Path, i: int, plugins: bool) -> Path:
    """A private, writable DOCKER_CONFIG per command (a context created in one never leaks to the next)."""
    config = work / f"config{i}"
    shutil.copytree(engines.plugin_config_dir() if plugins else engines.docker_config_dir(), config, symlinks=True)
    return config


def _live(step: Step, result: subprocess.CompletedProcess[bytes], plugins: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "command": step.argv,
        "env": step.env,
        "stdin": step.stdin.decode() if step.stdin else None,
        "stdout": result.stdout.decode(errors="replace"),
        "stderr": result.stderr.decode(errors="replace"),
        "exit_code": result.returncode,
    }
    if step.context:
        entry["context"] = step.context
    if step.direct:
        entry["direct"] = step.direct
    if step.note:
        entry["note"] = step.note
    if step.not_servable:
        entry["not_servable"] = step.not_servable
    if plugins:  # the CLI had buildx (and compose v2): `docker build` was BuildKit's
        entry["plugins"] = True
    return entry


def record(scenario: Scenario, engine: engines.Engine, out: Path) -> None:
    """Record the scenario's commands into `out`, then add the header facts the replay tests need."""
    backend = scenario.backend(engine)
    for argv in scenario.setup:
        _setup(engine, argv)
    work = Path(tempfile.mkdtemp(prefix="dtmk", dir="/tmp"))
    observe = _run_supports("--observe")
    warm_up = work / "warm-up.sh"
    warm_up.write_text(WARM_UP_SCRIPT)
    evidence = ["--observe"] if observe else []
    live, parts = [], []
    try:
        for i, step in enumerate(scenario.steps):
            env = engines.docker_env("unix:///nonexistent-dockertap.sock", step.env)
            env["DOCKER_CONFIG"] = str(_config_dir(work, i, scenario.plugins))
            if step.direct:
                env["LESSON_SOCKET"] = str(engine.socket)
                cmd = ["unshare", "--mount", "--", "sh", "-c", step.direct, "sh", *step.argv]
            else:
                part = work / f"{i}.jsonl"
                parts.append(part)
                if step.context:
                    env.update(LESSON_CONTEXT=step.context, LESSON_DOCKER_HOST=step.env.get("DOCKER_HOST", ""))
                cmd = [
                    *engines.dockertap_command(), "run",
                    "--backend", backend,
                    "--record", str(part),
                    "--capture-bytes", str(scenario.capture_bytes),
                    "--trace-file", str(work / f"{i}.trace"),
                    *evidence,
                    "--", "sh", str(warm_up), *step.argv,
                ]  # fmt: skip
            result = subprocess.run(cmd, input=step.stdin, env=env, capture_output=True, timeout=300)
            live.append(_live(step, result, scenario.plugins))
            print(f"  $ {' '.join(step.argv)} → exit {result.returncode}", file=sys.stderr)
        _merge(parts, out, scenario, engine, live)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = out.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SystemExit(f"{out.name} is {size} bytes (> {MAX_FILE_BYTES}); lower CAPTURE_BYTES")


def recorded_on(engine: engines.Engine) -> dict[str, str]:
    """The engine a lesson was recorded on: its id and the package versions of its root."""
    stamp = engine_roots.read_stamp(engine.spec.suite) or {}
    versions = stamp.get("versions", {})
    if engine.name == "dockerd":
        names = ("docker.io", "containerd", "runc")
    else:
        names = ("podman", engine.spec.runtime, "netavark")
    parts = [f"{name} {versions[name].split('+')[0].split('-')[0]}" for name in names if name in versions]
    store = " (containerd image store)" if engine.spec.image_store == "containerd" else ""
    return {"id": engine.id, "versions": ", ".join(parts) + store}


def _merge(
    parts: list[Path], out: Path, scenario: Scenario, engine: engines.Engine, live: list[dict[str, Any]]
) -> None:
    """One file: the first part's header (plus the lesson's facts and live output), then every record."""
    lines: list[str] = []
    for i, part in enumerate(parts):
        records = part.read_text(encoding="utf-8").splitlines()
        if i == 0:
            header = json.loads(records[0])
            header.update(
                title=scenario.title,
                engine=recorded_on(engine),
                commands=[step.argv for step in scenario.steps],
                live=live,
                summary=scenario.summary,
            )
            if scenario.explanation:
                header["explanation"] = scenario.explanation
            lines.append(json.dumps(header, ensure_ascii=False, separators=(",", ":")))
        lines += [r for r in records[1:] if json.loads(r).get("type") != "footer" or i == len(parts) - 1]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(names: list[str]) -> int:
    if os.geteuid() != 0:
        print("make_recordings.py starts private engines and needs root", file=sys.stderr)
        return 2
    engines.put_docker_cli_on_path()  # record with the CLI the tests serve to (the testing root's)
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    for engine_id in dict.fromkeys(s.engine for s in chosen):  # one engine at a time: the machine is small
        engine = engines.start_engine(engine_id, engines.short_base())
        try:
            engines.import_busybox(engine)
            print(f"started {engine_id}: {engines.describe(engine)}", file=sys.stderr)
            for scenario in (s for s in chosen if s.engine == engine_id):
                print(f"recording {scenario.name}", file=sys.stderr)
                record(scenario, engine, HERE / f"{scenario.name}.jsonl")
        finally:
            engine.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
