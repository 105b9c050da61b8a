"""Endpoint URLs in DOCKER_HOST form: `unix:///path`, `tcp://host:port`, and the ones we refuse.

An `Endpoint` knows how to open a non-blocking socket to itself; nothing else in dockertap
builds socket addresses by hand.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class EndpointError(ValueError):
    """An endpoint URL we cannot use, with a message fit to show the user."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str  # "unix" or "tcp"
    path: str = ""  # unix
    host: str = ""  # tcp
    port: int = 0  # tcp

    @property
    def url(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    def __str__(self) -> str:
        return self.url

    @property
    def is_loopback(self) -> bool:
        if self.scheme == "unix":
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    async def connect(self) -> socket.socket:
        """Open a non-blocking stream socket to this endpoint (raises OSError)."""
        loop = asyncio.get_running_loop()
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, self.path)
            except BaseException:
                sock.close()
                raise
            return sock
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        last: OSError | None = None
        for family, type_, proto, _, addr in infos:
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, addr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise last or OSError(f"no address for {self.host}")

    def connect_blocking(self, timeout: float) -> socket.socket:
        """Open a blocking socket with a timeout (for probes outside the event loop)."""
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
            return sock
        return socket.create_connection((self.host, self.port), timeout=timeout)


def parse_endpoint(url: str) -> Endpoint:
    """Parse a DOCKER_HOST-style URL. A bare absolute path is taken as a Unix socket."""
    url = url.strip()
    if url.startswith("/"):
        return Endpoint("unix", path=url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise EndpointError(
                f"{url!r}: a unix:// endpoint needs a socket path, e.g. unix:///var/run/docker.sock"
            )
        return Endpoint("unix", path=path)
    if scheme == "http":
        raise EndpointError(
            f"{url!r}: http:// is not an endpoint scheme; use tcp://{parts.netloc or 'HOST:PORT'} "
            "(or unix:///path)"
        )
    if scheme == "tcp":
        if not parts.hostname:
            raise EndpointError(f"{url!r}: a tcp:// endpoint needs a host, e.g. tcp://127.0.0.1:2375")
        try:
            port = parts.port or 2375
        except ValueError as exc:
            raise EndpointError(f"{url!r}: {exc}") from None
        return Endpoint("tcp", host=parts.hostname, port=port)
    if scheme == "ssh":
        raise EndpointError(
            f"{url!r}: ssh:// endpoints are not supported; forward the remote socket first "
            "(ssh -L /tmp/remote-docker.sock:/var/run/docker.sock HOST) and use "
            "--backend unix:///tmp/remote-docker.sock"
        )
    if scheme == "npipe":
        raise EndpointError(f"{url!r}: Windows named pipes (npipe://) are not supported")
    if scheme in ("https", "tls"):
        raise EndpointError(f"{url!r}: TLS endpoints are not supported; dockertap relays plain HTTP only")
    raise EndpointError(f"{url!r}: unknown endpoint scheme {parts.scheme!r} (use unix:// or tcp://)")
