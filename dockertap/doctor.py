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
from functools import partial

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from dockertap.analyzers.fingerprint import BackendFingerprint, fingerprint
from dockertap.i18n import Lang, default_lang, doctor_diagnosis, doctor_text
from dockertap.proxy.discovery import (
    Candidate,
    ContextInfo,
    candidates,
    cli_endpoint,
    current_context_name,
    docker_config_dir,
    dockertap_socket_paths,
    list_contexts,
)
from dockertap.proxy.endpoints import EndpointError, parse_endpoint
from dockertap.proxy.probe import InstalledEngine, ProbeResult, installed_engines, owner_names, probe

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

# What each probe failure means for a user, and the fix, by where the endpoint came from.
# `{url}`, `{path}`, `{name}`, `{engines}` and `{hint}` are filled in.
DIAGNOSES: dict[tuple[str, str], tuple[str, str]] = {
    ("DOCKER_HOST", "missing"): (
        "DOCKER_HOST points at {path}, which does not exist",
        "unset DOCKER_HOST (or point it at a running engine); {hint}",
    ),
    ("DOCKER_HOST", "refused"): (
        "DOCKER_HOST points at {path}, a stale socket nobody listens on",
        "start the engine that owns it, or unset DOCKER_HOST; {hint}",
    ),
    ("DOCKER_HOST", "dockertap-dead"): (
        "DOCKER_HOST points at the dockertap socket {path}, but no dockertap proxy is running",
        "start it (dockertap proxy) or unset DOCKER_HOST",
    ),
    ("context", "missing"): (
        "docker context {name!r} points at {path}, which does not exist",
        "start its engine, or stop using it (docker context use default; docker context rm {name}); {hint}",
    ),
    ("context", "refused"): (
        "docker context {name!r} points at a dead socket {path} (nobody listens)",
        "start its engine, or stop using it (docker context use default; docker context rm {name}); {hint}",
    ),
    ("context", "dockertap-dead"): (
        "docker context {name!r} points at the dockertap socket {path}, but no dockertap proxy is running",
        "start it (dockertap proxy), or stop using it (docker context use default)",
    ),
    ("context", "unresolved"): (
        "the docker CLI's context {name!r} cannot be resolved: {hint}",
        "docker context use default (or docker context create {name} --docker host=unix:///...)",
    ),
    ("*", "missing"): ("{url}: the socket does not exist", "{hint}"),
    ("*", "refused"): ("{url}: stale socket, the file exists but nobody listens", "{hint}"),
    ("*", "permission"): ("{url}: permission denied", "{hint}"),
    ("*", "not-socket"): ("{url} is not a socket", "{hint}"),
    ("*", "timeout"): ("{url} accepts connections but does not answer", "{hint}"),
    ("*", "not-http"): ("{url} answers, but not with HTTP (wrong protocol)", "{hint}"),
    ("*", "not-docker"): ("{url} speaks HTTP but is not a Docker API", "{hint}"),
    ("*", "error"): ("{url}: cannot connect", "{hint}"),
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
        if not os.path.islink(current):
            break
        target = os.readlink(current)
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
    problem: str
    fix: str
    url: str | None = None
    #: The DIAGNOSES key as "origin/kind" and the values filled in: what a translation needs.
    message_id: str = ""
    fields: dict[str, str] = field(default_factory=dict)


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
class DoctorReport:
    cli_url: str | None
    cli_why: str
    current: EndpointReport
    endpoints: list[EndpointReport]
    contexts: list[ContextInfo]
    engines: list[InstalledEngine]
    diagnoses: list[Diagnosis]
    docker_cli: str | None
    env: dict[str, str | None]

    @property
    def ok(self) -> bool:
        return bool(self.current.probe and self.current.probe.ok)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "cli_endpoint": {"url": self.cli_url, "why": self.cli_why},
            "current": self.current.to_dict(),
            "chain": [{"layer": layer, "detail": detail} for layer, detail in layer_chain(self)],
            "endpoints": [e.to_dict() for e in self.endpoints],
            "contexts": [asdict(c) for c in self.contexts],
            "installed_engines": [asdict(e) for e in self.engines],
            "diagnoses": [asdict(d) for d in self.diagnoses],
            "docker_cli": self.docker_cli,
            "env": self.env,
        }


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
        if endpoint.scheme == "unix":
            rep.socket = socket_facts(endpoint.path)
        key = f"unix://{os.path.realpath(endpoint.path)}" if endpoint.scheme == "unix" else endpoint.url
        if key not in self._seen:
            result = probe(endpoint, timeout=self.timeout, full=True)
            self._seen[key] = (result, _fingerprint(result) if result.ok else None)
        rep.probe, rep.fingerprint = self._seen[key]
        return rep


def _docker_cli_version(path: str | None) -> str | None:
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return path
    return f"{path} ({out.stdout.strip()})" if out.returncode == 0 else path


def _is_dockertap_socket(url: str | None, env: Mapping[str, str]) -> bool:
    try:
        endpoint = parse_endpoint(url or "")
    except EndpointError:
        return False
    if endpoint.scheme != "unix":
        return False
    return os.path.realpath(endpoint.path) in {os.path.realpath(p) for p in dockertap_socket_paths(env)}


def _diagnose(rep: EndpointReport, env: Mapping[str, str], engines_text: str) -> Diagnosis | None:
    """The problem with one endpoint and its fix, from the DIAGNOSES table."""
    if rep.probe is None or rep.probe.ok:
        return None
    kind = rep.probe.kind
    origin = (
        "DOCKER_HOST"
        if rep.source == "DOCKER_HOST"
        else "context"
        if rep.source.startswith("context")
        else "*"
    )
    if origin != "*" and kind in ("missing", "refused") and _is_dockertap_socket(rep.url, env):
        kind = "dockertap-dead"
    key = (origin, kind) if (origin, kind) in DIAGNOSES else ("*", rep.probe.kind)
    problem, fix = DIAGNOSES[key]
    if kind == "permission" and rep.socket and rep.socket.exists:
        problem += f" ({rep.socket.owner}:{rep.socket.group} {rep.socket.mode})"
    name = rep.source.split("'")[1] if "'" in rep.source else rep.source
    path = rep.probe.endpoint.path or rep.url
    hint = rep.probe.hint or engines_text
    fields = {"url": rep.url, "path": path, "name": name, "hint": hint}
    texts = {k: str(v) for k, v in fields.items()}
    return Diagnosis(problem.format(**fields), fix.format(**fields), rep.url, "/".join(key), texts)


def gather(
    env: Mapping[str, str] | None = None,
    home: str | None = None,
    *,
    timeout: float = 2.0,
    platform: str | None = None,
    root: str = "/",
) -> DoctorReport:
    """Collect everything the doctor shows (no output, no side effects)."""
    env = dict(os.environ if env is None else env)
    home = home or env.get("HOME") or os.path.expanduser("~")
    prober = _Prober(timeout)
    engines = installed_engines(env.get("PATH"))
    engines_text = (
        "installed engines: " + "; ".join(f"{e.name} ({e.where}): {e.start}" for e in engines)
        if engines
        else "no container engine found on PATH"
    )

    cli_url, cli_why = cli_endpoint(env, home)
    config_dir = docker_config_dir(env, home)
    # Name the current endpoint after what selected it, so its diagnosis says what to change.
    context_name = env.get("DOCKER_CONTEXT") or current_context_name(config_dir)
    if env.get("DOCKER_HOST"):
        current_source = "DOCKER_HOST"
    elif context_name and context_name != "default":
        current_source = f"context {context_name!r}"
    else:
        current_source = "docker CLI default"
    if cli_url is None:
        current = EndpointReport(current_source, None, cli_why, unusable=cli_why)
    else:
        current = prober.report(current_source, cli_url, cli_why)

    endpoints: list[EndpointReport] = []
    found: list[Candidate] = candidates(env, home, platform=platform, root=root)
    if not any(c.source == "well-known: default /var/run/docker.sock" for c in found):
        found.append(Candidate("default", "unix:///var/run/docker.sock", None, "docker CLI default"))
    for cand in found:
        unusable = cand.skip if cand.endpoint is None else None
        endpoints.append(prober.report(cand.source, cand.url, cand.note, unusable))

    diagnoses: list[Diagnosis] = []
    if cli_url is None:
        name = env.get("DOCKER_CONTEXT") or "?"
        problem, fix = DIAGNOSES[("context", "unresolved")]
        diagnoses.append(
            Diagnosis(
                problem.format(name=name, hint=cli_why),
                fix.format(name=name),
                message_id="context/unresolved",
                fields={"name": name, "hint": str(cli_why)},
            )
        )
    seen_urls: set[str | None] = set()
    if current.probe and not current.probe.ok:
        diagnosis = _diagnose(current, env, engines_text)
        if diagnosis:
            diagnoses.append(diagnosis)
            seen_urls.add(current.url)
    for rep in endpoints:
        # An absent well-known socket is normal (that engine is just not installed); anything
        # else that is configured or present but broken is worth a line.
        configured = not rep.source.startswith("well-known")
        if rep.url in seen_urls or not (configured or (rep.probe and rep.probe.kind != "missing")):
            continue
        diagnosis = _diagnose(rep, env, engines_text)
        if diagnosis:
            diagnoses.append(diagnosis)
            seen_urls.add(rep.url)

    return DoctorReport(
        cli_url,
        cli_why,
        current,
        endpoints,
        list_contexts(config_dir),
        engines,
        diagnoses,
        _docker_cli_version(shutil.which("docker", path=env.get("PATH"))),
        {k: env.get(k) for k in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "XDG_RUNTIME_DIR")},
    )


def layer_chain(report: DoctorReport) -> list[tuple[str, str]]:
    """(layer, detail) from the docker CLI down to the OCI runtime, as far as the endpoint tells."""
    chain = [("docker CLI", report.docker_cli or "not on PATH")]
    cur = report.current
    if cur.url is None:
        return [*chain, ("endpoint", f"unresolved: {report.cli_why}")]
    sock = cur.socket.summary if cur.socket else "tcp"
    chain.append(("endpoint", f"{cur.url} ({sock})"))
    probe_result = cur.probe
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
    root = Tree(f"[bold]{escape(chain[0][0])}[/] {escape(chain[0][1])}")
    node = root
    for layer, detail in chain[1:]:
        style = "red" if detail.startswith(("not answering", "unresolved")) else "cyan"
        node = node.add(f"[bold {style}]{escape(layer)}[/] {escape(detail)}")
    return root


_STATUS_STYLE = {"ok": "green", "missing": "dim", "refused": "yellow"}


def render(report: DoctorReport, console: Console, lang: str = "en") -> None:
    t = partial(doctor_text, lang)
    status = f"[green]{t('works')}[/]" if report.ok else f"[red]{t('does_not_work')}[/]"
    console.print(f"[bold]{t('cli_would_use')}[/] {escape(str(report.cli_url))} - {status}")
    console.print(f"  {t('why')}: {escape(report.cli_why)}")
    console.print(_tree(report))

    table = Table(title=t("candidates"), title_justify="left")
    for column in ("source", "endpoint", "state", "backend"):
        table.add_column(column, overflow="fold")
    for rep in report.endpoints:
        kind = rep.probe.kind if rep.probe else "unusable"
        state = f"[{_STATUS_STYLE.get(kind, 'red')}]{'answers /_ping' if kind == 'ok' else kind}[/]"
        if rep.socket and rep.socket.exists:
            state = f"{escape(rep.socket.summary)}, {state}"
        backend = ""
        if rep.probe and rep.probe.ok:
            product = rep.fingerprint.product if rep.fingerprint else None
            backend = product or rep.probe.header("Server") or ""
        elif rep.unusable:
            backend = rep.unusable
        source = rep.source.removeprefix("well-known: ")
        table.add_row(escape(source), escape(rep.url or "-"), state, escape(backend))
    console.print(table)

    if report.contexts:
        ctx_table = Table(title=t("contexts"), title_justify="left")
        for column in ("name", "endpoint", "current"):
            ctx_table.add_column(column, overflow="fold")
        for ctx in report.contexts:
            ctx_table.add_row(
                ctx.name, ctx.host or f"[red]{escape(ctx.error or '?')}[/]", "*" if ctx.current else ""
            )
        console.print(ctx_table)

    engines = ", ".join(f"{e.name} ({e.where})" for e in report.engines) or t("none_found")
    console.print(f"[bold]{t('installed')}:[/] {escape(engines)}")
    if report.diagnoses:
        console.print(f"[bold]{t('problems')}[/]")
        for diag in report.diagnoses:
            problem, fix = doctor_diagnosis(lang, diag.message_id, diag.fields, diag.problem, diag.fix)
            console.print(f"  [red]x[/] {escape(problem)}\n    [green]{t('fix')}:[/] {escape(fix)}")
    else:
        console.print(f"[green]{t('no_problems')}[/]")


def doctor(
    json_output: bool = typer.Option(False, "--json", help="Print the findings as JSON (for scripts)."),
    timeout: float = typer.Option(2.0, "--timeout", help="Seconds to wait for each endpoint."),
    lang: Lang = typer.Option(None, "--lang", help="Language [default: ja if LANG etc. start with ja]."),
) -> None:
    """Check every Docker API endpoint on this machine and explain what the docker CLI would use."""
    report = gather(timeout=timeout)
    if json_output:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        render(report, Console(), (lang or Lang(default_lang())).value)
    raise typer.Exit(0 if report.ok else 1)
