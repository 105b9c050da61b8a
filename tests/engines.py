"""Start and stop REAL container engines on private sockets, for tests, benchmarks and recordings.

Every engine gets its own short base directory (Unix socket paths are limited to ~107 bytes, and
dockerd puts containerd's socket under its exec-root), its own data root and its own config, so it
never touches the host's engines, images or networks.  Nothing here mocks anything: the engines are
Debian's ``/usr/sbin/dockerd`` (which starts its own containerd) and ``podman system service``.

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

DOCKERD_BINARY = "/usr/sbin/dockerd"
PODMAN_BINARY = "podman"
BUSYBOX_BINARY = "/bin/busybox"
BUSYBOX_TAG = "dt-busybox:latest"
ROOTFS_DIRECTORIES = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev")
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
# runc cannot raise RLIMIT_NPROC/NOFILE above the hard limits of this VM, and podman copies the
# service's limits into every container unless containers.conf sets defaults.
REQUIRED_PODMAN_ULIMITS = ("nofile", "nproc")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 40

# Variables that would point the docker CLI at another daemon or change its protocol.
_DOCKER_ENV_TO_DROP = ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION")


class EngineStartError(RuntimeError):
    """An engine did not come up; the message carries the reason and the daemon log tail."""


@dataclass
class Engine:
    """A running engine: where to reach it and how to tear it down without leftovers."""

    name: str  # "dockerd" | "podman"
    base: Path
    socket: Path
    pid: int
    log_path: Path
    containerd_socket: Path | None = None
    # Global podman flags that select this engine's private storage (for the podman CLI).
    podman_flags: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, remove_base: bool = True) -> None:
        """Stop the engine and everything it started, unmount its leftovers, optionally delete base.

        Idempotent. Kills only processes that provably belong to this engine: its own pid, processes
        whose command line names the private base directory (containerd, shims, conmon), and
        processes whose root directory lies under it (container processes).
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
                argv = [PODMAN_BINARY, *self.podman_flags, "rm", "--all", "--force", "--time", "0"]
                subprocess.run(argv, capture_output=True, timeout=60, check=False)
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


def start_dockerd(base: str | os.PathLike[str], storage_driver: str | None = None) -> Engine:
    """Start Debian's dockerd (with its own containerd) on ``<base>/docker.sock``.

    Networking is reduced to what tests need: no default bridge and no iptables rules, but
    user-defined bridge networks (``docker network create``) still work.  overlay2 is tried first
    and vfs is the fallback when the host filesystem cannot carry overlay.
    """
    base = Path(base)
    drivers = [storage_driver] if storage_driver else ["overlay2", "vfs"]
    failures = []
    for driver in drivers:
        try:
            return _start_dockerd_once(base, driver)
        except EngineStartError as err:
            failures.append(f"[{driver}] {err}")
            _empty_directory(base)  # the next driver starts from a clean data root
    raise EngineStartError("\n\n".join(failures))


def _empty_directory(path: Path) -> None:
    _unmount_under(path)
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _start_dockerd_once(base: Path, storage_driver: str) -> Engine:
    _require_root_and_binary(DOCKERD_BINARY)
    base.mkdir(parents=True, exist_ok=True)
    sock = base / "docker.sock"
    exec_root = base / "x"  # short: containerd's socket lives below it
    config_file = base / "daemon.json"
    config_file.write_text("{}\n")  # never pick up the host's /etc/docker/daemon.json
    log_path = base / "dockerd.log"
    argv = [
        DOCKERD_BINARY,
        "--config-file", str(config_file),
        "--data-root", str(base / "data"),
        "--exec-root", str(exec_root),
        "--pidfile", str(base / "dockerd.pid"),
        "--host", f"unix://{sock}",
        "--storage-driver", storage_driver,
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--shutdown-timeout=5",
    ]  # fmt: skip
    process = _spawn(argv, log_path, cwd=base)
    engine = Engine(
        name="dockerd",
        base=base,
        socket=sock,
        pid=process.pid,
        log_path=log_path,
        containerd_socket=exec_root / "containerd" / "containerd.sock",
        process=process,
    )
    _wait_ready(engine, process)
    if not engine.containerd_socket.exists():
        engine.stop(remove_base=False)
        raise EngineStartError(
            f"dockerd is up but its containerd socket {engine.containerd_socket} is missing"
        )
    return engine


def start_podman(base: str | os.PathLike[str], storage_driver: str = "overlay") -> Engine:
    """Start ``podman system service`` on ``<base>/podman.sock`` with private storage and state.

    cgroupfs and the file events backend are forced so the service behaves the same with or
    without systemd; networks are kept under base (not /etc/containers/networks).
    """
    _require_root_and_binary(PODMAN_BINARY)
    check_podman_ulimits()
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    sock = base / "podman.sock"
    log_path = base / "podman.log"
    (base / "vartmp").mkdir(exist_ok=True)
    flags = (
        "--root", str(base / "root"),
        "--runroot", str(base / "run"),
        "--tmpdir", str(base / "tmp"),
        "--network-config-dir", str(base / "net"),
        "--storage-driver", storage_driver,
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "file",
    )  # fmt: skip
    argv = [PODMAN_BINARY, *flags, "system", "service", "--time=0", f"unix://{sock}"]
    # TMPDIR is where podman stages image layers; keep that private too.
    process = _spawn(argv, log_path, cwd=base, extra_env={"TMPDIR": str(base / "vartmp")})
    engine = Engine(
        name="podman",
        base=base,
        socket=sock,
        pid=process.pid,
        log_path=log_path,
        podman_flags=flags,
        process=process,
    )
    _wait_ready(engine, process)
    return engine


def check_podman_ulimits(conf: Path = CONTAINERS_CONF) -> None:
    """Raise if containers.conf lacks the default ulimits runc needs on this kind of host."""
    try:
        text = conf.read_text()
    except OSError as err:
        raise EngineStartError(
            f"{conf} is missing ({err.strerror}); podman containers fail with 'error setting rlimit … "
            f"operation not permitted' without it. Create it with:\n"
            f'[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            f"(.ci/run does this)"
        ) from err
    missing = [limit for limit in REQUIRED_PODMAN_ULIMITS if f'"{limit}=' not in text]
    if "default_ulimits" not in text or missing:
        raise EngineStartError(
            f"{conf} lacks default_ulimits {', '.join(missing) or ''}; podman containers fail with "
            f"'error setting rlimit … operation not permitted'. Add under [containers]:\n"
            f'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'
        )


def _require_root_and_binary(binary: str) -> None:
    if os.geteuid() != 0:
        raise EngineStartError(f"starting {binary} needs root (euid is {os.geteuid()})")
    if shutil.which(binary) is None:
        raise EngineStartError(f"{binary} is not installed")


def _spawn(
    argv: Sequence[str], log_path: Path, cwd: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **(extra_env or {})}
    with open(log_path, "ab") as log:
        # A new session: a Ctrl-C aimed at pytest must not kill the engine before teardown does.
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def _wait_ready(engine: Engine, process: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            last_error = f"{engine.name} exited with status {process.returncode}"
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
        f"{engine.name} did not start: {last_error}\n--- {engine.log_path} (tail) ---\n{tail}"
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


def processes_under(base: Path) -> list[int]:
    """Pids of live processes that belong to the engine rooted at ``base``, descendants first.

    A process belongs to it when its command line names ``base`` (dockerd, containerd, its shims,
    conmon, the podman service) or when it descends from such a process (container processes are
    children of their shim or conmon; their command lines say nothing about ``base``).
    """
    marker = (str(base) + "/").encode()
    me = os.getpid()
    parent_of: dict[int, int] = {}
    owned: set[int] = set()
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
        if marker in cmdline:
            owned.add(pid)
    depth: dict[int, int] = {}
    for pid in parent_of:
        chain, cursor = 0, pid
        while cursor in parent_of and cursor not in owned and chain < 64:
            cursor, chain = parent_of[cursor], chain + 1
        if cursor in owned:
            depth[pid] = chain
    return sorted(depth, key=lambda pid: depth[pid], reverse=True)


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


def mounts_under(base: Path) -> list[str]:
    """Mount points below ``base``, deepest first (the order they must be unmounted in)."""
    prefix = str(base) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
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


def docker_binary() -> str:
    found = shutil.which("docker")
    if found is None:
        raise FileNotFoundError("the docker CLI is not on PATH")
    return found


def docker_env(engine_url: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a docker CLI aimed at ``engine_url`` (and nothing else)."""
    merged = {k: v for k, v in os.environ.items() if k not in _DOCKER_ENV_TO_DROP}
    merged.update(
        DOCKER_HOST=engine_url,
        DOCKER_CONFIG=str(docker_config_dir()),
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
) -> subprocess.CompletedProcess:
    """Run the real docker CLI against ``engine_url``; output is captured.

    ``text`` defaults to True unless ``input`` is bytes (binary pipelines stay binary).
    """
    if text is None:
        text = not isinstance(input, bytes)
    return subprocess.run(
        [docker_binary(), *args],
        input=input,
        env=docker_env(engine_url, env),
        capture_output=True,
        text=text,
        timeout=timeout,
        check=check,
    )


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
    """``with started("dockerd") as engine:`` start, import busybox, yield, stop (for scripts)."""
    starter = {"dockerd": start_dockerd, "podman": start_podman}[kind]
    engine = starter(base or short_base())
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
