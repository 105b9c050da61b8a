"""Blocking probes of a backend endpoint: does it answer `/_ping`, and if not, why not?

Used at start-up (discovery) and by `dockertap doctor`, never on the event loop. A failed probe
is classified into a small set of kinds so that the proxy, the relay's 502 page and the doctor
all say the same thing, with the same concrete fix:

=============  ==========================================================================
kind           meaning
=============  ==========================================================================
ok             `/_ping` answered `200` (Docker or a Docker-compatible API)
missing        no such socket file (ENOENT/ENOTDIR), or the TCP host does not resolve
refused        the socket file exists but nothing listens (stale socket), or TCP RST
permission     the socket exists but we may not open it (EACCES/EPERM)
not-socket     the path exists but is a regular file, directory, fifo, ...
timeout        connected (or tried to) but no answer within the timeout
not-http       something answered, but not with HTTP (or closed without answering)
not-docker     HTTP, but not a Docker `/_ping` answer
error          anything else (the reason carries the OS message)
=============  ==========================================================================
"""

from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import shutil
import socket
import stat
import sys
import time
from dataclasses import dataclass, field

from dockertap.proxy.endpoints import Endpoint
from dockertap.proxy.framing import (
    MAX_HEAD_SIZE,
    Body,
    ChunkedScanner,
    ProtocolError,
    RequestFrame,
    decode_chunked,
    find_head_end,
    parse_response_head,
)

#: Bodies larger than this are not needed to fingerprint a backend (`/info` is a few KiB).
MAX_PROBE_BODY = 4 * 1024 * 1024

_HUNG_HINT = "the engine may be hung or overloaded; restart it"

PROBE_KINDS = (
    "ok",
    "missing",
    "refused",
    "permission",
    "not-socket",
    "timeout",
    "not-http",
    "not-docker",
    "error",
)

# Engines a user may have installed: how to see that they are, and how to start them.
# Binaries are looked up on PATH; app bundles/dirs are checked for existence.
INSTALLED_ENGINES: tuple[dict, ...] = (
    {
        "name": "dockerd",
        "binaries": ("dockerd",),
        "paths": (),
        "start": "sudo systemctl start docker (rootless: systemctl --user start docker)",
        "source": "moby contrib/init/systemd/docker.service; dockerd-rootless-setuptool.sh",
    },
    {
        "name": "Docker Desktop",
        "binaries": (),
        "paths": ("/Applications/Docker.app", "/opt/docker-desktop"),
        "start": "start Docker Desktop (Linux: systemctl --user start docker-desktop)",
        "source": "Docker Desktop install locations (observed)",
    },
    {
        "name": "Podman",
        "binaries": ("podman",),
        "paths": (),
        "start": "systemctl --user start podman.socket (rootful: sudo systemctl start podman.socket; "
        "macOS: podman machine start)",
        "source": "podman contrib/systemd/{user,system}/podman.socket",
    },
    {
        "name": "Colima",
        "binaries": ("colima",),
        "paths": (),
        "start": "colima start [profile]",
        "source": "abiosoft/colima cmd/start.go",
    },
    {
        "name": "Lima",
        "binaries": ("limactl",),
        "paths": (),
        "start": "limactl start docker (template://docker)",
        "source": "lima-vm/lima templates/docker.yaml",
    },
    {
        "name": "Rancher Desktop",
        "binaries": ("rdctl",),
        "paths": ("/Applications/Rancher Desktop.app", "/opt/rancher-desktop"),
        "start": "rdctl start (or open Rancher Desktop with the dockerd/moby engine)",
        "source": "rancher-sandbox/rancher-desktop src/go/rdctl",
    },
    {
        "name": "OrbStack",
        "binaries": ("orb", "orbctl"),
        "paths": ("/Applications/OrbStack.app",),
        "start": "orb start (or open OrbStack)",
        "source": "OrbStack CLI (observed)",
    },
)


@dataclass(frozen=True, slots=True)
class InstalledEngine:
    name: str
    where: str  # the binary or bundle that shows it is installed
    start: str  # how to start it


def installed_engines(path: str | None = None) -> list[InstalledEngine]:
    """Engines whose binary is on PATH or whose app bundle exists (no engine is contacted)."""
    found: list[InstalledEngine] = []
    for row in INSTALLED_ENGINES:
        where = next((w for b in row["binaries"] if (w := shutil.which(b, path=path))), None)
        where = where or next((p for p in row["paths"] if os.path.exists(p)), None)
        if where:
            found.append(InstalledEngine(row["name"], where, row["start"]))
    return found


def _engines_hint() -> str:
    engines = installed_engines()
    if not engines:
        return "no container engine was found on PATH (dockerd, podman, colima, limactl, rdctl, orb)"
    return "installed: " + "; ".join(f"{e.name} ({e.where}) - start with: {e.start}" for e in engines)


def owner_names(st: os.stat_result) -> tuple[str, str]:
    """User and group names of a file (numeric when the id has no name)."""
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return user, group


def _owner_text(st: os.stat_result) -> str:
    user, group = owner_names(st)
    return f"{user}:{group} {stat.filemode(st.st_mode)}"


def _permission_hint(path: str) -> str:
    try:
        st = os.stat(path)
        group = grp.getgrgid(st.st_gid).gr_name
    except (OSError, KeyError):
        group = ""
    if group == "docker":
        return (
            "add yourself to the 'docker' group (sudo usermod -aG docker $USER, then log in again) "
            "or run with sudo"
        )
    if group and group != "root":
        return (
            f"add yourself to the {group!r} group (sudo usermod -aG {group} $USER, then log in again) "
            "or run with sudo"
        )
    return "the socket is root-only: run with sudo, or use a rootless engine socket under $XDG_RUNTIME_DIR"


def _file_kind(st: os.stat_result) -> str:
    mode = st.st_mode
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a socket"


def describe_connect_error(endpoint: Endpoint, exc: OSError) -> tuple[str, str, str]:
    """Classify a failed connect to `endpoint` as (kind, reason, hint), fit to show a user.

    Shared by the probe, the doctor and the relay's 502 answer so they all agree.
    """
    target = endpoint.path if endpoint.scheme == "unix" else f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return (
            "timeout",
            f"connecting to {target} timed out",
            _HUNG_HINT,
        )
    if endpoint.scheme == "unix":
        # A regular file or directory gives ECONNREFUSED on Linux: look at the path first.
        try:
            st = os.stat(endpoint.path)
        except OSError:
            st = None
        if st is not None and not stat.S_ISSOCK(st.st_mode):
            return (
                "not-socket",
                f"{endpoint.path} is {_file_kind(st)}, not a Unix socket",
                "point at the engine's socket file instead (see `dockertap doctor`)",
            )
        code = exc.errno
        if code in (errno.ENOENT, errno.ENOTDIR):
            link = os.path.islink(endpoint.path)
            what = (
                f"{endpoint.path} is a symlink to {os.readlink(endpoint.path)}, which does not exist"
                if link
                else f"{endpoint.path} does not exist"
            )
            return "missing", what, f"is the engine running? {_engines_hint()}"
        if code == errno.ECONNREFUSED:
            return (
                "refused",
                f"{endpoint.path} exists but nothing is listening on it "
                "(stale socket left by a stopped engine)",
                f"is the engine running? {_engines_hint()}",
            )
        if code in (errno.EACCES, errno.EPERM):
            owner = f" ({_owner_text(st)})" if st is not None else ""
            return (
                "permission",
                f"permission denied on {endpoint.path}{owner}",
                _permission_hint(endpoint.path),
            )
        if code is None and "too long" in str(exc):
            return (
                "error",
                f"{endpoint.path}: socket path too long (max ~107 bytes)",
                "use a shorter socket path",
            )
        return "error", f"{endpoint.path}: {exc.strerror or exc}", "see `dockertap doctor`"
    if isinstance(exc, socket.gaierror):
        return "missing", f"host {endpoint.host!r} does not resolve ({exc.strerror})", "check the host name"
    if exc.errno == errno.ECONNREFUSED:
        return (
            "refused",
            f"nothing listens on {target}",
            f"is the engine listening on tcp://{target}? (dockerd -H tcp://{target}) {_engines_hint()}",
        )
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "refused", f"{target} is unreachable ({exc.strerror})", "check the network route to the host"
    return "error", f"{target}: {exc.strerror or exc}", "see `dockertap doctor`"


class _ProbeFailure(Exception):
    def __init__(self, kind: str, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.hint = kind, reason, hint


@dataclass(slots=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    sock.settimeout(remaining)
    return sock.recv(65536)


def _parse_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            key = name.decode("latin-1")
            value_text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {value_text}" if key in headers else value_text
    return headers


def http_get(endpoint: Endpoint, target: str, timeout: float) -> HttpAnswer:
    """One `GET` on a fresh connection (Connection: close); raises `_ProbeFailure` with a kind."""
    deadline = time.monotonic() + timeout
    try:
        sock = endpoint.connect_blocking(timeout)
    except OSError as exc:
        raise _ProbeFailure(*describe_connect_error(endpoint, exc)) from exc
    where = endpoint.url
    try:
        request = (
            f"GET {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockertap-probe\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(request.encode("ascii"))
        buf = bytearray()
        head_end = -1
        while head_end < 0:
            data = _recv(sock, deadline)
            if not data:
                if not buf:
                    raise _ProbeFailure(
                        "not-http",
                        f"{where} accepted the connection and closed it without answering {target}",
                        "this socket is not a Docker API endpoint (or the engine is crashing)",
                    )
                break
            buf += data
            if not b"HTTP/".startswith(bytes(buf[:5])):
                raise _ProbeFailure(
                    "not-http",
                    f"{where} answered {target} with non-HTTP bytes {bytes(buf[:32])!r}",
                    "this socket speaks another protocol (containerd gRPC? a BuildKit socket?); "
                    "point at the Docker API socket",
                )
            if len(buf) > MAX_HEAD_SIZE:
                raise _ProbeFailure("not-http", f"{where} sent an endless response head", "not a Docker API")
            head_end = find_head_end(buf)
        if head_end < 0:
            raise _ProbeFailure("not-http", f"{where} closed the connection mid-head", "not a Docker API")
        head = bytes(buf[:head_end])
        request_frame = RequestFrame(b"GET", target.encode(), Body.NONE, 0, False, True)
        try:
            frame = parse_response_head(head, request_frame)
        except ProtocolError as exc:
            raise _ProbeFailure(
                "not-http", f"{where} sent a malformed HTTP head: {exc}", "not a Docker API"
            ) from exc
        body = bytearray(buf[head_end:])
        if frame.body is Body.CHUNKED:
            scanner = ChunkedScanner()
            used = scanner.feed(body)
            while not scanner.done and len(body) < MAX_PROBE_BODY:
                data = _recv(sock, deadline)
                if not data:
                    break
                offset = len(body)
                body += data
                used = offset + scanner.feed(data)
            payload = decode_chunked(body[:used])
        else:
            want = frame.length if frame.body is Body.LENGTH else MAX_PROBE_BODY
            if frame.body is Body.NONE:
                want = 0
            while len(body) < want:
                data = _recv(sock, deadline)
                if not data:
                    break
                body += data
            payload = bytes(body[:want])
        return HttpAnswer(frame.status, _parse_headers(head), payload)
    except TimeoutError as exc:
        raise _ProbeFailure(
            "timeout",
            f"{where} accepted the connection but did not answer {target} within {timeout:g}s",
            _HUNG_HINT,
        ) from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _ProbeFailure(
            "not-http", f"{where} reset the connection during {target} ({exc.strerror})", "not a Docker API"
        ) from exc
    finally:
        sock.close()


@dataclass(slots=True)
class ProbeResult:
    """What one endpoint said to `/_ping` (and `/version`, `/info` when asked)."""

    endpoint: Endpoint
    ok: bool
    kind: str = "ok"
    error: str | None = None  # a sentence saying what went wrong
    hint: str | None = None  # what the user can do about it
    ping_status: int | None = None
    ping_headers: dict[str, str] = field(default_factory=dict)
    version: dict | None = None
    info: dict | None = None
    elapsed: float = 0.0

    def header(self, name: str) -> str | None:
        """A `/_ping` header, case-insensitively (Go canonicalises names, e.g. `Ostype`)."""
        lowered = name.lower()
        return next((v for k, v in self.ping_headers.items() if k.lower() == lowered), None)

    @property
    def summary(self) -> str:
        if self.ok:
            server = self.header("Server") or "unknown server"
            return f"answers /_ping ({server}, API {self.header('Api-Version') or '?'})"
        return f"{self.kind}: {self.error}"

    def to_dict(self) -> dict:
        return {
            "endpoint": self.endpoint.url,
            "ok": self.ok,
            "kind": self.kind,
            "error": self.error,
            "hint": self.hint,
            "ping_status": self.ping_status,
            "ping_headers": self.ping_headers,
            "version": self.version,
            "info": self.info,
            "elapsed": round(self.elapsed, 4),
        }


def _json_body(answer: HttpAnswer) -> dict | None:
    if answer.status != 200:
        return None
    try:
        value = json.loads(answer.body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _looks_like_docker_ping(answer: HttpAnswer) -> bool:
    # dockerd and Podman both answer "OK" and set Api-Version (layer-model.md §4.1).
    has_api_version = any(k.lower() == "api-version" for k in answer.headers)
    return answer.status == 200 and (answer.body.strip() == b"OK" or has_api_version)


def probe(endpoint: Endpoint, timeout: float = 2.0, full: bool = True, base_path: str = "") -> ProbeResult:
    """Ask `endpoint` for `/_ping` (and `/version` + `/info` if `full`); never raises for I/O errors.

    `base_path` is put before each API path, as the docker CLI does for `tcp://host:port/path`.
    """
    started = time.monotonic()
    result = ProbeResult(endpoint, ok=False)
    try:
        ping = http_get(endpoint, f"{base_path}/_ping", timeout)
        result.ping_status, result.ping_headers = ping.status, ping.headers
        if not _looks_like_docker_ping(ping):
            server = next((v for k, v in ping.headers.items() if k.lower() == "server"), "no Server header")
            raise _ProbeFailure(
                "not-docker",
                f"{endpoint.url} speaks HTTP but {base_path}/_ping answered {ping.status} ({server}), "
                "not a Docker ping",
                "this is some other HTTP service; point at the Docker API socket",
            )
        result.ok = True
        if full:
            for target, attr in (("/version", "version"), ("/info", "info")):
                try:
                    setattr(result, attr, _json_body(http_get(endpoint, base_path + target, timeout)))
                except _ProbeFailure:
                    pass  # the ping answered: a slow /info must not make a working engine look dead
    except _ProbeFailure as failure:
        result.kind, result.error, result.hint = failure.kind, failure.reason, failure.hint
    except ProtocolError as exc:  # e.g. a bad chunk size in the body: not an engine we can relay
        result.kind, result.error = "not-http", f"{endpoint.url} sent a malformed HTTP body: {exc}"
        result.hint = "this socket is not a working Docker API endpoint"
    except OSError as exc:  # anything the classifier did not foresee
        result.kind, result.error, result.hint = "error", f"{endpoint.url}: {exc}", "see `dockertap doctor`"
    result.elapsed = time.monotonic() - started
    return result


def _main(argv: list[str]) -> int:
    """`python -m dockertap.proxy.probe URL`: print the probe as JSON (used to probe as another user)."""
    from dockertap.proxy.endpoints import parse_endpoint

    result = probe(parse_endpoint(argv[0]), full=len(argv) < 2 or argv[1] != "--ping-only")
    print(json.dumps(result.to_dict()))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
