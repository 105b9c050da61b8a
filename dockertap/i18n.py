# ruff: noqa: E501  (a table of messages: one message per line reads better unwrapped)
"""dockertap's own messages in English and Japanese, keyed by message id, and the default language.

`--lang` defaults from the locale: LC_ALL, then LC_MESSAGES, then LANG (POSIX precedence); a value starting
with `ja` chooses Japanese. The narration's phrases live beside the narration (`recordings/narrate.py`) and
the layer model's explanations in its table; this table holds what the CLI itself says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum


class Lang(StrEnum):
    en = "en"
    ja = "ja"


def default_lang(env: Mapping[str, str] | None = None) -> str:
    """`ja` when the locale that governs messages is Japanese, else `en`."""
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


#: Counted nouns: English (singular, plural); Japanese (counter and noun, no plural).
NOUNS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "exchange": ("exchange", "exchanges"),
        "command": ("client command", "client commands"),
        "call": ("API call", "API calls"),
        "item": ("item", "items"),
        "field": ("field", "fields"),
        "line": ("line", "lines"),
        "evidence": ("observed evidence item", "observed evidence items"),
        "stream": ("hijacked stream", "hijacked streams"),
        "flow": ("flow", "flows"),
        "byte": ("byte", "bytes"),
    },
    "ja": {
        "exchange": (" 件のやり取り", ""),
        "command": (" 個のクライアントコマンド", ""),
        "call": (" 件", ""),
        "item": (" 件", ""),
        "field": (" 個のフィールド", ""),
        "line": (" 行", ""),
        "evidence": (" 件の観測された証拠", ""),
        "stream": (" 本のハイジャックされたストリーム", ""),
        "flow": (" 件のフロー", ""),
        "byte": (" バイト", ""),
    },
}


def counted(lang: str, n: int, noun: str) -> str:
    """`1 exchange`, `2 exchanges`; in Japanese `2 件のやり取り` (a counter, never a plural)."""
    if lang == "ja":
        return f"{n}{NOUNS['ja'][noun][0]}"
    one, many = NOUNS["en"][noun]
    return f"{n} {one if n == 1 else many}"


MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "which_recording": "which recording? dockertap replay FILE (or a bundled name: dockertap replay --list)",
        "no_bundled": "no bundled recordings are installed",
        "step_prompt": "[{step}/{total}] Enter/space: next · b: back · number+Enter: jump · q: quit · ?: help",
        "step_help": "Keys: Enter or space = next step, b = back one step, a number then Enter = jump to that "
        "step, q = quit, ? = this help. Ctrl-C stops (exit 130).",
        "step_unknown_key": "unknown key {pressed!r} (press ? for help)",
        "step_no_such": "no step {n} (steps 1–{total})",
        "serving": "serving {exchanges} from {source} (speed {speed})",
        "serve_warning": "warning: {warning}",
        "serve_synthesised": "note: the recording has no {route}; it is synthesised from the recorded backend "
        "fingerprint ({product} {version})",
        "explain_unknown_route": "unknown route {route!r}: the layer model has no row for it and no such "
        "Docker API route exists (try: dockertap explain --all)",
        "explain_unknown_command": "dockertap does not know which API calls `docker {command}` makes (known: "
        "{known})",
        "explain_give": 'give a request like "POST /containers/{{id}}/start", a docker command like '
        '"docker run --rm img", or --all',
        "explain_only_with": "only with {flag}",
        "explain_only_without": "only without {flag}",
        "explain_terminal_only": "only when the CLI runs on a terminal",
        "explain_skipped": "skipped here: {route}, {condition}",
        "wrote_html": "wrote {exchanges} to {out} (HTML, {language})",
    },
    "ja": {
        "which_recording": "どの記録か指定してほしい: dockertap replay FILE (同梱の記録名は dockertap replay --list で確認)",
        "no_bundled": "同梱の記録はインストールされていない",
        "step_prompt": "[{step}/{total}] Enter/スペース: 次へ · b: 戻る · 番号+Enter: 移動 · q: 終了 · ?: ヘルプ",
        "step_help": "キー: Enter かスペースで次のステップ、b で 1 つ戻る、番号を入れて Enter でそのステップへ、"
        "q で終了、? でこのヘルプ。Ctrl-C で中断 (終了コード 130)。",
        "step_unknown_key": "不明なキー {pressed!r} (? でヘルプ)",
        "step_no_such": "ステップ {n} は無い (1〜{total})",
        "serving": "{source} から {exchanges}を応答する (速度 {speed})",
        "serve_warning": "警告: {warning}",
        "serve_synthesised": "注意: 記録に {route} が無いため、記録されたバックエンドの指紋 ({product} {version}) "
        "から合成して応答する",
        "explain_unknown_route": "不明な経路 {route!r}: 層のモデルに行が無く、Docker API にもその経路は無い "
        "(dockertap explain --all を参照)",
        "explain_unknown_command": "`docker {command}` がどの API を呼ぶかを dockertap は知らない (既知: {known})",
        "explain_give": '"POST /containers/{{id}}/start" のような要求か、"docker run --rm img" のような '
        "docker コマンド、または --all を指定してほしい",
        "explain_only_with": "{flag} を付けたときだけ",
        "explain_only_without": "{flag} を付けないときだけ",
        "explain_terminal_only": "CLI が端末で動いているときだけ",
        "explain_skipped": "今回は省かれる: {route} ({condition})",
        "wrote_html": "{out} に {exchanges}を書き出した (HTML, {language})",
    },
}


def msg(lang: str, message_id: str, **values: object) -> str:
    """One of dockertap's own messages in `lang` (English when a translation is missing)."""
    table = MESSAGES.get(lang, MESSAGES["en"])
    return table.get(message_id, MESSAGES["en"][message_id]).format(**values)


# -- doctor -----------------------------------------------------------------------------------------------
# The doctor's fixed words, and its diagnoses in Japanese keyed by the DIAGNOSES id ("origin/kind" in
# dockertap/doctor.py) with the same {fields}. English is the doctor's own text.

DOCTOR_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "works": "works",
        "does_not_work": "does not work",
        "cli_would_use": "The docker CLI would use",
        "why": "why",
        "candidates": "Candidate endpoints",
        "contexts": "docker contexts",
        "installed": "Installed engines",
        "none_found": "none found",
        "problems": "Problems",
        "fix": "fix",
        "no_problems": "No problems found.",
    },
    "ja": {
        "works": "動作する",
        "does_not_work": "動作しない",
        "cli_would_use": "docker CLI が使う接続先は",
        "why": "理由",
        "candidates": "接続先の候補",
        "contexts": "docker コンテキスト",
        "installed": "インストール済みのエンジン",
        "none_found": "見つからない",
        "problems": "問題",
        "fix": "対処",
        "no_problems": "問題は見つからなかった。",
    },
}

DOCTOR_DIAGNOSES_JA: dict[str, tuple[str, str]] = {
    "DOCKER_HOST/missing": (
        "DOCKER_HOST が指す {path} は存在しない",
        "DOCKER_HOST を解除する (または動いているエンジンを指す)。{hint}",
    ),
    "DOCKER_HOST/refused": (
        "DOCKER_HOST が指す {path} は誰も待ち受けていない古いソケット",
        "それを持つエンジンを起動するか、DOCKER_HOST を解除する。{hint}",
    ),
    "DOCKER_HOST/dockertap-dead": (
        "DOCKER_HOST は dockertap のソケット {path} を指しているが、dockertap proxy が動いていない",
        "起動する (dockertap proxy) か、DOCKER_HOST を解除する",
    ),
    "context/missing": (
        "docker コンテキスト {name!r} が指す {path} は存在しない",
        "そのエンジンを起動するか、使うのをやめる (docker context use default; docker context rm {name})。{hint}",
    ),
    "context/refused": (
        "docker コンテキスト {name!r} が指すソケット {path} は死んでいる (誰も待ち受けていない)",
        "そのエンジンを起動するか、使うのをやめる (docker context use default; docker context rm {name})。{hint}",
    ),
    "context/dockertap-dead": (
        "docker コンテキスト {name!r} は dockertap のソケット {path} を指しているが、dockertap proxy が動いていない",
        "起動する (dockertap proxy) か、使うのをやめる (docker context use default)",
    ),
    "context/unresolved": (
        "docker CLI のコンテキスト {name!r} を解決できない: {hint}",
        "docker context use default (または docker context create {name} --docker host=unix:///...)",
    ),
    "*/missing": ("{url}: ソケットが存在しない", "{hint}"),
    "*/refused": ("{url}: 古いソケット。ファイルはあるが誰も待ち受けていない", "{hint}"),
    "*/permission": ("{url}: アクセスが拒否された", "{hint}"),
    "*/not-socket": ("{url} はソケットではない", "{hint}"),
    "*/timeout": ("{url} は接続を受け付けるが応答しない", "{hint}"),
    "*/not-http": ("{url} は応答するが HTTP ではない (プロトコルが違う)", "{hint}"),
    "*/not-docker": ("{url} は HTTP を話すが Docker API ではない", "{hint}"),
    "*/error": ("{url}: 接続できない", "{hint}"),
}


def doctor_text(lang: str, message_id: str) -> str:
    table = DOCTOR_TEXT.get(lang, DOCTOR_TEXT["en"])
    return table.get(message_id, DOCTOR_TEXT["en"][message_id])


def doctor_diagnosis(
    lang: str, message_id: str, fields: Mapping[str, str], problem: str, fix: str
) -> tuple[str, str]:
    """A diagnosis in `lang`: the Japanese template filled with the same fields, else the English text."""
    if lang != "ja" or message_id not in DOCTOR_DIAGNOSES_JA:
        return problem, fix
    ja_problem, ja_fix = DOCTOR_DIAGNOSES_JA[message_id]
    values = {"url": "", "path": "", "name": "", "hint": "", **fields}
    try:
        return ja_problem.format(**values), ja_fix.format(**values)
    except (KeyError, IndexError):
        return problem, fix
