"""Start and stop REAL container engines on private sockets, for tests, benchmarks and recordings.

Each engine generation runs from its own Debian root (``engine_roots.py``: bookworm for dockerd 20.10
and Podman 4.3, testing for dockerd 28.5 and Podman 5.8), in its own mount and network namespace whose
root mount is an overlay of that root — as in Docker-in-Docker or any engine started under a private
root.  Inside, the engine uses its ordinary paths (``/run/docker.sock``, ``/var/lib/docker``, …); its
``/run`` and data directory are bind mounts of a short per-engine base directory on the host, so its
sockets are reachable from the host (socket paths are limited to ~107 bytes).  It never sees the
host's engines, images, ``docker0`` or iptables, and everything it mounted dies with its namespace.
Nothing here mocks anything.

Plain module on purpose (no pytest import): ``bench/`` and recording scripts use it too.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # engine_roots is a sibling module
import engine_roots  # noqa: E402

BUSYBOX_BINARY = "/bin/busybox"
BUSYBOX_TAG = "dt-busybox:latest"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 40
# Marks the engine's processes (dockerd passes its environment on to containerd and the shims), so a
# leftover can be found even though its command line names only paths inside the engine's root.
BASE_ENV = "DOCKERTAP_ENGINE_BASE"
NAMESPACES_FILE = "namespaces"  # in base: one mount-namespace id per start of the engine

# Variables that would point the docker CLI at another daemon or change its protocol.
_DOCKER_ENV_TO_DROP = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION")


class EngineStartError(RuntimeError):
    """An engine did not come up; the message carries the reason and the daemon log tail."""


@dataclass(frozen=True)
class EngineSpec:
    """One engine the tests run against; ``id`` is what pytest prints (``test_x[dockerd-28.5-c8d]``)."""

    id: str
    family: str  # "dockerd" | "podman"
    suite: str  # the Debian root it runs from (engine_roots.RECIPES)
    version: str  # major.minor, for skips and version-dependent expectations
    image_store: str = "graphdriver"  # dockerd: "graphdriver" (overlay2) | "containerd" (snapshotter)
    runtime: str = "runc"  # podman's OCI runtime

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


ENGINE_SPECS: dict[str, EngineSpec] = {
    spec.id: spec
    for spec in (
        EngineSpec("dockerd-20.10", "dockerd", "bookworm", "20.10"),
        EngineSpec("dockerd-28.5", "dockerd", "testing", "28.5"),
        EngineSpec("dockerd-28.5-c8d", "dockerd", "testing", "28.5", image_store="containerd"),
        EngineSpec("podman-4.3", "podman", "bookworm", "4.3"),
        EngineSpec("podman-5.8", "podman", "testing", "5.8"),
        EngineSpec("podman-5.8-crun", "podman", "testing", "5.8", runtime="crun"),
    )
}
DEFAULT_DOCKERD = "dockerd-20.10"
DEFAULT_PODMAN = "podman-4.3"

# Where each family keeps its data inside its root (bound from <base>/data) and its API socket.
_DATA_DIR = {"dockerd": "/var/lib/docker", "podman": "/var/lib/containers"}
_SOCKET_INSIDE = {"dockerd": "/run/docker.sock", "podman": "/run/podman/podman.sock"}
CONTAINERD_SOCKET_INSIDE = "/run/docker/containerd/containerd.sock"  # dockerd's own containerd
CONTAINERD_NAMESPACE = "moby"
# The environment of engines and of the root's tools run inside their namespaces.
_ENGINE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    # Podman 5 warns on every call on this host's hybrid cgroup layout (which it handles).
    "PODMAN_IGNORE_CGROUPSV1_WARNING": "1",
}

# Run by the host's sh inside fresh mount + network namespaces (``unshare``): make the overlay of the
# root the root mount (pivot_root, not chroot: a chroot would let `docker exec` escape to the host's
# root), then exec the engine from the root's own binaries.  sysfs is mounted afresh so /sys/class/net
# shows the engine's network namespace; the cgroup hierarchies are the host's.
_ENTER_ROOT = r"""
set -eu
base=$1 lower=$2 layer=$3 data_dir=$4
shift 4
readlink /proc/$$/ns/mnt >>"$base/namespaces"
ip link set lo up
new=$layer/root
mount -t overlay dockertap-root -o "lowerdir=$lower,upperdir=$layer/upper,workdir=$layer/work" "$new"
mount --bind "$base/run" "$new/run"
mkdir -p "$new$data_dir"
mount --bind "$base/data" "$new$data_dir"
mount -t proc proc "$new/proc"
mount -t sysfs sysfs "$new/sys"
mount --rbind /sys/fs/cgroup "$new/sys/fs/cgroup"
mount --rbind /dev "$new/dev"
cd "$new"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
exec "$@"
"""


@dataclass
class Engine:
    """A running engine: where to reach it, how to run its root's tools, how to tear it down.

    ``socket`` and ``containerd_socket`` are host-visible paths; ``pid`` is the engine's pid as the
    host sees it; ``root`` is the Debian root it runs from (read-only: it runs on an overlay of it).
    Paths the engine itself reports (``/info``, command lines) are inside its root: map them with
    ``host_path``.
    """

    name: str  # the family: "dockerd" | "podman"
    base: Path
    socket: Path
    pid: int
    log_path: Path
    containerd_socket: Path | None = None
    # Global podman flags that select this engine's storage and runtime (for ``podman_cli``).
    podman_flags: tuple[str, ...] = ()
    spec: EngineSpec | None = None
    root: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def id(self) -> str:
        """``dockerd-28.5-c8d``, ``podman-4.3``, … (the pytest id)."""
        return self.spec.id if self.spec else self.name

    @property
    def version(self) -> str:
        """The generation, major.minor (``"28.5"``)."""
        return self.spec.version if self.spec else ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def host_path(self, inside: str) -> Path:
        """A path as the engine sees it, reachable from the host (through ``/proc/<pid>/root``)."""
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def command(self, *argv: str) -> list[str]:
        """``argv`` wrapped to run inside the engine's mount and network namespaces, from its root."""
        return ["nsenter", f"--target={self.pid}", "--mount", "--net", "--", *argv]

    def run(
        self, *argv: str, timeout: float = 120, input: bytes | str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess:
        """Run one of the root's binaries (``ctr``, ``runc``, ``podman``, …) inside the namespaces."""
        return subprocess.run(
            self.command(*argv),
            env={**os.environ, **_ENGINE_ENV, BASE_ENV: str(self.base)},
            input=input,
            capture_output=True,
            text=not isinstance(input, bytes),
            timeout=timeout,
            check=check,
        )

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """The root's ``ctr`` on dockerd's own containerd, in the ``moby`` namespace."""
        if self.name != "dockerd":
            raise ValueError(f"{self.id} has no containerd")
        address = f"--address={CONTAINERD_SOCKET_INSIDE}"
        return self.run("ctr", address, f"--namespace={CONTAINERD_NAMESPACE}", *args, timeout=timeout)

    def podman_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """The root's ``podman`` CLI on this service's storage (same flags as the service)."""
        if self.name != "podman":
            raise ValueError(f"{self.id} is not podman")
        return self.run("podman", *self.podman_flags, *args, timeout=timeout)

    def stop(self, remove_base: bool = True) -> None:
        """Stop the engine and everything it started, optionally delete base.

        Idempotent. Kills only processes that provably belong to this engine (``processes_under``);
        its mounts live in its own mount namespace and go with its last process.
        """
        if self._stopped:
            return
        self._stopped = True
        self._remove_all_containers()
        _terminate(self.pid, self.process, STOP_TIMEOUT)
        _kill_processes_under(self.base)
        _unmount_under(self.base)
        if remove_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def _remove_all_containers(self) -> None:
        """Force-remove containers first: podman's service exits without stopping them (conmon is
        detached), and dockerd would wait its shutdown timeout for each one that ignores SIGTERM."""
        try:
            if self.name == "podman":
                self.podman_cli("rm", "--all", "--force", "--time", "0", timeout=60)
                return
            ids = docker(self.url, "ps", "--all", "--quiet", timeout=30).stdout.split()
            if ids:
                docker(self.url, "rm", "--force", *ids, timeout=60)
        except (OSError, subprocess.SubprocessError):
            pass  # the sweep of processes below still leaves nothing behind


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"(no log: {err})"
    return "\n".join(text.splitlines()[-lines:])


def engine_root() -> Path:
    """Where engine bases go: /tmp, or ``$DOCKERTAP_ENGINE_ROOT`` (CI points it at one directory so it
    can prove afterwards that nothing started below it survived). Keep it short."""
    root = Path(os.environ.get("DOCKERTAP_ENGINE_ROOT") or "/tmp")
    root.mkdir(parents=True, exist_ok=True)
    return root


def short_base(prefix: str = "dt") -> Path:
    """A fresh, short directory: short enough for the sockets nested inside it."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=engine_root()))


# --------------------------------------------------------------------------------------------
# Starting engines


def start_engine(engine_id: str, base: str | os.PathLike[str]) -> Engine:
    """Start the engine ``engine_id`` (a key of ``ENGINE_SPECS``) on base ``base``."""
    spec = ENGINE_SPECS[engine_id]
    if spec.family == "dockerd":
        return start_dockerd(base, engine_id=engine_id)
    return start_podman(base, engine_id=engine_id)


def start_dockerd(
    base: str | os.PathLike[str],
    storage_driver: str | None = None,
    *,
    engine_id: str = DEFAULT_DOCKERD,
    env: Mapping[str, str] | None = None,
    debug: bool = False,
) -> Engine:
    """Start a dockerd (with its own containerd) from its root; socket at ``<base>/run/docker.sock``.

    Networking is dockerd's default (docker0, iptables rules): all of it lives in the engine's own
    network namespace, so the host's docker0 and iptables are never
    touched.  overlay2 is tried first and vfs is the fallback when the host filesystem cannot carry
    overlay; with the containerd image store (``dockerd-28.5-c8d``) containerd's snapshotter is used.
    ``debug``: dockerd's debug log, which holds one line per API request a handler runs.
    """
    spec = ENGINE_SPECS[engine_id]
    base = Path(base)
    if spec.image_store == "containerd":
        drivers: list[str | None] = [None]
    else:
        drivers = [storage_driver] if storage_driver else ["overlay2", "vfs"]
    failures = []
    for driver in drivers:
        try:
            return _start_dockerd_once(base, spec, driver, env, debug)
        except EngineStartError as err:
            failures.append(f"[{driver or spec.image_store}] {err}")
            _empty_directory(base)  # the next driver starts from a clean data root
    raise EngineStartError("\n\n".join(failures))


def _empty_directory(path: Path) -> None:
    _kill_processes_under(path)
    _unmount_under(path)
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _start_dockerd_once(
    base: Path,
    spec: EngineSpec,
    storage_driver: str | None,
    env: Mapping[str, str] | None = None,
    debug: bool = False,
) -> Engine:
    config: dict[str, object] = {
        "group": "root",  # the socket is the owner's only (the root's docker gid means nothing here)
        "shutdown-timeout": 5,
    }
    if debug:
        config["debug"] = True
    if storage_driver:
        config["storage-driver"] = storage_driver
    if spec.image_store == "containerd":
        config["features"] = {"containerd-snapshotter": True}
    layer = _prepare_base(base, spec)
    (layer / "upper/etc/docker").mkdir(parents=True)
    (layer / "upper/etc/docker/daemon.json").write_text(json.dumps(config, indent=1) + "\n")
    engine = _spawn_in_root(base, spec, layer, ["dockerd"], base / "dockerd.log", env)
    engine.containerd_socket = base / "run" / CONTAINERD_SOCKET_INSIDE.removeprefix("/run/")
    _wait_ready(engine)
    if not engine.containerd_socket.exists():
        engine.stop(remove_base=False)
        raise EngineStartError(
            f"dockerd is up but its containerd socket {engine.containerd_socket} is missing"
        )
    return engine


def start_podman(
    base: str | os.PathLike[str], storage_driver: str = "overlay", *, engine_id: str = DEFAULT_PODMAN
) -> Engine:
    """Start ``podman system service`` from its root; socket at ``<base>/run/podman/podman.sock``.

    cgroupfs and the file events backend are forced so the service behaves the same with or
    without systemd; the root's containers.conf carries the default ulimits runc needs here.
    """
    spec = ENGINE_SPECS[engine_id]
    if spec.runtime == "crun" and not pure_cgroup_v2():
        raise EngineUnsupported(
            "crun refuses this host's hybrid cgroup layout ('cgroups in hybrid mode not supported'); "
            "Podman with crun is tested only on hosts with a pure cgroup v2 layout"
        )
    base = Path(base)
    layer = _prepare_base(base, spec)
    (base / "run/podman").mkdir(parents=True, exist_ok=True)
    # This engine's own containers.conf (over the root's): conmon gets the engine's marker too (Podman
    # 4.3 starts it with a fresh environment), so teardown can find it.
    conf = layer / "upper/etc/containers/containers.conf"
    conf.parent.mkdir(parents=True)
    conmon_env = f'\n[engine]\nconmon_env_vars = ["PATH={_ENGINE_ENV["PATH"]}", "{BASE_ENV}={base}"]\n'
    conf.write_text(engine_roots.CONTAINERS_CONF + conmon_env)
    flags = (
        "--storage-driver", storage_driver,
        "--runtime", spec.runtime,
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
    )  # fmt: skip
    argv = ["podman", *flags, "system", "service", "--time=0", f"unix://{_SOCKET_INSIDE['podman']}"]
    engine = _spawn_in_root(base, spec, layer, argv, base / "podman.log")
    engine.podman_flags = flags
    _wait_ready(engine)
    return engine


class EngineUnsupported(EngineStartError):
    """This host cannot run this engine variant at all (a reason to skip, never to fail)."""


def pure_cgroup_v2() -> bool:
    """True when /sys/fs/cgroup is one cgroup2 mount (crun refuses hybrid v1 + v2 layouts)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/sys/fs/cgroup":
            return fields[fields.index("-") + 1] == "cgroup2"
    return False


def _prepare_base(base: Path, spec: EngineSpec) -> Path:
    """Create base's host-side directories and a fresh overlay layer (a restart on the same base gets a
    new one: overlayfs refuses an upper directory another mount still uses)."""
    if os.geteuid() != 0:
        raise EngineStartError(f"starting {spec.id} needs root (euid is {os.geteuid()})")
    for tool in ("unshare", "nsenter", "pivot_root", "ip"):
        if shutil.which(tool) is None:
            raise EngineStartError(f"starting {spec.id} needs {tool} on the host (util-linux, iproute2)")
    try:
        engine_roots.ensure_root(spec.suite)
    except engine_roots.RootBuildError as err:
        raise EngineStartError(f"the {spec.suite} root for {spec.id} is unavailable: {err}") from err
    base.mkdir(parents=True, exist_ok=True)
    for name in ("run", "data"):
        (base / name).mkdir(exist_ok=True)
    layer = Path(tempfile.mkdtemp(prefix="ov", dir=base))
    for name in ("upper", "work", "root"):
        (layer / name).mkdir()
    return layer


def _spawn_in_root(
    base: Path,
    spec: EngineSpec,
    layer: Path,
    argv: Sequence[str],
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Engine:
    root = engine_roots.root_path(spec.suite)
    unshare = ["unshare", "--mount", "--net", "--propagation", "private", "--"]
    script = ["sh", "-c", _ENTER_ROOT, "enter-root", str(base), str(root), str(layer), _DATA_DIR[spec.family]]
    env = {**_ENGINE_ENV, "HOME": "/root", "LANG": "C.UTF-8", BASE_ENV: str(base), **(extra_env or {})}
    with open(log_path, "ab") as log:
        # A new session: a Ctrl-C aimed at pytest must not kill the engine before teardown does.
        process = subprocess.Popen(
            [*unshare, *script, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=base,
            env=env,
            start_new_session=True,
        )
    return Engine(
        name=spec.family,
        base=base,
        socket=base / "run" / _SOCKET_INSIDE[spec.family].removeprefix("/run/"),
        pid=process.pid,
        log_path=log_path,
        spec=spec,
        root=root,
        process=process,
    )


def _wait_ready(engine: Engine, timeout: float = START_TIMEOUT) -> None:
    process = engine.process
    assert process is not None
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            last_error = f"{engine.id} exited with status {process.returncode}"
            break
        try:
            if ping(engine.socket) == b"OK":
                return
        except OSError as err:
            last_error = f"{type(err).__name__}: {err}"
        time.sleep(0.1)
    else:
        last_error = f"no /_ping answer within {timeout:.0f}s ({last_error})"
    tail = engine.log_tail()
    engine.stop(remove_base=False)
    raise EngineStartError(
        f"{engine.id} did not start: {last_error}\n--- {engine.log_path} (tail) ---\n{tail}"
    )


def ping(sock: Path, timeout: float = 2.0) -> bytes:
    """GET /_ping over the Unix socket; returns the body (``b"OK"`` when the engine is ready)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(sock))
        conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"/_ping answered {head.splitlines()[0] if head else b'nothing'!r}")
    if b"transfer-encoding: chunked" in head.lower():
        return _dechunk(body)
    return body


def _dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# Stopping without leftovers


def _terminate(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, process):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait(timeout=10)


def _alive(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None:
        return process.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _engine_namespaces(base: Path) -> set[str]:
    try:
        return set((base / NAMESPACES_FILE).read_text().split())
    except OSError:
        return set()


def processes_under(base: Path) -> list[int]:
    """Pids of live processes that belong to the engine rooted at ``base``, descendants first.

    A process belongs to it when its environment carries the engine's ``DOCKERTAP_ENGINE_BASE``
    (dockerd, containerd, shims, the podman service, conmon, tools run with ``Engine.run``) or its
    command line names ``base``, when it shares a mount namespace with such a process, or when it
    descends from one (container processes have namespaces of their own and are children of their
    shim or conmon).
    """
    marker = (str(base) + "/").encode()
    env_marker = f"{BASE_ENV}={base}".encode()
    namespaces = _engine_namespaces(base)
    me = os.getpid()
    parent_of: dict[int, int] = {}
    owned: set[int] = set()
    in_namespace: dict[int, str] = {}
    confirmed: set[str | None] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if state == "Z":
            continue
        parent_of[pid] = int(ppid)
        namespace = _mount_namespace(entry) if namespaces else None
        if namespace in namespaces:
            in_namespace[pid] = namespace
        if marker in cmdline or _has_env(entry, env_marker):
            owned.add(pid)
            confirmed.add(namespace)
    # A namespace id is trusted only while one of the engine's own (marked) processes is in it: once a
    # namespace is gone, the kernel may give its number to another engine's.
    owned.update(pid for pid, namespace in in_namespace.items() if namespace in confirmed)
    depth: dict[int, int] = {}
    for pid in parent_of:
        chain, cursor = 0, pid
        while cursor in parent_of and cursor not in owned and chain < 64:
            cursor, chain = parent_of[cursor], chain + 1
        if cursor in owned:
            depth[pid] = chain
    return sorted(depth, key=lambda pid: depth[pid], reverse=True)


def _mount_namespace(proc_entry: Path) -> str | None:
    try:
        return os.readlink(proc_entry / "ns/mnt")
    except OSError:
        return None


def _has_env(proc_entry: Path, env_marker: bytes) -> bool:
    try:
        return env_marker in (proc_entry / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _kill_processes_under(base: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = processes_under(base)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and processes_under(base):
            time.sleep(0.1)


def mounts_under(base: Path, pid: int | str = "self") -> list[str]:
    """Mount points below ``base`` as process ``pid`` sees them, deepest first (the unmount order)."""
    prefix = str(base) + "/"
    points = []
    try:
        mountinfo = Path(f"/proc/{pid}/mountinfo").read_text()
    except OSError:
        return []
    for line in mountinfo.splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(prefix):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def _unmount_under(base: Path) -> None:
    for point in mounts_under(base):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


# --------------------------------------------------------------------------------------------
# The real docker CLI, isolated from the user's configuration

_docker_config_dir: Path | None = None


def docker_config_dir() -> Path:
    """A private DOCKER_CONFIG so the user's contexts, credential helpers and plugins never interfere."""
    global _docker_config_dir
    if _docker_config_dir is None or not _docker_config_dir.exists():
        _docker_config_dir = short_base("dtcfg")
        (_docker_config_dir / "config.json").write_text("{}\n")
        atexit.register(shutil.rmtree, _docker_config_dir, True)
    return _docker_config_dir


_plugin_config_dir: Path | None = None
CLIENT_SUITE = "testing"  # the root whose docker CLI, buildx and compose v2 the tests use
CLI_PLUGINS_INSIDE = "usr/libexec/docker/cli-plugins"
CLI_PLUGINS = ("docker-buildx", "docker-compose")


def plugin_config_dir() -> Path:
    """A private DOCKER_CONFIG whose ``cli-plugins`` are the testing root's buildx and compose v2.

    Separate from ``docker_config_dir`` on purpose: with buildx installed, ``docker build`` switches
    to BuildKit, and the tests that mean the classic builder must keep getting it.
    """
    global _plugin_config_dir
    if _plugin_config_dir is None or not _plugin_config_dir.exists():
        root = engine_roots.ensure_root(CLIENT_SUITE)
        _plugin_config_dir = short_base("dtplg")
        (_plugin_config_dir / "config.json").write_text("{}\n")
        (_plugin_config_dir / "cli-plugins").mkdir()
        for plugin in CLI_PLUGINS:
            (_plugin_config_dir / "cli-plugins" / plugin).symlink_to(root / CLI_PLUGINS_INSIDE / plugin)
        atexit.register(shutil.rmtree, _plugin_config_dir, True)
    return _plugin_config_dir


def docker_binary() -> str:
    """The docker CLI the tests use: ``$DOCKERTAP_DOCKER_CLI``, else the testing root's (28.5; a Go
    binary needing only libc, so it runs on the host), else ``docker`` on PATH."""
    chosen = os.environ.get("DOCKERTAP_DOCKER_CLI")
    if chosen:
        return chosen
    if engine_roots.is_current(CLIENT_SUITE):
        return str(engine_roots.root_path(CLIENT_SUITE) / "usr/bin/docker")
    found = shutil.which("docker")
    if found is None:
        raise FileNotFoundError("the docker CLI is not on PATH")
    return found


def put_docker_cli_on_path() -> str:
    """Make ``docker`` on PATH (for tests that run ``dockertap run -- docker …``) the CLI that
    ``docker_binary`` names; returns it.  A private directory holds the one link."""
    cli = docker_binary()
    bin_dir = short_base("dtbin")
    (bin_dir / "docker").symlink_to(cli)
    atexit.register(shutil.rmtree, bin_dir, True)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return cli


def compose_v1_binary() -> str:
    """compose v1 (1.29, Python): bookworm's ``docker-compose`` on the host (``.ci/run`` installs it)."""
    found = shutil.which("docker-compose")
    if found is None:
        raise FileNotFoundError("docker-compose (v1) is not installed (apt-get install docker-compose)")
    return found


def docker_env(
    engine_url: str, env: Mapping[str, str] | None = None, plugins: bool = False
) -> dict[str, str]:
    """The environment for a docker CLI aimed at ``engine_url`` (and nothing else); with ``plugins``
    its config dir carries buildx and compose v2."""
    merged = {k: v for k, v in os.environ.items() if k not in _DOCKER_ENV_TO_DROP}
    merged.update(
        DOCKER_HOST=engine_url,
        DOCKER_CONFIG=str(plugin_config_dir() if plugins else docker_config_dir()),
        DOCKER_CLI_HINTS="false",
    )
    merged.update(env or {})
    return merged


def docker(
    engine_url: str,
    *args: str,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    text: bool | None = None,
    check: bool = False,
    plugins: bool = False,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess:
    """Run the real docker CLI against ``engine_url``; output is captured.

    ``text`` defaults to True unless ``input`` is bytes (binary pipelines stay binary).  With
    ``plugins`` the CLI has buildx and compose v2: ``docker(url, "compose", ..., plugins=True)``,
    ``docker(url, "buildx", "build", ..., plugins=True)``.
    """
    if text is None:
        text = not isinstance(input, bytes)
    return subprocess.run(
        [docker_binary(), *args],
        input=input,
        cwd=cwd,
        env=docker_env(engine_url, env, plugins=plugins),
        capture_output=True,
        text=text,
        timeout=timeout,
        check=check,
    )


def compose_v1(
    engine_url: str, project_dir: str | os.PathLike[str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run compose v1 (``docker-compose``, docker-py inside) in ``project_dir`` against ``engine_url``."""
    return subprocess.run(
        [compose_v1_binary(), "--no-ansi", *args],
        cwd=project_dir,
        env=docker_env(engine_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def compose_v2(
    engine_url: str, project_dir: str | os.PathLike[str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run compose v2 (the ``docker compose`` plugin) in ``project_dir`` against ``engine_url``."""
    return docker(
        engine_url, "compose", "--ansi", "never", *args, cwd=project_dir, timeout=timeout, plugins=True
    )


def buildx(engine_url: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``docker buildx`` (BuildKit through the daemon's /grpc and /session) against ``engine_url``."""
    return docker(engine_url, "buildx", *args, timeout=timeout, plugins=True)


def sdk_client(engine_url: str, timeout: int = 120):  # -> docker.DockerClient (import is lazy)
    """The docker SDK for Python on ``engine_url``, API version negotiated (20.10 stops at 1.41)."""
    import docker as docker_sdk  # the PyPI package; not to be confused with this module's docker()

    return docker_sdk.DockerClient(base_url=engine_url, version="auto", timeout=timeout)


# --------------------------------------------------------------------------------------------
# Images without a registry


def busybox_rootfs_tar(extra_files: Mapping[str, bytes] | None = None) -> bytes:
    """A minimal rootfs: static busybox, one absolute symlink per applet, /etc/passwd for ps/top."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory in (
            "bin",
            "sbin",
            "usr",
            "usr/bin",
            "usr/sbin",
            "etc",
            "tmp",
            "root",
            "proc",
            "sys",
            "dev",
        ):
            _add_dir(tar, directory, mode=0o1777 if directory == "tmp" else 0o755)
        tar.add(BUSYBOX_BINARY, arcname="bin/busybox")
        for applet_path in _busybox_applets():
            if applet_path != "bin/busybox":
                _add_symlink(tar, applet_path, "/bin/busybox")
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        _add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for name, data in (extra_files or {}).items():
            _add_file(tar, name, data)
    return buf.getvalue()


def _busybox_applets() -> list[str]:
    listing = subprocess.run([BUSYBOX_BINARY, "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in listing.stdout.splitlines() if line.strip()]


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = 0
    tar.addfile(info)


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def import_busybox(engine: Engine | str, tag: str = BUSYBOX_TAG) -> str:
    """``docker import`` the busybox rootfs as ``tag`` (CMD sh); returns the image id."""
    return _docker_import(_engine_url(engine), tag, busybox_rootfs_tar())


def import_big_image(engine: Engine | str, tag: str, size_bytes: int, seed_file: Path | None = None) -> str:
    """Import busybox plus one ``/big`` file of ``size_bytes`` random bytes (streamed, not held in RAM).

    Pass the same ``seed_file`` to give several engines identical content.
    """
    url = _engine_url(engine)
    if seed_file is None or not seed_file.exists() or seed_file.stat().st_size != size_bytes:
        seed_file = seed_file or Path(tempfile.mkstemp(prefix="dtbig", dir="/var/tmp")[1])
        _write_random(seed_file, size_bytes)
    cmd = [docker_binary(), "import", "--change", 'CMD ["sh"]', "-", tag]
    with subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=docker_env(url)
    ) as proc:
        assert proc.stdin is not None
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            base = tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar()))
            for member in base.getmembers():
                tar.addfile(member, base.extractfile(member) if member.isfile() else None)
            tar.add(str(seed_file), arcname="big")
        proc.stdin.close()  # EOF ends the upload; then collect the (small) outputs
        out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
        proc.wait(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"docker import {tag} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return _image_id_from_import(out.decode())


def _write_random(path: Path, size_bytes: int, chunk: int = 1 << 20) -> None:
    with open(path, "wb") as f:
        remaining = size_bytes
        while remaining:
            n = min(chunk, remaining)
            f.write(os.urandom(n))
            remaining -= n


def _docker_import(url: str, tag: str, tar_bytes: bytes) -> str:
    result = docker(url, "import", "--change", 'CMD ["sh"]', "-", tag, input=tar_bytes, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"docker import {tag} failed ({result.returncode}): {result.stderr.decode()}")
    return _image_id_from_import(result.stdout.decode())


def _image_id_from_import(stdout: str) -> str:
    # dockerd prints "sha256:<id>"; podman prints "sha256:<id>: sha256:<id>".
    return stdout.strip().split(":", 2)[1][:64] if stdout.strip() else ""


def _engine_url(engine: Engine | str) -> str:
    return engine.url if isinstance(engine, Engine) else engine


# --------------------------------------------------------------------------------------------
# Convenience for scripts


@contextlib.contextmanager
def started(kind: str, base: str | os.PathLike[str] | None = None, busybox: bool = True) -> Iterator[Engine]:
    """``with started("dockerd-28.5") as engine:`` start, import busybox, yield, stop (for scripts).

    ``kind`` is an ``ENGINE_SPECS`` id, or ``dockerd``/``podman`` for the default generation."""
    engine_id = {"dockerd": DEFAULT_DOCKERD, "podman": DEFAULT_PODMAN}.get(kind, kind)
    engine = start_engine(engine_id, base or short_base())
    try:
        if busybox:
            import_busybox(engine)
        yield engine
    finally:
        engine.stop()


def describe(engine: Engine) -> str:
    """One line for logs: name, socket and server version."""
    result = docker(engine.url, "version", "--format", "{{json .Server}}")
    version = json.loads(result.stdout).get("Version", "?") if result.returncode == 0 else "unreachable"
    return f"{engine.name} {version} at {engine.url}"


# --------------------------------------------------------------------------------------------
# dockertap itself, as the user runs it: a `dockertap proxy` subprocess


@dataclass
class Tap:
    """A running ``dockertap proxy``: clients use ``url``; its trace goes to ``trace_path``."""

    url: str
    socket: Path
    trace_path: Path
    stderr_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def trace_lines(self) -> list[dict]:
        """The JSON trace so far (one dict per exchange or event line)."""
        lines = self.trace_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> int:
        """SIGTERM (dockertap's normal shutdown: exit 143, as a shell reports it); returns its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def dockertap_command() -> list[str]:
    """The installed ``dockertap`` (the venv's console script), else ``python -m dockertap``."""
    script = Path(sys.executable).with_name("dockertap")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dockertap"]


def start_tap(backend_url: str, base: str | os.PathLike[str], *extra_args: str, timeout: float = 30.0) -> Tap:
    """Start ``dockertap proxy --listen unix://<base>/tap.sock --backend <url> --format json``.

    Ready when it prints its ``export DOCKER_HOST=`` line (it prints that only once listening).
    """
    base = Path(base)
    sock = base / "tap.sock"
    trace_path, stderr_path = base / "trace.jsonl", base / "tap.stderr"
    argv = [
        *dockertap_command(), "proxy",
        "--listen", f"unix://{sock}",
        "--backend", backend_url,
        "--format", "json",
        *extra_args,
    ]  # fmt: skip
    with open(trace_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    tap = Tap(f"unix://{sock}", sock, trace_path, stderr_path, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"export DOCKER_HOST=unix://{sock}" in stderr_path.read_text(errors="replace"):
            return tap
        if process.poll() is not None:
            break
        time.sleep(0.05)
    tap.stop()
    raise RuntimeError(
        f"dockertap proxy did not start (status {process.returncode}): {' '.join(argv)}\n"
        f"{log_tail(stderr_path)}"
    )
