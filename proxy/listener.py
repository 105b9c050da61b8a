"""Where the proxy listens: a private Unix socket (default) or loopback TCP.

A Docker API socket is root-equivalent. The listening socket therefore never widens who can
reach the engine: it is created 0600 (or 0660 for an explicit `--group`), inside a directory
the user owns, and a socket a live process still answers on is never taken over.
"""

from __future__ import annotations

import errno
import grp
import os
import socket
import stat

from dockertap.proxy.endpoints import Endpoint

LISTEN_BACKLOG = 4096


class ListenError(RuntimeError):
    """We refuse to listen where asked; the message says why and what to do."""


def _check_private_dir(path: str) -> None:
    """Create `path` 0700 if missing; refuse a symlink or a directory someone else owns."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ListenError(f"{path} is not a plain directory (symlink?); refusing to create a socket in it")
    if st.st_uid != os.geteuid():
        raise ListenError(f"{path} belongs to uid {st.st_uid}, not to you; refusing to create a socket in it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def _remove_stale(path: str) -> None:
    """Unlink a leftover socket nobody answers on; refuse anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)  # stale: left by a proxy that died
            return
        raise ListenError(f"cannot check the existing socket {path}: {exc.strerror}") from None
    finally:
        probe.close()
    raise ListenError(
        f"another process is already listening on {path}; stop it or pass --listen with another path"
    )


def open_unix_listener(path: str, group: str | None = None, private_parent: bool = False) -> socket.socket:
    """Bind a Unix socket at `path`, mode 0600 (0660 + group when `group` is given).

    `private_parent`: `path`'s directory is ours to create and must be private (the default
    location under /tmp); otherwise it is the user's choice and only checked for existence.
    """
    parent = os.path.dirname(os.path.abspath(path))
    if private_parent:
        _check_private_dir(parent)
    elif not os.path.isdir(parent):
        raise ListenError(f"directory {parent} does not exist")
    _remove_stale(path)
    gid = None
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ListenError(f"no such group {group!r}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def open_tcp_listener(
    endpoint: Endpoint, allow_public: bool = False, allow_tcp: bool = False
) -> socket.socket:
    """Bind a TCP listener: only with `allow_tcp` (any local user, and any web page that finds the
    port, could reach the engine), and anything but loopback also needs `allow_public`."""
    if not allow_tcp:
        raise ListenError(
            f"{endpoint.url}: a TCP listener gives every local user (and web pages, via DNS rebinding) "
            "root-equivalent access to the engine, with no authentication; pass --allow-tcp to accept that"
        )
    if not endpoint.is_loopback and not allow_public:
        raise ListenError(
            f"{endpoint.url} is not a loopback address: whoever reaches it gets root-equivalent access to "
            "the engine, without TLS. Pass --listen-public to do it anyway."
        )
    infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, addr = infos[0]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {endpoint.url}: {exc.strerror}") from None
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock
