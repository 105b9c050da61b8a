"""Backend probing and discovery against real Unix sockets and a fake $HOME / $DOCKER_CONFIG tree."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess

import pytest
from fakesock import (
    FakeServer,
    docker_like,
    garbage,
    other_http,
    set_current,
    short_tmpdir,
    silent,
    stale_socket,
    write_context,
)

from dockertap.proxy.discovery import (
    DEFAULT_DOCKER_HOST,
    candidates,
    cli_endpoint,
    default_listen_path,
    discover_backend,
    list_contexts,
)
from dockertap.proxy.endpoints import EndpointError, parse_endpoint
from dockertap.proxy.probe import describe_connect_error, probe

DOCKER_CLI = shutil.which("docker")


@pytest.fixture
def base():
    path = short_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- probe -----------------------------------------------------------------------------------------


def test_probe_docker_like_reads_ping_chunked_version_and_length_info(base):
    with FakeServer(f"{base}/d.sock", docker_like("box")) as srv:
        result = probe(parse_endpoint(srv.url))
    assert result.ok and result.kind == "ok" and result.error is None
    assert result.ping_status == 200
    assert result.header("server") == "Docker/20.10.24 (linux)"
    assert result.header("API-VERSION") == "1.41"
    assert result.version == {"Version": "20.10.24", "ApiVersion": "1.41", "Os": "linux"}
    assert result.info["Name"] == "box"
    assert [h.split(b"\r\n")[0] for h in srv.requests] == [
        b"GET /_ping HTTP/1.1",
        b"GET /version HTTP/1.1",
        b"GET /info HTTP/1.1",
    ]
    assert all(b"Host: docker\r\n" in h and b"Connection: close\r\n" in h for h in srv.requests)


def test_probe_ping_only_does_not_ask_version(base):
    with FakeServer(f"{base}/d.sock", docker_like()) as srv:
        result = probe(parse_endpoint(srv.url), full=False)
    assert result.ok and result.version is None and result.info is None
    assert len(srv.requests) == 1


def test_probe_missing_socket(base):
    result = probe(parse_endpoint(f"unix://{base}/nothing.sock"))
    assert (result.ok, result.kind) == (False, "missing")
    assert "does not exist" in result.error
    assert "is the engine running?" in result.hint


def test_probe_dangling_symlink_says_where_it_points(base):
    os.symlink(f"{base}/gone.sock", f"{base}/link.sock")
    result = probe(parse_endpoint(f"unix://{base}/link.sock"))
    assert result.kind == "missing" and f"symlink to {base}/gone.sock" in result.error


def test_probe_stale_socket_is_refused(base):
    stale_socket(f"{base}/stale.sock")
    result = probe(parse_endpoint(f"unix://{base}/stale.sock"))
    assert result.kind == "refused" and "nothing is listening" in result.error
    assert "is the engine running?" in result.hint


def test_probe_regular_file_is_not_a_socket(base):
    open(f"{base}/file", "w").close()
    os.mkdir(f"{base}/dir")
    assert probe(parse_endpoint(f"unix://{base}/file")).kind == "not-socket"
    result = probe(parse_endpoint(f"unix://{base}/dir"))
    assert result.kind == "not-socket" and "a directory" in result.error


def test_probe_garbage_is_not_http(base):
    with FakeServer(f"{base}/g.sock", garbage):
        result = probe(parse_endpoint(f"unix://{base}/g.sock"))
    assert result.kind == "not-http" and "non-HTTP bytes" in result.error


def test_probe_other_http_service_is_not_docker(base):
    with FakeServer(f"{base}/h.sock", other_http):
        result = probe(parse_endpoint(f"unix://{base}/h.sock"))
    assert result.kind == "not-docker" and "404" in result.error and "nginx" in result.error
    assert result.ping_status == 404


def test_probe_silent_listener_times_out(base):
    with FakeServer(f"{base}/s.sock", silent):
        result = probe(parse_endpoint(f"unix://{base}/s.sock"), timeout=0.3)
    assert result.kind == "timeout" and result.elapsed < 2


def test_probe_tcp_refused():
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = probe(parse_endpoint(f"tcp://127.0.0.1:{port}"))
    assert result.kind == "refused" and f"127.0.0.1:{port}" in result.error


def test_describe_connect_error_uses_the_real_errno(base):
    stale_socket(f"{base}/stale.sock")
    endpoint = parse_endpoint(f"unix://{base}/stale.sock")
    with pytest.raises(OSError) as info:
        endpoint.connect_blocking(1)
    assert info.value.errno == errno.ECONNREFUSED
    kind, reason, hint = describe_connect_error(endpoint, info.value)
    assert kind == "refused" and base in reason and hint


# --- contexts and the docker CLI's choice ---------------------------------------------------------


def test_list_contexts_reads_what_the_real_docker_cli_wrote(base):
    if not DOCKER_CLI:
        pytest.skip("docker CLI not installed")
    env = {"DOCKER_CONFIG": f"{base}/cfg", "HOME": base, "PATH": os.environ["PATH"]}
    for name, host in (("colima", "unix:///tmp/colima.sock"), ("remote", "tcp://10.0.0.1:2375")):
        subprocess.run(
            [DOCKER_CLI, "context", "create", name, "--docker", f"host={host}"],
            env=env,
            check=True,
            capture_output=True,
        )
    subprocess.run([DOCKER_CLI, "context", "use", "remote"], env=env, check=True, capture_output=True)
    contexts = {c.name: c for c in list_contexts(f"{base}/cfg")}
    assert set(contexts) == {"colima", "remote"}
    assert contexts["colima"].host == "unix:///tmp/colima.sock" and not contexts["colima"].current
    assert contexts["remote"].host == "tcp://10.0.0.1:2375" and contexts["remote"].current


@pytest.mark.parametrize(
    ("extra_env", "argv_host", "argv_context", "want_url", "want_why"),
    [
        ({}, None, None, "unix:///tmp/colima.sock", "currentContext is 'colima'"),
        (
            {"DOCKER_CONTEXT": "rootless"},
            None,
            None,
            "unix:///run/user/1000/docker.sock",
            "DOCKER_CONTEXT=rootless",
        ),
        (
            {"DOCKER_CONTEXT": "rootless", "DOCKER_HOST": "unix:///h.sock"},
            None,
            None,
            "unix:///h.sock",
            "overrides DOCKER_CONTEXT",
        ),
        ({"DOCKER_HOST": "unix:///h.sock"}, "tcp://1.2.3.4:2375", None, "tcp://1.2.3.4:2375", "-H/--host"),
        (
            {"DOCKER_HOST": "unix:///h.sock"},
            None,
            "rootless",
            "unix:///run/user/1000/docker.sock",
            "--context",
        ),
        (
            {"DOCKER_HOST": "unix:///h.sock"},
            None,
            "default",
            "unix:///h.sock",
            "'default' context uses DOCKER_HOST",
        ),
        ({}, None, "default", DEFAULT_DOCKER_HOST, "built-in default"),
        ({}, None, "nosuch", None, "not found"),
        ({}, "tcp://1.2.3.4:2375", "colima", None, "conflicting"),
    ],
)
def test_cli_endpoint_precedence(base, extra_env, argv_host, argv_context, want_url, want_why):
    cfg = f"{base}/cfg"
    write_context(cfg, "colima", "unix:///tmp/colima.sock")
    write_context(cfg, "rootless", "unix:///run/user/1000/docker.sock")
    set_current(cfg, "colima")
    url, why = cli_endpoint({"DOCKER_CONFIG": cfg, **extra_env}, base, argv_host, argv_context)
    assert url == want_url
    assert want_why in why


def test_cli_endpoint_without_any_config_is_the_default(base):
    url, why = cli_endpoint({}, base)
    assert url == DEFAULT_DOCKER_HOST and "the default" in why
    assert not os.path.exists(f"{base}/.docker")  # reading never creates anything


@pytest.mark.parametrize(
    "extra_env",
    [{}, {"DOCKER_CONTEXT": "rootless"}, {"DOCKER_HOST": "unix:///h.sock"}, {"DOCKER_CONTEXT": "default"}],
)
def test_cli_endpoint_agrees_with_the_real_docker_cli(base, extra_env):
    if not DOCKER_CLI:
        pytest.skip("docker CLI not installed")
    cfg = f"{base}/cfg"
    write_context(cfg, "colima", "unix:///tmp/colima.sock")
    write_context(cfg, "rootless", "unix:///run/user/1000/docker.sock")
    set_current(cfg, "colima")
    env = {"DOCKER_CONFIG": cfg, "HOME": base, "PATH": os.environ["PATH"], **extra_env}
    shown = subprocess.run(
        [DOCKER_CLI, "context", "show"], env=env, check=True, capture_output=True, text=True
    )
    name = shown.stdout.strip()
    inspected = subprocess.run(
        [DOCKER_CLI, "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert cli_endpoint(env, base)[0] == inspected.stdout.strip()


# --- candidates (no sockets touched) ---------------------------------------------------------------


def test_candidates_order_and_globbed_profiles(base):
    home, cfg = f"{base}/home", f"{base}/home/.docker"
    for profile in ("default", "work"):
        os.makedirs(f"{home}/.colima/{profile}")
        open(f"{home}/.colima/{profile}/docker.sock", "w").close()
    os.makedirs(f"{home}/.lima/docker/sock")
    open(f"{home}/.lima/docker/sock/docker.sock", "w").close()
    write_context(cfg, "colima", f"unix://{home}/.colima/default/docker.sock")
    write_context(cfg, "other", "tcp://10.1.1.1:2375")
    set_current(cfg, "colima")
    env = {"DOCKER_HOST": "unix:///env.sock", "XDG_RUNTIME_DIR": f"{base}/run"}
    found = candidates(env, home, explicit="unix:///explicit.sock", platform="linux")
    sources = [c.source for c in found]
    assert sources[:3] == ["--backend", "DOCKER_HOST", "context 'colima'"]
    assert "well-known: Colima (default)" in sources and "well-known: Colima (work)" in sources
    assert "well-known: Lima (docker)" in sources
    assert "well-known: OrbStack" not in sources  # macOS only
    assert sources.index("well-known: rootless dockerd") < sources.index(
        "well-known: default /var/run/docker.sock"
    )
    rootless = found[sources.index("well-known: rootless dockerd")]
    assert rootless.url == f"unix://{base}/run/docker.sock"
    other = found[sources.index("context 'other'")]
    assert other.url == "tcp://10.1.1.1:2375" and other.auto is False
    assert sources[-1] == "context 'other'"


def test_candidates_macos_rows_and_unset_runtime_dir(base):
    found = candidates({}, base, platform="darwin")
    urls = {c.source: c.url for c in found}
    assert urls["well-known: Docker Desktop"] == f"unix://{base}/.docker/run/docker.sock"
    assert urls["well-known: OrbStack"] == f"unix://{base}/.orbstack/run/docker.sock"
    assert "well-known: rootless dockerd" not in urls  # Linux only, and XDG_RUNTIME_DIR unset anyway


def test_candidates_unusable_docker_host_is_kept_with_its_reason(base):
    found = candidates({"DOCKER_HOST": "ssh://me@box"}, base, platform="linux")
    assert found[0].source == "DOCKER_HOST" and found[0].endpoint is None and "ssh://" in found[0].skip


# --- discovery (real sockets) ---------------------------------------------------------------------


def test_discover_prefers_context_over_well_known_and_reports_dead_docker_host(base):
    home, cfg, root = f"{base}/h", f"{base}/h/.docker", f"{base}/root"
    os.makedirs(f"{home}/.colima/default")
    os.makedirs(f"{root}/var/run")
    stale_socket(f"{base}/dead.sock")
    with (
        FakeServer(f"{home}/.colima/default/docker.sock", docker_like("colima")),
        FakeServer(f"{root}/var/run/docker.sock", docker_like("default")),
        FakeServer(f"{base}/ctx.sock", docker_like("ctx")),
    ):
        write_context(cfg, "mine", f"unix://{base}/ctx.sock")
        set_current(cfg, "mine")
        env = {"DOCKER_HOST": f"unix://{base}/dead.sock"}
        found = discover_backend(env=env, home=home, platform="linux", root=root)
        assert found.endpoint.url == f"unix://{base}/ctx.sock"
        assert found.source == "context 'mine'" and found.probe.ok
        assert "DOCKER_HOST" in found.reason and "refused" in found.reason
        assert [c.source for c in found.tried] == ["DOCKER_HOST", "context 'mine'"]

        set_current(cfg, "nosuch")
        found = discover_backend(env={}, home=home, platform="linux", root=root)
        assert found.source == "well-known: Colima (default)"
        assert "not found" in found.tried[0].skip


def test_discover_falls_back_to_var_run_docker_sock(base):
    root = f"{base}/root"
    os.makedirs(f"{root}/var/run")
    with FakeServer(f"{root}/var/run/docker.sock", docker_like()):
        found = discover_backend(
            env={"XDG_RUNTIME_DIR": f"{base}/xdg"}, home=base, platform="linux", root=root
        )
    assert found.source == "well-known: default /var/run/docker.sock"
    kinds = {c.source: c.probe.kind for c in found.tried if c.probe}
    assert kinds["well-known: rootless dockerd"] == "missing"


def test_discover_never_loops_to_its_own_socket(base):
    root = f"{base}/root"
    os.makedirs(f"{root}/var/run")
    with (
        FakeServer(f"{base}/own.sock", docker_like("looks alive")),
        FakeServer(f"{root}/var/run/docker.sock", docker_like("real")),
    ):
        os.symlink(f"{base}/own.sock", f"{base}/alias.sock")
        for host in (f"unix://{base}/own.sock", f"unix://{base}/alias.sock", f"{base}/own.sock"):
            found = discover_backend(
                env={"DOCKER_HOST": host},
                own_sockets=[f"{base}/own.sock"],
                home=base,
                platform="linux",
                root=root,
            )
            assert found.source == "well-known: default /var/run/docker.sock", host
            assert "relay to itself" in found.tried[0].skip
            assert found.tried[0].probe is None  # never even probed

        # a context pointing at our own socket (given as a URL) is skipped the same way
        write_context(f"{base}/.docker", "dockertap", f"unix://{base}/own.sock")
        set_current(f"{base}/.docker", "dockertap")
        found = discover_backend(
            env={}, own_sockets=[f"unix://{base}/own.sock"], home=base, platform="linux", root=root
        )
        assert found.tried[0].source == "context 'dockertap'" and "relay to itself" in found.tried[0].skip


def test_discover_skips_dockertap_default_socket_even_when_not_ours(base):
    xdg = f"{base}/xdg"
    os.makedirs(xdg, 0o700)
    assert default_listen_path({"XDG_RUNTIME_DIR": xdg}) == f"{xdg}/dockertap/docker.sock"
    assert not default_listen_path({}).startswith("/tmp/")
    root = f"{base}/root"
    os.makedirs(f"{root}/var/run")
    with (
        FakeServer(f"{xdg}/dockertap.sock", docker_like("another dockertap")),
        FakeServer(f"{root}/var/run/docker.sock", docker_like()),
    ):
        env = {"DOCKER_HOST": f"unix://{xdg}/dockertap.sock", "XDG_RUNTIME_DIR": xdg}
        found = discover_backend(env=env, home=base, platform="linux", root=root)
    assert found.tried[0].source == "DOCKER_HOST" and "dockertap default socket" in found.tried[0].skip
    assert found.source == "well-known: default /var/run/docker.sock"


def test_discover_dedupes_the_same_socket(base):
    root = f"{base}/root"
    os.makedirs(f"{root}/var/run")
    stale_socket(f"{root}/var/run/docker.sock")
    found = discover_backend(env={"DOCKER_HOST": f"unix://{root}/var/run/docker.sock"}, home=base, root=root)
    assert found.endpoint is None
    last = found.tried[-1]
    assert last.source == "well-known: default /var/run/docker.sock"
    assert last.skip == "same socket as DOCKER_HOST" and last.probe.kind == "refused"


def test_discover_explicit_backend_is_used_even_when_dead(base):
    root = f"{base}/root"
    os.makedirs(f"{root}/var/run")
    with FakeServer(f"{root}/var/run/docker.sock", docker_like()):
        found = discover_backend(f"unix://{base}/down.sock", env={}, home=base, platform="linux", root=root)
        assert found.endpoint.url == f"unix://{base}/down.sock" and found.source == "--backend"
        assert not found.probe.ok and "missing" in found.reason and "explicitly" in found.reason
        found = discover_backend(f"unix://{root}/var/run/docker.sock", env={}, home=base, root=root)
        assert found.source == "--backend" and found.probe.ok
    with pytest.raises(EndpointError):
        discover_backend("ssh://me@box", env={}, home=base, root=root)


def test_discover_nothing_answers_lists_everything_tried(base):
    root = f"{base}/root"
    os.makedirs(f"{root}/var/run")
    open(f"{root}/var/run/docker.sock", "w").close()
    with FakeServer(f"{base}/g.sock", garbage):
        found = discover_backend(
            env={"DOCKER_HOST": f"unix://{base}/g.sock"}, home=base, platform="linux", root=root
        )
    assert found.endpoint is None and found.probe is None
    assert found.reason.startswith("no Docker API endpoint answers /_ping")
    assert "not-http" in found.reason and "not-socket" in found.reason
    assert found.to_dict()["tried"][0]["probe"]["kind"] == "not-http"


def test_shared_directory_reason_follows_your_symlinks_and_checks_modes(base):
    from dockertap.proxy.listener import shared_directory_reason

    private = f"{base}/private"
    os.mkdir(private, 0o700)
    os.symlink(private, f"{base}/dotfile-link")  # e.g. ~/.docker managed by a dotfiles repo
    assert shared_directory_reason(f"{base}/dotfile-link") is None
    assert shared_directory_reason(f"{base}/dotfile-link/not-yet/created") is None
    os.mkdir(f"{base}/open")
    os.chmod(f"{base}/open", 0o777)
    assert "writable by other users (mode 0777)" in shared_directory_reason(f"{base}/open")
    assert "writable by other users" in shared_directory_reason(f"{base}/open/missing")
    os.mkdir(f"{base}/sticky")
    os.chmod(f"{base}/sticky", 0o1777)
    os.mkdir(f"{base}/sticky/mine", 0o700)
    assert shared_directory_reason(f"{base}/sticky/mine") is None  # a sticky parent cannot rename it
    assert "mode 1777" in shared_directory_reason(f"{base}/sticky")
    if os.geteuid() == 0:
        os.symlink(private, f"{base}/foreign-link")
        os.lchown(f"{base}/foreign-link", 65534, 65534)
        assert "symlink owned by uid 65534" in shared_directory_reason(f"{base}/foreign-link")
