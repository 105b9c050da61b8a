"""What every text mode shows: `--bodies` under each line, and a client column that tells commands apart."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import threading
import time
from pathlib import Path

import engines

IMAGE = engines.BUSYBOX_TAG
SCRIPT = "echo from-stdout; echo from-stderr >&2"


def _has_framed_output(text: str) -> bool:
    """The demultiplexed frames, as `--bodies` prints them (not CMD's own output); colours aside."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return "stdout │ from-stdout" in text and "stderr │ from-stderr" in text


def test_run_bodies_in_the_end_of_command_trace(dockerd):
    result = subprocess.run(
        [*engines.dockertap_command(), "run", "--bodies", "--no-observe", "--backend", dockerd.url,
         "--", "docker", "run", "--rm", IMAGE, "sh", "-c", SCRIPT],
        capture_output=True, text=True, timeout=120, env=engines.docker_env("unix:///nonexistent"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _has_framed_output(result.stderr), result.stderr
    assert '"Cmd": [' in result.stderr  # the create request's JSON body


def _proxy_output(dockerd, short_tmp: Path, *extra: str, tty: bool) -> str:
    sock = short_tmp / "b.sock"
    argv = [*engines.dockertap_command(), "proxy", "--listen", f"unix://{sock}", "--backend", dockerd.url,
            "--no-observe", "--bodies", *extra]  # fmt: skip
    chunks: list[bytes] = []
    if tty:
        master, slave = pty.openpty()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL)
        os.close(slave)

        def pump() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
    else:
        out = short_tmp / "out"
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=open(out, "wb"), stderr=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        engines.docker(f"unix://{sock}", "run", "--rm", IMAGE, "sh", "-c", SCRIPT, check=True)
        time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(30)
    if tty:
        reader.join(5)
        os.close(master)
        return b"".join(chunks).decode("utf-8", "replace")
    return out.read_text()


def test_proxy_bodies_when_stdout_is_not_a_terminal(dockerd, short_tmp: Path):
    text = _proxy_output(dockerd, short_tmp, tty=False)
    assert _has_framed_output(text), text


def test_proxy_bodies_with_plain_on_a_terminal(dockerd, short_tmp: Path):
    text = _proxy_output(dockerd, short_tmp, "--plain", tty=True)
    assert _has_framed_output(text), text
