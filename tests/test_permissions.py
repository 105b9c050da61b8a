"""Who can connect to dockertap's socket: never anyone who could not reach the engine before.

Real processes, real users: the proxy and the clients run as root or as `nobody` (setpriv), and
the checks are what the kernel allows (connect() succeeding or failing with EACCES).
"""

from __future__ import annotations

import json
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

# These test dockertap's own socket, not the engine behind it: a fake Docker API is enough (and the
# fixture is not called `engine`, which conftest parametrises with real engines).
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root"),
    pytest.mark.engines("dockerd-28.5"),
]

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
def fake_engine(base):
    """A fake Docker API (these tests are about dockertap's own socket, not the engine behind it)."""
    with FakeServer(f"{base}/engine.sock", lambda head: OK, mode=0o666) as server:
        yield server


MEMBER_OF_NOGROUP = ["setpriv", "--reuid=daemon", "--regid=nogroup", "--clear-groups"]
OUTSIDER = ["setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups"]


def test_default_path_is_never_in_tmp():
    for env in ({}, {"XDG_RUNTIME_DIR": "/tmp"}, {"XDG_RUNTIME_DIR": "/nonexistent"}):
        assert not default_listen_path(env).startswith("/tmp/"), env


@pytest.fixture
def home(base):
    """A home directory for `nobody` (whose real one, /nonexistent, does not exist)."""
    path = f"{base}/home"
    os.mkdir(path, 0o755)
    os.chown(path, NOBODY, NOBODY)
    return path


def _as_nobody(argv: list[str], home: str, **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "DOCKER_CONFIG")}
    environ.update(HOME=home, **env)
    return subprocess.Popen(
        [*AS_NOBODY, DOCKERTAP, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


def _proxy_as_nobody(engine_url: str, home: str, *args: str, **env: str) -> subprocess.Popen:
    return _as_nobody(
        ["proxy", "--backend", engine_url, "--format", "json", "--no-observe", *args], home, **env
    )


def _wait_listening(proc: subprocess.Popen, sock_path: str) -> None:
    assert wait_for(lambda: os.path.exists(sock_path) or proc.poll() is not None, 20) is not None
    assert proc.poll() is None, proc.stderr.read()


def test_default_socket_is_0600_in_a_0700_directory_the_user_created(fake_engine, home):
    sock_dir = f"{home}/.docker/dockertap"
    proc = _proxy_as_nobody(fake_engine.url, home)
    sock_path = f"{sock_dir}/docker.sock"
    try:
        _wait_listening(proc, sock_path)
        dir_st, sock_st = os.lstat(sock_dir), os.lstat(sock_path)
        assert stat.S_ISDIR(dir_st.st_mode) and stat.S_IMODE(dir_st.st_mode) == 0o700
        assert dir_st.st_uid == NOBODY and sock_st.st_uid == NOBODY
        assert stat.S_ISSOCK(sock_st.st_mode) and stat.S_IMODE(sock_st.st_mode) == 0o600
        assert connect_as(AS_NOBODY, sock_path) == "ok"  # its owner can use it
        assert connect_as(OUTSIDER, sock_path) == "EACCES"  # another unprivileged user cannot
    finally:
        proc.terminate()
        proc.wait(10)


def test_private_xdg_runtime_dir_is_used_and_a_shared_one_is_left_alone(fake_engine, home, base):
    private = f"{base}/xdg"
    os.mkdir(private, 0o700)
    os.chown(private, NOBODY, NOBODY)
    proc = _proxy_as_nobody(fake_engine.url, home, XDG_RUNTIME_DIR=private)
    try:
        _wait_listening(proc, f"{private}/dockertap/docker.sock")
    finally:
        proc.terminate()
        proc.wait(10)
    shared = f"{base}/shared"
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    proc = _proxy_as_nobody(fake_engine.url, home, XDG_RUNTIME_DIR=shared)
    try:
        _wait_listening(proc, f"{home}/.docker/dockertap/docker.sock")  # not in the shared one
        assert os.listdir(shared) == [] and stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("trap", ["symlink", "foreign-dir", "loose-file", "open-dir"])
def test_planted_or_loose_default_directory_is_refused_and_never_chmodded(fake_engine, home, base, trap):
    sock_dir = f"{home}/.docker/dockertap"
    os.mkdir(f"{home}/.docker", 0o700)
    os.chown(f"{home}/.docker", NOBODY, NOBODY)
    if trap == "symlink":
        target = f"{base}/attacker"
        os.mkdir(target, 0o777)
        os.symlink(target, sock_dir)
        expected = "not a plain directory (symlink?)"
    elif trap == "foreign-dir":
        os.mkdir(sock_dir, 0o700)  # owned by root
        expected = "belongs to uid 0"
    elif trap == "loose-file":
        open(sock_dir, "w").close()
        expected = "not a plain directory"
    else:
        os.mkdir(sock_dir)
        os.chmod(sock_dir, 0o755)
        os.chown(sock_dir, NOBODY, NOBODY)
        expected = "never changes a directory it did not create"
    proc = _proxy_as_nobody(fake_engine.url, home)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2, err
    assert expected in err and "refusing" in err and "Traceback" not in err
    if trap == "symlink":
        assert os.listdir(f"{base}/attacker") == []
    if trap == "open-dir":
        assert stat.S_IMODE(os.stat(sock_dir).st_mode) == 0o755 and os.listdir(sock_dir) == []


def test_group_makes_a_0710_directory_and_a_0660_socket_for_that_group(fake_engine, home):
    sock_dir = f"{home}/.docker/dockertap-nogroup"
    os.mkdir(f"{home}/.docker", 0o711)  # the user lets others traverse (not list) the config dir
    os.chown(f"{home}/.docker", NOBODY, NOBODY)
    proc = _proxy_as_nobody(fake_engine.url, home, "--group", "nogroup")
    sock_path = f"{sock_dir}/docker.sock"
    try:
        _wait_listening(proc, sock_path)
        dir_st, sock_st = os.stat(sock_dir), os.stat(sock_path)
        assert stat.S_IMODE(dir_st.st_mode) == 0o710 and dir_st.st_gid == 65534
        assert stat.S_IMODE(sock_st.st_mode) == 0o660 and sock_st.st_gid == 65534
        assert connect_as(MEMBER_OF_NOGROUP, sock_path) == "ok"  # another user, in the group
        assert connect_as(OUTSIDER, sock_path) == "EACCES"
    finally:
        proc.terminate()
        proc.wait(10)


def test_group_the_members_cannot_reach_is_refused_before_anything_is_created(fake_engine, home):
    os.chmod(home, 0o700)  # nogroup's members cannot traverse nobody's home
    proc = _proxy_as_nobody(fake_engine.url, home, "--group", "nogroup")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2 and "Traceback" not in err
    assert f"members of nogroup cannot reach {home}/.docker/dockertap-nogroup" in err, err
    assert not os.path.exists(f"{home}/.docker/dockertap-nogroup")


@pytest.mark.parametrize("group", ["daemon", "no-such-group-xyz"])
def test_group_you_are_not_in_is_one_clear_line_and_leaves_nothing(fake_engine, home, base, group):
    listen = f"{base}/explicit"
    os.mkdir(listen, 0o777)
    for args in ([], ["--listen", f"unix://{listen}/dt.sock"]):
        proc = _proxy_as_nobody(fake_engine.url, home, "--group", group, *args)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 2 and "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.startswith("dockertap: --group")]
        reason = "no such group" if group.startswith("no-such") else "you are not a member of group daemon"
        assert len(lines) == 1 and reason in lines[0], err
        assert not os.path.exists(f"{home}/.docker/dockertap-{group}") and os.listdir(listen) == []


def test_context_install_refuses_a_socket_in_a_shared_directory(home, base):
    shared = f"{base}/shared"
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    for path in ("/tmp/dockertap-x.sock", f"{shared}/dt.sock", f"{shared}/sub/dt.sock"):
        proc = _as_nobody(["context", "install", "--socket", path], home)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 2 and "Traceback" not in err, err
        assert "refusing to point the docker CLI at" in err and "writable by other users" in err, err
    assert not os.path.exists(f"{home}/.docker/contexts")
    done = _as_nobody(["context", "install"], home)
    _, err = done.communicate(timeout=30)
    assert done.returncode == 0, err


def test_root_socket_is_not_reachable_by_an_unprivileged_user(fake_engine, base):
    with ProxyProcess(base, fake_engine.url, "--no-observe") as px:  # runs as root, socket 0600
        assert stat.S_IMODE(os.stat(px.path).st_mode) == 0o600
        assert connect_as(AS_NOBODY, px.path) == "EACCES"
        assert connect_as([], px.path) == "ok"


def test_group_option_gives_0660_and_that_group_only(fake_engine, base):
    with ProxyProcess(base, fake_engine.url, "--group", "nogroup", "--no-observe") as px:
        st = os.stat(px.path)
        assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 65534
        assert connect_as(AS_NOBODY, px.path) == "ok"  # nobody:nogroup is in the group
        outsider = ["setpriv", "--reuid=nobody", "--regid=daemon", "--clear-groups"]
        assert connect_as(outsider, px.path) == "EACCES"
        assert "mode 0660: you and group nogroup" in px.log()


def test_stale_socket_is_replaced_and_live_one_refused(fake_engine, base):
    first = ProxyProcess(base, fake_engine.url, "--no-observe")
    try:
        second = subprocess.run(
            [DOCKERTAP, "proxy", "--listen", first.url, "--backend", fake_engine.url, "--no-observe"],
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
    with ProxyProcess(base, fake_engine.url, "--no-observe") as again:
        assert status_and_body(exchange(again.path, PING))[0] == 200


def test_non_loopback_tcp_needs_listen_public_and_warns(fake_engine):
    refused = subprocess.run(
        [
            DOCKERTAP,
            "proxy",
            "--listen",
            "tcp://0.0.0.0:0",
            "--allow-tcp",
            "--backend",
            fake_engine.url,
            "--no-observe",
        ],
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
            "--allow-tcp",
            "--backend",
            fake_engine.url,
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
            conn.sendall(PING.replace(b"Host: docker", b"Host: 127.0.0.1:%d" % port))
            assert conn.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        proc.wait(10)


# -- TCP is opt-in, and no web page gets through it ---------------------------------------------------


def _tcp_proxy(backend, *extra: str) -> tuple[subprocess.Popen, int, str]:
    """`dockertap proxy --listen tcp://127.0.0.1:0 --allow-tcp`: (process, port, banner)."""
    proc = subprocess.Popen(
        [DOCKERTAP, "proxy", "--listen", "tcp://127.0.0.1:0", "--allow-tcp", "--backend", backend.url,
         "--no-observe", "--format", "json", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    while not any("export DOCKER_HOST" in line for line in lines):
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert line, "".join(lines)
        lines.append(line)
    text = "".join(lines)
    return proc, int(text.split("export DOCKER_HOST=tcp://127.0.0.1:")[1].split()[0]), text


def _ask(port: int, request: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while data := conn.recv(65536):
            answer += data
    status, body = status_and_body(answer)
    return status, (json.loads(body) if body.startswith(b"{") else {})


def test_tcp_listen_needs_allow_tcp(fake_engine):
    refused = subprocess.run(
        [DOCKERTAP, "proxy", "--listen", "tcp://127.0.0.1:0", "--backend", fake_engine.url, "--no-observe"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert refused.returncode == 2
    assert "--allow-tcp" in refused.stderr and "root-equivalent" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_tcp_prints_the_risk_and_serves_the_docker_cli(dockerd):
    """The real docker CLI over TCP (it sends the dialled address as Host) is not refused."""
    proc, port, banner = _tcp_proxy(dockerd)
    try:
        assert "every local user" in banner and "root-equivalent" in banner and "403" in banner
        ps = engines.docker(f"tcp://127.0.0.1:{port}", "ps", "-a", timeout=60)
        assert ps.returncode == 0, ps.stderr
        version = engines.docker(f"tcp://localhost:{port}", "version", "--format", "{{.Server.Version}}")
        assert version.returncode == 0 and version.stdout.strip(), version.stderr
    finally:
        proc.terminate()
        proc.wait(10)


# (extra header lines, refused?) — what a browser page (same-origin or not, DNS rebinding) would send
TCP_REQUESTS = [
    (b"Host: 127.0.0.1:{port}\r\n", False),
    (b"Host: localhost:{port}\r\n", False),
    (b"Host: api.moby.localhost\r\n", False),
    (b"Host: [::1]:{port}\r\n", False),
    (b"Host: evil.example:{port}\r\n", True),  # DNS rebinding: evil.example resolved to 127.0.0.1
    (b"Host: 10.0.0.5:{port}\r\n", True),
    (b"Host: localhost.evil.example\r\n", True),
    (b"Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n", True),
    (b"Host: 127.0.0.1:{port}\r\nOrigin: null\r\n", True),
    (b"Host: 127.0.0.1:{port}\r\nSec-Fetch-Mode: no-cors\r\n", True),
    (b"Host: 127.0.0.1:{port}\r\nsec-fetch-site: cross-site\r\n", True),
]


def test_tcp_refuses_browser_and_rebinding_requests_with_403(fake_engine):
    proc, port, _banner = _tcp_proxy(fake_engine)
    try:
        for fields, refused in TCP_REQUESTS:
            fields = fields.replace(b"{port}", b"%d" % port)
            request = (
                b"POST /containers/prune HTTP/1.1\r\n"
                + fields
                + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            status, body = _ask(port, request)
            if refused:
                assert status == 403, (fields, status)
                assert body["message"].startswith("dockertap: refused:"), body
            else:
                assert status == 200, (fields, status, body)
    finally:
        proc.terminate()
        proc.wait(10)


def test_unix_socket_does_not_apply_the_tcp_guard(fake_engine):
    """On the private Unix socket only its owner connects: Origin/Host are not refused there."""
    base = str(engines.short_base("dtg"))
    try:
        with ProxyProcess(base, fake_engine.url, "--no-observe") as px:
            request = (
                b"GET /_ping HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
                b"Connection: close\r\n\r\n"
            )
            assert status_and_body(exchange(px.path, request))[0] == 200
    finally:
        shutil.rmtree(base, ignore_errors=True)

