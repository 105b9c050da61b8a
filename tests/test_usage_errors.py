"""Every user error on every command: one clear line on stderr, exit status 2, no traceback, and
nothing left behind (no socket, no private directory, no half-written file)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import engines
import pytest

REPO = Path(__file__).resolve().parent.parent
RECORDING = str(REPO / "recordings" / "bundled" / "docker-run.jsonl")
MISSING = "/nonexistent-dir-dockertap"

# (arguments, words the one line must contain). `{tmp}` is a private, empty directory.
USAGE_ERRORS = [
    (["export", RECORDING, "--har", f"{MISSING}/x.har"], ["--har", MISSING, "does not exist"]),
    (["export", RECORDING, "--flows", f"{MISSING}/x.flows"], ["--flows", MISSING]),
    (["export", RECORDING, "--har", "{tmp}"], ["--har", "is a directory"]),
    (["import", RECORDING, "-o", f"{MISSING}/y"], ["--output", MISSING]),
    (["run", "-o", f"{MISSING}/t", "--", "true"], ["--trace-file", MISSING]),
    (["run", "-o", "{tmp}", "--", "true"], ["--trace-file", "is a directory"]),
    (["run", "--record", f"{MISSING}/r.jsonl", "--", "true"], ["--record", MISSING]),
    (["run", "--bogus", "--", "docker", "ps"], ["No such option: --bogus"]),
    (["run", "--capture-bytes", "-5", "--", "true"], ["--capture-bytes", "greater than or equal to 0"]),
    (["run", "--settle", "-1", "--", "true"], ["--settle", "greater than or equal to 0"]),
    (["run", "--backend", "ssh://me@box", "--", "true"], ["--backend", "ssh://"]),
    (["run"], ["Missing argument"]),
    (["proxy", "--record", f"{MISSING}/r.jsonl", "--listen", "unix://{tmp}/p.sock"], ["--record", MISSING]),
    (["proxy", "--listen", "http://x"], ["--listen", "http://", "tcp://x"]),
    (["proxy", "--listen", "ftp://x"], ["--listen", "'ftp'"]),
    (["proxy", "--backend", "http://x:2375"], ["--backend", "http://"]),
    (["proxy", "--capture-bytes", "-5"], ["--capture-bytes", "greater than or equal to 0"]),
    (["proxy", "--capture-bytes", "lots"], ["--capture-bytes", "valid integer"]),
    (["proxy", "--settle", "-1"], ["--settle", "greater than or equal to 0"]),
    (["proxy", "--format", "xml"], ["--format", "xml"]),
    (["doctor", "--timeout", "-1"], ["--timeout", "greater than or equal to 0.1"]),
    (["doctor", "--timeout", "0"], ["--timeout"]),
    (["replay", "docker-run", "--speed", "-1"], ["--speed", "greater than or equal to 0"]),
    (["explain", "--backend-family", "nope"], ["--backend-family", "nope"]),
    (["context", "install", "--bogus"], ["No such option: --bogus"]),
    (["context", "remove", "--name"], ["--name"]),
    (["recordings", "extra-argument"], ["extra-argument"]),
    (["nosuchcommand"], ["nosuchcommand"]),
]


@pytest.mark.parametrize(("args", "words"), USAGE_ERRORS, ids=[" ".join(a)[:60] for a, _ in USAGE_ERRORS])
def test_usage_error_is_one_line_exit_2_and_leaves_nothing(short_tmp: Path, args, words):
    work, private_tmp = short_tmp / "work", short_tmp / "tmp"
    work.mkdir()
    private_tmp.mkdir()
    argv = [a.replace("{tmp}", str(work)) for a in args]
    env = engines.docker_env(
        "unix:///nonexistent", {"TMPDIR": str(private_tmp), "XDG_RUNTIME_DIR": str(private_tmp)}
    )
    done = subprocess.run(
        [*engines.dockertap_command(), *argv], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]
    assert list(work.iterdir()) == [] and list(private_tmp.iterdir()) == []  # nothing left behind


@pytest.mark.skipif(not os.path.exists("/proc/version"), reason="needs /proc")
def test_a_file_that_fails_only_when_written_is_one_line_too():
    """/proc/version passes every check a path can be given up front and fails on write (EIO)."""
    for argv in (
        ["export", RECORDING, "--har", "/proc/version"],
        ["run", "--backend", "unix:///nonexistent", "-o", "/proc/version", "--", "true"],
    ):
        done = subprocess.run(
            [*engines.dockertap_command(), *argv],
            env=engines.docker_env("unix:///nonexistent"), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot write" in lines[0] and "/proc/version" in lines[0], done.stderr
