"""dockertap reads DOCKER_HOST exactly as the docker CLI does: checked against the real CLIs installed.

The oracle is the CLI itself: `docker context inspect` with DOCKER_HOST set prints the host the CLI
settled on (docker/cli opts/hosts.go ParseHost), or the CLI's own error when it refuses the value.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockertap.proxy.cli_host import read_cli_host, read_context_host

# Every docker CLI on this machine (Debian's 20.10 and a current one), each an independent oracle.
CLIS = sorted(
    {
        p
        for p in (shutil.which("docker"), "/usr/bin/docker", "/usr/local/bin/docker")
        if p and os.path.exists(p)
    }
)

HOSTS = [
    "/tmp/x/docker.sock",
    "./x.sock",
    "unix:///run/docker.sock",
    "unix://",
    "unix://relative.sock",
    "unix://a://b",
    "unix:///a?x",
    " unix:///padded.sock ",
    "tcp://",
    "tcp://:1",
    "tcp://:",
    ":",
    "tcp://h:",
    "tcp://h",
    "h:12",
    "tcp://127.0.0.1:1",
    "tcp://h:0",
    "tcp://h:99999",
    "tcp://h/p?q=1",
    "tcp://user@h:7/base",
    "tcp://[::1]",
    "tcp://[::1]:5",
    "tcp://[::1]:",
    "tcp://h:abc",
    "tcp://a b",
    "tcp://x://y",
    "http://h",
    "https://h:2376",
    "TCP://h",
    "bogus://x",
    "ssh://me@box",
    "ssh://box:2222",
    "fd://",
    "npipe://",
    "",
    "   ",
]


def cli_reading(docker: str, host: str, home: str) -> tuple[str | None, str | None]:
    """(host, None) as the CLI settled on it, or (None, error) in the CLI's words."""
    env = {"PATH": os.environ["PATH"], "HOME": home, "DOCKER_CONFIG": f"{home}/cfg", "DOCKER_HOST": host}
    done = subprocess.run(
        [docker, "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
        env=env, capture_output=True, text=True, errors="surrogateescape", timeout=30,
    )  # fmt: skip
    if done.returncode == 0:
        return done.stdout.removesuffix("\n"), None
    return None, done.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("home"))


def _ours(host: str) -> tuple[str | None, str | None]:
    reading = read_cli_host(host)
    return reading.url, reading.error


def _same(ours: tuple[str | None, str | None], theirs: tuple[str | None, str | None]) -> bool:
    if theirs[0] is not None:
        return ours[0] == theirs[0]
    # The CLI refuses it (20.10 already at `context inspect`, later ones when dialing): so do we, in
    # the CLI's words (20.10 capitalises them and adds a prefix).
    return theirs[1] is not None and ours[1] is not None and ours[1].lower() in theirs[1].lower()


@pytest.mark.skipif(not CLIS, reason="no docker CLI installed")
@pytest.mark.parametrize("host", HOSTS)
def test_host_reading_matches_every_installed_docker_cli(host, home):
    for docker in CLIS:
        theirs = cli_reading(docker, host, home)
        assert _same(_ours(host), theirs), f"{docker}: {host!r}: CLI {theirs}, dockertap {_ours(host)}"


_HOST_ALPHABET = st.sampled_from(
    list("aZ09/.:[]@%?#_- ") + ["tcp://", "unix://", "::1", "localhost", "ssh://"]
)


@pytest.mark.skipif(not CLIS, reason="no docker CLI installed")
@settings(max_examples=int(os.environ.get("CLI_HOST_EXAMPLES", "150")), deadline=None)
@given(st.lists(_HOST_ALPHABET, max_size=8).map("".join))
def test_host_reading_matches_the_docker_cli_on_generated_values(home_dir, value):
    theirs = cli_reading(CLIS[-1], value, home_dir)
    assert _same(_ours(value), theirs), f"{value!r}: CLI {theirs}, dockertap {_ours(value)}"


@pytest.fixture(scope="module")
def home_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("home2"))


def test_a_path_without_scheme_is_tcp_and_names_what_was_meant():
    reading = read_cli_host("/run/user/0/docker.sock")
    assert reading.url == "tcp://localhost:2375/run/user/0/docker.sock"
    assert reading.endpoint.url == "tcp://localhost:2375" and reading.base_path == "/run/user/0/docker.sock"
    assert reading.meant == "unix:///run/user/0/docker.sock"
    assert "has no scheme" in reading.problem and "unix:///run/user/0/docker.sock" in reading.problem


def test_schemes_dockertap_cannot_dial_say_why():
    assert read_cli_host("ssh://me@box").not_probed and read_cli_host("ssh://me@box").problem is None
    assert "protocol not available" in read_cli_host("npipe://").problem
    assert "socket-activation" in read_cli_host("fd://").problem
    assert read_context_host("/no/scheme.sock").problem == "unable to parse docker host `/no/scheme.sock`"
    assert read_context_host("unix:///ok.sock").endpoint.path == "/ok.sock"
