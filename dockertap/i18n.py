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

