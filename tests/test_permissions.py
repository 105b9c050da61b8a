"""Who can connect to dockertap's socket: never anyone who could not reach the engine before.

Real processes, real users: the proxy and the clients run as root or as `nobody` (setpriv), and
the checks are what the kernel allows (connect() succeeding or failing with EACCES).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess

import engines
import pytest
from fakesock import FakeServer
from faultkit import DOCKERTAP, ProxyProcess, exchange, status_and_body, wait_for

from dockertap.proxy.discovery import default_listen_path

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")

NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK"

# A client in another process and identity: prints "ok", or the errno name connect() failed with.
CLIENT = """
import errno, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(errno.errorcode[exc.errno]); sys.exit(0)
s.sendall(b"GET /_ping HTTP/1.1\\r\\nHost: d\\r\\nConnection: close\\r\\n\\r\\n")
print("ok" if s.recv(100).startswith(b"HTTP/1.1 200") else "bad-answer")
"""


def connect_as(identity: list[str], path: str) -> str:
    result = subprocess.run(
        [*identity, "/usr/bin/python3", "-c", CLIENT, path], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def base():
    path = engines.short_base("dtq")
    os.chmod(path, 0o755)
    try:
        yield str(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def engine(base):
    with FakeServer(f"{base}/engine.sock", lambda head: OK, mode=0o666) as server:
        yield server


def test_default_path_is_in_a_private_per_user_directory():
    assert default_listen_path({}) == f"/tmp/dockertap-{os.getuid()}/docker.sock"
    assert default_listen_path({"XDG_RUNTIME_DIR": "/run/user/7"}) == "/run/user/7/dockertap.sock"


def _default_dir(uid: int) -> str:
    return f"/tmp/dockertap-{uid}"


@pytest.fixture
def nobody_default_dir():
    """The default socket directory of `nobody`, removed before and after the test."""
    path = _default_dir(NOBODY)

    def clear() -> None:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)

    clear()
    try:
        yield path
    finally:
        clear()


def _start_default_as_nobody(engine_url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.Popen(
        [*AS_NOBODY, DOCKERTAP, "proxy", "--backend", engine_url, "--format", "json", "--no-observe"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_default_socket_is_0600_in_a_0700_directory_owned_by_the_user(engine, nobody_default_dir):
    proc = _start_default_as_nobody(engine.url)
    sock_path = f"{nobody_default_dir}/docker.sock"
    try:
        assert wait_for(lambda: os.path.exists(sock_path) or proc.poll() is not None, 20) is not None
        assert proc.poll() is None, proc.stderr.read()
        dir_st, sock_st = os.lstat(nobody_default_dir), os.lstat(sock_path)
        assert stat.S_ISDIR(dir_st.st_mode) and stat.S_IMODE(dir_st.st_mode) == 0o700
        assert dir_st.st_uid == NOBODY and sock_st.st_uid == NOBODY
        assert stat.S_ISSOCK(sock_st.st_mode) and stat.S_IMODE(sock_st.st_mode) == 0o600
        assert connect_as(AS_NOBODY, sock_path) == "ok"  # its owner can use it
        other = ["setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups"]
        assert connect_as(other, sock_path) == "EACCES"  # another unprivileged user cannot
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("trap", ["symlink", "foreign-dir", "loose-file"])
def test_planted_default_directory_is_refused(engine, nobody_default_dir, base, trap):
    """Someone pre-creates /tmp/dockertap-<uid> to capture the socket: refuse with a clear reason."""
    if trap == "symlink":
        target = f"{base}/attacker"
        os.mkdir(target, 0o777)
        os.symlink(target, nobody_default_dir)
        expected = "not a plain directory (symlink?)"
    elif trap == "foreign-dir":
        os.mkdir(nobody_default_dir, 0o777)  # owned by root, world-writable
        os.chmod(nobody_default_dir, 0o777)
        expected = "belongs to uid 0"
    else:
        open(nobody_default_dir, "w").close()
        expected = "not a plain directory"
    proc = _start_default_as_nobody(engine.url)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2, err
    assert expected in err and "refusing" in err and "Traceback" not in err
    if trap == "symlink":
        assert os.listdir(f"{base}/attacker") == []


def test_root_socket_is_not_reachable_by_an_unprivileged_user(engine, base):
    with ProxyProcess(base, engine.url, "--no-observe") as px:  # runs as root, socket 0600
        assert stat.S_IMODE(os.stat(px.path).st_mode) == 0o600
        assert connect_as(AS_NOBODY, px.path) == "EACCES"
        assert connect_as([], px.path) == "ok"


def test_group_option_gives_0660_and_that_group_only(engine, base):
    with ProxyProcess(base, engine.url, "--group", "nogroup", "--no-observe") as px:
        st = os.stat(px.path)
        assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 65534
        assert connect_as(AS_NOBODY, px.path) == "ok"  # nobody:nogroup is in the group
        outsider = ["setpriv", "--reuid=nobody", "--regid=daemon", "--clear-groups"]
        assert connect_as(outsider, px.path) == "EACCES"
        assert "mode 0660: you and group nogroup" in px.log()


def test_stale_socket_is_replaced_and_live_one_refused(engine, base):
    first = ProxyProcess(base, engine.url, "--no-observe")
    try:
        second = subprocess.run(
            [DOCKERTAP, "proxy", "--listen", first.url, "--backend", engine.url, "--no-observe"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert second.returncode == 2 and "already listening" in second.stderr
        assert status_and_body(exchange(first.path, PING))[0] == 200  # the live one was not touched
    finally:
        first.process.kill()  # kill -9: the socket file stays behind, stale
        first.process.wait()
    assert stat.S_ISSOCK(os.lstat(first.path).st_mode)
    with ProxyProcess(base, engine.url, "--no-observe") as again:
        assert status_and_body(exchange(again.path, PING))[0] == 200


def test_non_loopback_tcp_needs_listen_public_and_warns(engine):
    refused = subprocess.run(
        [DOCKERTAP, "proxy", "--listen", "tcp://0.0.0.0:0", "--backend", engine.url, "--no-observe"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert refused.returncode == 2
    assert "not a loopback address" in refused.stderr and "--listen-public" in refused.stderr
    proc = subprocess.Popen(
        [
            DOCKERTAP,
            "proxy",
            "--listen",
            "tcp://0.0.0.0:0",
            "--listen-public",
            "--backend",
            engine.url,
            "--no-observe",
            "--format",
            "json",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not any("export DOCKER_HOST" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert "WARNING" in text and "root-equivalent" in text and "no TLS" in text
        port = int(text.split("export DOCKER_HOST=tcp://0.0.0.0:")[1].split()[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(PING)
            assert conn.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        proc.wait(10)
