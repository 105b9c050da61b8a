"""Conformance: real clients behave the same through ``dockertap proxy`` as they do directly.

Each scenario runs twice against the same engine — once on the engine's own socket, once through a
``dockertap proxy`` subprocess — and the two observations (exit codes, stdout, stderr; digests for
binary streams) must be equal after ids, names and times are normalised.  The direct run also
checks the scenario's own expectations: if Podman fails one directly, that scenario is skipped on
Podman with Podman's error (dockertap cannot be blamed for it); on dockerd a direct failure fails.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import engines
import pytest
from conftest import ALL_ENGINE_IDS, EnginePool, selected_engines
from engines import BUSYBOX_TAG

pytestmark = pytest.mark.engine  # engines are reached through `target`, from the engine pool

IMAGE = BUSYBOX_TAG
BIG_IMAGE_BYTES = 256 * 1024 * 1024
ONE_MIB_PAYLOAD = os.urandom(1 << 20)


# --------------------------------------------------------------------------------------------
# Harness


@dataclass
class Target:
    engine: engines.Engine
    tap: engines.Tap


@pytest.fixture(scope="module", params=selected_engines(ALL_ENGINE_IDS))
def target(request: pytest.FixtureRequest, engine_pool: EnginePool) -> Iterator[Target]:
    """One engine (session-scoped) plus one ``dockertap proxy`` relaying to it for this module."""
    engine = engine_pool.get(request.param)
    base = engines.short_base("dtt")
    try:
        tap = engines.start_tap(engine.url, base)
    except RuntimeError as err:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(str(err), pytrace=False)
    yield Target(engine, tap)
    status = tap.stop()
    stderr_tail = engines.log_tail(tap.stderr_path)
    shutil.rmtree(base, ignore_errors=True)
    assert status in (0, 143, -15), f"dockertap proxy exited with {status}:\n{stderr_tail}"


# Why Podman 4.3 fails some scenarios directly (shown in the skip reason; the skip itself is decided
# by running the scenario directly, never by this table).
KNOWN_PODMAN_DIVERGENCES: dict[str, str] = {
    "exit_code_of_run_rm": "compat API: `docker run --rm` exits 0 whatever the container's status "
    "(podman issue #18889; later fixed by podman PR #24208)",
    "stats_no_stream": "the docker CLI drops the first character of the stats `name`, expecting Docker's "
    "leading '/' (docker/cli cli/command/container/formatter_stats.go: Name); Podman sends the name bare",
    "events_in_a_time_window": "fractional --since/--until, or an --until already past, return no events "
    "(observed with podman 4.3.1); the scenario therefore uses whole seconds and a future --until",
}


class Outcome(NamedTuple):
    returncode: int
    stdout: Any
    stderr: Any


class Unmet(AssertionError):
    """A scenario's own expectation failed (as opposed to direct and proxied runs differing)."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise Unmet(message)


@dataclass
class Client:
    """The real docker CLI aimed at one URL; remembers what it created so it can be removed."""

    url: str
    workdir: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    names: list[str] = field(default_factory=list)
    cleanup: list[tuple[str, ...]] = field(default_factory=list)

    def name(self, label: str) -> str:
        """A unique name; normalisation maps it back to its position, so runs compare equal."""
        made = f"dt-{label}-{self.token}{len(self.names)}"
        self.names.append(made)
        return made

    def container(self, label: str) -> str:
        made = self.name(label)
        self.cleanup.append(("rm", "--force", made))
        return made

    def docker(
        self,
        *args: str,
        input: bytes | str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
        text: bool | None = None,
    ) -> Outcome:
        try:
            done = engines.docker(self.url, *args, input=input, env=env, timeout=timeout, text=text)
        except subprocess.TimeoutExpired as err:
            raise Unmet(f"docker {' '.join(args)} timed out after {timeout}s") from err
        return Outcome(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **kwargs: Any) -> Outcome:
        """Run and require exit status 0."""
        outcome = self.docker(*args, **kwargs)
        expect(outcome.returncode == 0, f"docker {' '.join(args)} failed: {outcome.stderr!r}")
        return outcome

    def remove_created(self) -> None:
        for args in reversed(self.cleanup):
            engines.docker(self.url, *args, timeout=60)


_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
# Short ids: 12 hex digits from the docker CLI, 11 from buildah's "--> 61940e35d96" lines.
_HEX12 = re.compile(r"\b[0-9a-f]{11,12}\b")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?( ?Z| ?[+-]\d\d:?\d\d)?( [A-Z]{3,4})?")
_AGO = re.compile(r"\b(\d+|About an?|Less than a) (second|minute|hour|day|week|month|year)s? ago\b")
_UP = re.compile(r"\bUp (\d+|About an?|Less than a) (second|minute|hour)s?\b")
_PADDING = re.compile(r" {2,}")


def normalise(value: Any, names: list[str]) -> Any:
    """Replace what legitimately differs between two runs: ids, our unique names, times, padding."""
    if isinstance(value, Outcome):
        return Outcome(*(normalise(v, names) for v in value))
    if isinstance(value, tuple | list):
        return type(value)(normalise(v, names) for v in value)
    if isinstance(value, dict):
        return {k: normalise(v, names) for k, v in value.items()}
    if isinstance(value, bytes):
        return normalise(value.decode(errors="replace"), names)
    if not isinstance(value, str):
        return value
    for index, name in sorted(enumerate(names), key=lambda pair: -len(pair[1])):
        value = value.replace(name, f"<name{index}>")
    value = _HEX64.sub("<ID>", value)
    value = _HEX12.sub("<id>", value)
    value = _TIMESTAMP.sub("<TIME>", value)
    value = _AGO.sub("<AGO>", value)
    value = _UP.sub("Up <DUR>", value)
    return _PADDING.sub("  ", value)


Scenario = Callable[[Client], Any]


def run_scenario(scenario: Scenario, url: str, workdir: Path) -> tuple[Any, list[str]]:
    client = Client(url, workdir)
    try:
        return scenario(client), client.names
    finally:
        client.remove_created()


def conform(target: Target, scenario: Scenario, tmp_path: Path) -> Any:
    """Run directly, then through dockertap; require equal normalised observations."""
    engine = target.engine
    try:
        direct, direct_names = run_scenario(scenario, engine.url, tmp_path / "direct")
    except Unmet as err:
        if engine.name == "podman":
            known = KNOWN_PODMAN_DIVERGENCES.get(scenario.__name__)
            pytest.skip(
                f"Podman fails this directly (not through dockertap): {err}"
                + (f" — {known}" if known else "")
            )
        pytest.fail(f"{engine.name} fails this scenario directly, without dockertap: {err}", pytrace=False)
    try:
        proxied, proxied_names = run_scenario(scenario, target.tap.url, tmp_path / "tap")
    except Unmet as err:
        pytest.fail(f"through dockertap only: {err}\n--- dockertap stderr ---\n{_tap_stderr(target)}")
    assert normalise(proxied, proxied_names) == normalise(direct, direct_names)
    return proxied


def _tap_stderr(target: Target) -> str:
    return engines.log_tail(target.tap.stderr_path)


# --------------------------------------------------------------------------------------------
# Scenarios (each returns what must be equal between the direct and the proxied run)

SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def version(c: Client) -> Outcome:
    outcome = c.ok("version")
    expect("Server:" in outcome.stdout, f"no Server section: {outcome.stdout!r}")
    return outcome


@scenario
def ps_and_images(c: Client) -> tuple[Outcome, ...]:
    listed = c.ok("ps", "--all")
    images = c.ok("images")
    expect(IMAGE.split(":")[0] in images.stdout, f"{IMAGE} not listed: {images.stdout!r}")
    return listed, images


@scenario
def ps_of_a_created_container(c: Client) -> tuple[Outcome, ...]:
    name = c.container("ps")
    c.ok("create", "--name", name, IMAGE, "true")
    table = c.ok("ps", "--all", "--filter", f"name={name}")
    names = c.ok("ps", "--all", "--filter", f"name={name}", "--format", "{{.Names}} {{.Image}}")
    expect(names.stdout.split()[0] == name, f"ps did not list {name}: {names.stdout!r}")
    return table, names


@scenario
def run_echo(c: Client) -> Outcome:
    outcome = c.docker("run", "--rm", IMAGE, "echo", "hi")
    expect(outcome == (0, "hi\n", ""), f"unexpected {outcome}")
    return outcome


@scenario
def run_interactive_stdin(c: Client) -> Outcome:
    outcome = c.docker("run", "-i", "--rm", IMAGE, "cat", input="hi\n")
    expect(outcome == (0, "hi\n", ""), f"unexpected {outcome}")
    return outcome


@scenario
def run_interactive_one_mib_binary(c: Client) -> tuple[int, str, int, bytes]:
    outcome = c.docker("run", "-i", "--rm", IMAGE, "cat", input=ONE_MIB_PAYLOAD, timeout=120)
    digest = hashlib.sha256(outcome.stdout).hexdigest()
    expect(outcome.returncode == 0, f"exit {outcome.returncode}: {outcome.stderr!r}")
    expect(
        outcome.stdout == ONE_MIB_PAYLOAD,
        f"got {len(outcome.stdout)} bytes, sha256 {digest}; sent {len(ONE_MIB_PAYLOAD)} bytes",
    )
    return outcome.returncode, digest, len(outcome.stdout), outcome.stderr


@scenario
def run_detached_then_exec(c: Client) -> tuple[Outcome, ...]:
    name = c.container("exec")
    started = c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    executed = c.docker("exec", name, "sh", "-c", "echo exec-ok; echo exec-err >&2")
    expect(executed == (0, "exec-ok\n", "exec-err\n"), f"unexpected {executed}")
    return started, executed


@scenario
def exec_interactive_stdin(c: Client) -> Outcome:
    name = c.container("execi")
    c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    outcome = c.docker("exec", "-i", name, "sh", "-c", "cat; echo eof-seen", input="piped\nlines\n")
    expect(outcome == (0, "piped\nlines\neof-seen\n", ""), f"unexpected {outcome}")
    return outcome


@scenario
def exit_code_of_run(c: Client) -> Outcome:
    name = c.container("exit")
    ran = c.docker("run", "--name", name, IMAGE, "sh", "-c", "exit 3")
    expect(ran.returncode == 3, f"run exit status {ran.returncode}, wanted 3: {ran.stderr!r}")
    return ran


@scenario
def exit_code_of_run_rm(c: Client) -> Outcome:
    ran = c.docker("run", "--rm", IMAGE, "sh", "-c", "exit 3")
    expect(ran.returncode == 3, f"run --rm exit status {ran.returncode}, wanted 3: {ran.stderr!r}")
    return ran


@scenario
def exit_code_of_exec(c: Client) -> Outcome:
    name = c.container("exitx")
    c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    executed = c.docker("exec", name, "sh", "-c", "exit 4")
    expect(executed.returncode == 4, f"exec exit status {executed.returncode}, wanted 4: {executed.stderr!r}")
    return executed


@scenario
def stdout_and_stderr_stay_separate(c: Client) -> Outcome:
    outcome = c.docker("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; echo out2")
    expect(outcome == (0, "out\nout2\n", "err\n"), f"unexpected {outcome}")
    return outcome


@scenario
def logs(c: Client) -> Outcome:
    name = c.container("logs")
    c.ok("run", "--name", name, IMAGE, "sh", "-c", "echo l1; echo l2 >&2; echo l3")
    outcome = c.docker("logs", name)
    expect(outcome == (0, "l1\nl3\n", "l2\n"), f"unexpected {outcome}")
    return outcome


@scenario
def logs_follow_ends_when_container_exits(c: Client) -> Outcome:
    name = c.container("logsf")
    c.ok("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo a; sleep 2; echo b")
    began = time.monotonic()
    outcome = c.docker("logs", "--follow", name, timeout=30)
    expect(outcome == (0, "a\nb\n", ""), f"unexpected {outcome}")
    expect(time.monotonic() - began < 20, "logs --follow did not end promptly after the container exited")
    return outcome


@scenario
def attach(c: Client) -> Outcome:
    name = c.container("attach")
    c.ok("run", "-d", "--name", name, IMAGE, "sh", "-c", "sleep 2; echo attached; exit 5")
    outcome = c.docker("attach", name, timeout=30)
    expect(outcome == (5, "attached\n", ""), f"unexpected {outcome}")
    return outcome


@scenario
def wait(c: Client) -> Outcome:
    name = c.container("wait")
    c.ok("run", "-d", "--name", name, IMAGE, "sh", "-c", "sleep 1; exit 7")
    outcome = c.docker("wait", name, timeout=30)
    expect(outcome == (0, "7\n", ""), f"unexpected {outcome}")
    return outcome


@scenario
def stop(c: Client) -> tuple[Outcome, ...]:
    name = c.container("stop")
    # A shell that exits cleanly on SIGTERM, so stop does not wait for its kill timeout.
    c.ok("run", "-d", "--name", name, IMAGE, "sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait")
    stopped = c.docker("stop", "--time", "10", name, timeout=30)
    state = c.ok("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", name)
    expect(stopped.returncode == 0 and state.stdout == "false 0\n", f"unexpected {stopped}, {state}")
    return stopped, state


@scenario
def kill(c: Client) -> tuple[Outcome, ...]:
    name = c.container("kill")
    c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    killed = c.docker("kill", name)
    c.docker("wait", name, timeout=30)
    state = c.ok("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", name)
    expect(killed.returncode == 0 and state.stdout == "false 137\n", f"unexpected {killed}, {state}")
    return killed, state


@scenario
def pause_and_unpause(c: Client) -> tuple[Outcome, ...]:
    name = c.container("pause")
    c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    paused = c.docker("pause", name)
    while_paused = c.ok("inspect", "--format", "{{.State.Status}}", name)
    unpaused = c.docker("unpause", name)
    after = c.ok("inspect", "--format", "{{.State.Status}}", name)
    expect(
        (paused.returncode, while_paused.stdout, unpaused.returncode, after.stdout)
        == (0, "paused\n", 0, "running\n"),
        f"unexpected {paused}, {while_paused}, {unpaused}, {after}",
    )
    return paused, while_paused, unpaused, after


@scenario
def top(c: Client) -> tuple[int, list[str], list[str], str]:
    name = c.container("top")
    c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    outcome = c.docker("top", name)
    lines = outcome.stdout.splitlines()
    expect(outcome.returncode == 0 and len(lines) >= 2, f"unexpected {outcome}")
    # PIDs, start times and CPU times differ per container; the columns and the commands must not.
    header = lines[0].split()
    commands = [line.split()[-2:] for line in lines[1:]]
    expect(["sleep", "300"] in commands, f"sleep not in top: {outcome.stdout!r}")
    return outcome.returncode, header, [" ".join(cmd) for cmd in commands], outcome.stderr


@scenario
def stats_no_stream(c: Client) -> tuple[int, list[str], str, str]:
    name = c.container("stats")
    c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    table = c.docker("stats", "--no-stream", name, timeout=30)
    lines = table.stdout.splitlines()
    expect(table.returncode == 0 and len(lines) == 2, f"unexpected {table}")
    # Usage numbers differ from sample to sample; the columns and the container named must not.
    header, row = lines[0].split(), lines[1].split()
    expect(row[1] == name, f"stats row is not {name}: {lines[1]!r}")
    return table.returncode, header, row[1], table.stderr


@scenario
def cp_in_and_out(c: Client) -> tuple[Outcome, ...]:
    name = c.container("cp")
    c.ok("run", "-d", "--name", name, IMAGE, "sleep", "300")
    c.workdir.mkdir(parents=True, exist_ok=True)
    payload = ONE_MIB_PAYLOAD[:200_000]
    source, back = c.workdir / "in.bin", c.workdir / "out.bin"
    source.write_bytes(payload)
    c.names.append(str(c.workdir))  # `docker cp` names the host path in its output
    copied_in = c.docker("cp", str(source), f"{name}:/tmp/in.bin")
    inside = c.docker("exec", name, "sha256sum", "/tmp/in.bin")
    copied_out = c.docker("cp", f"{name}:/tmp/in.bin", str(back))
    expect(copied_in.returncode == 0 and copied_out.returncode == 0, f"cp failed: {copied_in}, {copied_out}")
    expect(inside.stdout.split()[0] == hashlib.sha256(payload).hexdigest(), f"digest inside: {inside}")
    expect(back.read_bytes() == payload, "bytes copied out differ from bytes copied in")
    return copied_in, inside, copied_out


@scenario
def export_byte_count(c: Client) -> tuple[int, int, list[str], bytes]:
    name = c.container("export")
    c.ok("create", "--network", "none", "--name", name, IMAGE, "true")
    outcome = c.docker("export", name, text=False, timeout=60)
    expect(outcome.returncode == 0, f"export failed: {outcome.stderr!r}")
    expect(len(outcome.stdout) > 1_000_000, f"export is only {len(outcome.stdout)} bytes")
    members = sorted(_tar_member_names(outcome.stdout))
    expect("bin/busybox" in members, "bin/busybox missing from the export")
    return outcome.returncode, len(outcome.stdout), members, outcome.stderr


def _tar_member_names(data: bytes) -> list[str]:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [member.name.lstrip("./") for member in tar.getmembers()]


@scenario
def inspect_missing_object(c: Client) -> Outcome:
    outcome = c.docker("inspect", "dt-no-such-object")
    expect(outcome.returncode == 1, f"unexpected {outcome}")
    expect("dt-no-such-object" in outcome.stderr, f"error does not name the object: {outcome.stderr!r}")
    return outcome


@scenario
def events_in_a_time_window(c: Client) -> Outcome:
    name = c.container("events")
    # Whole seconds, and --until slightly in the future: Podman 4.3 returns nothing for fractional
    # --since/--until or for an --until already past. Both engines stream until --until, then end.
    since = int(time.time()) - 1
    c.ok("run", "--name", name, IMAGE, "true")
    until = int(time.time()) + 2
    outcome = c.docker(
        "events", "--since", str(since), "--until", str(until), "--filter", f"container={name}",
        "--format", "{{.Type}} {{.Action}}", timeout=30,
    )  # fmt: skip
    actions = outcome.stdout.split()
    expect(outcome.returncode == 0 and "start" in actions and "die" in actions, f"unexpected {outcome}")
    return outcome


@scenario
def legacy_build(c: Client) -> tuple[Outcome, ...]:
    context = c.workdir / "build"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo built > /x\n")
    tag = c.name("build")
    c.cleanup.append(("rmi", "--force", tag))
    env = {"DOCKER_BUILDKIT": "0"}
    built = c.docker("build", "--no-cache", "--tag", tag, str(context), env=env, timeout=120)
    expect(built.returncode == 0, f"build failed: {built.stderr!r}")
    ran = c.docker("run", "--rm", tag, "cat", "/x")
    expect(ran == (0, "built\n", ""), f"unexpected {ran}")
    return built, ran


@scenario
def network_create_ls_rm(c: Client) -> tuple[Outcome, ...]:
    name = c.name("net")
    created = c.docker("network", "create", name)
    c.cleanup.append(("network", "rm", name))
    listed = c.docker("network", "ls", "--filter", f"name={name}", "--format", "{{.Name}} {{.Driver}}")
    removed = c.docker("network", "rm", name)
    expect(created.returncode == 0 and listed.stdout == f"{name} bridge\n", f"unexpected {created}, {listed}")
    expect(removed == (0, f"{name}\n", ""), f"unexpected {removed}")
    return created, listed, removed


@scenario
def volume_create_ls_rm(c: Client) -> tuple[Outcome, ...]:
    name = c.name("vol")
    created = c.docker("volume", "create", name)
    c.cleanup.append(("volume", "rm", "--force", name))
    listed = c.docker("volume", "ls", "--filter", f"name={name}", "--format", "{{.Name}} {{.Driver}}")
    removed = c.docker("volume", "rm", name)
    expect(created == (0, f"{name}\n", "") and listed.stdout == f"{name} local\n", f"{created}, {listed}")
    expect(removed == (0, f"{name}\n", ""), f"unexpected {removed}")
    return created, listed, removed


@scenario
def twenty_parallel_calls(c: Client) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda _: c.docker("ps", "--all", "--no-trunc", timeout=60), range(20)))
    expect(all(o.returncode == 0 for o in outcomes), f"some calls failed: {outcomes}")
    # Normalised: a "CREATED n seconds ago" column may tick over between the 20 calls.
    distinct = {normalise(o, c.names) for o in outcomes}
    expect(len(distinct) == 1, f"20 concurrent `docker ps` calls disagreed: {distinct}")
    return outcomes


@scenario
def compose_v1_up_ps_logs_down(c: Client) -> tuple[Outcome, ...]:
    compose = shutil.which("docker-compose")
    expect(compose is not None, "docker-compose (v1) is not installed")
    project = c.name("compose")
    project_dir = c.workdir / "compose"
    project_dir.mkdir(parents=True, exist_ok=True)
    (project_dir / "docker-compose.yml").write_text(
        "version: '2.4'\n"
        "services:\n"
        "  box:\n"
        f"    image: {IMAGE}\n"
        "    command: sh -c 'echo compose-ok; sleep 30'\n"
    )

    def run(*args: str) -> Outcome:
        done = subprocess.run(
            [compose, "--ansi", "never", "--project-name", project, *args],
            cwd=project_dir, env=engines.docker_env(c.url), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return Outcome(done.returncode, done.stdout, done.stderr)

    try:
        up = run("up", "-d")
        expect(up.returncode == 0, f"compose up failed: {up.stderr!r}")
        listed = run("ps")
        deadline = time.monotonic() + 15
        logged = run("logs", "--no-color")
        while "compose-ok" not in logged.stdout and time.monotonic() < deadline:
            time.sleep(0.3)
            logged = run("logs", "--no-color")
    finally:
        down = run("down", "--timeout", "1")
    expect("compose-ok" in logged.stdout, f"service output missing from compose logs: {logged}")
    expect(down.returncode == 0, f"compose down failed: {down.stderr!r}")
    return up, listed, logged, down


# --------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_conformance(target: Target, name: str, tmp_path: Path) -> None:
    conform(target, SCENARIOS[name], tmp_path)


@pytest.mark.slow
def test_save_and_load_of_a_256_mib_image(target: Target, tmp_path: Path) -> None:
    """``docker save`` streams the same archive through dockertap; ``load`` through it restores it."""
    engine, tap = target.engine, target.tap
    tag = f"dt-big-{uuid.uuid4().hex[:6]}:latest"
    seed = Path("/var/tmp") / f"{tag.split(':')[0]}.bin"
    try:
        engines.import_big_image(engine, tag, BIG_IMAGE_BYTES, seed_file=seed)
        big_digest = _file_sha256(seed)
        direct_tar, proxied_tar = tmp_path / "direct.tar", tmp_path / "proxied.tar"
        saved_direct = engines.docker(engine.url, "save", "--output", str(direct_tar), tag, timeout=300)
        if saved_direct.returncode != 0 and engine.name == "podman":
            pytest.skip(f"Podman fails docker save directly: {saved_direct.stderr}")
        assert saved_direct.returncode == 0, saved_direct.stderr
        saved = engines.docker(tap.url, "save", "--output", str(proxied_tar), tag, timeout=300)
        assert saved.returncode == 0, saved.stderr
        assert proxied_tar.stat().st_size >= BIG_IMAGE_BYTES
        if _file_sha256(proxied_tar) != _file_sha256(direct_tar):
            # Docker >= 25 stamps the archive's own entries with the time of the save, so two saves
            # differ in those bytes; every entry's name, type, mode and content must still be equal.
            changed = "dockertap changed the archive"
            assert _archive_contents(proxied_tar) == _archive_contents(direct_tar), changed
        direct_tar.unlink()
        removed = engines.docker(tap.url, "rmi", tag)
        assert removed.returncode == 0, removed.stderr
        loaded = engines.docker(tap.url, "load", "--input", str(proxied_tar), timeout=300)
        assert loaded.returncode == 0, loaded.stderr
        inside = engines.docker(engine.url, "run", "--rm", tag, "sha256sum", "/big", timeout=120)
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout.split()[0] == big_digest
    finally:
        engines.docker(engine.url, "rmi", "--force", tag)
        seed.unlink(missing_ok=True)


def _archive_contents(path: Path) -> list[tuple[str, bytes, int, str]]:
    """Each entry of a tar archive without its timestamps: (name, type, mode, sha256 of the data)."""
    entries = []
    with tarfile.open(path, mode="r|") as archive:
        for member in archive:
            digest = hashlib.sha256()
            data = archive.extractfile(member) if member.isfile() else None
            while data is not None and (chunk := data.read(1 << 20)):
                digest.update(chunk)
            entries.append((member.name, member.type, member.mode, member.linkname + digest.hexdigest()))
    return sorted(entries)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
