"""Engines running on this machine right now, and where they listen, read from /proc.

`dockertap doctor` points a user whose docker CLI finds nothing at an engine that is already up
on a socket of its own (a second dockerd, a `podman system service`, a test engine) instead of
telling them to start one. Nothing is contacted here; the doctor probes what this returns.

Where each engine listens, in order of authority:

* dockerd: `-H`/`--host` flags (pflag forms `-H X`, `-HX`, `-H=X`, `--host X`, `--host=X`), else
  `hosts` in its `--config-file` (default /etc/docker/daemon.json), else unix:///var/run/docker.sock
  (moby cmd/dockerd/config.go, opts/hosts_unix.go). `fd://` (systemd socket activation) is replaced
  by the Unix sockets the process really listens on (its fds matched against its netns'
  /proc/PID/net/unix), when we may read its fds.
* podman: `podman [global flags] system service [flags] [URI]`; without a URI it serves
  unix:///run/podman/podman.sock as root, else $XDG_RUNTIME_DIR/podman/podman.sock (podman
  cmd/podman/system/service.go: resolveAPIURI), or the sockets systemd handed it (LISTEN_FDS).
* containerd (not a Docker API; listed because dockerd names it): `--address`/`-a`, else `[grpc]
  address` in its `--config` file, else /run/containerd/containerd.sock (containerd defaults).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DOCKERD_DEFAULT_HOST = "unix:///var/run/docker.sock"
DOCKERD_DEFAULT_CONFIG = "/etc/docker/daemon.json"
CONTAINERD_DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
PODMAN_ROOT_SOCKET = "unix:///run/podman/podman.sock"

_SO_ACCEPTCON = 0x00010000  # /proc/net/unix Flags: a listening socket


@dataclass(frozen=True, slots=True)
class RunningEngine:
    """One engine process and the endpoints it serves."""

    kind: str  # "dockerd" | "podman" | "containerd"
    pid: int
    user: str
    hosts: tuple[str, ...]  # Docker API endpoints (containerd: its gRPC socket, not a Docker API)
    how: str  # where `hosts` came from: "its --host flags", "the default", ...
    containerd: str | None = None  # dockerd: the containerd it was told to use (--containerd)
    command: tuple[str, ...] = field(default=(), repr=False)

    @property
    def docker_api(self) -> bool:
        return self.kind in ("dockerd", "podman")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "pid": self.pid,
            "user": self.user,
            "hosts": list(self.hosts),
            "how": self.how,
            "containerd": self.containerd,
        }


def flag_values(argv: Sequence[str], long: str, short: str | None = None) -> list[str]:
    """Every value of a Go (pflag) option in argv: `--long X`, `--long=X`, `-s X`, `-s=X`, `-sX`."""
    values: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            break
        if arg == f"--{long}" or (short and arg == f"-{short}"):
            value = next(args, None)
            if value is not None:
                values.append(value)
        elif arg.startswith(f"--{long}="):
            values.append(arg.split("=", 1)[1])
        elif short and arg.startswith(f"-{short}") and not arg.startswith("--"):
            values.append(arg[2:].removeprefix("="))
    return values


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _environ(proc: str, pid: int) -> dict[str, str]:
    raw = _read(f"{proc}/{pid}/environ") or b""
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def listening_unix_sockets(proc: str, pid: int) -> list[str]:
    """Paths of the Unix sockets process `pid` listens on ([] when its fds are not ours to read)."""
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"{proc}/{pid}/fd"):
            try:
                target = os.readlink(f"{proc}/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return []
    table = (_read(f"{proc}/{pid}/net/unix") or b"").decode(errors="replace").splitlines()[1:]
    paths = []
    for line in table:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and int(fields[3], 16) & _SO_ACCEPTCON:
            path = fields[7]
            if path.startswith("/") and path not in paths:
                paths.append(path)
    return paths


def _dockerd(argv: Sequence[str], proc: str, pid: int) -> tuple[list[str], str]:
    hosts = flag_values(argv, "host", "H")
    how = "its -H/--host flags"
    if not hosts:
        config_file = (flag_values(argv, "config-file") or [DOCKERD_DEFAULT_CONFIG])[-1]
        try:
            config = json.loads(_read_as_seen_by(proc, pid, config_file) or b"{}")
        except ValueError:
            config = {}
        configured = config.get("hosts") if isinstance(config, dict) else None
        if isinstance(configured, list) and configured:
            hosts, how = [str(h) for h in configured], f"'hosts' in {config_file}"
        else:
            hosts, how = [DOCKERD_DEFAULT_HOST], "the default (no -H flag, no 'hosts' in its config)"
    return _resolve_fd_hosts(hosts, proc, pid), how


def _resolve_fd_hosts(hosts: Iterable[str], proc: str, pid: int) -> list[str]:
    """`fd://` means sockets systemd handed over: name them by the paths they listen on."""
    out: list[str] = []
    for host in hosts:
        if host.startswith("fd://"):
            out.extend(f"unix://{path}" for path in listening_unix_sockets(proc, pid) or [])
            continue
        out.append(host if "://" in host else f"unix://{host}")
    return list(dict.fromkeys(out))


_PODMAN_VALUED_SERVICE_FLAGS = ("--time", "-t", "--cors")


def _podman_service(argv: Sequence[str], proc: str, pid: int, uid: int) -> tuple[list[str], str] | None:
    """The URI of `podman … system service … [URI]`, or None when this podman is not the service."""
    words = list(argv[1:])
    for i in range(len(words) - 1):
        if words[i] == "system" and words[i + 1] == "service":
            rest = words[i + 2 :]
            break
    else:
        return None
    uris: list[str] = []
    args = iter(rest)
    for arg in args:
        if arg in _PODMAN_VALUED_SERVICE_FLAGS:
            next(args, None)
        elif not arg.startswith("-"):
            uris.append(arg)
    if uris:
        return [uris[-1] if "://" in uris[-1] else f"unix://{uris[-1]}"], "the URI on its command line"
    env = _environ(proc, pid)
    if env.get("LISTEN_FDS"):
        return [f"unix://{p}" for p in listening_unix_sockets(proc, pid)], "sockets systemd handed it"
    if uid == 0:
        return [PODMAN_ROOT_SOCKET], "the rootful default"
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return [f"unix://{runtime_dir}/podman/podman.sock"], "the rootless default"


def _containerd(argv: Sequence[str], proc: str, pid: int) -> tuple[list[str], str]:
    addresses = flag_values(argv, "address", "a")
    if addresses:
        return addresses, "its --address flag"
    for config_file in flag_values(argv, "config", "c")[-1:]:
        try:
            raw = _read_as_seen_by(proc, pid, config_file) or b""
            config = tomllib.loads(raw.decode(errors="replace"))
        except tomllib.TOMLDecodeError:
            config = {}
        address = (config.get("grpc") or {}).get("address")
        if isinstance(address, str) and address:
            return [address], f"[grpc] address in {config_file}"
    return [CONTAINERD_DEFAULT_ADDRESS], "the default"


def _other_mount_namespace(proc: str, pid: int) -> bool:
    try:
        return os.readlink(f"{proc}/{pid}/ns/mnt") != os.readlink(f"{proc}/self/ns/mnt")
    except OSError:
        return False


def _through_its_root(hosts: Iterable[str], proc: str, pid: int) -> list[str]:
    """Unix paths of a process in another mount namespace, as we can reach them.

    Where the same file is mounted in our namespace too (an engine whose /run is a bind mount of a
    directory we see), its path here; else through /proc/PID/root (root only, while it lives).
    """
    out = []
    for host in hosts:
        prefix = "unix://" if host.startswith("unix:///") else ""
        path = host[len(prefix) :]
        if path.startswith("/"):
            host = prefix + (_path_in_our_namespace(proc, pid, path) or in_root(f"{proc}/{pid}/root", path))
        out.append(host)
    return out


@dataclass(frozen=True, slots=True)
class _Mount:
    device: str  # major:minor
    root: str  # the path inside that filesystem that is mounted
    point: str  # where it is mounted


def _mounts(proc: str, pid: int | str) -> list[_Mount]:
    """/proc/PID/mountinfo (proc(5)): fields 3-5 are major:minor, root and mount point."""
    text = (_read(f"{proc}/{pid}/mountinfo") or b"").decode(errors="replace")

    def unescape(field: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)

    return [
        _Mount(fields[2], unescape(fields[3]), unescape(fields[4]))
        for fields in (line.split() for line in text.splitlines())
        if len(fields) > 4
    ]


def _under(path: str, directory: str) -> bool:
    return directory == "/" or path == directory or path.startswith(directory.rstrip("/") + "/")


def _path_in_our_namespace(proc: str, pid: int, path: str) -> str | None:
    """The path, in our mount namespace, of the file process `pid` sees at `path` (None: not mounted here)."""
    theirs = in_root(f"{proc}/{pid}/root", path)
    canonical = theirs[len(f"{proc}/{pid}/root") :] or "/"
    try:
        target = os.stat(theirs)
    except OSError:
        return None
    candidates = [m for m in _mounts(proc, pid) if _under(canonical, m.point)]
    if not candidates:
        return None
    mount = max(candidates, key=lambda m: len(m.point))
    inside = (
        os.path.join(mount.root, os.path.relpath(canonical, mount.point))
        if canonical != mount.point
        else mount.root
    )
    for ours in sorted(_mounts(proc, "self"), key=lambda m: -len(m.root)):
        if ours.device != mount.device or not _under(inside, ours.root):
            continue
        relative = os.path.relpath(inside, ours.root)
        here = os.path.normpath(os.path.join(ours.point, relative))
        try:
            found = os.stat(here)
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
            return here
    return None


def in_root(root: str, path: str) -> str:
    """`path` as seen from `root`, following symlinks inside it.

    An absolute symlink under /proc/PID/root would otherwise resolve against *our* root (the kernel
    jumps into their root only once): /var/run -> /run must land in theirs.
    """
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            resolved = resolved[:-1]
            continue
        if part == ".":
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate) if hops < 40 else None
        except OSError:  # not a symlink, or gone (an engine shutting down)
            target = None
        if target is not None:
            hops += 1
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _read_as_seen_by(proc: str, pid: int, path: str) -> bytes | None:
    """A file as process `pid` sees it (its root may be another mount namespace)."""
    seen = _read(f"{proc}/{pid}/root{path}") if path.startswith("/") else None
    return seen if seen is not None else _read(path)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def running_engines(proc: str = "/proc") -> list[RunningEngine]:
    """dockerd, `podman system service` and containerd processes, with their endpoints, by pid."""
    found: list[RunningEngine] = []
    try:
        pids = sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    except OSError:
        return []
    for pid in pids:
        raw = _read(f"{proc}/{pid}/cmdline")
        if not raw:
            continue
        argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
        name = os.path.basename(argv[0])
        try:
            uid = os.stat(f"{proc}/{pid}").st_uid
        except OSError:
            continue
        if name == "dockerd":
            hosts, how = _dockerd(argv, proc, pid)
            if _other_mount_namespace(proc, pid):
                hosts, how = _through_its_root(hosts, proc, pid), f"{how}; in its own mount namespace"
            containerd_flags = flag_values(argv, "containerd")
            containerd = containerd_flags[-1] if containerd_flags else None
            found.append(
                RunningEngine("dockerd", pid, _user(uid), tuple(hosts), how, containerd, tuple(argv))
            )
        elif name == "podman":
            service = _podman_service(argv, proc, pid, uid)
            if service and _other_mount_namespace(proc, pid):
                service = (
                    _through_its_root(service[0], proc, pid),
                    f"{service[1]}; in its own mount namespace",
                )
            if service:
                found.append(
                    RunningEngine("podman", pid, _user(uid), tuple(service[0]), service[1], None, tuple(argv))
                )
        elif name == "containerd":
            hosts, how = _containerd(argv, proc, pid)
            if _other_mount_namespace(proc, pid):
                hosts, how = _through_its_root(hosts, proc, pid), f"{how}; in its own mount namespace"
            found.append(RunningEngine("containerd", pid, _user(uid), tuple(hosts), how, None, tuple(argv)))
    return found
