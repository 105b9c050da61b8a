# ruff: noqa: E501  (a table of messages: one message per line reads better unwrapped)
"""`dockertap doctor`'s sentences in Japanese: the same keys and `{fields}` as `doctor_text.TEXT`/`DIAGNOSES`.

Commands, paths, URLs, variable names and placeholders stay as they are; only the prose is translated.
A key missing here falls back to English at run time (`doctor_text.say`), and tests/test_doctor_ja.py fails.
"""

from __future__ import annotations

TEXT_JA: dict[str, str] = {
    "headline.works": "docker CLI が使う接続先は {url} - 動作する",
    "headline.fails": "docker CLI が使う接続先は {url} - 動作しない",
    "headline.unresolved": "docker CLI は接続先を決められない - docker コマンドはすべて失敗する",
    "headline.not-checked": "docker CLI が使う接続先は {url} - 未確認 (doctor からは確かめられない)",
    "why": "  理由: {why}",
    "cli-says": "  docker CLI 自身の出力: {said}",
    "cli-disagrees": "  注意: docker CLI ({docker}) は {theirs} と解決したが、dockertap は {ours} と読んだ",
    "section.candidates": "接続先の候補",
    "section.contexts": "docker コンテキスト",
    "section.running": "動作中のエンジン",
    "section.installed": "インストール済みのエンジン:",
    "section.problems": "問題",
    "section.not-checked": "未確認",
    "none-found": "なし",
    "no-problems": "問題は見つからなかった。",
    "fix": "対処:",
    "more-commands": "... ほか {count} 件 (「動作中のエンジン」の表にあるもの。--json ではすべて出る)",
    "check": "確認:",
    "running.not-docker": "containerd API (Docker API 非対応)",
    "running.none": "dockerd、podman サービス、containerd のどのプロセスも動いていない",
    "origin.DOCKER_HOST": "DOCKER_HOST={given}",
    "origin.-H": "-H {given}",
    "origin.DOCKER_CONTEXT": "DOCKER_CONTEXT={name} (コンテキストのホストは {given})",
    "origin.currentContext": "現在のコンテキスト {name!r} (ホストは {given})",
    "origin.--context": "--context {name} (ホストは {given})",
    "origin.default": "既定の {given}",
    "unresolved.DOCKER_CONTEXT": "DOCKER_CONTEXT={name} は docker CLI が読み込めないコンテキストを指しているため、docker コマンドはすべて失敗する: {error}",
    "unresolved.DOCKER_CONTEXT.fix": "DOCKER_CONTEXT を unset する (設定されている間は `docker context use` を実行しても何も変わらない)。そのあと `docker context ls` で選べるコンテキストを確認する",
    "unresolved.currentContext": "現在のコンテキスト {name!r} ({config} の currentContext) を読み込めないため、docker コマンドはすべて失敗する: {error}",
    "unresolved.currentContext.fix": "存在するコンテキストに切り替える (DOCKER_CONTEXT=default を付ければ、切り替えに必要なだけ CLI が起動できる)",
    "refused-host": "{origin}: docker CLI が失敗する: {error}",
    "no-scheme": "{origin} にはスキームが無いため、docker CLI はこれを {url} と読んで ({tcp} への TCP 接続で、パスをすべての API 呼び出しの前に付ける) 失敗する: {failure}",
    "base-path": "{origin} にはパスが付いているため、docker CLI はすべての API 呼び出しを {path}/ の下に送って失敗する: {failure}",
    "rewrite.answers": "スキームを付けて {rewrite} と書く (そこは応答する)",
    "rewrite.dead": "正しい書き方は {rewrite} だが、そこでは何も応答しない ({failure})",
    "fix.alternatives": "または応答する別のエンジンを docker CLI に指定する",
    "fix.an-engine": "応答するエンジンを docker CLI に指定する",
    "fix.start-engine": "{hint}",
    "unset.answers": "unset すると docker CLI は {url} を使い、そこは応答する",
    "not-checked.ssh": "doctor は {url} を確かめられない: {how}。その ssh を doctor は実行しない (dockertap も ssh:// は中継できない。ソケットを転送すること: ssh -nNT -L /tmp/remote-docker.sock:/var/run/docker.sock HOST を実行し、unix:///tmp/remote-docker.sock を使う)",
    "not-checked.ssh.check": "docker コマンドを実行して、応答するかどうかを確かめる",
    "separator": "。",
    "start-hint.installed": "インストール済みのエンジン: {engines}",
    "start-hint.none": "PATH にコンテナエンジンが見つからない",
    "probe-hint.hung": "エンジンがハングしているか過負荷の可能性がある。再起動すること",
    "probe-hint.not-socket": "代わりにエンジンのソケットファイルを指定する (`dockertap doctor` を参照)",
    "probe-hint.closed": "このソケットは Docker API の接続先ではない (またはエンジンがクラッシュしている)",
    "probe-hint.other-protocol": "このソケットは別のプロトコルを話している (containerd の gRPC? BuildKit のソケット?)。Docker API のソケットを指定すること",
    "probe-hint.not-docker-api": "Docker API ではない",
    "probe-hint.not-working": "このソケットはまともに動く Docker API の接続先ではない",
    "probe-hint.other-http": "これは別の HTTP サービスだ。Docker API のソケットを指定すること",
    "probe-hint.group": "自分を {group!r} グループに追加する (sudo usermod -aG {group} $USER の後でログインし直す) か、sudo で実行する",
    "probe-hint.root-only": "このソケットは root 専用: sudo で実行するか、$XDG_RUNTIME_DIR の下にある rootless エンジンのソケットを使う",
    "column.source": "出どころ",
    "column.endpoint": "接続先",
    "column.state": "状態",
    "column.backend": "バックエンド",
    "column.engine": "エンジン",
    "column.pid": "PID",
    "column.user": "ユーザー",
    "column.name": "名前",
    "column.current": "現在",
}

_CONTEXT_FIX = "そのエンジンを起動するか、そのコンテキストを使うのをやめる (docker context use default; docker context rm {name})。{hint}"

DIAGNOSES_JA: dict[tuple[str, str], tuple[str, str]] = {
    ("DOCKER_HOST", "missing"): (
        "DOCKER_HOST が指す {path} は存在しない",
        "DOCKER_HOST を unset する (または動いているエンジンを指すようにする)。{hint}",
    ),
    ("DOCKER_HOST", "refused"): (
        "DOCKER_HOST が指す {path} は、誰も待ち受けていない古いソケット",
        "そのソケットを持つエンジンを起動するか、DOCKER_HOST を unset する。{hint}",
    ),
    ("DOCKER_HOST", "refused-tcp"): (
        "DOCKER_HOST が指す {url} では、そのポートで誰も待ち受けていない",
        "そこで待ち受けるエンジンを起動する (dockerd -H {url}) か、DOCKER_HOST を unset する。{hint}",
    ),
    ("DOCKER_HOST", "dockertap-dead"): (
        "DOCKER_HOST は dockertap のソケット {path} を指しているが、dockertap proxy が動いていない",
        "dockertap proxy を起動する (dockertap proxy) か、DOCKER_HOST を unset する",
    ),
    ("context", "missing"): ("docker コンテキスト {name!r} が指す {path} は存在しない", _CONTEXT_FIX),
    ("context", "refused"): (
        "docker コンテキスト {name!r} が指すソケット {path} は死んでいる (誰も待ち受けていない)",
        _CONTEXT_FIX,
    ),
    ("context", "refused-tcp"): (
        "docker コンテキスト {name!r} が指す {url} では、そのポートで誰も待ち受けていない",
        _CONTEXT_FIX,
    ),
    ("context", "dockertap-dead"): (
        "docker コンテキスト {name!r} は dockertap のソケット {path} を指しているが、dockertap proxy が動いていない",
        "dockertap proxy を起動するか、そのコンテキストを使うのをやめる (docker context use default)",
    ),
    ("*", "missing"): ("{url}: ソケットが存在しない", "{hint}"),
    ("*", "refused"): ("{url}: 古いソケット。ファイルはあるが誰も待ち受けていない", "{hint}"),
    ("*", "refused-tcp"): ("{url}: そのポートで誰も待ち受けていない", "{hint}"),
    ("*", "permission"): ("{url}: アクセス権が無い (permission denied)", "{hint}"),
    ("*", "not-socket"): ("{url} はソケットではない", "{hint}"),
    ("*", "timeout"): ("{url} は接続を受け付けるが応答しない", "{hint}"),
    ("*", "not-http"): ("{url} は応答するが HTTP ではない (プロトコルが違う)", "{hint}"),
    ("*", "not-docker"): ("{url} は HTTP を話すが Docker API ではない", "{hint}"),
    ("*", "error"): ("{url}: 接続できない", "{hint}"),
}
