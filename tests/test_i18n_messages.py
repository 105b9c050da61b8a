"""dockertap's own messages under `--lang ja`: the serve log, load errors; English unchanged.

The serve tests use the real docker CLI against `dockertap replay --serve` (no engine needed).
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from test_replay import served_docker as _docker
from test_replay import served_log as _log
from typer.testing import CliRunner

from dockertap.app import app
from dockertap.i18n import MESSAGES, worded
from dockertap.recordings.format import SessionFormatError, check_header, read_session
from dockertap.recordings.replayable import bundled_recordings

BUNDLED = bundled_recordings()


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@pytest.mark.parametrize("message_id", sorted(MESSAGES["en"]))
def test_every_message_has_japanese_with_the_same_placeholders(message_id: str) -> None:
    assert message_id in MESSAGES["ja"]
    assert _placeholders(MESSAGES["ja"][message_id]) == _placeholders(MESSAGES["en"][message_id])


def test_no_japanese_message_without_english() -> None:
    assert set(MESSAGES["ja"]) <= set(MESSAGES["en"])


# -- load errors ----------------------------------------------------------------------------------


def test_session_format_errors_read_in_english_as_before(tmp_path: Path) -> None:
    """The English text is what dockertap printed before the errors carried message ids."""
    not_session = tmp_path / "notes.jsonl"
    not_session.write_text('{"hello": 1}\n')
    with pytest.raises(SessionFormatError) as caught:
        read_session(not_session)
    assert str(caught.value) == f"{not_session}: not a dockertap session file (no dockertap-session header)"
    with pytest.raises(SessionFormatError) as caught:
        check_header({"type": "header", "format": "dockertap-session", "version": 99}, "s.jsonl")
    assert str(caught.value) == (
        "s.jsonl: session format version 99 is newer than this dockertap understands (up to 1); "
        "upgrade dockertap to read it"
    )
    assert worded("en", caught.value) == str(caught.value)


def test_session_format_error_in_japanese_keeps_the_data() -> None:
    with pytest.raises(SessionFormatError) as caught:
        check_header({"type": "header", "format": "dockertap-session", "version": "x'1"}, "授業/s.jsonl")
    assert worded("ja", caught.value) == '授業/s.jsonl: ヘッダーに整数のバージョンが無い ("x\'1")'


@pytest.mark.parametrize("command", ["replay", "export"])
def test_load_errors_under_lang_ja_are_japanese(tmp_path: Path, command: str) -> None:
    not_session = tmp_path / "notes.jsonl"
    not_session.write_text('{"hello": 1}\n')
    missing = tmp_path / "missing.jsonl"
    extra = ["--har", str(tmp_path / "out.har")] if command == "export" else []
    runner = CliRunner()
    cases = (
        (
            not_session,
            f"{not_session}: dockertap のセッションファイルではない (dockertap-session ヘッダーが無い)",
        ),
        (missing, f"{missing}: ファイルが無い"),
        (tmp_path, f"{tmp_path}: ファイルではなくディレクトリ"),
    )
    for path, expected in cases:
        result = runner.invoke(app, [command, str(path), *extra, "--lang", "ja"])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == f"dockertap: {expected}"
        english = runner.invoke(app, [command, str(path), *extra, "--lang", "en"])
        assert english.exit_code == 2
        assert "dockertap のセッション" not in english.stderr and "ファイル" not in english.stderr


def test_load_error_language_defaults_from_the_locale(tmp_path: Path) -> None:
    not_session = tmp_path / "notes.jsonl"
    not_session.write_text("[]\n")
    result = CliRunner().invoke(app, ["replay", str(not_session)], env={"LC_ALL": "ja_JP.UTF-8"})
    assert result.exit_code == 2
    assert "dockertap のセッションファイルではない" in result.stderr


# -- replay --serve's log in Japanese (the real docker CLI, no engine) ------------------------------


@pytest.fixture
def served_ja(short_tmp: Path):
    from test_replay import Served

    server = Served(BUNDLED["docker-run"], short_tmp, "--speed", "0", "--lang", "ja")
    try:
        yield server
    finally:
        server.stop()


def test_serve_log_in_japanese(served_ja) -> None:
    assert "docker-run.jsonl から 5 件のやり取りを応答する" in served_ja.err.read_text()
    unmatched = _docker(served_ja, "ps")
    assert unmatched.returncode == 1
    # The docker CLI's message stays English (it is the daemon's answer); the serve's log is Japanese.
    assert "has no recorded answer for GET /containers/json" in unmatched.stderr
    log = _log(served_ja, "→ 501")
    line = next(line for line in log.splitlines() if "→ 501" in line)
    assert "dockertap replay: 教材 'docker-run'" in line
    assert "には GET /containers/json に対する記録された応答が無い — 最も近い記録済みの要求: " in line

    run = _docker(served_ja, "run", "--rm", "alpine", "echo", "hi")
    assert run.stdout == "hello from a container\n"
    log = _log(served_ja, "この要求は記録されたものと異なる")
    create = next(line for line in log.splitlines() if line.startswith("POST /containers/create"))
    assert "→ 201  (記録 #" in create
    assert "この要求は記録されたものと異なる: " in create
    assert 'Image: 記録では "dt-busybox:latest"、今回は "alpine"' in create  # the compared values as they are
    assert "recorded" not in log and "differs from the recorded one" not in log


def test_serve_note_worded_in_either_language() -> None:
    from dockertap.recordings.serve import Served

    served = Served(
        "GET",
        "/v1.51/info",
        200,
        None,
        ((("serve_synthesised_note", {"route": "GET /info"}),), (("serve_differs", {"difference": "q"}),)),
    )
    assert served.note == (
        "no GET /info in the recording: synthesised from its backend fingerprint; "
        "this request differs from the recorded one: q"
    )
    assert served.note_in("ja") == (
        "記録に GET /info が無い: バックエンドの指紋から合成した; この要求は記録されたものと異なる: q"
    )


# -- doctor: the probe's hints (proxy/ words them in English; doctor translates at display) ---------


def _proxy_probe_literals() -> set[str]:
    """Every string constant in proxy/probe.py (adjacent literals joined, as Python joins them)."""
    import ast

    import dockertap.proxy.probe as probe_module

    tree = ast.parse(Path(probe_module.__file__).read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_probe_hint_sentence_is_the_probes_own_english() -> None:
    """A reworded hint in proxy/probe.py must be reworded here too, or doctor stops translating it."""
    from dockertap.doctor_text import TEXT

    literals = _proxy_probe_literals()
    for key, text in TEXT.items():
        if key.startswith("probe-hint."):
            english = text.format(group="docker") if "{" in text else text
            assert english in literals, key


def test_probe_hints_in_japanese(tmp_path: Path) -> None:
    from dockertap.doctor_text import TEXT, probe_hint, speaking
    from dockertap.proxy.endpoints import parse_endpoint
    from dockertap.proxy.probe import probe

    regular = tmp_path / "file.sock"
    regular.write_text("")
    result = probe(parse_endpoint(f"unix://{regular}"), timeout=0.5)
    assert result.kind == "not-socket" and result.hint
    assert probe_hint(result.hint) == result.hint  # English: the probe's words, unchanged
    with speaking("ja"):
        assert (
            probe_hint(result.hint)
            == "代わりにエンジンのソケットファイルを指定する (`dockertap doctor` を参照)"
        )
        docker_group = TEXT["probe-hint.group"].format(group="docker")
        assert probe_hint(docker_group, "docker") == (
            "自分を 'docker' グループに追加する (sudo usermod -aG docker $USER の後でログインし直す) "
            "か、sudo で実行する"
        )
        assert probe_hint("something new", "docker") == "something new"


def test_doctor_lang_ja_shows_the_probe_hint_in_japanese(tmp_path: Path) -> None:
    from fakesock import FakeServer, other_http, short_tmpdir

    base = short_tmpdir()
    try:
        with FakeServer(f"{base}/web.sock", other_http):
            done = subprocess.run(
                [sys.executable, "-m", "dockertap", "doctor", "--timeout", "0.5", "--lang", "ja"],
                env={
                    "PATH": os.environ["PATH"],
                    "HOME": base,
                    "DOCKER_HOST": f"unix://{base}/web.sock",
                    "COLUMNS": "300",
                },
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert done.returncode == 1
    assert "これは別の HTTP サービスだ。Docker API のソケットを指定すること" in done.stdout, done.stdout
    assert "some other HTTP service" not in done.stdout


def test_export_speaks_the_chosen_language(tmp_path: Path) -> None:
    runner = CliRunner()
    source = str(BUNDLED["docker-run"])
    ja = runner.invoke(app, ["export", source, "--har", str(tmp_path / "ja.har"), "--lang", "ja"])
    assert ja.exit_code == 0, ja.output
    assert ja.stderr.strip() == f"{tmp_path / 'ja.har'} に 5 件のやり取りを書き出した (HAR 1.2)"
    en = runner.invoke(app, ["export", source, "--har", str(tmp_path / "en.har"), "--lang", "en"])
    assert en.stderr.strip() == f"wrote 5 exchanges to {tmp_path / 'en.har'} (HAR 1.2)"
    nothing = runner.invoke(app, ["export", source, "--lang", "ja"])
    assert nothing.exit_code == 2
    assert "何もすることが無い: --har OUT" in nothing.stderr


def test_body_difference_in_either_language() -> None:
    from dockertap.recordings.serve import body_difference

    differs = body_difference(b'{"Image": "a", "Tty": false}', b'{"Image": "b"}')
    assert differs is not None and differs.in_lang("en") == 'Image: recorded "a", got "b"'
    assert differs.in_lang("ja") == 'Image: 記録では "a"、今回は "b"'
    raw = body_difference(b"x", b"yz")
    assert raw is not None and raw.in_lang("en") == "body of 2 bytes, recorded 1 byte"
    assert raw.in_lang("ja") == "本文は 2 バイト (記録では 1 バイト)"
    long = body_difference(b'{"Cmd": "a"}', json.dumps({"Cmd": "b" * 400}).encode())
    assert long is not None and len(long.in_lang("en")) == 300 and long.in_lang("en").endswith("…")
    assert body_difference(b'{"Tty": false}', b"{}") is None  # absent equals Go's zero value


def test_session_warnings_in_japanese(tmp_path: Path) -> None:
    """A recording that stopped mid-write: the warnings stay English by default, Japanese under --lang ja."""
    from dockertap.i18n import worded

    lines = BUNDLED["docker-run"].read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "broken.jsonl"
    # A bad line in the middle, no footer, and a last record cut mid-write.
    broken.write_text("\n".join([*lines[:2], "[1]", *lines[2:-1], lines[-1][:10]]), encoding="utf-8")
    session = read_session(broken)
    assert list(session.warnings) == [
        f"{broken}:3: not a JSON object — skipped",
        f"{broken}:{len(lines) + 1}: truncated last record ignored (the recorder stopped mid-write)",
        f"{broken}: no footer — the recording did not close cleanly",
    ]
    assert [worded("ja", w) for w in session.warnings] == [
        f"{broken}:3: JSON オブジェクトではない — 読み飛ばした",
        f"{broken}:{len(lines) + 1}: 途中で切れた最後のレコードを無視した (記録中に書き込みが止まった)",
        f"{broken}: フッターが無い — 記録は正常に終わっていない",
    ]
    narrated = CliRunner().invoke(app, ["replay", str(broken), "--lang", "ja"])
    assert narrated.exit_code == 0, narrated.output
    assert "JSON オブジェクトではない — 読み飛ばした" in narrated.stdout
    assert "not a JSON object" not in narrated.stdout
    har = str(tmp_path / "b.har")
    exported = CliRunner().invoke(app, ["export", str(broken), "--har", har, "--lang", "ja"])
    assert "dockertap: 警告: " in exported.stderr and "フッターが無い" in exported.stderr
