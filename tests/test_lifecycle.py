"""How dockertap ends: Ctrl-C, SIGTERM and kill -9 with observation on, against a real engine.

Signals are real (Ctrl-C is SIGINT to the whole foreground process group, as a terminal sends it),
and survivors are looked up in /proc, not taken from dockertap's word.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import engines
import pytest

from dockertap.evidence_wiring import observe_by_default
from dockertap.recordings.format import read_session

IMAGE = engines.BUSYBOX_TAG

needs_root = pytest.mark.skipif(not observe_by_default(), reason="observation needs root (CAP_NET_ADMIN)")


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child nobody reaped yet is gone for our purpose)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _wait_for(predicate, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _start_proxy(dockerd, short_tmp: Path) -> tuple[subprocess.Popen, Path, Path, Path]:
    sock, record, err = short_tmp / "t.sock", short_tmp / "r.jsonl", short_tmp / "err"
    process = subprocess.Popen(
        [*engines.dockertap_command(), "proxy", "--listen", f"unix://{sock}", "--backend", dockerd.url,
         "--observe", "--record", str(record)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(err, "wb"),
        start_new_session=True,  # its own process group: a group SIGINT is the terminal's Ctrl-C
    )  # fmt: skip
    _wait_for(lambda: "export DOCKER_HOST" in err.read_text(), what="the proxy to listen")
    return process, sock, record, err


def _observers_of(pid: int) -> list[int]:
    kids = _children(pid)
    names = [Path(f"/proc/{k}/cmdline").read_bytes() for k in kids]
    assert any(b"ctr" in n for n in names) and any(b"evidence.execs" in n for n in names), names
    return kids


def _assert_clean_end(process, code: int, sock: Path, record: Path, err: Path, children: list[int]):
    assert process.wait(30) == code
    stderr = err.read_text()
    assert "Traceback" not in stderr and "Fatal Python error" not in stderr, stderr
    assert not sock.exists()
    assert '"type":"footer"' in record.read_text().splitlines()[-1]
    _wait_for(lambda: not any(_running(c) for c in children), 5, "the observers to end")


@needs_root
@pytest.mark.parametrize(("how", "code"), [("ctrl-c", 130), ("sigterm", 143)], ids=["ctrl-c", "sigterm"])
def test_proxy_ends_cleanly_on_ctrl_c_and_sigterm(dockerd, short_tmp: Path, how: str, code: int):
    process, sock, record, err = _start_proxy(dockerd, short_tmp)
    children = _observers_of(process.pid)
    engines.docker(f"unix://{sock}", "ps", check=True)
    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    _assert_clean_end(process, code, sock, record, err, children)


@needs_root
def test_kill_9_of_the_proxy_leaves_no_observer_behind(dockerd, short_tmp: Path):
    process, sock, _record, _err = _start_proxy(dockerd, short_tmp)
    children = _observers_of(process.pid)
    process.kill()
    process.wait(10)
    _wait_for(lambda: not any(_running(c) for c in children), 5, "the observers to die with the proxy")


@needs_root
@pytest.mark.parametrize(("how", "code"), [("ctrl-c", 130), ("sigterm", 143)], ids=["ctrl-c", "sigterm"])
def test_run_docker_logs_f_ends_cleanly(dockerd, short_tmp: Path, how: str, code: int):
    name = f"dt-logs-{os.getpid()}-{how}"
    loop = "while true; do echo tick; sleep 0.1; done"
    engines.docker(dockerd.url, "run", "-d", "--name", name, IMAGE, "sh", "-c", loop, check=True)
    err, trace = short_tmp / "err", short_tmp / "trace"
    try:
        process = subprocess.Popen(
            [*engines.dockertap_command(), "run", "--observe", "--backend", dockerd.url, "-o", str(trace),
             "--", "docker", "logs", "-f", name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(err, "wb"),
            env=engines.docker_env("unix:///nonexistent"), start_new_session=True,
        )  # fmt: skip
        _wait_for(lambda: len(_children(process.pid)) >= 3, what="observers and docker logs")
        time.sleep(0.5)
        children = _children(process.pid)
        if how == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        assert process.wait(30) == code
        stderr = err.read_text()
        assert "Traceback" not in stderr and "Fatal Python error" not in stderr, stderr
        assert "/logs" in trace.read_text()  # the footer: the trace of what ran
        _wait_for(lambda: not any(_running(c) for c in children), 5, "children to end")
    finally:
        engines.docker(dockerd.url, "rm", "-f", name)


#: How long after its answer an exchange may still be only in dockertap's memory (README, Recording).
RECORD_BOUND = 0.05


def _pings(sock: Path, count: int) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        for _ in range(count):
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
            answer = b""
            while not answer.endswith(b"OK"):
                answer += s.recv(4096)


@needs_root
def test_kill_9_loses_no_exchange_that_ended_before_the_bound(dockerd, short_tmp: Path):
    """With observation on, exchanges reach the kernel as they end, not after the settle window."""
    process, sock, record, _err = _start_proxy(dockerd, short_tmp)
    _pings(sock, 20)
    time.sleep(RECORD_BOUND)
    process.kill()
    process.wait(10)
    session = read_session(record)
    assert sum(1 for ex in session.exchanges if ex.target == "/_ping") == 20


# -- `dockertap run` starts CMD at once, and loses no evidence for it --------------------------------


def _run_seconds(dockerd, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*engines.dockertap_command(), "run", "--backend", dockerd.url, *args],
        capture_output=True, timeout=120, env=engines.docker_env("unix:///nonexistent"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - started


@needs_root
@pytest.mark.engines("dockerd-20.10", "dockerd-28.5")  # with the containerd image store, ps asks containerd
def test_a_docker_ps_never_waits_for_the_observers(dockerd):
    """`docker ps` reaches nothing below the engine, so `run` starts it at once and abandons the
    observers' start-up (~0.5 s: a reader process, ctr) instead of waiting for it. What that saves is
    measured by bench/run_overhead.py (a timed assertion here would only measure the machine's load)."""
    done = subprocess.run(
        [*engines.dockertap_command(), "run", "--backend", dockerd.url, "--observe", "--", "docker", "ps"],
        capture_output=True, text=True, timeout=120, env=engines.docker_env("unix:///nonexistent"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "evidence: not needed (nothing CMD did reached below the engine)" in done.stderr, done.stderr


@needs_root
def test_the_first_container_operation_keeps_its_evidence(dockerd, short_tmp: Path):
    trace = short_tmp / "t.jsonl"
    _run_seconds(
        dockerd,
        "--observe",
        "--format",
        "json",
        "-o",
        str(trace),
        "--",
        "docker",
        "run",
        "--rm",
        IMAGE,
        "true",
    )
    lines = [json.loads(line) for line in trace.read_text().splitlines() if line.startswith("{")]
    start = next(line for line in lines if line.get("route") == "POST /containers/{id}/start")
    statuses = {layer["layer"]: layer["status"] for layer in start["layers"]}
    assert statuses["containerd"] == statuses["runc"] == "observed", statuses
