"""Where the engine really lives on this host: its process, its root, its containerd, its runtimes.

An engine may run in its own mount namespace (Docker-in-Docker, snaps, an engine started under a
private root): the paths it reports (`/info` `Containerd.Address`, `--exec-root`, containerd's
state dir) are then relative to *its* root, not ours. Every such path is read here through
`/proc/<pid>/root`, which the kernel resolves in the engine's own mount namespace.

Who may produce evidence is decided from processes, never from command lines: the engine's pid
(the peer of its API socket), containerd's pid (the peer of its socket), and the shims/conmons
that run this engine's containers — found as the parents of the container processes whose pids
the runtime wrote into the engine's state dirs (root-only directories), so shims and conmons
started before dockertap are known too.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: Where dockerd's containerd usually listens, most specific first (moby daemon/config defaults:
#: a supervised containerd under `<exec-root>/containerd/`, or the system one).
DEFAULT_CONTAINERD_SOCKETS = ("/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock")
DEFAULT_CONTAINERD_STATE = "/run/containerd"
DEFAULT_PODMAN_RUNROOT = "/run/containers/storage"
#: Unix socket paths longer than this cannot be dialled (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH = 100
#: containerd's runtime v2 keeps one bundle per task: `<state>/io.containerd.runtime.v2.task/<ns>/<id>/`
#: with `init.pid`, the container's first process, written by the shim (containerd
#: core/runtime/v2/bundle.go; cmd/containerd-shim-runc-v2 process/init.go).
CONTAINERD_INIT_PIDS = "io.containerd.runtime.v2.task/*/*/init.pid"
#: Podman (libpod/oci_conmon_common.go) writes conmon's pid to
#: `<runroot>/<driver>-containers/<id>/userdata/conmon.pid`.
PODMAN_CONMON_PIDS = "*-containers/*/userdata/conmon.pid"


def read_bytes(path: str, limit: int = 65536) -> bytes | None:
    """One read of a /proc file (None if it is gone): a single os.open + os.read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def ppid_in_stat(raw: bytes | None) -> int | None:
    """The parent pid in a /proc/<pid>/stat line (after the parenthesised name, which may hold spaces)."""
    if not raw:
        return None
    try:
        return int(raw[raw.rindex(b")") + 2 :].split(b" ", 2)[1])
    except (ValueError, IndexError):
        return None


def uid_in_status(raw: bytes | None) -> int | None:
    """The real uid (`Uid:` line, first field) of a /proc/<pid>/status text."""
    for line in (raw or b"").split(b"\n"):
        if line.startswith(b"Uid:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def argv_of(pid: int) -> list[str]:
    raw = read_bytes(f"/proc/{pid}/cmdline") or b""
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")[:-1]]


def parent_of(pid: int) -> int | None:
    return ppid_in_stat(read_bytes(f"/proc/{pid}/stat", 1024))


def name_of(pid: int) -> str:
    """The kernel's name for the process (`comm`): what it exec'd, whatever argv[0] says."""
    return (read_bytes(f"/proc/{pid}/comm", 64) or b"").decode("utf-8", "replace").strip()


def uid_of(pid: int) -> int | None:
    return uid_in_status(read_bytes(f"/proc/{pid}/status", 4096))


def mount_namespace(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def children_of(pid: int) -> list[int]:
    """Direct children, from /proc/<pid>/task/*/children (Linux ≥ 3.5 with CONFIG_PROC_CHILDREN)."""
    out: list[int] = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        out += [int(p) for p in (read_bytes(path) or b"").split()]
    return out


def in_root(root: str, path: str, max_links: int = 40) -> str:
    """`path` resolved inside `root` (e.g. /proc/<pid>/root), symlinks included.

    The kernel follows `/proc/<pid>/root` into the other root, but an absolute symlink met below
    it (`/var/run` → `/run` in most roots) is resolved against *our* root. So each component is
    resolved here, absolute link targets re-anchored at `root` (what openat2's RESOLVE_IN_ROOT
    does). Missing components are kept as they are, for the caller's existence check.
    """
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join([*resolved, part])
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link, or missing: keep it
            resolved.append(part)
            continue
        links += 1
        if links > max_links:
            resolved.append(part)
            resolved += parts
            break
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p] + parts
    return root + "/" + "/".join(resolved)


def flag_value(argv: list[str], *names: str) -> str | None:
    """`--flag value` or `--flag=value` (Go's flag package accepts both, with one or two dashes)."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


@dataclass
class EngineHost:
    """The engine's process as this host sees it; paths it names are resolved through its root."""

    pid: int | None
    uid: int | None = None
    name: str = ""
    argv: list[str] = field(default_factory=list)
    #: True when the engine's mount namespace is not ours (its paths mean something else here).
    own_mount_namespace: bool = False

    @classmethod
    def of(cls, pid: int | None) -> EngineHost:
        if not pid:
            return cls(None)
        ours, theirs = mount_namespace("self"), mount_namespace(pid)
        return cls(
            pid,
            uid=uid_of(pid),
            name=name_of(pid),
            argv=argv_of(pid),
            own_mount_namespace=theirs is not None and ours is not None and theirs != ours,
        )

    def host_path(self, path: str, pid: int | None = None) -> str:
        """`path` as the engine (or process `pid` beside it) sees it, reachable from here."""
        owner = pid or self.pid
        if owner is None or not path.startswith("/"):
            return path
        return in_root(f"/proc/{owner}/root", path)

    def where(self) -> str:
        return (
            "engine in another mount namespace"
            if self.own_mount_namespace
            else "engine in this mount namespace"
        )


def _dockerd_settings(engine: EngineHost) -> dict[str, str]:
    """`--containerd` and `--exec-root` of dockerd, from its argv or its config file (read in its root)."""
    found: dict[str, str] = {}
    for key in ("containerd", "exec-root"):
        value = flag_value(engine.argv, f"--{key}")
        if value:
            found[key] = value
    config_file = flag_value(engine.argv, "--config-file") or "/etc/docker/daemon.json"
    try:
        config = json.loads(read_bytes(engine.host_path(config_file)) or b"{}")
    except ValueError:
        config = {}
    if isinstance(config, dict):
        for key in ("containerd", "exec-root"):
            if isinstance(config.get(key), str):
                found.setdefault(key, config[key])
    return found


def _containerd_config(pid: int, engine: EngineHost) -> dict:
    """containerd's own TOML config (`--config`, default /etc/containerd/config.toml), read in its root."""
    argv = argv_of(pid)
    path = flag_value(argv, "--config", "-c") or "/etc/containerd/config.toml"
    raw = read_bytes(engine.host_path(path, pid))
    try:
        return tomllib.loads(raw.decode("utf-8", "replace")) if raw else {}
    except tomllib.TOMLDecodeError:
        return {}


def _containerd_children(engine: EngineHost) -> list[int]:
    return [p for p in children_of(engine.pid) if name_of(p) == "containerd"] if engine.pid else []


def _shim_addresses(engine: EngineHost) -> list[tuple[str, int]]:
    """`-address` of the shims in the engine's mount namespace (containerd pkg/shim/util.go: Command)."""
    namespace = mount_namespace(engine.pid) if engine.pid else None
    found: list[tuple[str, int]] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not name_of(int(entry)).startswith("containerd-shim"):
            continue
        if mount_namespace(entry) != namespace:
            continue
        address = flag_value(argv_of(int(entry)), "-address", "--address")
        if address:
            found.append((address, int(entry)))
    return found


def find_containerd_socket(
    info: dict | None, engine: EngineHost, exists: Callable[[str], bool] = os.path.exists
) -> tuple[str | None, str]:
    """Which containerd socket the engine uses (a path reachable from here), and how we know.

    Order: `/info` `Containerd.Address` (engines ≥ 23); dockerd's `--containerd`; the address of
    the containerd dockerd supervises (its child); the `-address` of shims beside the engine;
    `<exec-root>/containerd/containerd.sock`; the usual paths. Each is resolved through the
    engine's `/proc/<pid>/root`, so an engine in its own mount namespace is followed into it.
    """
    candidates: list[tuple[str, str, int | None]] = []  # (path as the engine sees it, how, via pid)
    address = ((info or {}).get("Containerd") or {}).get("Address")
    if address:
        candidates.append((address, "/info Containerd.Address", None))
    if engine.pid:
        settings = _dockerd_settings(engine)
        if "containerd" in settings:
            candidates.append((settings["containerd"], f"--containerd of engine pid {engine.pid}", None))
        for child in _containerd_children(engine):
            grpc = _containerd_config(child, engine).get("grpc") or {}
            child_address = flag_value(argv_of(child), "--address", "-a") or grpc.get("address")
            if isinstance(child_address, str):
                candidates.append((child_address, f"containerd pid {child} started by the engine", child))
        for shim_address, shim in _shim_addresses(engine):
            candidates.append((shim_address, f"-address of shim pid {shim}", shim))
        exec_root = settings.get("exec-root", "/var/run/docker")
        candidates.append(
            (
                os.path.join(exec_root, "containerd", "containerd.sock"),
                f"exec-root of engine pid {engine.pid}",
                None,
            )
        )
    candidates += [(path, "usual path", None) for path in DEFAULT_CONTAINERD_SOCKETS]
    tried: list[str] = []
    for path, how, via in candidates:
        reachable = engine.host_path(path, via) if engine.pid else path
        if exists(reachable):
            if reachable != path:
                how += f", through /proc/{via or engine.pid}/root"
            return reachable, how
        if reachable not in tried:
            tried.append(reachable)
    where = f"{engine.where()} and " if engine.pid else ""
    return None, f"{where}no containerd socket found at {', '.join(tried)}"


def dialable(path: str) -> tuple[str, Callable[[], None]]:
    """A path `connect()` accepts for `path`: itself, or a short symlink to it when it is too long
    for sun_path (paths through /proc/<pid>/root often are). Returns it and a clean-up."""
    if len(path.encode()) <= MAX_SOCKET_PATH:
        return path, lambda: None
    directory = tempfile.mkdtemp(prefix="dt-ctrd-")  # 0700, ours
    alias = os.path.join(directory, "c.sock")
    os.symlink(path, alias)

    def remove() -> None:
        try:
            os.unlink(alias)
            os.rmdir(directory)
        except OSError:
            pass

    return alias, remove


def containerd_state_dir(containerd_pid: int, engine: EngineHost) -> str:
    """containerd's `--state` (or `state =` in its config), as a path reachable from here."""
    state = flag_value(argv_of(containerd_pid), "--state") or _containerd_config(containerd_pid, engine).get(
        "state"
    )
    return engine.host_path(state if isinstance(state, str) else DEFAULT_CONTAINERD_STATE, containerd_pid)


def podman_runroot(engine: EngineHost) -> str:
    return engine.host_path(flag_value(engine.argv, "--runroot") or DEFAULT_PODMAN_RUNROOT)


def _pid_in(path: str) -> int | None:
    try:
        return int((read_bytes(path, 64) or b"").strip())
    except ValueError:
        return None


def runtime_parents(
    containerd_state: str | None, podman_run: str | None, trusted_uids: Iterable[int]
) -> dict[int, tuple[str, str]]:
    """Shims and conmons running this engine's containers: pid → (container id, program).

    A shim is the parent of the process in `init.pid`; conmon's pid is in `conmon.pid`. Both
    files live in root-only state directories the runtime wrote; the process must still run,
    under a trusted uid, and be what its name says (the kernel's `comm`, not argv).
    """
    uids = set(trusted_uids)
    found: dict[int, tuple[str, str]] = {}
    if containerd_state:
        for path in glob.glob(os.path.join(glob.escape(containerd_state), CONTAINERD_INIT_PIDS)):
            init = _pid_in(path)
            shim = parent_of(init) if init else None
            if shim and name_of(shim).startswith("containerd-shim") and uid_of(shim) in uids:
                found[shim] = (os.path.basename(os.path.dirname(path)), name_of(shim))
    if podman_run:
        for path in glob.glob(os.path.join(glob.escape(podman_run), PODMAN_CONMON_PIDS)):
            conmon = _pid_in(path)
            if conmon and name_of(conmon) == "conmon" and uid_of(conmon) in uids:
                found[conmon] = (os.path.basename(os.path.dirname(os.path.dirname(path))), "conmon")
    return found
