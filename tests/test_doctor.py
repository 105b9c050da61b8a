"""`dockertap doctor` and `dockertap context` against a real dockerd, real sockets and a fake $HOME."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys

import pytest
from fakesock import FakeServer, docker_like, garbage, set_current, short_tmpdir, stale_socket, write_context

from dockertap.contexts import ContextStoreError, install_context, remove_context
from dockertap.doctor import gather, layer_chain
from dockertap.proxy.discovery import context_meta_path
from dockertap.proxy.running_engines import flag_values

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER_CLI = shutil.which("docker")


@pytest.fixture
def base():
    path = short_tmpdir()
    os.chmod(path, 0o755)  # the unprivileged-user test must reach sockets in here
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # PYTHONSAFEPATH: the checkout's own dockertap/ folder (the cwd under pytest) must not shadow the
    # installed package, which CI installs non-editable.
    full_env = {"PATH": os.environ["PATH"], "PYTHONSAFEPATH": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "dockertap", *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def doctor_json(env: dict[str, str]) -> tuple[int, dict]:
    done = run_cli("doctor", "--json", env=env)
    assert done.stderr == "" or "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


# --- against a real dockerd -----------------------------------------------------------------------


def test_doctor_follows_the_current_context_to_a_real_dockerd(base, dockerd):
    home, cfg = f"{base}/home", f"{base}/home/.docker"
    stale_socket(f"{base}/dead.sock")
    write_context(cfg, "real", dockerd.url)
    write_context(cfg, "dead", f"unix://{base}/dead.sock")
    write_context(cfg, "gone", f"unix://{base}/never-existed.sock")
    set_current(cfg, "real")
    report = gather({"HOME": home, "PATH": os.environ["PATH"]}, home, root=f"{base}/root")

    assert report.ok and report.cli_url == dockerd.url and "currentContext is 'real'" in report.cli_why
    assert report.current.fingerprint.family == "dockerd"
    assert {(c.name, c.current) for c in report.contexts} == {
        ("real", True),
        ("dead", False),
        ("gone", False),
    }

    chain = dict(layer_chain(report))
    containerd = next(c for c in report.current.probe.version["Components"] if c["Name"] == "containerd")
    assert chain["containerd"].startswith(containerd["Version"])
    assert chain["dockerd"].startswith(report.current.probe.version["Version"])
    assert list(chain) == [
        "docker CLI",
        "endpoint",
        "dockerd",
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
    ]

    problems = {d.url: d for d in report.diagnoses}
    assert "dead socket" in problems[f"unix://{base}/dead.sock"].problem
    assert "docker context rm dead" in problems[f"unix://{base}/dead.sock"].fix
    assert "does not exist" in problems[f"unix://{base}/never-existed.sock"].problem
    assert dockerd.url not in problems


def test_doctor_cli_exit_code_and_json_with_real_dockerd(base, dockerd):
    code, data = doctor_json({"HOME": base, "DOCKER_HOST": dockerd.url})
    assert code == 0 and data["ok"] is True
    assert data["cli_endpoint"] == {"url": dockerd.url, "why": "DOCKER_HOST is set"}
    assert data["current"]["socket"]["kind"] == "socket"
    assert data["current"]["fingerprint"]["family"] == "dockerd"
    assert [step["layer"] for step in data["chain"]][:3] == ["docker CLI", "endpoint", "dockerd"]

    done = run_cli("doctor", env={"HOME": base, "DOCKER_HOST": dockerd.url, "COLUMNS": "120"})
    assert done.returncode == 0
    assert f"The docker CLI would use {dockerd.url} - works" in done.stdout
    assert "containerd" in done.stdout and "No problems found." in done.stdout


def test_context_install_routes_the_real_docker_cli(base, dockerd):
    if not DOCKER_CLI:
        pytest.skip("docker CLI not installed")
    cfg = f"{base}/cfg"
    env = {"HOME": base, "DOCKER_CONFIG": cfg}
    socket_path = dockerd.socket  # the context must reach whatever listens there; here the engine itself
    done = run_cli("context", "install", "--socket", str(socket_path), env=env)
    assert done.returncode == 0, done.stderr
    assert os.path.exists(context_meta_path(cfg, "dockertap"))

    docker_env = {"PATH": os.environ["PATH"], **env}
    listed = subprocess.run(
        [DOCKER_CLI, "context", "ls", "--format", "{{.Name}} {{.DockerEndpoint}}"],
        env=docker_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"dockertap unix://{socket_path}" in listed.stdout.splitlines()
    server = subprocess.run(
        [DOCKER_CLI, "--context", "dockertap", "version", "--format", "{{.Server.Version}}"],
        env=docker_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert server.returncode == 0, server.stderr
    assert (
        server.stdout.strip()
        == gather({**env, "DOCKER_CONTEXT": "dockertap"}, base).current.probe.version["Version"]
    )

    subprocess.run(
        [DOCKER_CLI, "context", "use", "dockertap"], env=docker_env, check=True, capture_output=True
    )
    done = run_cli("context", "remove", env=env)
    assert done.returncode == 0 and "now uses 'default'" in done.stdout
    shown = subprocess.run(
        [DOCKER_CLI, "context", "show"], env=docker_env, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "default"
    assert run_cli("context", "remove", env=env).returncode == 1  # nothing left to remove


# --- every fix doctor prints works: the tests apply it --------------------------------------------

# Each installed docker CLI (Debian's 20.10 and a current one) must be fixed by the same command.
CLIS = sorted(
    {p for p in (DOCKER_CLI, "/usr/bin/docker", "/usr/local/bin/docker") if p and os.path.exists(p)}
)


def docker_works(
    command: str | None, env: dict[str, str], base: str, docker: str
) -> subprocess.CompletedProcess:
    """Run `command` (a fix doctor printed) in a shell, then the real `docker version`, with `docker` first
    on PATH."""
    bindir = f"{base}/bin-{os.path.basename(os.path.dirname(docker))}"
    os.makedirs(bindir, exist_ok=True)
    if not os.path.exists(f"{bindir}/docker"):
        os.symlink(docker, f"{bindir}/docker")
    script = f"{command}\n" if command else ""
    script += "docker version --format '{{.Server.Version}}'"
    full_env = {**env, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return subprocess.run(["sh", "-ec", script], env=full_env, capture_output=True, text=True, timeout=60)


def assert_fix_works(data: dict, env: dict[str, str], base: str, engine_url: str) -> str:
    """The first diagnosis's commands include one that selects `engine_url`; it works with every CLI,
    and the environment was really broken before it."""
    commands = data["diagnoses"][0]["commands"]
    assert commands, data["diagnoses"][0]
    for docker in CLIS:
        assert docker_works(None, env, base, docker).returncode != 0, f"{docker} was not broken"
        # Other engines on this machine (other test sessions) may stop at any time: apply every fix
        # but the `export DOCKER_HOST=` lines that select them.
        for command in [c for c in commands if "export DOCKER_HOST=" not in c or engine_url in c]:
            done = docker_works(command, env, base, docker)
            assert done.returncode == 0, f"{docker}: {command!r} did not fix it: {done.stderr}"
    return next(c for c in commands if engine_url in c or "unset" in c or "context use" in c)


@pytest.mark.skipif(not CLIS, reason="docker CLI not installed")
def test_doctor_path_without_scheme_fails_like_the_cli_and_its_fix_works(base, dockerd):
    env = {"HOME": base, "DOCKER_HOST": str(dockerd.socket)}
    code, data = doctor_json(env)
    cli_reading = f"tcp://localhost:2375{dockerd.socket}"
    assert code == 1 and data["ok"] is False and data["status"] == "fails"
    assert data["cli_endpoint"]["url"] == cli_reading
    assert data["cli_says"]["host"] == cli_reading  # the real CLI reads it the same way
    problem = data["diagnoses"][0]
    assert "has no scheme" in problem["problem"] and cli_reading in problem["problem"]
    assert problem["commands"][0] == f"export DOCKER_HOST={dockerd.url}"
    assert_fix_works(data, env, base, dockerd.url)

    done = run_cli("doctor", env={**env, "COLUMNS": "200"})
    assert done.returncode == 1 and "- works" not in done.stdout and "No problems found" not in done.stdout
    assert f"export DOCKER_HOST={dockerd.url}" in done.stdout


@pytest.mark.skipif(not CLIS, reason="docker CLI not installed")
def test_doctor_missing_docker_context_fix_is_unset_and_it_works(base, dockerd):
    cfg = f"{base}/.docker"
    write_context(cfg, "real", dockerd.url)
    set_current(cfg, "real")
    env = {"HOME": base, "DOCKER_CONTEXT": "nosuch"}
    code, data = doctor_json(env)
    assert code == 1 and data["status"] == "unresolved"
    problem = data["diagnoses"][0]
    assert problem["commands"][0] == "unset DOCKER_CONTEXT"
    assert "export DOCKER_CONTEXT=real" in problem["commands"]
    assert_fix_works(data, env, base, dockerd.url)


@pytest.mark.skipif(not CLIS, reason="docker CLI not installed")
def test_doctor_missing_current_context_fix_works_with_every_cli(base, dockerd):
    cfg = f"{base}/.docker"
    write_context(cfg, "real", dockerd.url)
    set_current(cfg, "gone")
    env = {"HOME": base}
    code, data = doctor_json(env)
    assert code == 1 and data["status"] == "unresolved"
    commands = data["diagnoses"][0]["commands"]
    assert "DOCKER_CONTEXT=default docker context use real" in commands
    for docker in CLIS:  # `docker context use` changes config.json: each CLI gets a broken one again
        set_current(cfg, "gone")
        assert docker_works(None, env, base, docker).returncode != 0
        done = docker_works("DOCKER_CONTEXT=default docker context use real", env, base, docker)
        assert done.returncode == 0, done.stderr


def test_doctor_points_at_the_engine_that_is_running_instead_of_starting_one(base, dockerd):
    env = {"HOME": base, "DOCKER_HOST": f"unix://{base}/nope.sock", "PATH": os.environ["PATH"]}
    report = gather(env, base, root=f"{base}/root")
    running = {r.engine.pid: r for r in report.running}
    assert dockerd.pid in running, [r.engine for r in report.running]
    ours = running[dockerd.pid]
    assert ours.engine.hosts == (dockerd.url,), ours.engine  # also from another mount namespace
    assert ours.endpoints[0].probe.ok
    diagnosis = report.diagnoses[0]
    assert "does not exist" in diagnosis.problem and "systemctl" not in diagnosis.fix
    assert f"export DOCKER_HOST={dockerd.url}" in diagnosis.commands
    if CLIS:
        done = docker_works(f"export DOCKER_HOST={dockerd.url}", env, base, CLIS[-1])
        assert done.returncode == 0, done.stderr


def test_doctor_refused_tcp_port_is_not_a_stale_socket(base):
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, data = doctor_json({"HOME": base, "DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert code == 1
    problem = data["diagnoses"][0]["problem"]
    assert "nothing listens on that port" in problem and "stale" not in problem


def test_doctor_ssh_is_not_checked_and_never_contradicts_itself(base):
    env = {"HOME": base, "DOCKER_HOST": "ssh://me@box.invalid", "COLUMNS": "200"}
    code, data = doctor_json(env)
    assert code == 3 and data["status"] == "not-checked" and data["ok"] is False
    assert [d["severity"] for d in data["diagnoses"]][:1] == ["not-checked"]
    assert "dial-stdio" in data["diagnoses"][0]["problem"]
    done = run_cli("doctor", env=env)
    assert done.returncode == 3
    assert "not checked" in done.stdout
    assert "- works" not in done.stdout and "does not work" not in done.stdout
    assert "No problems found" not in done.stdout


def test_doctor_quotes_the_cli_for_a_host_it_refuses(base):
    code, data = doctor_json({"HOME": base, "DOCKER_HOST": "http://127.0.0.1:9"})
    assert code == 1 and data["cli_endpoint"]["url"] is None
    assert "invalid bind address format: http://127.0.0.1:9" in data["diagnoses"][0]["problem"]
    assert "tcp://127.0.0.1:9 would be the right spelling" in data["diagnoses"][0]["fix"]


# --- states a real engine cannot be put in on demand ----------------------------------------------


def test_doctor_docker_host_at_a_garbage_listener(base):
    with FakeServer(f"{base}/g.sock", garbage):
        code, data = doctor_json({"HOME": base, "DOCKER_HOST": f"unix://{base}/g.sock"})
    assert code == 1 and data["ok"] is False
    assert data["current"]["probe"]["kind"] == "not-http"
    assert any("not with HTTP" in d["problem"] for d in data["diagnoses"])


def test_doctor_docker_host_at_missing_path_and_dead_dockertap_socket(base):
    code, data = doctor_json({"HOME": base, "DOCKER_HOST": f"unix://{base}/nope.sock"})
    assert code == 1
    problem = data["diagnoses"][0]
    assert problem["problem"] == f"DOCKER_HOST points at {base}/nope.sock, which does not exist"
    assert "unset DOCKER_HOST" in problem["fix"]

    xdg = f"{base}/xdg"
    os.makedirs(xdg)
    stale_socket(f"{xdg}/dockertap.sock")
    env = {"HOME": base, "XDG_RUNTIME_DIR": xdg, "DOCKER_HOST": f"unix://{xdg}/dockertap.sock"}
    code, data = doctor_json(env)
    assert code == 1
    assert "no dockertap proxy is running" in data["diagnoses"][0]["problem"]
    assert "dockertap proxy" in data["diagnoses"][0]["fix"]


def test_doctor_unresolvable_context(base):
    code, data = doctor_json({"HOME": base, "DOCKER_CONTEXT": "nosuch"})
    assert code == 1 and data["cli_endpoint"]["url"] is None and data["status"] == "unresolved"
    problem = data["diagnoses"][0]
    assert "DOCKER_CONTEXT=nosuch" in problem["problem"] and "unset DOCKER_CONTEXT" in problem["fix"]
    assert "docker context use default" not in problem["fix"] + " ".join(problem["commands"])
    if DOCKER_CLI:  # the CLI's own words, whatever its version
        said = subprocess.run(
            [DOCKER_CLI, "context", "inspect"], env={"HOME": base, "DOCKER_CONTEXT": "nosuch"},
            capture_output=True, text=True,
        ).stderr.strip().splitlines()[-1]  # fmt: skip
        assert said in problem["problem"]


def test_doctor_follows_symlinks_and_reports_where_they_point(base):
    stale_socket(f"{base}/real.sock")
    os.symlink(f"{base}/real.sock", f"{base}/link.sock")
    report = gather({"HOME": base, "DOCKER_HOST": f"unix://{base}/link.sock"}, base, root=f"{base}/root")
    facts = report.current.socket
    assert (
        facts.symlinks == [f"{base}/link.sock -> {base}/real.sock"] and facts.resolved == f"{base}/real.sock"
    )
    assert report.current.probe.kind == "refused" and "stale socket" in report.diagnoses[0].problem


def _nobody_command(base: str) -> tuple[list[str], dict[str, str]] | None:
    """Run this checkout's code as `nobody` with the system python (the venv's python lives under /root).

    The checkout's `dockertap/` folder holds only the CLI modules (setuptools maps `proxy/` etc. under
    it at install time), so it must never shadow the package assembled here: PYTHONSAFEPATH keeps the
    working directory (the repository root, under pytest) off sys.path.
    """
    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    if os.getuid() != 0 or not setpriv or not os.path.exists(python):
        return None
    pkg = f"{base}/py/dockertap"
    os.makedirs(pkg)
    for name in os.listdir(f"{REPO}/dockertap"):
        if name.endswith(".py"):
            os.symlink(f"{REPO}/dockertap/{name}", f"{pkg}/{name}")
    for sub in ("proxy", "analyzers", "recordings"):
        os.symlink(f"{REPO}/{sub}", f"{pkg}/{sub}")
    for path in (f"{base}/py", pkg):
        os.chmod(path, 0o755)
    site = next(p for p in sys.path if p.endswith("site-packages"))
    env = {
        "HOME": "/nonexistent",
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{base}/py:{site}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONSAFEPATH": "1",
    }
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", python], env


def test_doctor_as_unprivileged_user_on_a_docker_group_socket(base):
    command = _nobody_command(base)
    if command is None:
        pytest.skip("needs root, setpriv and /usr/bin/python3 to become 'nobody'")
    argv, env = command
    try:
        docker_gid = grp.getgrnam("docker").gr_gid
    except KeyError:
        pytest.skip("no 'docker' group on this machine")
    with FakeServer(f"{base}/engine.sock", docker_like(), mode=0o660) as srv:
        os.chown(srv.path, 0, docker_gid)
        probe_run = subprocess.run(
            [*argv, "-m", "dockertap.proxy.probe", srv.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe_run.returncode == 1, probe_run.stderr
        result = json.loads(probe_run.stdout)
        assert result["kind"] == "permission"
        assert "root:docker srw-rw----" in result["error"]
        assert "usermod -aG docker" in result["hint"]

        doctor_run = subprocess.run(
            [*argv, "-m", "dockertap", "doctor", "--json"],
            env={**env, "DOCKER_HOST": srv.url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert doctor_run.returncode == 1, doctor_run.stderr
        data = json.loads(doctor_run.stdout)
        assert data["current"]["socket"]["user_may_connect"] is False
        assert "permission denied" in data["diagnoses"][0]["problem"]
        assert "'docker' group" in data["diagnoses"][0]["fix"]
        assert srv.requests == []  # the kernel refused before anything reached the server

        # the same socket is fine for root: the failure above is the permission, not the server
        assert pwd.getpwuid(os.getuid()).pw_name == "root"
        code, data = doctor_json({"HOME": base, "DOCKER_HOST": srv.url})
        assert code == 0


# --- context store (pure file logic) --------------------------------------------------------------


def test_install_refuses_to_clobber_a_foreign_context_and_remove_keeps_other_config(base):
    cfg = f"{base}/cfg"
    write_context(cfg, "dockertap", "tcp://10.0.0.1:2375")
    with open(f"{cfg}/config.json", "w") as fh:
        json.dump({"auths": {"registry.example": {"auth": "eA=="}}, "currentContext": "dockertap"}, fh)
    with pytest.raises(ContextStoreError, match="already exists"):
        install_context(cfg, "dockertap", f"{base}/dt.sock")
    path, replaced = install_context(cfg, "dockertap", f"{base}/dt.sock", force=True)
    assert replaced == "tcp://10.0.0.1:2375"
    assert json.load(open(path))["Endpoints"]["docker"]["Host"] == f"unix://{base}/dt.sock"
    assert install_context(cfg, "dockertap", f"{base}/dt.sock")[1] is None  # same target: idempotent
    with pytest.raises(ContextStoreError):
        install_context(cfg, "default", f"{base}/dt.sock")

    assert remove_context(cfg, "dockertap") == (True, True)
    config = json.load(open(f"{cfg}/config.json"))
    assert config == {"auths": {"registry.example": {"auth": "eA=="}}}
    assert remove_context(cfg, "dockertap") == (False, False)


def test_context_install_default_socket_path(base):
    os.mkdir(f"{base}/xdg", 0o700)
    env = {"HOME": base, "DOCKER_CONFIG": f"{base}/cfg", "XDG_RUNTIME_DIR": f"{base}/xdg"}
    done = run_cli("context", "install", env=env)
    assert done.returncode == 0, done.stderr
    meta = json.load(open(context_meta_path(f"{base}/cfg", "dockertap")))
    assert meta["Endpoints"]["docker"]["Host"] == f"unix://{base}/xdg/dockertap/docker.sock"
    env.pop("XDG_RUNTIME_DIR")
    done = run_cli("context", "install", "--name", "dt2", env=env)
    meta = json.load(open(context_meta_path(f"{base}/cfg", "dt2")))
    fallback = "/run" if os.geteuid() == 0 else f"{base}/cfg"  # never /tmp: others could squat it
    assert meta["Endpoints"]["docker"]["Host"] == f"unix://{fallback}/dockertap/docker.sock"


def test_running_engine_command_lines_are_read_like_their_flag_parsers():
    argv = [
        "dockerd",
        "-H",
        "unix:///a.sock",
        "--host=tcp://127.0.0.1:2",
        "-Hunix:///b.sock",
        "--host",
        "fd://",
    ]
    assert flag_values(argv, "host", "H") == [
        "unix:///a.sock",
        "tcp://127.0.0.1:2",
        "unix:///b.sock",
        "fd://",
    ]
    assert flag_values(["containerd", "-a=/x.sock"], "address", "a") == ["/x.sock"]
    assert flag_values(["dockerd", "--", "-H", "x"], "host", "H") == []


def test_doctor_tcp_host_with_a_path_and_an_upper_case_scheme(base):
    code, data = doctor_json({"HOME": base, "DOCKER_HOST": "tcp://127.0.0.1:9/base"})
    assert code == 1 and data["status"] == "fails"
    assert data["cli_endpoint"]["url"] == "tcp://127.0.0.1:9/base"
    problem = data["diagnoses"][0]
    assert "under /base/" in problem["problem"] and "tcp://127.0.0.1:9 would be" in problem["fix"]
    code, data = doctor_json({"HOME": base, "DOCKER_HOST": "TCP://127.0.0.1:9"})
    assert code == 1 and data["status"] == "unresolved"  # the CLI refuses the value outright
    assert "invalid bind address format: TCP://127.0.0.1:9" in data["diagnoses"][0]["problem"]
