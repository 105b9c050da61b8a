"""Which backend socket should dockertap relay to, and which one would the docker CLI use?

Two halves, kept apart so the first can be tested with a fake `$HOME` and no engine:

* `candidates()` / `cli_endpoint()` only read files (env, `config.json`, context meta files,
  globbed profile directories) and return where sockets *should* be, with their source;
* `discover_backend()` probes them in order and picks the first that answers `/_ping`.

Socket locations and context storage: layer-model.md §4.3. dockertap never picks its own
listening socket (that would relay to itself forever); it recognises it by path, since the
relay is byte-transparent and adds no header a probe could see.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

from dockertap.proxy.cli_host import CliHost, read_cli_host, read_context_host
from dockertap.proxy.endpoints import Endpoint, EndpointError, parse_endpoint
from dockertap.proxy.probe import ProbeResult, probe

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# Well-known Docker-API sockets, in the order discovery tries them. Each row: a label, the platforms
# it applies to, path templates (`~` = home, `$VAR` = env var, `*` = glob over profiles/instances;
# a row whose variable is unset is skipped), and where the fact comes from. `/var/run/docker.sock`
# comes last: on macOS it is often a symlink to one of the above, and on Linux it is the default.
WELL_KNOWN_SOCKETS: tuple[dict, ...] = (
    {
        "label": "Docker Desktop",
        "platforms": ("linux",),
        "paths": ("~/.docker/desktop/docker.sock",),
        "source": "testcontainers-go internal/core/docker_rootless.go; context desktop-linux",
    },
    {
        "label": "Docker Desktop",
        "platforms": ("darwin",),
        "paths": ("~/.docker/run/docker.sock",),
        "source": "Docker Desktop 4.13+ (observed `docker context ls`)",
    },
    {
        "label": "Rancher Desktop",
        "platforms": ("linux", "darwin"),
        "paths": ("~/.rd/docker.sock",),
        "source": "rancher-desktop src/go/... dockerDirManager.ts",
    },
    {
        "label": "Colima",
        "platforms": ("linux", "darwin"),
        "paths": ("~/.colima/*/docker.sock", "$XDG_CONFIG_HOME/colima/*/docker.sock"),
        "source": "abiosoft/colima config/dirs.go (profile dirs), environment/container/docker",
    },
    {
        "label": "OrbStack",
        "platforms": ("darwin",),
        "paths": ("~/.orbstack/run/docker.sock",),
        "source": "OrbStack (observed; closed source)",
    },
    {
        "label": "Lima",
        "platforms": ("linux", "darwin"),
        "paths": ("~/.lima/*/sock/docker.sock",),
        "source": "lima-vm/lima templates/docker.yaml (portForwards guestSocket -> sock/docker.sock)",
    },
    {
        "label": "rootless dockerd",
        "platforms": ("linux",),
        "paths": ("$XDG_RUNTIME_DIR/docker.sock",),
        "source": "moby contrib/dockerd-rootless-setuptool.sh",
    },
    {
        "label": "Podman rootful",
        "platforms": ("linux",),
        "paths": ("/run/podman/podman.sock",),
        "source": "podman contrib/systemd/system/podman.socket",
    },
    {
        "label": "Podman rootless",
        "platforms": ("linux",),
        "paths": ("$XDG_RUNTIME_DIR/podman/podman.sock",),
        "source": "podman contrib/systemd/user/podman.socket",
    },
    {
        "label": "podman machine",
        "platforms": ("linux",),
        "paths": ("$XDG_RUNTIME_DIR/podman/*-api.sock",),
        "source": "podman pkg/machine/shim/networking_unix.go",
    },
    {
        "label": "podman machine",
        "platforms": ("darwin",),
        "paths": ("$TMPDIR/podman/*-api.sock", "~/.local/share/containers/podman/machine/podman.sock"),
        "source": "podman pkg/machine/shim/networking_unix.go: setupForwardingLinks",
    },
    {
        "label": "default /var/run/docker.sock",
        "platforms": ("linux", "darwin"),
        "paths": ("/var/run/docker.sock",),
        "source": "docker/cli client/client_unix.go: DefaultDockerHost",
    },
)


#: The directory dockertap makes for its default socket, inside a per-user base directory.
SOCKET_DIR_NAME = "dockertap"


def _private_to_us(path: str) -> bool:
    """A real directory owned by this user that nobody else can enter (a usable XDG_RUNTIME_DIR)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


#: `_CS_DARWIN_USER_TEMP_DIR` of macOS's <unistd.h> (Python's confstr table does not name it).
_CS_DARWIN_USER_TEMP_DIR = 65537


def _darwin_user_temp_dir() -> str | None:
    """macOS's per-user temporary directory (`/var/folders/…/T`, 0700, owned by the user)."""
    try:
        path = os.confstr(_CS_DARWIN_USER_TEMP_DIR)
    except (ValueError, OSError):
        return None
    path = path.rstrip("/") if path else ""
    return path if path and _private_to_us(path) else None


def default_socket_base(env: Mapping[str, str] | None = None, group: str | None = None) -> str:
    """The per-user directory holding dockertap's socket directory; never one others can write.

    `$XDG_RUNTIME_DIR` when it is set and private; as root on Linux (or with `--group` as root, where
    the group must be able to traverse every parent) `/run`; macOS's per-user temporary directory;
    else the docker config directory (`$DOCKER_CONFIG`, `~/.docker`). Never `/tmp`, where any local
    user could create the path first and receive the docker CLI's requests.
    """
    env = os.environ if env is None else env
    linux_root = os.geteuid() == 0 and sys.platform.startswith("linux")
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir and not (group and linux_root) and _private_to_us(runtime_dir):
        return runtime_dir.rstrip("/") or "/"
    if linux_root:
        return "/run"
    if sys.platform == "darwin" and (temp := _darwin_user_temp_dir()):
        return temp
    return docker_config_dir(env, env.get("HOME") or os.path.expanduser("~"))


def default_socket_dir(env: Mapping[str, str] | None = None, group: str | None = None) -> str:
    """`<base>/dockertap` (0700), or `<base>/dockertap-<group>` (0710 + that group) with `--group`."""
    name = SOCKET_DIR_NAME if group is None else f"{SOCKET_DIR_NAME}-{group}"
    return os.path.join(default_socket_base(env, group), name)


def default_listen_path(env: Mapping[str, str] | None = None, group: str | None = None) -> str:
    """Where `dockertap proxy` listens (and `context install` points) when no `--listen` is given."""
    return os.path.join(default_socket_dir(env, group), "docker.sock")


#: Default sockets of earlier dockertap versions: contexts installed then may still point there.
def _legacy_socket_paths(env: Mapping[str, str]) -> list[str]:
    paths = [f"/tmp/dockertap-{os.getuid()}/docker.sock"]
    if env.get("XDG_RUNTIME_DIR"):
        paths.append(os.path.join(env["XDG_RUNTIME_DIR"], "dockertap.sock"))
    return paths


def dockertap_socket_paths(env: Mapping[str, str] | None = None) -> list[str]:
    """Every default location a dockertap proxy may listen on (this version's and earlier ones')."""
    env = os.environ if env is None else env
    return [default_listen_path(env), *_legacy_socket_paths(env)]


def docker_config_dir(env: Mapping[str, str], home: str) -> str:
    """`$DOCKER_CONFIG`, default `~/.docker` (docker/cli cli/config/config.go: Dir)."""
    return env.get("DOCKER_CONFIG") or os.path.join(home, ".docker")


def context_dir_name(name: str) -> str:
    """The directory a context lives in: the sha256 hex of its name (cli/context/store: contextdirOf)."""
    return hashlib.sha256(name.encode()).hexdigest()


def context_meta_path(config_dir: str, name: str) -> str:
    return os.path.join(config_dir, "contexts", "meta", context_dir_name(name), "meta.json")


@dataclass(frozen=True, slots=True)
class ContextInfo:
    """One docker context as stored on disk (`default` is virtual and has no file)."""

    name: str
    host: str | None  # Endpoints.docker.Host
    meta_path: str | None
    current: bool = False
    error: str | None = None  # unreadable/missing meta.json, no docker endpoint, ...


def _read_json(path: str) -> tuple[dict | None, str | None]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except (OSError, ValueError) as exc:
        return None, f"{path} is unreadable: {exc}"
    if not isinstance(data, dict):
        return None, f"{path} is not a JSON object"
    return data, None


def current_context_name(config_dir: str) -> str | None:
    """`currentContext` from `config.json`, or None when unset or unreadable."""
    data, _ = _read_json(os.path.join(config_dir, "config.json"))
    name = (data or {}).get("currentContext")
    return name if isinstance(name, str) and name else None


def _context_from_meta(data: dict, path: str, current: bool, fallback_name: str) -> ContextInfo:
    name = data.get("Name") if isinstance(data.get("Name"), str) else fallback_name
    docker = (data.get("Endpoints") or {}).get("docker") if isinstance(data.get("Endpoints"), dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None
    error = None if isinstance(host, str) and host else f"{path} has no Endpoints.docker.Host"
    return ContextInfo(name, host if not error else None, path, current, error)


def read_context(config_dir: str, name: str, *, current: bool = False) -> ContextInfo:
    """Resolve one context by name through its meta.json."""
    path = context_meta_path(config_dir, name)
    data, error = _read_json(path)
    if data is None:
        return ContextInfo(name, None, path, current, f"context {name!r} not found ({error})")
    return _context_from_meta(data, path, current, name)


def list_contexts(config_dir: str) -> list[ContextInfo]:
    """Every context stored under `$DOCKER_CONFIG/contexts/meta`, sorted by name, current flagged."""
    current = current_context_name(config_dir)
    found: list[ContextInfo] = []
    for path in sorted(
        glob.glob(os.path.join(glob.escape(config_dir), "contexts", "meta", "*", "meta.json"))
    ):
        data, error = _read_json(path)
        dirname = os.path.basename(os.path.dirname(path))
        if data is None:
            found.append(ContextInfo(dirname, None, path, False, error))
            continue
        info = _context_from_meta(data, path, False, dirname)
        found.append(replace(info, current=info.name == current))
    return sorted(found, key=lambda c: c.name)


def _resolve_context(env: Mapping[str, str], config_dir: str, name: str) -> tuple[CliHost | None, str]:
    """(host as the CLI reads it, how) for a context name; None when the context cannot be read.

    The `default` context is virtual: DOCKER_HOST (read as `-H` is) or the built-in default.
    """
    if name == "default":
        if env.get("DOCKER_HOST"):
            return read_cli_host(env["DOCKER_HOST"]), "the 'default' context uses DOCKER_HOST"
        return read_cli_host(DEFAULT_DOCKER_HOST), "the 'default' context uses the built-in default"
    ctx = read_context(config_dir, name)
    if ctx.error or ctx.host is None:
        return None, ctx.error or f"context {name!r} has no docker endpoint"
    how = f"context {name!r} ({ctx.meta_path}) has Endpoints.docker.Host = {ctx.host}"
    return read_context_host(ctx.host), how


@dataclass(frozen=True, slots=True)
class CliChoice:
    """Which endpoint the docker CLI picks, what selected it, and how the CLI reads it."""

    origin: str  # "--context", "-H", "DOCKER_HOST", "DOCKER_CONTEXT", "currentContext", "default"
    context: str | None  # the context name, when a context selected it
    reading: CliHost | None  # None: the CLI fails before it has a host (e.g. no such context)
    why: str
    error: str | None = None  # why the CLI fails to resolve an endpoint at all

    @property
    def url(self) -> str | None:
        return self.reading.url if self.reading else None


def cli_choice(
    env: Mapping[str, str] | None = None,
    home: str | None = None,
    argv_host: str | None = None,
    argv_context: str | None = None,
) -> CliChoice:
    """The endpoint the docker CLI would use, and why (docker/cli cli/command/cli.go resolveContextName).

    Precedence: `--context`, `-H`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `currentContext`, default.
    """
    env = os.environ if env is None else env
    home = home or env.get("HOME") or os.path.expanduser("~")
    config_dir = docker_config_dir(env, home)

    def by_context(origin: str, name: str, prefix: str) -> CliChoice:
        reading, how = _resolve_context(env, config_dir, name)
        error = how if reading is None else None
        return CliChoice(origin, name, reading, f"{prefix}; {how}", error)

    if argv_context and argv_host:
        error = "conflicting options: either specify --host or --context, not both"
        return CliChoice("--context", argv_context, None, error, error)
    if argv_context:
        return by_context("--context", argv_context, f"--context {argv_context} was given")
    if argv_host:
        return CliChoice(
            "-H",
            None,
            read_cli_host(argv_host),
            "-H/--host was given (it overrides contexts and DOCKER_HOST)",
        )
    if env.get("DOCKER_HOST"):
        extra = ""
        if env.get("DOCKER_CONTEXT"):
            extra = f" (it overrides DOCKER_CONTEXT={env['DOCKER_CONTEXT']})"
        return CliChoice("DOCKER_HOST", None, read_cli_host(env["DOCKER_HOST"]), f"DOCKER_HOST is set{extra}")
    if env.get("DOCKER_CONTEXT"):
        name = env["DOCKER_CONTEXT"]
        return by_context("DOCKER_CONTEXT", name, f"DOCKER_CONTEXT={name}")
    current = current_context_name(config_dir)
    if current:
        where = os.path.join(config_dir, "config.json")
        return by_context("currentContext", current, f"currentContext is {current!r} in {where}")
    return CliChoice(
        "default",
        None,
        read_cli_host(DEFAULT_DOCKER_HOST),
        "no --context, -H, DOCKER_HOST, DOCKER_CONTEXT or currentContext: the default",
    )


def cli_endpoint(
    env: Mapping[str, str] | None = None,
    home: str | None = None,
    argv_host: str | None = None,
    argv_context: str | None = None,
) -> tuple[str | None, str]:
    """(url, why) of `cli_choice`: the host as the CLI settles on it, None when the CLI fails first."""
    choice = cli_choice(env, home, argv_host, argv_context)
    return choice.url, choice.why


@dataclass(frozen=True, slots=True)
class Candidate:
    """One place a backend may listen, with where that idea came from."""

    source: str  # "--backend", "DOCKER_HOST", "context 'colima'", "well-known: Colima", ...
    url: str | None  # None when the source is set but unusable (see skip)
    endpoint: Endpoint | None = None
    note: str = ""  # how the url was derived (meta.json path, table source, ...)
    auto: bool = True  # may discovery pick it without being asked? (other contexts: no)
    skip: str | None = None  # why discovery does not probe it
    probe: ProbeResult | None = None
    cli_problem: str | None = None  # why the docker CLI itself fails with this setting (DOCKER_HOST, context)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "url": self.url,
            "note": self.note,
            "auto": self.auto,
            "skip": self.skip,
            "probe": self.probe.to_dict() if self.probe else None,
            "cli_problem": self.cli_problem,
        }


def _candidate(
    source: str,
    url: str | None,
    note: str,
    *,
    auto: bool = True,
    skip: str | None = None,
    cli_problem: str | None = None,
) -> Candidate:
    if url is None:
        return Candidate(source, None, None, note, auto, skip or note, cli_problem=cli_problem)
    try:
        endpoint = parse_endpoint(url)
    except EndpointError as exc:
        return Candidate(source, url, None, note, auto, skip or str(exc), cli_problem=cli_problem)
    return Candidate(source, endpoint.url, endpoint, note, auto, skip, cli_problem=cli_problem)


def _expand(template: str, env: Mapping[str, str], home: str, root: str) -> list[str] | None:
    """Paths a template names right now; None when it needs an unset variable."""
    path = template
    if path.startswith("~/"):
        path = os.path.join(home, path[2:])
    elif path.startswith("$"):
        var, _, rest = path[1:].partition("/")
        value = env.get(var)
        if not value and var == "XDG_CONFIG_HOME":
            value = os.path.join(home, ".config")
        if not value:
            return None
        path = os.path.join(value, rest)
    else:
        path = os.path.join(root, path.lstrip("/"))
    if "*" in path:
        return sorted(glob.glob(path))
    return [path]


def well_known_candidates(
    env: Mapping[str, str], home: str, *, platform: str | None = None, root: str = "/"
) -> list[Candidate]:
    """The well-known socket table expanded for this platform (globbed rows only where present)."""
    platform = platform or sys.platform
    out: list[Candidate] = []
    for row in WELL_KNOWN_SOCKETS:
        if platform not in row["platforms"]:
            continue
        for template in row["paths"]:
            for path in _expand(template, env, home, root) or ():
                label = row["label"]
                if "*" in template:
                    label = f"{label} ({_profile_name(template, path)})"
                out.append(_candidate(f"well-known: {label}", f"unix://{path}", row["source"]))
    return out


def _profile_name(template: str, path: str) -> str:
    """The part of `path` that the template's `*` matched (colima profile, lima instance, machine)."""
    parts_t, parts_p = template.split("/"), path.split("/")
    for t, p in zip(reversed(parts_t), reversed(parts_p), strict=False):
        if "*" in t:
            prefix, _, suffix = t.partition("*")
            return p[len(prefix) : len(p) - len(suffix) if suffix else None]
    return path


def _real(path: str) -> str:
    return os.path.realpath(path)


def own_socket_check(url: str | None, own_sockets: Collection[str], env: Mapping[str, str]) -> str | None:
    """Why `url` is dockertap itself (so relaying to it would loop), or None."""
    if not url:
        return None
    try:
        endpoint = parse_endpoint(url)
    except EndpointError:
        return None
    if endpoint.scheme != "unix":
        return None
    ours = [parse_endpoint(s).path if "://" in s else s for s in own_sockets]
    target = _real(endpoint.path)
    for path in ours:
        if _real(path) == target:
            return f"{endpoint.path} is the socket this dockertap listens on (it would relay to itself)"
    for path in dockertap_socket_paths(env):
        if _real(path) == target:
            return f"{endpoint.path} is a dockertap default socket (a proxy, not an engine; it would loop)"
    return None


def candidates(
    env: Mapping[str, str] | None = None,
    home: str | None = None,
    *,
    explicit: str | None = None,
    own_sockets: Collection[str] = (),
    platform: str | None = None,
    root: str = "/",
) -> list[Candidate]:
    """Every candidate endpoint in discovery order, without touching a socket.

    Order: `--backend`, `DOCKER_HOST`, `DOCKER_CONTEXT` / `currentContext`, the well-known sockets,
    then the other stored contexts (listed for the doctor; `auto=False`, discovery does not pick them).
    `root` prefixes absolute well-known paths (tests use a fake filesystem root).
    """
    env = os.environ if env is None else env
    home = home or env.get("HOME") or os.path.expanduser("~")
    config_dir = docker_config_dir(env, home)
    out: list[Candidate] = []
    if explicit:
        out.append(_candidate("--backend", explicit, "given on the command line"))
    if env.get("DOCKER_HOST"):
        host = env["DOCKER_HOST"]
        reading = read_cli_host(host)
        # A scheme-less path is relayed to the socket it names (what the user meant), but the
        # docker CLI would not reach it: cli_problem says so, so `run`/`proxy` can tell the user.
        url = reading.meant or (reading.endpoint.url if reading.endpoint else host)
        out.append(
            _candidate(
                "DOCKER_HOST",
                url,
                "set in your environment",
                skip=own_socket_check(url, own_sockets, env),
                cli_problem=reading.problem,
            )
        )

    current = current_context_name(config_dir)
    chosen = env.get("DOCKER_CONTEXT") or current
    if chosen:
        origin = (
            "DOCKER_CONTEXT" if env.get("DOCKER_CONTEXT") else f"currentContext in {config_dir}/config.json"
        )
        reading, how = _resolve_context(env, config_dir, chosen)
        url = reading.endpoint.url if reading and reading.endpoint else (reading.given if reading else None)
        skip = None
        if chosen == "default":
            skip = "the 'default' context is DOCKER_HOST or /var/run/docker.sock, tried on their own"
        skip = skip or own_socket_check(url, own_sockets, env)
        problem = None if env.get("DOCKER_HOST") else (reading.problem if reading else how)
        out.append(_candidate(f"context {chosen!r}", url, f"{origin}; {how}", skip=skip, cli_problem=problem))

    for cand in well_known_candidates(env, home, platform=platform, root=root):
        skip = own_socket_check(cand.url, own_sockets, env)
        out.append(replace(cand, skip=skip) if skip else cand)

    for ctx in list_contexts(config_dir):
        if ctx.name == chosen:
            continue
        note = f"stored context ({ctx.meta_path})" + (" - current" if ctx.current else "")
        skip = own_socket_check(ctx.host, own_sockets, env) or ctx.error
        out.append(_candidate(f"context {ctx.name!r}", ctx.host, note, auto=False, skip=skip))
    return out


@dataclass(slots=True)
class Discovery:
    """The backend discovery picked (or None), why, and everything it looked at."""

    endpoint: Endpoint | None
    source: str | None
    reason: str
    probe: ProbeResult | None = None
    tried: list[Candidate] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.endpoint is not None and self.probe is not None and self.probe.ok

    def to_dict(self) -> dict:
        return {
            "endpoint": self.endpoint.url if self.endpoint else None,
            "source": self.source,
            "reason": self.reason,
            "probe": self.probe.to_dict() if self.probe else None,
            "tried": [c.to_dict() for c in self.tried],
        }


def _dedupe_key(endpoint: Endpoint) -> str:
    return f"unix://{_real(endpoint.path)}" if endpoint.scheme == "unix" else endpoint.url


def discover_backend(
    explicit: str | None = None,
    *,
    own_sockets: Collection[str] = (),
    env: Mapping[str, str] | None = None,
    home: str | None = None,
    probe_fn: Callable[..., ProbeResult] = probe,
    timeout: float = 2.0,
    platform: str | None = None,
    root: str = "/",
) -> Discovery:
    """Pick the backend to relay to: the first candidate that answers `/_ping`.

    An explicit `--backend` is always used, answering or not (the user asked for it); a bad
    explicit URL raises `EndpointError`. Candidates that are dockertap's own sockets are skipped.
    """
    env = os.environ if env is None else env
    if explicit:
        parse_endpoint(explicit)  # fail loudly on a bad --backend
    tried: list[Candidate] = []
    seen: dict[str, Candidate] = {}
    for cand in candidates(
        env, home, explicit=explicit, own_sockets=own_sockets, platform=platform, root=root
    ):
        if not cand.auto:
            continue
        if cand.skip or cand.endpoint is None:
            tried.append(cand)
            continue
        key = _dedupe_key(cand.endpoint)
        if key in seen:
            tried.append(replace(cand, skip=f"same socket as {seen[key].source}", probe=seen[key].probe))
            continue
        result = probe_fn(cand.endpoint, timeout=timeout, full=False)
        cand = replace(cand, probe=result)
        seen[key] = cand
        tried.append(cand)
        if result.ok:
            reason = f"{cand.source} ({cand.url}) answers /_ping" + (f": {cand.note}" if cand.note else "")
            skipped = [c for c in tried[:-1]]
            if skipped:
                reason += "; before it: " + "; ".join(_tried_text(c) for c in skipped)
            return Discovery(cand.endpoint, cand.source, reason, result, tried)
        if cand.source == "--backend":
            reason = (
                f"--backend {cand.url} was given explicitly, so it is used although it does not answer "
                f"/_ping ({result.kind}: {result.error}); {result.hint}"
            )
            return Discovery(cand.endpoint, cand.source, reason, result, tried)
    listing = "; ".join(_tried_text(c) for c in tried) or "no candidate at all"
    return Discovery(None, None, f"no Docker API endpoint answers /_ping. Tried: {listing}", None, tried)


def _tried_text(cand: Candidate) -> str:
    where = cand.url or "(unset)"
    if cand.skip:
        return f"{cand.source} {where} skipped: {cand.skip}"
    if cand.probe is not None and not cand.probe.ok:
        return f"{cand.source} {where}: {cand.probe.kind} ({cand.probe.error})"
    return f"{cand.source} {where}"
