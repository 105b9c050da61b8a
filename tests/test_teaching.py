"""Teaching: narration that agrees with the model, the sequence diagram, Japanese line breaking, stepping,
`explain docker …`, and the HTML page (checked in a real headless Chromium).

Pure tests use the bundled recordings (made from real engines); no engine runs here.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import engines
import pytest
from test_replay import served_docker as _docker
from test_replay import served_log as _log
from typer.testing import CliRunner

from dockertap.analyzers.commands import COMMANDS
from dockertap.analyzers.layer_table import ROWS, expected_chain
from dockertap.analyzers.routes import match_route
from dockertap.app import app
from dockertap.i18n import MESSAGES, NOUNS, counted, default_lang
from dockertap.linebreak import NO_START, line_starts, wrap_text
from dockertap.recordings.diagram import build_diagram, dedupe_evidence, flatten_evidence
from dockertap.recordings.html_export import render_html
from dockertap.recordings.narrate import PHRASES, Narrator, narration, render_text
from dockertap.recordings.replayable import bundled_recordings, load_replay

runner = CliRunner()
BUNDLED = bundled_recordings()


# -- narration contradictions ------------------------------------------------------------------------


def test_attach_without_stdin_does_not_claim_close_io() -> None:
    """dockerd calls CloseIO only when an attach carries stdin (stdin=1) and the client's stdin ends."""
    plain = expected_chain(
        "dockerd", "graphdriver", match_route("POST", "/v1.41/containers/c/attach?stream=1")
    )
    assert plain.layers == ("dockerd",) and "nothing new happens below dockerd" in plain.explanation["en"]
    with_stdin = expected_chain(
        "dockerd", "graphdriver", match_route("POST", "/v1.41/containers/c/attach?stdin=1&stream=1")
    )
    assert with_stdin.step("containerd").operations == ("Tasks.CloseIO",)
    assert "nothing new happens" not in with_stdin.explanation["en"]


def test_docker_run_narration_attach_shows_no_containerd() -> None:
    """The bundled recording was made with the old model: the narration shows the corrected chain."""
    out = render_text(load_replay(BUNDLED["docker-run"]))
    attach = out.split("POST /containers/{id}/attach  →")[1].split("POST /containers/{id}/wait")[0]
    assert "nothing new happens below dockerd" in attach
    assert "layers: dockerd✓\n" in attach and "CloseIO" not in attach


def test_podman_start_after_attach_init_shows_only_runc_start() -> None:
    out = render_text(load_replay(BUNDLED["podman-run"]))
    start = out.split("POST /containers/{id}/start  →")[1]
    assert "layers: compat-api✓ → runc✓[start]\n" in start
    assert (
        "already done for this container by POST /containers/{id}/attach: conmon spawn, runc create" in start
    )


def test_runc_init_re_exec_is_shown_once() -> None:
    session = load_replay(BUNDLED["docker-run"])
    execs = Counter(
        item["pid"]
        for r in session.exchanges
        for item in r.evidence
        if item.get("argv", [None])[:2] == ["runc", "init"]
    )
    out = render_text(session)
    lines = [line for line in out.splitlines() if "evidence: runc init" in line]
    assert len(lines) == len(execs) >= 1  # one line per process
    for line in lines:  # runc 1.1 re-execs itself (two execs, one pid); runc 1.3 does not
        assert ("2 times by one process" in line) == (execs[int(line.split(" pid ")[1].split()[0])] == 2)


def test_counted_nouns_in_english() -> None:
    out = render_text(load_replay(BUNDLED["docker-run"]))
    assert "5 exchanges from 1 client command\n" in out
    assert not re.search(r"\b1 (exchanges|client commands|API calls|items|fields|lines)\b", out)
    assert counted("en", 1, "exchange") == "1 exchange" and counted("en", 2, "exchange") == "2 exchanges"
    assert counted("ja", 1, "exchange") == "1 件のやり取り"


# -- diagram ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_diagram_has_one_arrow_per_exchange_and_evidence_item(name: str) -> None:
    session = load_replay(BUNDLED[name])
    diagram = build_diagram(session)
    exchanges = [a for a in diagram.arrows if a.kind == "exchange"]
    evidence = [a for a in diagram.arrows if a.kind == "evidence"]
    assert len(exchanges) == len(session.exchanges)
    assert len(evidence) == sum(len(dedupe_evidence(r.evidence)) for r in session.exchanges) + len(
        dedupe_evidence(flatten_evidence(session.evidence))  # a grouped exit clean-up: one arrow per item
    )
    assert len(diagram.spans) == sum(1 for r in session.exchanges if r.hijacked)
    assert [a.row for a in diagram.arrows] == list(range(len(diagram.arrows)))  # time order, one per row
    lanes = [lane.key for lane in diagram.lanes]
    assert lanes[:3] == ["client", "dockertap", "api"] and lanes[-1] == "host"


@pytest.mark.parametrize("width", [80, 120, 200])
def test_terminal_diagram_draws_every_arrow_within_the_width(width: int) -> None:
    from rich.console import Console

    from dockertap.recordings.diagram_term import diagram_renderable

    session = load_replay(BUNDLED["docker-run"])
    diagram = build_diagram(session)
    console = Console(width=width, record=True, file=open(os.devnull, "w"), color_system=None)
    console.print(diagram_renderable(diagram), soft_wrap=True)
    lines = console.export_text().splitlines()
    arrows = [line for line in lines if "▶" in line or "◀" in line or "↺" in line]
    assert len(arrows) == len(diagram.arrows)
    assert sum("┃" in line for line in lines) == diagram.spans[0].last_row - diagram.spans[0].first_row + 1
    for arrow, line in zip(diagram.arrows, arrows, strict=True):
        assert line.endswith(arrow.label)
        drawing = line[: len(line) - len(arrow.label)]
        assert len(drawing) <= max(width - 30, 4 + 9 * len(diagram.lanes) + 1)


def test_background_evidence_is_drawn_too(tmp_path: Path) -> None:
    """The exit clean-up nobody asked for (no API call behind it) is observed evidence: it gets an arrow."""
    session = load_replay(BUNDLED["docker-run"])
    last = session.exchanges[-1]
    container = json.loads(session.exchanges[1].response_body)["Id"]
    item = {
        "type": "evidence", "source": "exec", "time": (last.ended or last.started) + 0.05, "pid": 99999,
        "ppid": 1, "argv": ["runc", "delete", container], "program": "runc", "layer": "runc",
        "runtime_command": "delete", "container_id": container, "unreadable": False,
    }  # fmt: skip
    lines = BUNDLED["docker-run"].read_text().splitlines()
    path = tmp_path / "with-cleanup.jsonl"
    path.write_text("\n".join([*lines[:-1], json.dumps(item), lines[-1]]) + "\n")
    with_cleanup = load_replay(path)
    assert len(with_cleanup.evidence) == len(session.evidence) + 1
    before, after = build_diagram(session), build_diagram(with_cleanup)
    added = [a for a in after.arrows if a.background and a.time == item["time"]]
    background_before = [a for a in before.arrows if a.background]
    assert len([a for a in after.arrows if a.background]) == len(background_before) + 1
    assert len(added) == 1 and added[0].label == "runc delete" and added[0].target == "runtime"
    assert after.summary.evidence == before.summary.evidence + 1
    assert "runc delete" in after.summary.runtime_commands
    assert "evidence (no API call behind it): runc delete" in render_text(with_cleanup)
    assert 'data-background="1"' in render_html(with_cleanup)


def test_grouped_exit_clean_up_is_narrated_and_drawn_item_by_item(tmp_path: Path) -> None:
    """A container's exit clean-up is recorded as one record holding its items (with who noticed it)."""
    session = load_replay(BUNDLED["docker-run"])
    last = session.exchanges[-1]
    container = json.loads(session.exchanges[1].response_body)["Id"]
    at = (last.ended or last.started) + 0.05
    items = [
        {"source": "containerd", "time": at, "topic": "/tasks/exit", "container_id": container},
        {"source": "exec", "time": at + 0.01, "pid": 99998, "ppid": 1, "argv": ["runc", "delete", container],
         "program": "runc", "layer": "runc", "runtime_command": "delete", "container_id": container},
    ]  # fmt: skip
    group = {"type": "evidence", "kind": "container-exit", "container_id": container, "time": at,
             "observed_by": [4], "items": items}  # fmt: skip
    lines = BUNDLED["docker-run"].read_text().splitlines()
    path = tmp_path / "with-exit.jsonl"
    path.write_text("\n".join([*lines[:-1], json.dumps(group), lines[-1]]) + "\n")
    with_exit = load_replay(path)
    injected = {item["time"] for item in items}  # the recording has its own clean-up too
    drawn = [a for a in build_diagram(with_exit).arrows if a.background and a.time in injected]
    assert [(a.label, a.target) for a in drawn] == [("/tasks/exit", "containerd"), ("runc delete", "runtime")]
    out = render_text(with_exit)
    assert f"container exit {container[:12]}, noticed by exchange #4" in out
    assert f"        containerd /tasks/exit container {container[:12]}" in out
    assert f"        runc delete container {container[:12]} pid 99998" in out


def test_summary_says_which_calls_reached_runc() -> None:
    session = load_replay(BUNDLED["docker-run"])
    out = render_text(session)
    summary = out.split("What you just saw")[1]
    assert "calls that reached runc: POST /containers/{id}/start\n" in summary
    assert (
        "answered by dockerd alone: HEAD /_ping, POST /containers/create, POST /containers/{id}/attach"
        in summary
    )


def test_lesson_summary_from_the_header(tmp_path: Path) -> None:
    source = BUNDLED["docker-ps"] if "docker-ps" in BUNDLED else BUNDLED["docker-run"]
    lines = source.read_text().splitlines()
    header = json.loads(lines[0])
    header["summary"] = {"en": ["docker ps stops at dockerd."], "ja": ["docker ps は dockerd で止まる。"]}
    path = tmp_path / "lesson.jsonl"
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert "The point of this lesson:\n  • docker ps stops at dockerd." in render_text(load_replay(path))
    assert "docker ps は dockerd で止まる。" in render_text(load_replay(path), "ja")


# -- Japanese -----------------------------------------------------------------------------------------


def test_every_phrase_and_message_has_both_languages() -> None:
    assert set(PHRASES["en"]) == set(PHRASES["ja"])
    assert set(MESSAGES["en"]) == set(MESSAGES["ja"])
    assert set(NOUNS["en"]) == set(NOUNS["ja"])
    for row in ROWS:
        assert bool(row.en) == bool(row.ja), row.key


def test_one_term_for_layer() -> None:
    from dockertap.analyzers.commands import NOTES_JA

    texts = [row.ja for row in ROWS] + list(PHRASES["ja"].values()) + list(MESSAGES["ja"].values())
    texts += list(NOTES_JA.values())
    assert not [t for t in texts if re.search("レイヤ(?!ー)", t)]


def test_particle_never_starts_a_line() -> None:
    text = "ネットワークは libnetwork で、dockerd がネットワークを設定し、`runc start` する。"
    for width in range(12, 60):
        starts = line_starts(text, width)
        assert all(text[s] not in NO_START for s in starts[1:]), (width, starts)


@pytest.mark.parametrize("width", [24, 33, 40, 57, 80])
def test_japanese_narration_wraps_without_kinsoku_violations(width: int) -> None:
    for path in BUNDLED.values():
        session = load_replay(path)
        for item in narration(session, "ja"):
            wrapped = wrap_text(item.renderable, width).plain
            for line in wrapped.splitlines():
                body = line.lstrip(" ")
                assert not body or body[0] not in NO_START, (path.name, width, line)
    from dockertap.analyzers.commands import NOTES_JA

    for ja in [row.ja for row in ROWS if row.ja] + list(NOTES_JA.values()) + list(MESSAGES["ja"].values()):
        for line in wrap_text(_text("      " + ja), width).plain.splitlines():
            assert line.lstrip(" ")[:1] not in NO_START, (ja, width, line)


def _text(plain: str):
    from rich.text import Text

    return Text(plain)


def test_language_defaults_from_the_locale() -> None:
    assert default_lang({"LANG": "ja_JP.UTF-8"}) == "ja"
    assert default_lang({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}) == "en"
    assert default_lang({"LC_MESSAGES": "ja_JP", "LANG": "en_US"}) == "ja"
    assert default_lang({}) == "en"
    out = subprocess.run(
        [*engines.dockertap_command(), "replay", "docker-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "LANG": "ja_JP.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""},
        timeout=60,
    ).stdout
    assert "記録の終わり" in out and "到達した層" in out


# -- stepping -----------------------------------------------------------------------------------------


def _replay(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*engines.dockertap_command(), "replay", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
    )


def test_step_from_a_pipe_keys_and_newline_after_prompt() -> None:
    result = _replay("docker-run", "--step", input="\nb\n4\n?\nx\n9\nq\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    prompts = [n for n, line in enumerate(lines) if line.startswith("[") and "q: quit" in line]
    assert len(prompts) == 7
    # The prompt is its own line: the next exchange starts on a line of its own.
    assert lines[prompts[0]].endswith("? : help".replace(" : ", ": ")) and lines[prompts[0] + 1].startswith(
        "  "
    )
    assert lines[prompts[1]].startswith("[2/5]") and lines[prompts[2]].startswith("[1/5]")  # b went back
    assert lines[prompts[3]].startswith("[4/5]")  # jumped to 4
    assert "Keys: Enter or space" in result.stdout and "unknown key 'x'" in result.stdout
    assert "no step 9 (steps 1–5)" in result.stdout
    assert "End of recording" not in result.stdout  # q quit before the end


def test_step_runs_to_the_end_when_input_ends() -> None:
    result = _replay("docker-run", "--step", input="\n")
    assert result.returncode == 0
    assert "End of recording: 5 exchanges shown." in result.stdout and "What you just saw" in result.stdout


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_step_in_a_terminal_with_tmux(tmp_path: Path) -> None:
    """Single keys on a real terminal: space, b, 3+Enter, ?, q; then Ctrl-C exits 130."""
    session = f"dtteach{os.getpid()}"
    rc_file = tmp_path / "rc"
    # Ctrl-C reaches the whole foreground group: the shell traps it (a handler, not an ignore, so dockertap
    # still gets SIGINT) to survive and write dockertap's exit code.
    command = " ".join([*engines.dockertap_command(), "replay", "docker-run", "--step"])
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "160",
            "-y",
            "50",
            f"trap true INT; {command}; echo $? > {rc_file}",
        ],
        check=True,
    )
    try:

        def screen() -> str:
            return subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session, "-S", "-200"], capture_output=True, text=True
            ).stdout

        def wait_for(text: str) -> str:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                out = screen()
                if text in out:
                    return out
                time.sleep(0.1)
            raise AssertionError(f"{text!r} not on screen:\n{screen()}")

        wait_for("[1/5]")
        subprocess.run(["tmux", "send-keys", "-t", session, " "], check=True)
        wait_for("[2/5]")
        subprocess.run(["tmux", "send-keys", "-t", session, "3", "Enter"], check=True)
        wait_for("[3/5]")
        subprocess.run(["tmux", "send-keys", "-t", session, "?"], check=True)
        wait_for("Keys: Enter or space")
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        deadline = time.monotonic() + 20
        while not rc_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc_file.read_text().strip() == "130"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


# -- explain docker … ---------------------------------------------------------------------------------


def _explain(*args: str):
    return runner.invoke(app, ["explain", *args], env={"COLUMNS": "200"})


def test_explain_docker_run_lists_calls_in_order_with_layers() -> None:
    result = _explain("docker", "run", "--rm", "-it", "img", "sh")
    assert result.exit_code == 0, result.output
    out = result.output
    order = [out.index(r) for r in ("HEAD /_ping", "POST /containers/create", "/attach", "/wait", "/start")]
    assert order == sorted(order)
    start = out.split("POST /containers/{id}/start")[1]
    assert "runc[create start]" in start.split("POST /containers/{id}/resize")[0]
    assert "only when the CLI runs on a terminal" in out and "run.go" in out
    # -i: the attach carries stdin, so the model shows dockerd closing it through containerd.
    attach = out.split("POST /containers/{id}/attach")[1].split("POST /containers/{id}/wait")[0]
    assert "containerd[Tasks.CloseIO]" in attach


def test_explain_flags_change_the_sequence() -> None:
    detached = _explain("docker", "run", "-d", "--name", "x", "img").output
    assert "POST /containers/{id}/attach" not in detached.split("skipped here")[0]
    assert "skipped here: POST /containers/{id}/attach, only without -d" in detached
    not_a_flag = _explain("docker", "run", "img", "ls", "-d").output  # -d after the image is ls's
    assert "skipped here: POST /containers/{id}/attach" not in not_a_flag


def test_explain_quoted_command_and_podman() -> None:
    out = _explain("docker ps").output
    assert "GET /containers/json" in out and "nothing below dockerd" in out
    podman = _explain("--backend-family", "podman", "docker", "run", "--rm", "img").output
    assert "conmon" in podman.split("POST /containers/{id}/attach")[1]


def test_explain_unknown_route_and_command_exit_2() -> None:
    for args in (["GET /not/a/route"], ["docker", "frobnicate"], ["POST"]):
        result = _explain(*args)
        assert result.exit_code == 2, (args, result.output)


def test_every_command_row_names_a_source_and_known_routes() -> None:
    from dockertap.analyzers.commands import NOTES_JA

    notes = {note for row in COMMANDS for note in (*row.notes, *(c.note for c in row.calls if c.note))}
    assert notes == set(NOTES_JA)  # every note in both languages, no stale translation
    for row in COMMANDS:
        assert row.source
        for call in row.calls:
            method, path = call.route.split(" ", 1)
            assert match_route(method, path).known, call.route


# -- HTML ---------------------------------------------------------------------------------------------


def _crafted(tmp_path: Path) -> Path:
    """docker-run with hostile strings in the title, a command and an evidence item."""
    lines = BUNDLED["docker-run"].read_text().splitlines()
    header = json.loads(lines[0])
    header["title"] = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    out = [json.dumps(header)]
    for line in lines[1:]:
        record = json.loads(line)
        if record.get("type") == "exchange" and isinstance(record.get("client"), dict):
            record["client"]["command"] = "docker <b>bold</b> & '\"<svg onload=alert(3)>"
        out.append(json.dumps(record))
    path = tmp_path / "crafted.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


def test_html_escapes_every_recorded_string(tmp_path: Path) -> None:
    page = render_html(load_replay(_crafted(tmp_path)))
    assert "<script" not in page and "<img" not in page and "<svg onload" not in page and "<b>" not in page
    assert html.escape("<script>alert(1)</script>") in page
    assert "Content-Security-Policy" in page and "http://" not in page.replace(
        "http://www.w3.org/2000/svg", ""
    )


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_html_page_renders_in_headless_chromium(tmp_path: Path, lang: str) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("DOCKERTAP_REQUIRE_ENGINES") == "1":
            pytest.fail("chromium is required in CI (APT_PACKAGES)")
        pytest.skip("chromium is not installed")
    page = tmp_path / "page.html"
    result = runner.invoke(app, ["export", str(_crafted(tmp_path)), "--html", str(page), "--lang", lang])
    assert result.exit_code == 0, result.output
    session = load_replay(tmp_path / "crafted.jsonl")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [browser, *flags, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        shot = tmp_path / "page.png"
        subprocess.run(
            [browser, *flags, f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1600,1000",
             page.as_uri()],
            capture_output=True, timeout=120,
        )  # fmt: skip
    assert "<svg" in dom
    diagram = build_diagram(session)
    assert dom.count('class="lane"') == len(diagram.lanes)
    assert dom.count('data-kind="exchange"') == len(session.exchanges)
    assert dom.count('data-kind="evidence"') == sum(
        len(dedupe_evidence(r.evidence)) for r in session.exchanges
    ) + len(dedupe_evidence(flatten_evidence(session.evidence)))
    assert dom.count('class="span"') == sum(1 for r in session.exchanges if r.hijacked)
    # Each exchange's label links to its narration, which is there under that id.
    for step in range(1, len(session.exchanges) + 1):
        assert dom.count(f'href="#step-{step}"') == 1 and dom.count(f'id="step-{step}"') == 1
    assert "<script" not in dom and "onerror=" not in dom.replace("onerror=alert(2)&gt;", "")
    assert shot.exists() and shot.stat().st_size > 10_000
    if lang == "ja":
        assert "到達した層" in dom and "いま見たこと" in dom
    narrator = Narrator(session, lang)
    assert narrator.lang == lang


# -- replay --serve for a classroom (the real docker CLI, no engine) ----------------------------------


@pytest.fixture
def served_run(short_tmp: Path):
    from test_replay import Served

    server = Served(BUNDLED["docker-run"], short_tmp, "--speed", "0")
    try:
        yield server
    finally:
        server.stop()


def test_served_unrecorded_request_is_501_naming_lesson_and_closest(served_run) -> None:
    result = _docker(served_run, "ps")
    assert result.returncode == 1
    assert (
        "the lesson 'docker-run'" in result.stderr
        and "has no recorded answer for GET /containers/json" in result.stderr
    )
    assert "closest recorded request:" in result.stderr
    assert "No such" not in result.stderr  # a 404 would read as a missing object
    assert "→ 501" in _log(served_run, "→ 501")


def test_served_run_with_another_image_and_command_warns(served_run) -> None:
    result = _docker(served_run, "run", "--rm", "alpine", "echo", "hi")
    assert result.stdout == "hello from a container\n"  # the recording's answer, as recorded
    log = _log(served_run, "differs from the recorded one")
    assert 'Image: recorded "dt-busybox:latest", got "alpine"' in log
    assert '"hi"' in log  # the command differs too
    # The same warning travels in a response header the CLI ignores.
    import http.client
    import socket

    conn = http.client.HTTPConnection("localhost", timeout=10)
    conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.sock.connect(str(served_run.socket))
    body = json.dumps({"Image": "alpine", "Cmd": ["sh"]})
    conn.request("POST", "/v1.41/containers/create", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    assert response.status == 201
    warning = response.getheader("X-Dockertap-Replay-Warning")
    assert warning and 'Image: recorded \\"dt-busybox:latest\\", got \\"alpine\\"' in warning


def test_served_run_detached_does_not_exit_0_after_an_error(short_tmp: Path) -> None:
    from test_replay import Served

    server = Served(BUNDLED["docker-exec"], short_tmp, "--speed", "0")  # no create recorded there
    try:
        result = _docker(server, "run", "-d", engines.BUSYBOX_TAG, "true")
        assert result.returncode != 0
        assert "has no recorded answer for POST /containers/create" in result.stderr
    finally:
        server.stop()


def test_served_run_detached_against_an_attached_lesson_fails_then_the_lesson_still_plays(
    short_tmp: Path,
) -> None:
    """`-d` waits with condition=next-exit, which the lesson never recorded: the start is refused (not a
    silent exit 0), and the next `docker run` of the lesson is unaffected."""
    from test_replay import Served

    server = Served(BUNDLED["podman-run"], short_tmp, "--speed", "0")
    try:
        for _ in range(3):  # the CLI sends wait and start concurrently: the outcome must not depend on it
            detached = _docker(server, "run", "-d", engines.BUSYBOX_TAG, "true")
            assert detached.returncode == 125, detached.stderr
            assert "wait?condition=next-exit, so POST /containers/" in detached.stderr
            attached = _docker(server, "run", "--rm", engines.BUSYBOX_TAG, "echo", "hello from a container")
            assert (attached.returncode, attached.stdout) == (0, "hello from a container\n"), attached.stderr
    finally:
        server.stop()


def test_served_version_is_synthesised_from_the_fingerprint_when_not_recorded(short_tmp: Path) -> None:
    from test_replay import Served

    session = load_replay(BUNDLED["podman-run"])
    assert not [r for r in session.exchanges if r.route in ("GET /version", "GET /info")]
    server = Served(BUNDLED["podman-run"], short_tmp, "--speed", "0")
    try:
        version = _docker(server, "version", "--format", "{{json .Server}}")
        assert version.returncode == 0, version.stderr
        server_doc = json.loads(version.stdout)
        assert server_doc["Components"][0]["Name"] == "Podman Engine"
        assert server_doc["Version"] == session.backend["engine_version"]
        info = _docker(server, "info", "--format", "{{.ServerVersion}}")
        assert info.returncode == 0 and info.stdout.strip() == session.backend["engine_version"]
        assert "synthesised from the recorded backend fingerprint" in server.err.read_text()
    finally:
        server.stop()


# -- explain agrees with real traces -------------------------------------------------------------------


#: (docker arguments, what the shell line sends on stdin and sets before `docker`; {cli}/{plugins} filled in).
EXPLAINED: list[tuple[str, str]] = [
    ("ps", ""),
    ("images", ""),
    ("version", ""),
    ("info", ""),
    (f"run --rm {engines.BUSYBOX_TAG} echo hi", ""),
    (f"run -d --name teach-c {engines.BUSYBOX_TAG} sleep 30", ""),
    ("exec teach-c echo hi", ""),
    ("logs teach-c", ""),
    ("top teach-c", ""),
    ("update --cpu-shares 512 teach-c", ""),
    ("stop -t 1 teach-c", ""),
    ("start teach-c", ""),
    ("rm -f teach-c", ""),
    ("pull localhost:1/nothing:latest", ""),
    (f"run --rm -i {engines.BUSYBOX_TAG} cat", ""),
    ("build -q -t teach-b -", f"printf 'FROM {engines.BUSYBOX_TAG}\\nRUN true\\n' | DOCKER_BUILDKIT=0 "),
    (
        "build -q -t teach-bk -",
        f"printf 'FROM {engines.BUSYBOX_TAG}\\nRUN true\\n' | DOCKER_CONFIG={{plugins}} ",
    ),
    ("compose -p teach up -d", "cd {project} && DOCKER_CONFIG={plugins} "),
]


def test_explain_sequences_match_real_dockerd_traces(dockerd, tmp_path: Path) -> None:
    """The real docker CLI (with buildx and compose v2) through dockertap: each command's routes, in order,
    are what explain lists (as a set for BuildKit, whose connections run concurrently)."""
    from test_replay import record

    from dockertap.analyzers.commands import call_sequence, find_command
    from dockertap.recordings.narrate import group_by_client

    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {engines.BUSYBOX_TAG}\n    command: sleep 30\n"
    )
    cli, plugins = engines.docker_binary(), engines.plugin_config_dir()
    lines = []
    for command, prefix in EXPLAINED:
        prefix = prefix.format(plugins=plugins, project=project)
        lines.append(f"{prefix}{cli} {command}" + ("" if "|" in prefix else " < /dev/null"))
    path = tmp_path / "trace.jsonl"
    live = record(dockerd.url, path, "\n".join(lines) + "\n")
    engines.docker(dockerd.url, "rm", "-f", "teach-c", "teach-web-1")
    engines.docker(dockerd.url, "rmi", "-f", "teach-b", "teach-bk")
    engines.docker(dockerd.url, "network", "rm", "teach_default")
    assert "hi" in live.stdout, live.stderr
    groups = []
    for group in group_by_client(load_replay(path).exchanges):
        program, _, args = (group.command or "").partition(" ")
        if "/cli-plugins/docker-" in program:  # `docker-buildx buildx build …`: what `docker build …` ran
            plugin_args = args.split(" ", 1)[1] if " " in args else ""
            if groups and (groups[-1].command or "").partition(" ")[2] == plugin_args:
                groups[-1].exchanges += group.exchanges
                continue
        groups.append(group)
    assert len(groups) == len(EXPLAINED), [g.command for g in groups]
    for (command, prefix), group in zip(EXPLAINED, groups, strict=True):
        found = find_command(command.split())
        assert found is not None, command
        row, args = found
        env = [word for word in prefix.split() if "=" in word and not word.startswith("DOCKER_CONFIG")]
        expected = [c.route for c in call_sequence(row, args, env) if not c.terminal_only]
        observed = [rec.route for rec in group.exchanges]
        if "buildkit" in row.defaults and "DOCKER_BUILDKIT=0" not in env:
            assert set(observed) == set(expected), command
        else:
            assert observed == expected, command


PODMAN_EXPLAINED = [
    "ps",
    "version",
    f"run --rm {engines.BUSYBOX_TAG} echo hi",
    f"run -d --name teach-p {engines.BUSYBOX_TAG} sleep 30",
    "exec teach-p echo hi",
    "logs teach-p",
    "stop -t 1 teach-p",
    "rm -f teach-p",
]


def test_explain_sequences_match_real_podman_traces(podman, tmp_path: Path) -> None:
    """The CLI decides the calls, so Podman's compat API sees the same sequences (its layers differ)."""
    from test_replay import record

    from dockertap.analyzers.commands import call_sequence, find_command
    from dockertap.recordings.narrate import group_by_client

    cli = engines.docker_binary()
    path = tmp_path / "trace.jsonl"
    live = record(podman.url, path, "".join(f"{cli} {command} < /dev/null\n" for command in PODMAN_EXPLAINED))
    assert "hi" in live.stdout, live.stderr
    groups = group_by_client(load_replay(path).exchanges)
    assert len(groups) == len(PODMAN_EXPLAINED)
    for command, group in zip(PODMAN_EXPLAINED, groups, strict=True):
        found = find_command(command.split())
        assert found is not None
        expected = [c.route for c in call_sequence(*found) if not c.terminal_only]
        assert [rec.route for rec in group.exchanges] == expected, command
