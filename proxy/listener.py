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


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def shared_directory_reason(directory: str) -> str | None:
    """Why another local user could put a socket at a path in `directory` first, or None.

    `directory` (or, when it does not exist yet, the nearest parent that does) must be owned by
    you or root and writable by nobody else; every parent above must be owned by you or root and
    either not writable by others or sticky (so nobody can rename what is yours inside it).
    Symlinks on the way (a dotfile-managed `~/.docker`) are followed, but only when you or root own
    them: whoever owns a symlink can point it elsewhere.
    """
    uid = os.geteuid()
    walked = "/"
    for part in os.path.abspath(directory).split("/")[1:]:
        walked = os.path.join(walked, part)
        try:
            st = os.lstat(walked)
        except OSError:
            break
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in (uid, 0):
            return f"{walked} is a symlink owned by uid {st.st_uid}, who can point it elsewhere"
    path = os.path.realpath(directory)
    first = True
    while True:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                return None
            path = parent
            continue
        except OSError as exc:
            return f"{path} cannot be checked: {exc.strerror}"
        if st.st_uid not in (uid, 0):
            return f"{path} belongs to uid {st.st_uid}, not to you"
        writable_by_others = st.st_mode & 0o022
        if writable_by_others and (first or not st.st_mode & stat.S_ISVTX):
            return (
                f"{path} is writable by other users (mode {_mode(st)}): any of them could create the "
                "socket there first and receive your docker commands, registry credentials included"
            )
        first = False
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _group_cannot_reach(directory: str, gid: int) -> str | None:
    """The first parent of `directory` members of `gid` cannot traverse, with its mode, or None."""
    path = os.path.dirname(os.path.abspath(directory))
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return f"{path} (missing: dockertap would create it 0700)"
        if not (st.st_mode & 0o001 or (st.st_gid == gid and st.st_mode & 0o010)):
            return f"{path} (mode {_mode(st)}, group {st.st_gid})"
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def ensure_socket_dir(path: str, gid: int | None = None) -> None:
    """Create dockertap's own socket directory: 0700, or 0710 with group `gid` for `--group`.

    An existing one is used only when it is a real directory you own with exactly that access;
    anything else is refused with the reason. dockertap never changes the mode of a directory it
    did not create just now (it might be `/tmp` or your `$XDG_RUNTIME_DIR`).
    """
    parent = os.path.dirname(os.path.abspath(path))
    reason = shared_directory_reason(parent)
    if reason:
        raise ListenError(f"refusing to create the socket directory {path}: {reason}")
    if not os.path.isdir(parent):
        try:
            os.makedirs(parent, 0o700)  # e.g. ~/.docker on a fresh account
        except OSError as exc:
            raise ListenError(f"cannot create {parent}: {exc.strerror}") from None
    created = False
    try:
        os.mkdir(path, 0o700)
        created = True
    except FileExistsError:
        pass
    except OSError as exc:
        raise ListenError(f"cannot create {path}: {exc.strerror}") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ListenError(f"{path} is not a plain directory (symlink?); refusing to create a socket in it")
    if st.st_uid != os.geteuid():
        raise ListenError(f"{path} belongs to uid {st.st_uid}, not to you; refusing to create a socket in it")
    if created and gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o710)  # ours, made a moment ago as 0700: the group may traverse, not list
        return
    wanted, access = (0o000, "0700") if gid is None else (0o010, f"0710 with group {gid}")
    if st.st_mode & 0o077 != wanted or (gid is not None and st.st_gid != gid):
        raise ListenError(
            f"refusing to use {path}: it is mode {_mode(st)} (group {st.st_gid}), not {access}; "
            f"dockertap never changes a directory it did not create: remove it (rmdir {path}) or fix it"
        )


def resolve_group(group: str) -> int:
    """The gid of a group you may give the socket to (root: any group; others: one they are in)."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise ListenError(f"--group {group}: no such group") from None
    if os.geteuid() != 0 and gid != os.getegid() and gid not in os.getgroups():
        raise ListenError(
            f"--group {group}: you are not a member of group {group}, so the socket cannot be given to it"
        )
    return gid


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

    `private_parent`: `path`'s directory is dockertap's own default socket directory, created
    0700 (0710 + group) by `ensure_socket_dir`; otherwise it is the user's choice and only checked
    for existence. Every check runs before anything is created, so a refusal leaves no file behind.
    """
    parent = os.path.dirname(os.path.abspath(path))
    gid = resolve_group(group) if group is not None else None
    if private_parent:
        if gid is not None and (unreachable := _group_cannot_reach(parent, gid)):
            raise ListenError(
                f"--group {group}: members of {group} cannot reach {parent}: {unreachable} is not "
                "traversable by them; pass --listen unix:///DIR/docker.sock with a DIR they can reach"
            )
        ensure_socket_dir(parent, gid)
    elif not os.path.isdir(parent):
        raise ListenError(f"directory {parent} does not exist")
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    try:
        if gid is not None:
            os.chown(path, -1, gid)
            os.chmod(path, 0o660)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        os.unlink(path)
        raise ListenError(f"cannot listen on {path}: {exc.strerror}") from None
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
