"""Processes under test: start them, wait until they answer, pin them to CPUs, read their peak RSS."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
DOCKERTAP = ROOT / ".venv" / "bin" / "dockertap"
ALL_CPUS = frozenset(os.sched_getaffinity(0))


def wait_for_ping(sock_path: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "not started"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(sock_path)
                sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
                if sock.recv(4096).startswith(b"HTTP/1.1 200"):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise RuntimeError(f"{sock_path} did not answer /_ping within {timeout}s: {last}")


def start_fake_backend(sock_path: str, bulk_bytes: int, interval_ms: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            str(PYTHON), str(ROOT / "bench" / "fake_backend.py"), "--socket", sock_path,
            "--bulk-bytes", str(bulk_bytes), "--interval-ms", str(interval_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"fake backend failed to start: {line!r}")
    wait_for_ping(sock_path, proc=proc)
    return proc


def start_socat(listen: str, backend: str) -> subprocess.Popen:
    if shutil.which("socat") is None:
        raise RuntimeError("socat is not installed")
    proc = subprocess.Popen(
        ["socat", f"UNIX-LISTEN:{listen},fork", f"UNIX-CONNECT:{backend}"], stderr=subprocess.DEVNULL
    )
    wait_for_ping(listen, proc=proc)
    return proc


def dockertap_supports(flag: str) -> bool:
    out = subprocess.run(
        [str(DOCKERTAP), "proxy", "--help"], capture_output=True, text=True, env=_plain_env()
    )
    return flag in out.stdout


def _plain_env() -> dict[str, str]:
    env = dict(os.environ, COLUMNS="200", TERM="dumb")
    env.pop("DOCKER_HOST", None)
    return env


def start_dockertap(
    listen: str, backend: str, trace_path: str, log_path: str, observe: bool
) -> subprocess.Popen:
    argv = [str(DOCKERTAP), "proxy", "--listen", f"unix://{listen}", "--backend", f"unix://{backend}"]
    argv += ["--format", "json"]
    if observe:
        argv.append("--observe")
    with open(trace_path, "wb") as trace, open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=trace, stderr=log, env=_plain_env())
    wait_for_ping(listen, proc=proc)
    return proc


def start_relay_only(listen: str, backend: str, log_path: str) -> subprocess.Popen:
    argv = [str(PYTHON), str(ROOT / "bench" / "relay_only.py"), "--listen", listen, "--backend", backend]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=_plain_env())
    wait_for_ping(listen, proc=proc)
    return proc


def stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- CPU pinning ----------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (socat's forks, the fake backend's workers, containerd)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def set_affinity(pids: list[int], cpus: frozenset[int]) -> None:
    """Every thread of every process given (and its descendants): threads keep their own mask."""
    for root in pids:
        for pid in descendants(root):
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def pinned(pids: list[int], cpu: int) -> Iterator[None]:
    """Client (this process), relay and backend on one CPU, for the one-at-a-time latency tests."""
    one = frozenset({cpu})
    set_affinity([*pids, os.getpid()], one)
    try:
        yield
    finally:
        set_affinity([*pids, os.getpid()], ALL_CPUS)


# -- memory -------------------------------------------------------------------------------------


def reset_peak_rss(pid: int) -> bool:
    """Linux resets VmHWM to the current RSS when "5" is written to clear_refs."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()
