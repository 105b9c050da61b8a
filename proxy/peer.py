"""Who connected: Unix peer credentials (SO_PEERCRED on Linux, LOCAL_PEERPID on macOS)."""

from __future__ import annotations

import socket
import struct
import sys

from dockertap.proxy.exchange import PeerInfo

_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
# macOS: SOL_LOCAL = 0, LOCAL_PEERPID = 0x002 (sys/un.h).
_SOL_LOCAL, _LOCAL_PEERPID = 0, 0x002


def peer_info(sock: socket.socket) -> PeerInfo:
    """Best-effort credentials of the process at the other end of a Unix socket.

    Read at accept time: docker CLI processes are short-lived, and a command line read later
    from the sink pipeline may already be gone.
    """
    if sock.family != socket.AF_UNIX:
        return PeerInfo()
    try:
        if sys.platform.startswith("linux"):
            pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, 12))
            argv = read_argv(pid)
            command = " ".join(argv) if argv else None
            return PeerInfo(pid=pid or None, uid=uid, gid=gid, command=command, argv=argv)
        if sys.platform == "darwin":
            (pid,) = struct.unpack("i", sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERPID, 4))
            return PeerInfo(pid=pid or None)
    except OSError:
        pass
    return PeerInfo()


def read_argv(pid: int) -> tuple[str, ...] | None:
    """The arguments of `pid` from /proc (split at the kernel's NULs), or None if unreadable."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(4096)
    except OSError:
        return None
    args = tuple(a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0") if a)
    return args or None
