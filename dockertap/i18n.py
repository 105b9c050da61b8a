# ruff: noqa: E501  (a table of messages: one message per line reads better unwrapped)
"""dockertap's own messages in English and Japanese, keyed by message id, and the default language.

`--lang` defaults from the locale: LC_ALL, then LC_MESSAGES, then LANG (POSIX precedence); a value starting
with `ja` chooses Japanese. The narration's phrases live beside the narration (`recordings/narrate.py`) and
the layer model's explanations in its table; this table holds what the CLI itself says.
"""

from __future__ import annotations

import errno
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
        "warning": "warning: {warning}",
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
        "wrote_export": "wrote {count} to {out} ({what})",
        "export_nothing": "nothing to do: pass --har OUT, --flows OUT and/or --html OUT",
        "cannot_write": "cannot write {path}: {error}",
        "serve_recorded": "(recorded #{id})",
        "difference_field": "{field}: recorded {recorded}, got {got}",
        "difference_body": "body of {received}, recorded {recorded}",
        "serve_ping_synthesized": "synthesized ping",
        "serve_no_answer": "recorded without answer",
        "serve_no_recorded_answer": "dockertap replay: the lesson {lesson} has no recorded answer for {request}",
        "serve_refused_after": "dockertap replay: the lesson {lesson} has no recorded answer for {earlier}, so "
        "{request} for the same container is refused too",
        "serve_closest": " — closest recorded request: {closest}",
        "serve_empty": " — the recording is empty",
        "serve_synthesised_note": "no {route} in the recording: synthesised from its backend fingerprint",
        "serve_truncated": "body truncated in the recording: {captured} bytes replayed of {total} bytes sent live",
        "serve_truncated_wire": "body truncated in the recording: {captured} bytes replayed of {total} wire bytes "
        "sent live",
        "serve_differs": "this request differs from the recorded one: {difference}",
        "session_not_session": "{source}: not a dockertap session file (no {format} header)",
        "session_not_session_because": "{source}: not a dockertap session file ({problem})",
        "session_no_version": "{source}: header has no integer version ({version!r})",
        "session_too_new": "{source}: session format version {version} is newer than this dockertap understands "
        "(up to {supported}); upgrade dockertap to read it",
        "session_bad_version": "{source}: invalid session format version {version}",
        "session_empty": "{source}: empty file, not a dockertap session",
        "session_unreadable_line": "{source}:{line}: unreadable line ({error})",
        "session_not_object": "{source}:{line}: not a JSON object",
        "session_truncated_last": "{source}:{line}: truncated last record ignored (the recorder stopped mid-write)",
        "session_line_skipped": "{problem} — skipped",
        "session_no_footer": "{source}: no footer — the recording did not close cleanly",
        "session_unknown_encoding": "unknown byte encoding {encoding!r}",
        "file_not_found": "{path}: no such file",
        "file_permission": "{path}: permission denied",
        "file_is_directory": "{path}: is a directory, not a file",
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
        "warning": "警告: {warning}",
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
        "wrote_export": "{out} に {count}を書き出した ({what})",
        "export_nothing": "何もすることが無い: --har OUT、--flows OUT、--html OUT のどれかを指定してほしい",
        "cannot_write": "{path} に書き込めない: {error}",
        "serve_recorded": "(記録 #{id})",
        "difference_field": "{field}: 記録では {recorded}、今回は {got}",
        "difference_body": "本文は {received} (記録では {recorded})",
        "serve_ping_synthesized": "ping を合成して応答",
        "serve_no_answer": "記録時に応答が無かった要求",
        "serve_no_recorded_answer": "dockertap replay: 教材 {lesson} には {request} に対する記録された応答が無い",
        "serve_refused_after": "dockertap replay: 教材 {lesson} には {earlier} に対する記録された応答が無いため、"
        "同じコンテナへの {request} も拒否する",
        "serve_closest": " — 最も近い記録済みの要求: {closest}",
        "serve_empty": " — 記録は空",
        "serve_synthesised_note": "記録に {route} が無い: バックエンドの指紋から合成した",
        "serve_truncated": "記録では本文が途中で切れている: 実際に送られた {total} バイトのうち {captured} バイトだけを"
        "再生した",
        "serve_truncated_wire": "記録では本文が途中で切れている: 実際に送られたワイヤ上の {total} バイトのうち {captured} "
        "バイトだけを再生した",
        "serve_differs": "この要求は記録されたものと異なる: {difference}",
        "session_not_session": "{source}: dockertap のセッションファイルではない ({format} ヘッダーが無い)",
        "session_not_session_because": "{source}: dockertap のセッションファイルではない ({problem})",
        "session_no_version": "{source}: ヘッダーに整数のバージョンが無い ({version!r})",
        "session_too_new": "{source}: セッション形式のバージョン {version} はこの dockertap が読める範囲 "
        "({supported} まで) より新しい。読むには dockertap を更新してほしい",
        "session_bad_version": "{source}: セッション形式のバージョン {version} は不正",
        "session_empty": "{source}: 空のファイルで、dockertap のセッションではない",
        "session_unreadable_line": "{source}:{line}: 読めない行 ({error})",
        "session_not_object": "{source}:{line}: JSON オブジェクトではない",
        "session_truncated_last": "{source}:{line}: 途中で切れた最後のレコードを無視した (記録中に書き込みが止まった)",
        "session_line_skipped": "{problem} — 読み飛ばした",
        "session_no_footer": "{source}: フッターが無い — 記録は正常に終わっていない",
        "session_unknown_encoding": "不明なバイト符号化 {encoding!r}",
        "file_not_found": "{path}: ファイルが無い",
        "file_permission": "{path}: 読み書きする権限が無い",
        "file_is_directory": "{path}: ファイルではなくディレクトリ",
    },
}


def msg(lang: str, message_id: str, **values: object) -> str:
    """One of dockertap's own messages in `lang` (English when a translation is missing)."""
    table = MESSAGES.get(lang, MESSAGES["en"])
    return table.get(message_id, MESSAGES["en"][message_id]).format(**values)



#: OSError numbers whose message dockertap words itself (other errors are shown as the system words them).
_FILE_ERRORS = {errno.ENOENT: "file_not_found", errno.EACCES: "file_permission", errno.EISDIR: "file_is_directory"}


def worded(lang: str, item: object) -> str:
    """An error or warning shown to the user, in `lang` when dockertap words it (English: `str(item)`).

    Items that carry a `message_id` and `fields` (SessionFormatError, SessionWarning) are translated by id,
    fields that carry one too (a skipped line's problem) likewise; the data in their fields (paths, quoted
    values) stays as it is.
    """
    if lang == "en":
        return str(item)
    message_id = getattr(item, "message_id", None)
    if isinstance(message_id, str):
        fields = getattr(item, "fields", {})
        return msg(lang, message_id, **{k: worded(lang, v) if hasattr(v, "message_id") else v for k, v in fields.items()})
    if isinstance(item, OSError) and item.errno in _FILE_ERRORS and item.filename is not None:
        return msg(lang, _FILE_ERRORS[item.errno], path=item.filename)
    return str(item)
