"""DOCKER_HOST, `-H` and a context's Host as the docker CLI reads them, so we judge them the same way.

The docker CLI reads a host in two steps, and dockertap mirrors both (docker/cli opts/hosts.go
ParseHost/parseDockerDaemonHost/ParseTCPAddr for `-H` and DOCKER_HOST; moby client ParseHostURL for
every host, a context's stored one included):

* no `://` means **tcp**, even for a path: `DOCKER_HOST=/run/docker.sock` is
  `tcp://localhost:2375/run/docker.sock` (the path becomes a prefix of every API path) and fails;
* the scheme is case-sensitive: `unix`, `tcp`, `npipe`, `ssh`, `fd`; anything else (`http://`,
  `TCP://`) is "invalid bind address format";
* `tcp://` fills in `localhost` and port 2375 (`tcp://`, `tcp://:1`, `tcp://h:`); `unix://` alone is
  /var/run/docker.sock;
* `ssh://` runs `ssh … docker system dial-stdio`; `npipe://` is Windows only ("protocol not
  available"); `fd://` is dockerd's systemd socket-activation listen address, which no client can dial.

Verified against the real docker CLI 20.10 and 28.x (`docker context inspect` shows the host it
settled on, or its error): tests/test_cli_host.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from dockertap.proxy.endpoints import Endpoint

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_TCP_HOST, DEFAULT_TCP_PORT = "localhost", "2375"
DEFAULT_NAMED_PIPE = "//./pipe/docker_engine"
CLI_SCHEMES = ("tcp", "unix", "npipe", "fd", "ssh")

# Characters Go's net/url accepts unescaped in a host name (url.go shouldEscape, encodeHost).
_HOST_CHARS = re.compile(r"[A-Za-z0-9\-_.~!$&'()*+,;=:\[\]<>\"]*")


_USERINFO_CHARS = re.compile(r"[A-Za-z0-9\-._:~!$&'()*+,;=%@]*")


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2}).{0,2}")


class CliHostError(ValueError):
    """The docker CLI refuses this host; the message is the CLI's own wording."""


@dataclass(frozen=True, slots=True)
class CliHost:
    """One host value and what the docker CLI does with it."""

    given: str
    url: str | None  # the host the CLI settles on (as `docker context inspect` shows it); None: refused
    error: str | None = None  # the CLI's words when it refuses the value (or cannot dial it)
    endpoint: Endpoint | None = None  # the socket the CLI dials, when dockertap can dial it too
    base_path: str = ""  # tcp: the CLI puts this before every API path
    not_probed: str | None = None  # why dockertap cannot check this host itself (ssh)
    why: str | None = None  # dockertap's explanation of the CLI's error
    meant: str | None = None  # what the user evidently meant, when the CLI reads it otherwise

    @property
    def scheme(self) -> str | None:
        return self.url.partition("://")[0] if self.url else None

    @property
    def problem(self) -> str | None:
        """Why the CLI will not reach what this value seems to name (None: it is read as written)."""
        if self.error:
            return f"{self.error} ({self.why})" if self.why else self.error
        if self.meant:
            return (
                f"{self.given!r} has no scheme, so the docker CLI reads it as {self.url} (TCP, "
                f"with the path sent before every API call), not as the Unix socket {self.meant}"
            )
        if self.base_path:
            return (
                f"{self.url} has a path: the docker CLI sends every API call under {self.base_path}/, "
                "which an engine answers with 404"
            )
        return None


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _valid_optional_port(colon_port: str) -> bool:
    return colon_port == "" or (colon_port.startswith(":") and colon_port[1:].isdigit() or colon_port == ":")


def _go_url_host_and_path(raw: str) -> tuple[str, str]:
    """(host, path) of `tcp://…` the way Go's url.Parse splits it, raising with Go's error text."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise CliHostError(f"parse {_go_quote(raw)}: net/url: invalid control character in URL")
    full = raw
    raw, _, fragment = raw.partition("#")  # Go cuts the fragment off first; its errors quote what is left
    rest = raw.partition("?")[0][len("tcp://") :]
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if host.startswith("["):
        close = host.rfind("]")
        if close < 0:
            raise CliHostError(f"parse {_go_quote(raw)}: missing ']' in host")
        port = host[close + 1 :]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if not _valid_optional_port(port):
        raise CliHostError(f"parse {_go_quote(raw)}: invalid port {_go_quote(port)} after host")
    _check_host_escapes(raw, host)
    if at and not _USERINFO_CHARS.fullmatch(userinfo):  # Go checks the userinfo after the host
        raise CliHostError(f"parse {_go_quote(raw)}: net/url: invalid userinfo")
    for part in userinfo.split(":", 1) if at else ():  # user and password are unescaped apart
        if bad_escape := _BAD_ESCAPE.search(part):
            raise CliHostError(f"parse {_go_quote(raw)}: invalid URL escape {_go_quote(bad_escape.group())}")
    path = slash + path
    bad_escape = _BAD_ESCAPE.search(path)
    if bad_escape:
        raise CliHostError(f"parse {_go_quote(raw)}: invalid URL escape {_go_quote(bad_escape.group())}")
    bad_escape = _BAD_ESCAPE.search(fragment)
    if bad_escape:  # checked last, and quoting the whole URL, as Go does
        raise CliHostError(f"parse {_go_quote(full)}: invalid URL escape {_go_quote(bad_escape.group())}")
    return unquote(host, errors="surrogateescape"), unquote(path, errors="surrogateescape")


def _check_host_escapes(raw: str, host: str) -> None:
    """Go's unescape(host, encodeHost): the first bad `%` escape or unescaped character wins."""
    hexdigits = "0123456789abcdefABCDEF"
    i = 0
    while i < len(host):
        char = host[i]
        if char == "%":
            escape = host[i : i + 3]
            if len(escape) < 3 or escape[1] not in hexdigits or escape[2] not in hexdigits:
                raise CliHostError(f"parse {_go_quote(raw)}: invalid URL escape {_go_quote(escape)}")
            if int(escape[1], 16) < 8 and escape != "%25":
                raise CliHostError(f"parse {_go_quote(raw)}: invalid URL escape {_go_quote(escape)}")
            i += 3
            continue
        if ord(char) < 0x80 and not _HOST_CHARS.fullmatch(char):
            raise CliHostError(f"parse {_go_quote(raw)}: invalid character {_go_quote(char)} in host name")
        i += 1


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's net.SplitHostPort, None where it errors."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0 or hostport[close + 1 : close + 2] != ":" or "[" in hostport[1:close]:
            return None
        host, port = hostport[1:close], hostport[close + 2 :]
        return (host, port) if "]" not in port and "[" not in port else None
    host, colon, port = hostport.rpartition(":")
    if not colon or ":" in host or "[" in hostport or "]" in hostport:
        return None
    return host, port


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_tcp(try_addr: str) -> str:
    """docker/cli ParseTCPAddr: fill in localhost and 2375; returns `tcp://host:port[/path]`."""
    if try_addr in ("", "tcp://"):
        return f"tcp://{DEFAULT_TCP_HOST}:{DEFAULT_TCP_PORT}"
    addr = try_addr.removeprefix("tcp://")
    if "://" in addr or addr == "":
        raise CliHostError(f"invalid proto, expected tcp: {try_addr}")
    if addr.endswith("]:"):
        addr += DEFAULT_TCP_PORT
    hostport, path = _go_url_host_and_path("tcp://" + addr)
    split = _split_host_port(hostport) or _split_host_port(_join_host_port(hostport, DEFAULT_TCP_PORT))
    if split is None:
        raise CliHostError(f"invalid bind address format: {try_addr}")
    host, port = split
    return f"tcp://{_join_host_port(host or DEFAULT_TCP_HOST, port or DEFAULT_TCP_PORT)}{path}"


def _parse_simple(proto: str, addr: str, default: str) -> str:
    addr = addr.removeprefix(f"{proto}://")
    if "://" in addr:
        raise CliHostError(f"invalid proto, expected {proto}: {addr}")
    return f"{proto}://{addr or default}"


def normalize(value: str) -> str:
    """docker/cli ParseHost: the host `-H`/DOCKER_HOST names, normalised, or CliHostError."""
    host = value.strip()
    if not host:
        return DEFAULT_HOST
    proto, sep, rest = host.partition("://")
    if not sep:
        proto, rest = "tcp", host
    if proto == "tcp":
        return _parse_tcp(rest)
    if proto == "unix":
        return _parse_simple("unix", rest, DEFAULT_HOST.removeprefix("unix://"))
    if proto == "npipe":
        return _parse_simple("npipe", rest, DEFAULT_NAMED_PIPE)
    if proto in ("fd", "ssh"):
        return host
    raise CliHostError(f"invalid bind address format: {host}")


def _connectable(given: str, url: str, meant: str | None) -> CliHost:
    """moby client ParseHostURL + dial: what the CLI connects to for a normalised host."""
    proto, _, addr = url.partition("://")
    if proto == "fd":
        why = "fd:// is dockerd's systemd socket-activation listen address; no client can dial it"
        error = f"unable to parse docker host `{url}`" if not addr else f"cannot connect to {url}"
        return CliHost(given, url, error, why=why)
    if not addr:
        return CliHost(given, url, f"unable to parse docker host `{url}`")
    if proto == "unix":
        return CliHost(given, url, endpoint=Endpoint("unix", path=addr), meant=meant)
    if proto == "tcp":
        hostport, path = _go_url_host_and_path(url)
        host, port = _split_host_port(hostport) or (hostport, "")
        if not port.isdigit() or not 0 < int(port) < 65536:
            return CliHost(given, url, f"dial tcp {hostport}: invalid port {port or '(none)'}", meant=meant)
        return CliHost(
            given, url, endpoint=Endpoint("tcp", host=host, port=int(port)), base_path=path, meant=meant
        )
    if proto == "ssh":
        return CliHost(
            given, url, not_probed="the docker CLI reaches it through `ssh HOST docker system dial-stdio`"
        )
    if proto == "npipe":
        return CliHost(given, url, "protocol not available", why="npipe:// is a Windows named pipe")
    return CliHost(given, url, f"unable to parse docker host `{url}`")


def read_cli_host(value: str) -> CliHost:
    """DOCKER_HOST or `-H` as the docker CLI reads it."""
    try:
        url = normalize(value)
    except CliHostError as exc:
        return CliHost(value, None, str(exc))
    stripped = value.strip()
    meant = f"unix://{stripped}" if stripped.startswith(("/", "./")) else None
    try:
        return _connectable(value, url, meant)
    except CliHostError as exc:
        return CliHost(value, url, str(exc), meant=meant)


def read_context_host(value: str) -> CliHost:
    """A context's stored Endpoints.docker.Host: the CLI uses it as stored, without defaults."""
    if "://" not in value:
        return CliHost(value, None, f"unable to parse docker host `{value}`")
    try:
        return _connectable(value, value, None)
    except CliHostError as exc:
        return CliHost(value, value, str(exc))
