"""`dockertap doctor` in Japanese: every sentence translated, chosen by locale or --lang, wrapped by width."""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import subprocess
import sys

import pytest
from fakesock import FakeServer, other_http, short_tmpdir, stale_socket
from rich.cells import cell_len

from dockertap.doctor_text import DIAGNOSES, TEXT, say, speaking
from dockertap.doctor_text_ja import DIAGNOSES_JA, TEXT_JA
from dockertap.linebreak import NO_START

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Sentences that are the same in every language: only a variable, an option or a placeholder.
SAME_IN_EVERY_LANGUAGE = {"origin.DOCKER_HOST", "origin.-H", "fix.start-engine", "column.pid"}
JAPANESE = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff]")


def placeholders(template: str) -> set[tuple[str, str | None, str | None]]:
    """The `{field!conv:spec}` parts of a `str.format` template (a translation may reorder them)."""
    return {
        (name, conv, spec) for _, name, spec, conv in string.Formatter().parse(template) if name is not None
    }


SENTENCES = [(key, TEXT[key], TEXT_JA.get(key)) for key in TEXT] + [
    (
        f"{origin}/{kind}/{part}",
        DIAGNOSES[(origin, kind)][n],
        (DIAGNOSES_JA.get((origin, kind)) or (None, None))[n],
    )
    for origin, kind in DIAGNOSES
    for n, part in enumerate(("problem", "fix"))
]


@pytest.mark.parametrize(("key", "english", "japanese"), SENTENCES, ids=[s[0] for s in SENTENCES])
def test_every_doctor_sentence_has_japanese_with_the_same_placeholders(key, english, japanese) -> None:
    assert japanese is not None, f"no Japanese for {key!r}: add it to dockertap/doctor_text_ja.py"
    assert placeholders(japanese) == placeholders(english), (english, japanese)
    if key not in SAME_IN_EVERY_LANGUAGE and english != "{hint}":
        assert JAPANESE.search(japanese), f"{key!r} is not translated: {japanese!r}"
    assert "レイヤ" not in japanese or "レイヤー" in japanese  # the team's one spelling


def test_no_japanese_sentence_is_left_over_from_a_removed_key() -> None:
    assert set(TEXT_JA) <= set(TEXT) and set(DIAGNOSES_JA) <= set(DIAGNOSES)


def test_a_missing_translation_falls_back_to_english(monkeypatch) -> None:
    monkeypatch.delitem(TEXT_JA, "no-problems")
    with speaking("ja"):
        assert say("no-problems") == TEXT["no-problems"]
        assert say("section.problems") == "問題"
    assert say("section.problems") == "Problems"  # the language ends with its block


# --- the command, against real sockets ---------------------------------------------------------------


@pytest.fixture
def base():
    path = short_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`dockertap doctor` with only PATH from our environment (no inherited locale), a 0.5 s probe timeout."""
    return subprocess.run(
        [sys.executable, "-m", "dockertap", "doctor", "--timeout", "0.5", *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def squeezed(text: str) -> str:
    """`text` without whitespace: a sentence is found however the terminal width broke it."""
    return re.sub(r"\s+", "", text)


def assert_wrapped_by_kinsoku(out: str, columns: int) -> None:
    """Outside tables, no line is wider than the terminal or starts with a particle or closing punctuation."""
    for line in out.splitlines():
        if re.search("[│┃┏┡└]", line):
            continue
        assert cell_len(line) <= columns, line
        assert line.lstrip(" ")[:1] not in NO_START, line


def test_japanese_locale_reports_a_missing_socket_in_japanese(base) -> None:
    sock = f"{base}/none.sock"
    # A width where breaking at the last ASCII space would start a line with the particle は.
    columns = cell_len(f"  x DOCKER_HOST が指す {sock}") + 2
    done = doctor(HOME=base, DOCKER_HOST=f"unix://{sock}", LANG="ja_JP.UTF-8", COLUMNS=str(columns))
    assert done.returncode == 1, done.stderr
    out = squeezed(done.stdout)
    assert squeezed(f"docker CLI が使う接続先は unix://{sock} - 動作しない") in out
    assert squeezed(f"問題 x DOCKER_HOST が指す {sock} は存在しない") in out
    assert squeezed("対処: DOCKER_HOST を unset する (または動いているエンジンを指すようにする)。") in out
    assert "does not work" not in done.stdout and "Problems" not in done.stdout
    assert_wrapped_by_kinsoku(done.stdout, columns)


def test_lc_all_and_lc_messages_outrank_lang_like_the_other_commands(base) -> None:
    env = {"HOME": base, "DOCKER_HOST": f"unix://{base}/none.sock"}
    assert "動作しない" in doctor(**env, LANG="C.UTF-8", LC_MESSAGES="ja_JP.UTF-8").stdout
    assert "does not work" in doctor(**env, LANG="ja_JP.UTF-8", LC_ALL="C.UTF-8").stdout


def test_japanese_diagnoses_of_a_stale_socket_and_a_server_that_is_not_docker(base) -> None:
    stale = stale_socket(f"{base}/stale.sock")
    done = doctor(HOME=base, DOCKER_HOST=f"unix://{stale}", LANG="ja_JP.UTF-8", COLUMNS="200")
    assert done.returncode == 1
    assert f"DOCKER_HOST が指す {stale} は、誰も待ち受けていない古いソケット" in done.stdout
    assert "そのソケットを持つエンジンを起動するか、DOCKER_HOST を unset する。" in done.stdout

    with FakeServer(f"{base}/web.sock", other_http):
        done = doctor(HOME=base, DOCKER_HOST=f"unix://{base}/web.sock", LANG="ja_JP.UTF-8", COLUMNS="200")
    assert done.returncode == 1
    assert f"unix://{base}/web.sock は HTTP を話すが Docker API ではない" in done.stdout


def test_lang_en_overrides_a_japanese_locale_and_json_stays_english(base) -> None:
    env = {"HOME": base, "DOCKER_HOST": f"unix://{base}/none.sock", "LANG": "ja_JP.UTF-8", "COLUMNS": "200"}
    english = doctor("--lang", "en", **env)
    assert english.returncode == 1
    assert f"The docker CLI would use unix://{base}/none.sock - does not work" in english.stdout
    assert f"DOCKER_HOST points at {base}/none.sock, which does not exist" in english.stdout
    assert not JAPANESE.search(english.stdout), english.stdout

    for args in (["--json"], ["--json", "--lang", "ja"]):
        done = doctor(*args, **env)
        problem = json.loads(done.stdout)["diagnoses"][0]["problem"]
        assert problem == f"DOCKER_HOST points at {base}/none.sock, which does not exist"


def test_readme_shows_doctor_lang_ja_as_it_prints_now(base) -> None:
    """The README's `doctor --lang ja` example: its headline and diagnosis are what doctor prints today."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as readme:
        block = re.search(r"\$ (DOCKER_HOST=(\S+) dockertap doctor --lang ja)\n(.*?)```", readme.read(), re.S)
    assert block, "README has no `dockertap doctor --lang ja` example"
    host, shown = block.group(2), block.group(3).splitlines()
    assert not os.path.exists(host.removeprefix("unix://"))
    done = doctor("--lang", "ja", DOCKER_HOST=host, HOME=base, COLUMNS="100")
    printed = done.stdout.splitlines()
    assert shown[0] == printed[0]  # the headline
    problem = next(line for line in shown if line.startswith("  x "))
    assert problem in printed
    assert printed[printed.index(problem) + 1].startswith(shown[shown.index(problem) + 1][:40])
