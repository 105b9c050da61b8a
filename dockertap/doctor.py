"""`dockertap doctor`: which Docker API endpoints exist, which one the docker CLI uses, what is wrong.

Read-only: it stats files, opens sockets and asks `/_ping`, `/version`, `/info`. It never needs
root and changes nothing. Each problem comes with a concrete fix; `--json` gives the same facts
to scripts. Exit code 0 when the endpoint the docker CLI would use right now answers, else 1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dockertap.analyzers.fingerprint import BackendFingerprint, fingerprint
from dockertap.doctor_text import diagnosis, language, probe_hint, say, speaking
from dockertap.i18n import Lang, default_lang
from dockertap.linebreak import wrap_text
from dockertap.proxy.cli_host import CliHost, read_context_host
from dockertap.proxy.discovery import (
    Candidate,
    CliChoice,
    ContextInfo,
    candidates,
    cli_choice,
    docker_config_dir,
    dockertap_socket_paths,
    list_contexts,
)
from dockertap.proxy.endpoints import Endpoint, EndpointError, parse_endpoint
from dockertap.proxy.probe import InstalledEngine, ProbeResult, installed_engines, owner_names, probe
from dockertap.proxy.running_engines import RunningEngine, running_engines
from dockertap.recordings.safe_text import json_safe, safe_markup

# The layers behind each backend family, top to bottom, and which `/version` component carries the
# version of each (layer-model.md §4.2; Podman's compat/version.go names components
# "Podman Engine", "Conmon", "OCI Runtime (<name>)"). A component of None has no version there.
LAYER_CHAINS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "dockerd": (
        ("dockerd", "Engine"),
        ("containerd", "containerd"),
        ("containerd-shim-runc-v2", None),  # one per container; /version has no entry for it
        ("runc", "runc"),
    ),
    "podman": (
        ("Podman compat API", "Podman Engine"),
        ("conmon", "Conmon"),
        ("OCI runtime", "OCI Runtime"),
    ),
}

@dataclass(slots=True)
class SocketFacts:
    """What the filesystem says about a socket path, before anyone connects."""

    path: str
    exists: bool
    symlinks: list[str] = field(default_factory=list)  # each hop: "a -> b"
    resolved: str | None = None
    kind: str | None = None  # "socket", "regular file", "directory", ...
    owner: str | None = None
    group: str | None = None
    mode: str | None = None
    user_may_connect: bool | None = None  # write permission on the socket, for the current user

    @property
    def summary(self) -> str:
        if not self.exists:
            where = f" (dangling: {self.symlinks[-1]})" if self.symlinks else ""
            return f"absent{where}"
        text = f"{self.kind} {self.owner}:{self.group} {self.mode}"
        if self.symlinks:
            text += f" via symlink -> {self.resolved}"
        return text


_FILE_KINDS = (
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISREG, "regular file"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def socket_facts(path: str) -> SocketFacts:
    """Stat a socket path, following and recording each symlink hop."""
    hops: list[str] = []
    current = path
    for _ in range(40):
        try:
            target = os.readlink(current)
        except OSError:  # not a symlink (or it vanished while we looked)
            break
        nxt = os.path.normpath(os.path.join(os.path.dirname(current), target))
        hops.append(f"{current} -> {target}")
        current = nxt
    try:
        st = os.stat(path)
    except OSError:
        return SocketFacts(path, False, hops)
    kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "other")
    owner, group = owner_names(st)
    return SocketFacts(
        path,
        True,
        hops,
        os.path.realpath(path),
        kind,
        owner,
        group,
        stat.filemode(st.st_mode),
        os.access(path, os.W_OK),
    )


def _component(version: dict | None, name: str) -> str | None:
    """A `/version` component's version, cleaned of Podman's `conmon version X, commit: …` wording."""
    for comp in (version or {}).get("Components") or ():
        comp_name = str(comp.get("Name", ""))
        if comp_name == name or comp_name.startswith(name + " ("):
            text = str(comp.get("Version", "")).splitlines()[0] if comp.get("Version") else ""
            match = re.search(r"version\s+([^\s,]+)", text)
            label = comp_name[len(name) :].strip(" ()") if comp_name != name else ""
            value = match.group(1) if match else text
            return f"{label} {value}".strip() if label else value
    return None


def _fingerprint(result: ProbeResult) -> BackendFingerprint:
    path_exists = os.path.exists if result.endpoint.scheme == "unix" else None
    return fingerprint(
        result.ping_headers,
        result.version,
        result.info,
        endpoint_url=result.endpoint.url,
        path_exists=path_exists,
    )


def backend_family(result: ProbeResult, fp: BackendFingerprint | None) -> str:
    """Which layer chain (a LAYER_CHAINS key) is behind an answering endpoint."""
    if fp is not None and fp.family != "unknown":
        return fp.family
    return "podman" if result.header("Libpod-Api-Version") else "dockerd"


def _fp_dict(fp: BackendFingerprint | None) -> dict | None:
    return fp.to_dict() if fp is not None else None


@dataclass(slots=True)
class Diagnosis:
    """One thing wrong, the fix in words, and `commands`: shell lines each of which alone fixes it.

    Every command is one doctor has checked will work (it probed the endpoint the command selects);
    the tests run them.
    """

    problem: str
    fix: str
    url: str | None = None
    commands: list[str] = field(default_factory=list)
    severity: str = "problem"  # "problem" | "not-checked"


@dataclass(slots=True)
class EndpointReport:
    """One candidate endpoint as the doctor saw it."""

    source: str
    url: str | None
    note: str
    socket: SocketFacts | None = None
    probe: ProbeResult | None = None
    fingerprint: BackendFingerprint | None = None
    unusable: str | None = None  # e.g. ssh:// or a context without a docker endpoint

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "url": self.url,
            "note": self.note,
            "socket": asdict(self.socket) if self.socket else None,
            "probe": self.probe.to_dict() if self.probe else None,
            "fingerprint": _fp_dict(self.fingerprint),
            "unusable": self.unusable,
        }


@dataclass(slots=True)
class RunningReport:
    """A running engine process and how each endpoint it serves answered."""

    engine: RunningEngine
    endpoints: list[EndpointReport]

    def to_dict(self) -> dict:
        return {**self.engine.to_dict(), "endpoints": [e.to_dict() for e in self.endpoints]}


@dataclass(slots=True)
class DoctorReport:
    choice: CliChoice
    current: EndpointReport
    endpoints: list[EndpointReport]
    contexts: list[ContextInfo]
    engines: list[InstalledEngine]
    running: list[RunningReport]
    diagnoses: list[Diagnosis]
    docker_cli: str | None
    cli_says: dict[str, str | None] | None  # the real docker CLI's own reading (host or error)
    env: dict[str, str | None]

    @property
    def cli_url(self) -> str | None:
        return self.choice.url

    @property
    def cli_why(self) -> str:
        return self.choice.why

    @property
    def status(self) -> str:
        """works | fails | unresolved | not-checked."""
        reading = self.choice.reading
        if reading is None or reading.url is None:
            return "unresolved"
        if reading.not_probed and not reading.error:
            return "not-checked"
        return "works" if self.ok else "fails"

    @property
    def ok(self) -> bool:
        reading = self.choice.reading
        if reading is None or reading.error or reading.meant:
            return False
        return bool(self.current.probe and self.current.probe.ok)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "status": self.status,
            "cli_endpoint": {"url": self.cli_url, "why": self.cli_why},
            "cli_says": self.cli_says,
            "current": self.current.to_dict(),
            "chain": [{"layer": layer, "detail": detail} for layer, detail in layer_chain(self)],
            "endpoints": [e.to_dict() for e in self.endpoints],
            "contexts": [asdict(c) for c in self.contexts],
            "installed_engines": [asdict(e) for e in self.engines],
            "running_engines": [r.to_dict() for r in self.running],
            "diagnoses": [asdict(d) for d in self.diagnoses],
            "docker_cli": self.docker_cli,
            "env": self.env,
        }


def _probe_key(endpoint: Endpoint, base_path: str = "") -> str:
    if endpoint.scheme == "unix":
        return f"unix://{os.path.realpath(endpoint.path)}"
    return endpoint.url + base_path


class _Prober:
    """Probes each distinct endpoint once (the same socket often appears under several sources)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._seen: dict[str, tuple[ProbeResult, BackendFingerprint | None]] = {}

    def report(
        self, source: str, url: str | None, note: str = "", unusable: str | None = None
    ) -> EndpointReport:
        rep = EndpointReport(source, url, note, unusable=unusable)
        if url is None or unusable:
            return rep
        try:
            endpoint = parse_endpoint(url)
        except EndpointError as exc:
            rep.unusable = str(exc)
            return rep
        rep.url = endpoint.url
        return self._probe_into(rep, endpoint)

    def report_cli(self, source: str, reading: CliHost, note: str) -> EndpointReport:
        """The endpoint the docker CLI dials for `reading`, probed the way the CLI would ask it."""
        rep = EndpointReport(source, reading.url, note)
        if reading.endpoint is None:
            rep.unusable = reading.problem or reading.not_probed
            return rep
        return self._probe_into(rep, reading.endpoint, reading.base_path)

    def _probe_into(self, rep: EndpointReport, endpoint: Endpoint, base_path: str = "") -> EndpointReport:
        if endpoint.scheme == "unix":
            rep.socket = socket_facts(endpoint.path)
        key = _probe_key(endpoint, base_path)
        if key not in self._seen:
            result = probe(endpoint, timeout=self.timeout, full=True, base_path=base_path)
            self._seen[key] = (result, _fingerprint(result) if result.ok else None)
        rep.probe, rep.fingerprint = self._seen[key]
        return rep

    def answers(self, url: str) -> ProbeResult | None:
        """Probe `url` (any form parse_endpoint accepts); None when it is not an endpoint at all."""
        rep = self.report("check", url)
        return rep.probe


def _docker_cli_version(path: str | None) -> str | None:
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return path
    return f"{path} ({out.stdout.strip()})" if out.returncode == 0 else path


def ask_docker_cli(docker: str | None, env: Mapping[str, str]) -> dict[str, str | None] | None:
    """The real docker CLI's own reading of this environment: the host it settles on, or its error.

    `docker context inspect` resolves the endpoint exactly as every docker command does, reads
    only files, and never connects, so the doctor can quote the CLI instead of guessing its words.
    """
    if not docker:
        return None
    try:
        done = subprocess.run(
            [docker, "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
            env=dict(env),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return {"docker": docker, "host": None, "error": f"could not run it: {exc}"}
    if done.returncode == 0:
        return {"docker": docker, "host": done.stdout.removesuffix("\n"), "error": None}
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {"docker": docker, "host": None, "error": lines[-1] if lines else f"exit {done.returncode}"}


def _is_dockertap_socket(url: str | None, env: Mapping[str, str]) -> bool:
    try:
        endpoint = parse_endpoint(url or "")
    except EndpointError:
        return False
    if endpoint.scheme != "unix":
        return False
    return os.path.realpath(endpoint.path) in {os.path.realpath(p) for p in dockertap_socket_paths(env)}


def _failure_kind(rep: EndpointReport) -> str:
    assert rep.probe is not None
    kind = rep.probe.kind
    return "refused-tcp" if kind == "refused" and rep.probe.endpoint.scheme == "tcp" else kind


def _diagnose(
    rep: EndpointReport, env: Mapping[str, str], hint: str, commands: list[str] | None = None
) -> Diagnosis | None:
    """The problem with one endpoint and its fix, from the DIAGNOSES table."""
    if rep.probe is None or rep.probe.ok:
        return None
    kind = _failure_kind(rep)
    origin = (
        "DOCKER_HOST"
        if rep.source == "DOCKER_HOST"
        else "context"
        if rep.source.startswith("context")
        else "*"
    )
    if origin != "*" and kind in ("missing", "refused") and _is_dockertap_socket(rep.url, env):
        kind = "dockertap-dead"
    problem, fix = diagnosis(origin, kind)
    if kind == "permission" and rep.socket and rep.socket.exists:
        problem += f" ({rep.socket.owner}:{rep.socket.group} {rep.socket.mode})"
    name = rep.source.split("'")[1] if "'" in rep.source else rep.source
    path = rep.probe.endpoint.path or rep.url
    if kind == "permission" or kind in ("not-socket", "timeout", "not-http", "not-docker"):
        group = rep.socket.group if rep.socket else None
        hint = probe_hint(rep.probe.hint, group) if rep.probe.hint else hint
    fields = {"url": rep.url, "path": path, "name": name, "hint": hint}
    return Diagnosis(problem.format(**fields), fix.format(**fields), rep.url, list(commands or []))


#: At most this many fix commands per problem on screen (a busy machine runs many engines; --json has all).
MAX_SHOWN_COMMANDS = 4


class _Fixes:
    """Finds fixes that work: endpoints that answer, and the shell line that selects each."""

    def __init__(
        self,
        prober: _Prober,
        env: Mapping[str, str],
        home: str,
        reports: list[EndpointReport],
        contexts: list[ContextInfo],
        start_hint: str,
    ) -> None:
        self.prober, self.env, self.home = prober, env, home
        self.contexts = contexts
        self.start_hint = start_hint
        answering: dict[str, str] = {}
        for rep in reports:
            if rep.probe is not None and rep.probe.ok and rep.url:
                answering.setdefault(_probe_key(rep.probe.endpoint), rep.url)
        # Engines in our own mount namespace first: a /proc/PID/root/... path works for root only
        # and only while that process lives.
        self.answering = dict(sorted(answering.items(), key=lambda item: "/proc/" in item[1]))

    def others(self, failing: EndpointReport | None) -> list[str]:
        """URLs that answer, other than the failing one."""
        skip = _probe_key(failing.probe.endpoint) if failing and failing.probe else None
        return [url for key, url in self.answering.items() if key != skip]

    def without(self, variable: str) -> tuple[str | None, bool]:
        """(url, answers) of what the docker CLI picks once `variable` is unset."""
        env = {k: v for k, v in self.env.items() if k != variable}
        choice = cli_choice(env, self.home)
        reading = choice.reading
        if reading is None or reading.endpoint is None or reading.problem:
            return choice.url, False
        rep = self.prober.report_cli("check", reading, "")
        return choice.url, bool(rep.probe and rep.probe.ok)

    def exports(self, failing: EndpointReport | None) -> list[str]:
        return [f"export DOCKER_HOST={url}" for url in self.others(failing)]

    def contexts_that_answer(self) -> list[str]:
        names = []
        for ctx in self.contexts:
            reading = read_context_host(ctx.host) if ctx.host else None
            if reading and reading.endpoint and not reading.problem:
                if _probe_key(reading.endpoint) in self.answering:
                    names.append(ctx.name)
        return names

    def fix_text(self, text: str, commands: list[str]) -> str:
        return text if commands else f"{text}{say('separator')}{self.start_hint}"


def _origin_text(choice: CliChoice) -> str:
    given = choice.reading.given if choice.reading else "?"
    return say(f"origin.{choice.origin}", given=given, name=choice.context)


def _current_diagnoses(
    choice: CliChoice, current: EndpointReport, fixes: _Fixes, cli_says: dict | None, config_dir: str
) -> list[Diagnosis]:
    """What is wrong with the endpoint the docker CLI uses, with fixes that work."""
    reading = choice.reading
    commands: list[str]
    if reading is None:  # the CLI fails before it has a host: a context it cannot load
        said = (cli_says or {}).get("error") or choice.error or "?"
        if choice.origin == "DOCKER_CONTEXT":
            url, answers = fixes.without("DOCKER_CONTEXT")
            commands = ["unset DOCKER_CONTEXT"] if answers else []
            commands += [f"export DOCKER_CONTEXT={name}" for name in fixes.contexts_that_answer()]
            commands += fixes.exports(None)
            problem = say("unresolved.DOCKER_CONTEXT", name=choice.context, error=said)
            fix = say("unresolved.DOCKER_CONTEXT.fix")
            if answers:
                fix += say("separator") + say("unset.answers", url=url)
            return [Diagnosis(problem, fixes.fix_text(fix, commands), None, commands)]
        env_default = {**fixes.env, "DOCKER_CONTEXT": "default"}
        default = cli_choice(env_default, fixes.home)
        default_ok = default.reading is not None and default.reading.endpoint is not None
        if default_ok:
            rep = fixes.prober.report_cli("check", default.reading, "")  # type: ignore[arg-type]
            default_ok = bool(rep.probe and rep.probe.ok)
        names = (["default"] if default_ok else []) + fixes.contexts_that_answer()
        commands = [f"DOCKER_CONTEXT=default docker context use {name}" for name in names]
        commands += fixes.exports(None)
        problem = say(
            "unresolved.currentContext",
            name=choice.context,
            config=os.path.join(config_dir, "config.json"),
            error=said,
        )
        fix = say("unresolved.currentContext.fix")
        return [Diagnosis(problem, fixes.fix_text(fix, commands), None, commands)]

    origin = _origin_text(choice)
    if reading.not_probed and not reading.error:
        check = say("not-checked.ssh.check")
        return [
            Diagnosis(
                say("not-checked.ssh", url=reading.url, how=reading.not_probed),
                check,
                reading.url,
                ["docker version"],
                severity="not-checked",
            )
        ]
    unset = "DOCKER_HOST" if choice.origin == "DOCKER_HOST" else None
    if reading.error or reading.meant or reading.base_path:
        rewrite = reading.meant or _rewrite(reading.given)
        if reading.base_path and not reading.meant and reading.endpoint is not None:
            rewrite = reading.endpoint.url  # the same engine without the path
        commands = []
        fix_parts: list[str] = []
        if rewrite:
            rewritten = fixes.prober.answers(rewrite)
            if rewritten is not None and rewritten.ok:
                commands.append(f"export DOCKER_HOST={rewrite}")
                fix_parts.append(say("rewrite.answers", rewrite=rewrite))
            elif rewritten is not None:
                fix_parts.append(say("rewrite.dead", rewrite=rewrite, failure=rewritten.error))
        if unset:
            url, answers = fixes.without(unset)
            if answers:
                commands.append(f"unset {unset}")
                fix_parts.append(f"unset {unset}: {say('unset.answers', url=url)}")
        others = [c for c in fixes.exports(current) if c not in commands]
        commands += others
        if others:
            fix_parts.append(say("fix.alternatives" if fix_parts else "fix.an-engine"))
        failure = reading.error or (current.probe.error if current.probe else current.unusable) or "?"
        if reading.error:
            said = (cli_says or {}).get("error") or reading.problem
            problem = say("refused-host", origin=origin, error=said)
        elif reading.meant:
            tcp = reading.endpoint.url if reading.endpoint else "?"
            problem = say("no-scheme", origin=origin, url=reading.url, tcp=tcp, failure=failure)
        else:
            problem = say("base-path", origin=origin, path=reading.base_path, failure=failure)
        fix = say("separator").join(fix_parts)
        return [Diagnosis(problem, fixes.fix_text(fix, commands), reading.url, commands)]

    if current.probe is None or current.probe.ok:
        return []
    commands = []
    if unset:
        url, answers = fixes.without(unset)
        if answers:
            commands.append(f"unset {unset}")
    commands += fixes.exports(current)
    hint = say("fix.alternatives") if commands else fixes.start_hint
    diagnosis = _diagnose(current, fixes.env, hint, commands)
    return [diagnosis] if diagnosis else []


def _rewrite(given: str) -> str | None:
    """The docker-host spelling a user evidently meant: `http://h:p` or `TCP://h` -> `tcp://h:p`."""
    scheme, sep, rest = given.strip().partition("://")
    if sep and scheme.lower() in ("http", "tcp") and rest:
        return f"tcp://{rest}"
    if sep and scheme.lower() == "unix" and scheme != "unix":
        return f"unix://{rest}"
    return None


def gather(
    env: Mapping[str, str] | None = None,
    home: str | None = None,
    *,
    timeout: float = 2.0,
    platform: str | None = None,
    root: str = "/",
    proc: str = "/proc",
) -> DoctorReport:
    """Collect everything the doctor shows (no output, no side effects)."""
    env = dict(os.environ if env is None else env)
    home = home or env.get("HOME") or os.path.expanduser("~")
    prober = _Prober(timeout)
    engines = installed_engines(env.get("PATH"))
    start_hint = (
        say("start-hint.installed", engines="; ".join(f"{e.name} ({e.where}): {e.start}" for e in engines))
        if engines
        else say("start-hint.none")
    )

    choice = cli_choice(env, home)
    config_dir = docker_config_dir(env, home)
    # Name the current endpoint after what selected it, so its diagnosis says what to change.
    if choice.origin == "DOCKER_HOST":
        current_source = "DOCKER_HOST"
    elif choice.context and choice.context != "default":
        current_source = f"context {choice.context!r}"
    else:
        current_source = "docker CLI default"
    if choice.reading is None:
        current = EndpointReport(current_source, None, choice.why, unusable=choice.error)
    else:
        current = prober.report_cli(current_source, choice.reading, choice.why)

    endpoints: list[EndpointReport] = [current]
    found: list[Candidate] = candidates(env, home, platform=platform, root=root)
    if not any(c.source == "well-known: default /var/run/docker.sock" for c in found):
        found.append(Candidate("default", "unix:///var/run/docker.sock", None, "docker CLI default"))
    for cand in found:
        if cand.source in ("DOCKER_HOST", current_source):
            continue  # the current endpoint, as the docker CLI reads it, is already the first row
        unusable = cand.skip if cand.endpoint is None else None
        endpoints.append(prober.report(cand.source, cand.url, cand.note, unusable))

    running = []
    for engine in running_engines(proc):
        reports = [
            prober.report(f"{engine.kind} (pid {engine.pid})", host, engine.how)
            for host in engine.hosts
            if engine.docker_api
        ]
        running.append(RunningReport(engine, reports))

    contexts = list_contexts(config_dir)
    fixes = _Fixes(
        prober, env, home, endpoints + [r for run in running for r in run.endpoints], contexts, start_hint
    )
    docker = shutil.which("docker", path=env.get("PATH"))
    cli_says = ask_docker_cli(docker, env)
    diagnoses = _current_diagnoses(choice, current, fixes, cli_says, config_dir)
    seen_urls: set[str | None] = {current.url} if diagnoses else set()
    for rep in endpoints[1:]:
        # An absent well-known socket is normal (that engine is just not installed); anything
        # else that is configured or present but broken is worth a line.
        configured = not rep.source.startswith("well-known")
        if rep.url in seen_urls or not (configured or (rep.probe and rep.probe.kind != "missing")):
            continue
        diagnosis = _diagnose(rep, env, start_hint)
        if diagnosis:
            diagnoses.append(diagnosis)
            seen_urls.add(rep.url)

    return DoctorReport(
        choice,
        current,
        endpoints,
        contexts,
        engines,
        running,
        diagnoses,
        _docker_cli_version(docker),
        cli_says,
        {k: env.get(k) for k in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "XDG_RUNTIME_DIR")},
    )


def layer_chain(report: DoctorReport) -> list[tuple[str, str]]:
    """(layer, detail) from the docker CLI down to the OCI runtime, as far as the endpoint tells."""
    chain = [("docker CLI", report.docker_cli or "not on PATH")]
    cur = report.current
    if cur.url is None:
        return [*chain, ("endpoint", f"unresolved: {report.cli_why}")]
    sock = cur.socket.summary if cur.socket else cur.url.partition("://")[0]
    chain.append(("endpoint", f"{cur.url} ({sock})"))
    probe_result = cur.probe
    if report.status == "not-checked":
        return [*chain, ("backend", f"not checked - {cur.unusable}")]
    if probe_result is None or not probe_result.ok:
        failure = f"{probe_result.kind}: {probe_result.error}" if probe_result else cur.unusable or "?"
        return [*chain, ("backend", f"not answering - {failure}")]
    family = backend_family(probe_result, cur.fingerprint)
    fp = cur.fingerprint
    version, info = probe_result.version, probe_result.info or {}
    for layer, component in LAYER_CHAINS[family]:
        detail = (_component(version, component) if component else None) or ""
        if layer in ("dockerd", "Podman compat API"):
            product = (fp.product if fp else None) or probe_result.header("Server") or ""
            api = probe_result.header("Api-Version") or "?"
            detail = f"{detail} - {product}, API {api}".strip(" -")
        elif layer == "containerd":
            address = (fp.containerd_address if fp else None) or (info.get("Containerd") or {}).get("Address")
            detail += f" at {address}" if address else ""
        elif layer == "runc" and info.get("DefaultRuntime") not in (None, "runc"):
            layer, detail = "OCI runtime", str(info["DefaultRuntime"])
        chain.append((layer, detail or "(no version in /version)"))
    return chain


def _tree(report: DoctorReport) -> Tree:
    chain = layer_chain(report)
    root = Tree(f"[bold]{safe_markup(chain[0][0])}[/] {safe_markup(chain[0][1])}")
    node = root
    for layer, detail in chain[1:]:
        style = "red" if detail.startswith(("not answering", "unresolved")) else "cyan"
        node = node.add(f"[bold {style}]{safe_markup(layer)}[/] {safe_markup(detail)}")
    return root


_STATUS_STYLE = {"ok": "green", "missing": "dim", "refused": "yellow"}


_HEADLINE_STYLE = {"works": "green", "fails": "red", "unresolved": "red", "not-checked": "yellow"}


def _state_cell(rep: EndpointReport) -> str:
    kind = rep.probe.kind if rep.probe else "unusable"
    state = f"[{_STATUS_STYLE.get(kind, 'red')}]{'answers /_ping' if kind == 'ok' else kind}[/]"
    if rep.socket and rep.socket.exists:
        state = f"{safe_markup(rep.socket.summary)}, {state}"
    return state


def _backend_cell(rep: EndpointReport) -> str:
    if rep.probe and rep.probe.ok:
        product = rep.fingerprint.product if rep.fingerprint else None
        return safe_markup(product or rep.probe.header("Server") or "")
    return safe_markup(rep.unusable or "")


def _print_long(console: Console, markup: str) -> None:
    """A line that may wrap: Japanese breaks by display width with kinsoku rules, not at ASCII spaces."""
    if language() == "ja":
        console.print(wrap_text(Text.from_markup(markup), console.width), soft_wrap=True)
    else:
        console.print(markup)


def render(report: DoctorReport, console: Console) -> None:
    status = report.status
    headline = say(f"headline.{status}", url=report.cli_url)
    _print_long(console, f"[bold {_HEADLINE_STYLE[status]}]{safe_markup(headline)}[/]")
    _print_long(console, safe_markup(say("why", why=report.cli_why)))
    said = report.cli_says
    if said and said.get("error"):
        _print_long(console, safe_markup(say("cli-says", said=said["error"])))
    elif said and said.get("host") is not None and said["host"] != report.cli_url:
        disagrees = say("cli-disagrees", docker=said["docker"], theirs=said["host"], ours=report.cli_url)
        _print_long(console, safe_markup(disagrees))
    console.print(_tree(report))

    table = Table(title=say("section.candidates"), title_justify="left")
    for column in ("source", "endpoint", "state", "backend"):
        table.add_column(say(f"column.{column}"), overflow="fold")
    for rep in report.endpoints:
        source = rep.source.removeprefix("well-known: ")
        table.add_row(safe_markup(source), safe_markup(rep.url or "-"), _state_cell(rep), _backend_cell(rep))
    console.print(table)

    if report.running:
        run_table = Table(title=say("section.running"), title_justify="left")
        for column in ("engine", "pid", "user", "endpoint", "state", "backend"):
            run_table.add_column(say(f"column.{column}"), overflow="fold")
        for run in report.running:
            engine = run.engine
            if not engine.docker_api:
                for host in engine.hosts:
                    run_table.add_row(
                        engine.kind, str(engine.pid), safe_markup(engine.user), safe_markup(host),
                        f"[dim]{safe_markup(say('running.not-docker'))}[/]", "",
                    )  # fmt: skip
            for rep in run.endpoints:
                run_table.add_row(
                    engine.kind, str(engine.pid), safe_markup(engine.user), safe_markup(rep.url or "-"),
                    _state_cell(rep), _backend_cell(rep),
                )  # fmt: skip
        console.print(run_table)

    if report.contexts:
        ctx_table = Table(title=say("section.contexts"), title_justify="left")
        for column in ("name", "endpoint", "current"):
            ctx_table.add_column(say(f"column.{column}"), overflow="fold")
        for ctx in report.contexts:
            ctx_table.add_row(
                safe_markup(ctx.name),
                safe_markup(ctx.host) if ctx.host else f"[red]{safe_markup(ctx.error or '?')}[/]",
                "*" if ctx.current else "",
            )
        console.print(ctx_table)

    engines = ", ".join(f"{e.name} ({e.where})" for e in report.engines) or say("none-found")
    _print_long(console, f"[bold]{safe_markup(say('section.installed'))}[/] {safe_markup(engines)}")
    problems = [d for d in report.diagnoses if d.severity == "problem"]
    unchecked = [d for d in report.diagnoses if d.severity == "not-checked"]
    for title, entries, mark, label in (
        ("section.problems", problems, "[red]x[/]", "fix"),
        ("section.not-checked", unchecked, "[yellow]?[/]", "check"),
    ):
        if not entries:
            continue
        console.print(f"[bold]{safe_markup(say(title))}[/]")
        for diag in entries:
            problem, fix = safe_markup(diag.problem), safe_markup(diag.fix)
            _print_long(console, f"  {mark} {problem}\n    [green]{say(label)}[/] {fix}")
            for command in diag.commands[:MAX_SHOWN_COMMANDS]:
                console.print(f"      [cyan]{safe_markup(command)}[/]")
            if len(diag.commands) > MAX_SHOWN_COMMANDS:
                more = len(diag.commands) - MAX_SHOWN_COMMANDS
                _print_long(console, f"      [dim]{safe_markup(say('more-commands', count=more))}[/]")
    if not report.diagnoses:
        console.print(f"[green]{safe_markup(say('no-problems'))}[/]")


#: Exit status of `dockertap doctor`, by the status of the endpoint the docker CLI would use.
EXIT_CODES = {"works": 0, "fails": 1, "unresolved": 1, "not-checked": 3}


def doctor(
    json_output: bool = typer.Option(
        False, "--json", help="Print the findings as JSON (for scripts; always English, whatever --lang)."
    ),
    timeout: float = typer.Option(
        2.0, "--timeout", min=0.1, max=600, help="Seconds to wait for each endpoint."
    ),
    lang: Lang = typer.Option(
        None,
        "--lang",
        help="Report language (default: ja when the first set of LC_ALL, LC_MESSAGES, LANG starts with ja).",
    ),
) -> None:
    """Check every Docker API endpoint on this machine and explain what the docker CLI would use.

    Reads DOCKER_HOST, DOCKER_CONTEXT and the docker contexts exactly as the docker CLI does, probes
    the endpoint it would use, the well-known sockets and the engines running right now, and gives
    each problem a fix that works (a command to paste).
    Exit status: 0 the docker CLI's endpoint answers, 1 it does not, 3 doctor cannot check it (ssh://).

    [bold]Examples[/bold]

    [cyan]dockertap doctor[/cyan]

    [cyan]dockertap doctor --json[/cyan]

    [dim]# without unix:// the docker CLI reads the path as TCP: doctor says so, with the fix (exits 1)[/dim]
    [cyan]DOCKER_HOST=/var/run/docker.sock dockertap doctor[/cyan]

    [cyan]dockertap doctor --lang ja[/cyan]
    """
    # --json is for scripts: its sentences stay English so a script's matches never depend on the locale.
    with speaking("en" if json_output else (lang or Lang(default_lang())).value):
        report = gather(timeout=timeout)
        if json_output:
            sys.stdout.write(json_safe(json.dumps(report.to_dict(), indent=2, default=str)) + "\n")
        else:
            render(report, Console())
    raise typer.Exit(EXIT_CODES[report.status])
