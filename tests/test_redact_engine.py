"""Secrets the real docker CLI sends to (and gets from) a real dockerd never reach a sink.

A private dockerd in swarm mode; `dockertap run` (JSON trace + recording, then again with text
lines) around a script of the commands that carry secrets: swarm join tokens and the unlock key
(`GET /swarm`, `/swarm/unlockkey`), `docker secret/config create` (`Data`), `swarm ca --rotate`
(`SigningCAKey`), `swarm join --token`, `docker login -p…`/`--password "a b"` (argv and `/auth`),
`docker pull` with `auths` in the config (`X-Registry-Auth`), `build`/`import` from URLs with
credentials (percent-encoded query; the CLI downloads build URLs itself, so curl sends `/build?remote=` as
docker-py does), `run -e DB_PASSWORD=…` and `exec -i` stdin. Every secret
string is then searched for in the recording, the JSON trace, the text lines and the HAR and
mitmproxy exports made from the recording.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import engines
import pytest
from conftest import DOCKERD_IDS, selected_engines

pytestmark = pytest.mark.engine

IMAGE = engines.BUSYBOX_TAG
REGISTRY = "127.0.0.1:9"  # nothing listens: the engine fails after the CLI sent its credentials
SECRETS = {
    "secret data": "TOPSECRET-data-31",
    "config data": "TOPSECRET-config-32",
    "registry password": "reg-Passw0rd-33",
    "login -p": "login-pw-34",
    "login --password with a space": "spaced tailword-pw-35",
    "build remote": "remote-tok-36",
    "import fromSrc": "src-tok-37",
    "run -e": "env-pw-38",
    "exec stdin": "stdin-secret-39",
    "SDK build remote": "sdk-remote-tok-44",
    "SDK pull auth_config": "sdk-pull-pw-45",
}

#: The docker SDK (docker-py) as a client: `build(path=URL)` sends `/build?remote=`, a pull with
#: `auth_config` sends X-Registry-Auth. Errors are expected (nothing listens at the registry).
SDK_SCRIPT = f"""
import docker
client = docker.from_env()
PASSWORD = "{SECRETS["SDK pull auth_config"]}"
for call in (
    lambda: list(client.api.build(path="https://sdk:{SECRETS["SDK build remote"]}@{REGISTRY}/repo.git")),
    lambda: client.images.pull(
        "{REGISTRY}/sdk/image", tag="1", auth_config={{"username": "sdk", "password": PASSWORD}}
    ),
):
    try:
        call()
    except docker.errors.APIError:
        pass
"""

SCRIPT = f"""
printf '%s' '{SECRETS["secret data"]}' | docker secret create s1 -
printf '%s' '{SECRETS["config data"]}' | docker config create c1 -
docker swarm join-token worker
docker swarm join-token manager
docker swarm update --autolock=true
docker swarm unlock-key -q
docker swarm ca --rotate --ca-cert "$CA_DIR/ca.pem" --ca-key "$CA_DIR/ca-key.pem" --detach
docker swarm join --token "$WORKER_TOKEN" 127.0.0.1:2377
docker login -u someone -p{SECRETS["login -p"]} {REGISTRY}
docker login -u someone --password "{SECRETS["login --password with a space"]}" {REGISTRY}
docker pull {REGISTRY}/private/image:1
curl -s --unix-socket "${{DOCKER_HOST#unix://}}" -X POST \
  "http://d/v1.41/build?remote=https%3A%2F%2Fbuilder%3A{SECRETS["build remote"]}%40{REGISTRY}%2Frepo.git"
docker import https://importer:{SECRETS["import fromSrc"]}@{REGISTRY}/rootfs.tar
docker run -d --name holder -e DB_PASSWORD={SECRETS["run -e"]} {IMAGE} sleep 60
printf 'AWS_SECRET_ACCESS_KEY=%s\\n' '{SECRETS["exec stdin"]}' | docker exec -i holder sh -c 'cat > /dev/null'
docker rm -f holder
"$PYTHON" "$SDK_SCRIPT"
exit 0
"""


def _ca(directory: Path) -> None:
    """A CA certificate and key for `docker swarm ca --rotate` (SigningCAKey in the request)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(directory / "ca-key.pem"), "-out", str(directory / "ca.pem"), "-days", "2",
         "-subj", "/CN=swarm-ca"],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module", params=selected_engines(DOCKERD_IDS))
def swarm(request: pytest.FixtureRequest) -> Iterator[engines.Engine]:
    """A dockerd of its own per generation (swarm mode must not leak into the shared engines)."""
    engine = engines.start_engine(request.param, engines.short_base("dtsw"))
    try:
        engines.import_busybox(engine)
        done = engines.docker(engine.url, "swarm", "init", "--advertise-addr", "127.0.0.1")
        if done.returncode != 0:
            pytest.fail(f"docker swarm init on a private dockerd failed: {done.stderr}")
        yield engine
    finally:
        engine.stop()


def _run(swarm: engines.Engine, base: Path, script: str, *options: str) -> subprocess.CompletedProcess[str]:
    config = base / "config"
    config.mkdir(exist_ok=True)
    auth = base64.b64encode(f"someone:{SECRETS['registry password']}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {REGISTRY: {"auth": auth}}}))
    worker = engines.docker(swarm.url, "swarm", "join-token", "-q", "worker").stdout.strip()
    (base / "script.sh").write_text(script)
    (base / "sdk.py").write_text(SDK_SCRIPT)
    extra = {"DOCKER_CONFIG": str(config), "CA_DIR": str(base), "WORKER_TOKEN": worker}
    extra.update(PYTHON=sys.executable, SDK_SCRIPT=str(base / "sdk.py"))
    env = engines.docker_env("unix:///nonexistent", extra)
    return subprocess.run(
        [
            *engines.dockertap_command(),
            "run",
            "--backend",
            swarm.url,
            *options,
            "--",
            "sh",
            str(base / "script.sh"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_no_secret_reaches_a_recording_trace_line_or_export(swarm: engines.Engine, short_tmp: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the swarm CA (Debian package openssl)")
    _ca(short_tmp)
    recording, trace, text = short_tmp / "rec.jsonl", short_tmp / "trace.jsonl", short_tmp / "trace.txt"
    first = _run(swarm, short_tmp, SCRIPT, "--record", str(recording), "--format", "json", "-o", str(trace))
    assert first.returncode == 0, first.stderr
    second = _run(swarm, short_tmp, SCRIPT.replace(" s1 ", " s2 ").replace(" c1 ", " c2 "), "-o", str(text))
    assert second.returncode == 0, second.stderr
    har, flows = short_tmp / "rec.har", short_tmp / "rec.flows"
    exported = subprocess.run(
        [*engines.dockertap_command(), "export", str(recording), "--har", str(har), "--flows", str(flows)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr

    secrets = dict(SECRETS)
    secrets["login --password with a space (its last word)"] = SECRETS[
        "login --password with a space"
    ].split()[1]
    for name in ("secret data", "config data"):
        secrets[f"{name} as base64"] = base64.b64encode(SECRETS[name].encode()).decode()
    secrets["registry auth as base64"] = base64.b64encode(
        f"someone:{SECRETS['registry password']}".encode()
    ).decode()
    for role in ("worker", "manager"):
        secrets[f"{role} join token"] = engines.docker(
            swarm.url, "swarm", "join-token", "-q", role
        ).stdout.strip()
    secrets["unlock key"] = engines.docker(swarm.url, "swarm", "unlock-key", "-q").stdout.strip()
    ca_key = (short_tmp / "ca-key.pem").read_text().splitlines()[1]
    secrets["signing CA key"] = ca_key[:40]
    assert all(len(value) >= 8 for value in secrets.values()), {
        k: v for k, v in secrets.items() if len(v) < 8
    }

    records = [json.loads(line) for line in recording.read_text().splitlines()]
    routes = {rec.get("route") for rec in records if rec.get("type") == "exchange"}
    for route in (
        "POST /secrets/create", "POST /configs/create", "GET /swarm", "GET /swarm/unlockkey",
        "POST /swarm/update", "POST /swarm/join", "POST /auth", "POST /images/create", "POST /build",
        "POST /containers/create", "POST /exec/{id}/start",
    ):  # fmt: skip
        assert route in routes, (route, sorted(routes))  # the script really sent it through the tap
    sdk = {
        rec["route"]
        for rec in records
        if rec.get("type") == "exchange" and "docker-sdk-python" in rec["request"]["head"]
    }
    assert {"POST /build", "POST /images/create"} <= sdk, sdk  # the SDK's requests went through too
    for path in (recording, trace, text, har, flows):
        data = path.read_bytes()
        for name, value in secrets.items():
            assert value.encode() not in data, f"{name} leaked into {path.name}"
            escaped = json.dumps(value)[1:-1].encode()  # as a JSON string (base64's '/' → '\\/' never)
            assert escaped not in data, f"{name} leaked into {path.name} (JSON-escaped)"
    exec_start = next(rec for rec in records if rec.get("route") == "POST /exec/{id}/start")
    stdin = [f for f in exec_start["hijack"]["frames"] if f["dir"] == "client"]
    assert stdin and all(f["data"] == "" and f["withheld"] > 0 for f in stdin)  # size kept, bytes not
    assert sum(f["withheld"] for f in stdin) == exec_start["hijack"]["client_bytes"]
    told = subprocess.run(
        [*engines.dockertap_command(), "replay", str(recording), "--only", "POST /exec/{id}/start"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # the narration counts the withheld bytes: it says how much was typed, not what
    assert f"{exec_start['hijack']['client_bytes']} bytes in" in told.stdout, told.stdout


def test_record_stdin_keeps_exec_stdin_and_says_so(swarm: engines.Engine, short_tmp: Path) -> None:
    script = f"""
docker run -d --name holder2 {IMAGE} sleep 60
printf 'kept-%s\\n' '{SECRETS["exec stdin"]}' | docker exec -i holder2 sh -c 'cat > /dev/null'
docker rm -f holder2
"""
    recording = short_tmp / "rec.jsonl"
    done = _run(swarm, short_tmp, script, "--record", str(recording), "--record-stdin")
    assert done.returncode == 0, done.stderr
    assert "warning: --record-stdin" in done.stderr
    frames = [
        f
        for line in recording.read_text().splitlines()
        if (rec := json.loads(line)).get("route") == "POST /exec/{id}/start"
        for f in rec["hijack"]["frames"]
        if f["dir"] == "client"
    ]
    kept = b"".join(
        base64.b64decode(f["data"]) if f["encoding"] == "base64" else f["data"].encode() for f in frames
    )
    assert f"kept-{SECRETS['exec stdin']}".encode() in kept


def _session_bytes(recording: Path) -> bytes:
    from dockertap.recordings.format import read_session

    session = read_session(recording)
    return b"".join(
        chunk
        for ex in session.exchanges
        if ex.record.get("route") == "POST /session"
        for _, _, chunk in ex.hijack_frames()
    )


def test_buildkit_secret_travels_in_the_session_and_is_withheld(
    swarm: engines.Engine, short_tmp: Path
) -> None:
    """`docker buildx build --secret`: the value crosses `/session` (proved with --no-redact), and a
    default recording keeps the session's frame sizes and times but none of its bytes."""
    value = "bk-session-secret-40"
    (short_tmp / "ctx").mkdir()
    (short_tmp / "ctx" / "Dockerfile").write_text(
        f"FROM {IMAGE}\nRUN --mount=type=secret,id=tok sh -c 'wc -c /run/secrets/tok'\n"
    )
    env = engines.docker_env(
        "unix:///nonexistent", {"DOCKER_CONFIG": str(engines.plugin_config_dir()), "TOK": value}
    )
    recordings = {}
    for name, options in (("default", ()), ("no-redact", ("--no-redact",))):
        recordings[name] = short_tmp / f"{name}.jsonl"
        done = subprocess.run(
            [*engines.dockertap_command(), "run", "--backend", swarm.url, "--record", str(recordings[name]),
             *options, "--", "docker", "buildx", "build", "--progress=plain", "--network=none",
             "--no-cache", "--secret", "id=tok,env=TOK", str(short_tmp / "ctx")],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert value.encode() in _session_bytes(recordings["no-redact"])  # the session really carried it
    data = recordings["default"].read_bytes()
    assert value.encode() not in data and _session_bytes(recordings["default"]) == b""
    records = [json.loads(line) for line in data.splitlines()]
    sessions = [rec for rec in records if rec.get("route") == "POST /session"]
    frames = [f for rec in sessions for f in rec["hijack"]["frames"]]
    assert frames and all(f["withheld"] > 0 for f in frames)
    assert sum(f["withheld"] for f in frames) == sum(
        rec["hijack"]["client_bytes"] + rec["hijack"]["backend_bytes"] for rec in sessions
    )


@pytest.mark.engines("podman-4.3", "podman-5.8")
def test_podman_secrets_and_exec_stdin_are_redacted(podman: engines.Engine, short_tmp: Path) -> None:
    """Podman's compat `/secrets/create` (docker CLI) and libpod's raw-body `/libpod/secrets/create`
    (`podman --url`, remote mode) through the tap; exec stdin withheld."""
    compat, libpod, stdin = "pod-compat-secret-41", "pod-libpod-secret-42", "pod-stdin-secret-43"
    (short_tmp / "libpod-secret").write_text(libpod)
    script = f"""
printf '%s' '{compat}' | docker secret create pc1 -
podman --url "$DOCKER_HOST" secret create pl1 "{short_tmp}/libpod-secret"
docker run -d --name holder3 {IMAGE} sleep 60
printf 'TOKEN=%s\\n' '{stdin}' | docker exec -i holder3 sh -c 'cat > /dev/null'
docker rm -f holder3
docker secret rm pc1 pl1
"""
    recording = short_tmp / "rec.jsonl"
    (short_tmp / "script.sh").write_text(script)
    done = subprocess.run(
        [*engines.dockertap_command(), "run", "--backend", podman.url, "--record", str(recording),
         "--", "sh", str(short_tmp / "script.sh")],
        env=engines.docker_env("unix:///nonexistent"), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = recording.read_bytes()
    routes = {json.loads(line).get("route") for line in data.splitlines()}
    assert {"POST /secrets/create", "POST /libpod/secrets/create", "POST /exec/{id}/start"} <= routes, routes
    for value in (compat, libpod, stdin):
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form.encode() not in data, form
