"""Every sentence `dockertap doctor` shows a user, in one table (so it can be translated as a whole).

Keys are stable ids; values are `str.format` templates. Rich markup is added by the renderer, never
here. `{url}`, `{path}`, `{name}`, `{given}`, `{error}`, … are filled in by the doctor.
The Japanese tables (same keys) are in `doctor_text_ja.py`; `speaking(lang)` chooses the language
`say` and `diagnosis` use, English when a key has no translation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from dockertap.doctor_text_ja import DIAGNOSES_JA, TEXT_JA

TEXT: dict[str, str] = {
    # headline: what the docker CLI does right now
    "headline.works": "The docker CLI would use {url} - works",
    "headline.fails": "The docker CLI would use {url} - does not work",
    "headline.unresolved": "The docker CLI cannot pick an endpoint - every docker command fails",
    "headline.not-checked": "The docker CLI would use {url} - not checked (doctor cannot reach it)",
    "why": "  why: {why}",
    "cli-says": "  the docker CLI itself says: {said}",
    "cli-disagrees": "  note: the docker CLI ({docker}) resolves {theirs}, dockertap read {ours}",
    # sections
    "section.candidates": "Candidate endpoints",
    "section.contexts": "docker contexts",
    "section.running": "Running engines",
    "section.installed": "Installed engines:",
    "section.problems": "Problems",
    "section.not-checked": "Not checked",
    "none-found": "none found",
    "no-problems": "No problems found.",
    "fix": "fix:",
    "more-commands": "... and {count} more (the engines in the Running engines table; --json lists all)",
    "check": "check:",
    "running.not-docker": "containerd API (not a Docker API)",
    "running.none": "no dockerd, podman service or containerd process is running",
    # where the endpoint came from, as a user would name it
    "origin.DOCKER_HOST": "DOCKER_HOST={given}",
    "origin.-H": "-H {given}",
    "origin.DOCKER_CONTEXT": "DOCKER_CONTEXT={name} (context host {given})",
    "origin.currentContext": "the current context {name!r} (host {given})",
    "origin.--context": "--context {name} (host {given})",
    "origin.default": "the default {given}",
    # the docker CLI fails before connecting
    "unresolved.DOCKER_CONTEXT": (
        "DOCKER_CONTEXT={name} names a context the docker CLI cannot load, so every docker command "
        "fails: {error}"
    ),
    "unresolved.DOCKER_CONTEXT.fix": (
        "unset DOCKER_CONTEXT (`docker context use` changes nothing while it is set); "
        "then `docker context ls` lists the contexts you can choose"
    ),
    "unresolved.currentContext": (
        "the current context {name!r} (currentContext in {config}) cannot be loaded, so every docker "
        "command fails: {error}"
    ),
    "unresolved.currentContext.fix": (
        "switch to a context that exists (DOCKER_CONTEXT=default lets the CLI start long enough to do it)"
    ),
    # the docker CLI refuses or cannot dial the host it was given
    "refused-host": "{origin}: the docker CLI fails: {error}",
    "no-scheme": (
        "{origin} has no scheme, so the docker CLI reads it as {url} (TCP to {tcp}, with the path put "
        "before every API call) and fails: {failure}"
    ),
    "base-path": (
        "{origin} has a path: the docker CLI sends every API call under {path}/ and fails: {failure}"
    ),
    "rewrite.answers": "write it with its scheme: {rewrite} (it answers)",
    "rewrite.dead": "{rewrite} would be the right spelling, but nothing answers there ({failure})",
    "fix.alternatives": "or point the docker CLI at another engine that answers",
    "fix.an-engine": "point the docker CLI at an engine that answers",
    "fix.start-engine": "{hint}",
    "unset.answers": "without it the docker CLI uses {url}, which answers",
    # cannot check
    "not-checked.ssh": (
        "doctor cannot check {url}: {how}, which doctor does not run (and dockertap cannot relay ssh://; "
        "forward the socket: ssh -nNT -L /tmp/remote-docker.sock:/var/run/docker.sock HOST, then use "
        "unix:///tmp/remote-docker.sock)"
    ),
    "not-checked.ssh.check": "run a docker command and see whether it answers",
    # joins the parts of a fix
    "separator": "; ",
    # when no endpoint answers: how to start an engine
    "start-hint.installed": "installed engines: {engines}",
    "start-hint.none": "no container engine found on PATH",
    # what the probe (proxy/probe.py) suggests, worded here by its English text so proxy/ stays language-free
    "probe-hint.hung": "the engine may be hung or overloaded; restart it",
    "probe-hint.not-socket": "point at the engine's socket file instead (see `dockertap doctor`)",
    "probe-hint.closed": "this socket is not a Docker API endpoint (or the engine is crashing)",
    "probe-hint.other-protocol": "this socket speaks another protocol (containerd gRPC? a BuildKit socket?); "
    "point at the Docker API socket",
    "probe-hint.not-docker-api": "not a Docker API",
    "probe-hint.not-working": "this socket is not a working Docker API endpoint",
    "probe-hint.other-http": "this is some other HTTP service; point at the Docker API socket",
    "probe-hint.group": "add yourself to the {group!r} group (sudo usermod -aG {group} $USER, then log in "
    "again) or run with sudo",
    "probe-hint.root-only": "the socket is root-only: run with sudo, or use a rootless engine socket under "
    "$XDG_RUNTIME_DIR",
    # table columns
    "column.source": "source",
    "column.endpoint": "endpoint",
    "column.state": "state",
    "column.backend": "backend",
    "column.engine": "engine",
    "column.pid": "pid",
    "column.user": "user",
    "column.name": "name",
    "column.current": "current",
}


# What each probe failure means for a user, and the fix, by where the endpoint came from.
# `{url}`, `{path}`, `{name}`, `{hint}` are filled in.
DIAGNOSES: dict[tuple[str, str], tuple[str, str]] = {
    ("DOCKER_HOST", "missing"): (
        "DOCKER_HOST points at {path}, which does not exist",
        "unset DOCKER_HOST (or point it at a running engine); {hint}",
    ),
    ("DOCKER_HOST", "refused"): (
        "DOCKER_HOST points at {path}, a stale socket nobody listens on",
        "start the engine that owns it, or unset DOCKER_HOST; {hint}",
    ),
    ("DOCKER_HOST", "refused-tcp"): (
        "DOCKER_HOST points at {url}, and nothing listens on that port",
        "start an engine listening there (dockerd -H {url}), or unset DOCKER_HOST; {hint}",
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
    ("context", "refused-tcp"): (
        "docker context {name!r} points at {url}, and nothing listens on that port",
        "start its engine, or stop using it (docker context use default; docker context rm {name}); {hint}",
    ),
    ("context", "dockertap-dead"): (
        "docker context {name!r} points at the dockertap socket {path}, but no dockertap proxy is running",
        "start it (dockertap proxy), or stop using it (docker context use default)",
    ),
    ("*", "missing"): ("{url}: the socket does not exist", "{hint}"),
    ("*", "refused"): ("{url}: stale socket, the file exists but nobody listens", "{hint}"),
    ("*", "refused-tcp"): ("{url}: nothing listens on that port", "{hint}"),
    ("*", "permission"): ("{url}: permission denied", "{hint}"),
    ("*", "not-socket"): ("{url} is not a socket", "{hint}"),
    ("*", "timeout"): ("{url} accepts connections but does not answer", "{hint}"),
    ("*", "not-http"): ("{url} answers, but not with HTTP (wrong protocol)", "{hint}"),
    ("*", "not-docker"): ("{url} speaks HTTP but is not a Docker API", "{hint}"),
    ("*", "error"): ("{url}: cannot connect", "{hint}"),
}


_TEXTS = {"en": TEXT, "ja": TEXT_JA}
_DIAGNOSES = {"en": DIAGNOSES, "ja": DIAGNOSES_JA}
_LANGUAGE: ContextVar[str] = ContextVar("doctor_language", default="en")


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """Within this block `say` and `diagnosis` answer in `lang` (gather and render both word things)."""
    token = _LANGUAGE.set(lang)
    try:
        yield
    finally:
        _LANGUAGE.reset(token)


def language() -> str:
    return _LANGUAGE.get()


def say(key: str, **fields: object) -> str:
    """The sentence `key` in the current language (English when it has no translation), filled in."""
    return _TEXTS.get(language(), TEXT).get(key, TEXT[key]).format(**fields)


def diagnosis(origin: str, kind: str) -> tuple[str, str]:
    """(problem, fix) templates for a probe failure `kind` at an endpoint chosen by `origin`."""
    key = (origin, kind) if (origin, kind) in DIAGNOSES else ("*", kind)
    return _DIAGNOSES.get(language(), DIAGNOSES).get(key, DIAGNOSES[key])


def probe_hint(hint: str, group: str | None = None) -> str:
    """The probe's hint (proxy/probe.py words it in English) in the current language.

    Found by its English text among the `probe-hint.*` sentences (`group`: the socket's group, for the
    permission hint); a hint this table does not know is shown as the probe worded it.
    """
    if language() == "en":
        return hint
    for key, text in TEXT.items():
        if key.startswith("probe-hint.") and "{" not in text and text == hint:
            return say(key)
    if group and hint == TEXT["probe-hint.group"].format(group=group):
        return say("probe-hint.group", group=group)
    return hint
