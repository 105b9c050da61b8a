"""Runtime process execs, seen through the kernel's process-events connector (Linux, root).

runc, the shims and conmon live for milliseconds, far too short for polling /proc. The kernel's
proc connector (netlink `NETLINK_CONNECTOR`, `CN_IDX_PROC`) multicasts an event for every
`execve()` on the host; a dedicated reader thread receives them and reads `/proc/<pid>/cmdline`
and `/proc/<pid>/stat` at once, while the process still exists. Only programs named in
`PROGRAMS` are kept. A command line that cannot be read any more is reported as unreadable,
never reconstructed.

A command line proves nothing (any user can `exec -a runc`), so each kept item also carries who
ran it: `uid` (real uid from `/proc/<pid>/status`) and `ancestors`, the chain of parent pids as
they were when each process was forked (from the connector's fork events, so a shim that
daemonised still leads back to the containerd that exec'd it; `/proc/<pid>/stat` where the
fork predates the reader), and `mount_ns`. The correlator trusts an exec only through these,
never argv.

The reader never touches the event loop except through `loop.call_soon_threadsafe`, once per
batch, so the relay is never made to wait for it.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dockertap.proxy.children import tied_to_us
from dockertap.proxy.evidence.engine_host import flag_value, ppid_in_stat, read_bytes, uid_in_status

# linux/netlink.h, linux/connector.h, linux/cn_proc.h
NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_DONE = 3
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # id.idx, id.val, seq, ack, len, flags
_EVENT_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns (CLOCK_MONOTONIC)
_EXEC_BODY = struct.Struct("=ii")  # process_pid, process_tgid
_FORK_BODY = struct.Struct("=iiii")  # parent_pid, parent_tgid, child_pid, child_tgid
_EVENT_OFFSET = _NLMSGHDR.size + _CN_MSG.size

Item = dict[str, Any]
ItemsHandler = Callable[[list[Item]], None]


@dataclass(frozen=True, slots=True)
class Program:
    """A program worth reporting, how to read its command line, and why it matters."""

    name: str  # basename of argv[0] as the runtime sets it
    layer: str  # the layer it stands for in the layer model
    parser: str  # key of `_PARSERS`
    source: str


#: The programs kept; everything else exec'd on the host is dropped in the reader thread.
PROGRAMS: tuple[Program, ...] = (
    Program("runc", "runc", "oci", "containerd go-runc runc.go (shim); moby daemon/info_unix.go (--version)"),
    Program("crun", "crun", "oci", "conmon src/runtime_args.c; podman libpod/oci_conmon_common.go"),
    Program("containerd-shim-runc-v2", "shim", "shim", "containerd pkg/shim/util.go: Command"),
    Program("containerd-shim", "shim", "shim", "containerd v1 shim (linux runtime v1)"),
    Program("conmon", "conmon", "conmon", "podman libpod/oci_conmon_common.go: createOCIContainer"),
    Program("docker-init", "dockerd", "plain", "moby daemon/info_unix.go: populateInitVersion; --init"),
    Program("docker-proxy", "dockerd", "plain", "moby libnetwork/portmapper/proxy_linux.go"),
    Program("libnetwork-setkey", "dockerd", "plain", "moby 20.10 libnetwork sandbox prestart hook"),
    Program("docker-untar", "dockerd", "plain", "moby 20.10 pkg/chrootarchive: reexec.Register"),
    Program("docker-applyLayer", "dockerd", "plain", "moby 20.10 pkg/chrootarchive: reexec.Register"),
    Program("docker-tar", "dockerd", "plain", "moby 20.10 pkg/chrootarchive: reexec.Register"),
    Program("ps", "host", "plain", "moby daemon/top_unix.go: ContainerTop (host ps)"),
    Program("iptables", "host", "plain", "moby libnetwork/iptables/iptables.go"),
    Program("ip6tables", "host", "plain", "moby libnetwork/iptables/iptables.go"),
    Program("nft", "host", "plain", "moby libnetwork/internal/nftables/nft_exec_linux.go"),
    Program("catatonit", "podman", "plain", "podman --init (catatonit)"),
    Program("podman", "podman", "podman", "podman pkg/specgenutil/util.go: CreateExitCommandArgs"),
    Program("netavark", "podman", "plain", "podman vendored common/libnetwork/netavark/run.go"),
)
PROGRAMS_BY_NAME: dict[str, Program] = {p.name: p for p in PROGRAMS}

# Flags of runc/crun that take a value (global and per subcommand), from `runc --help` and
# `runc <cmd> --help` (runc 1.1) and crun's global options; `--flag=value` forms need no entry.
_OCI_VALUE_FLAGS = frozenset(
    {
        "--root", "--log", "--log-format", "--criu", "--rootless", "--cgroup-manager",
        "--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds", "--process", "-p",
        "--cwd", "--env", "-e", "--user", "-u", "--additional-gids", "-g", "--cap", "-c",
        "--process-label", "--apparmor", "--cgroup", "--format", "-f", "--resources", "-r",
        "--blkio-weight", "--cpu-period", "--cpu-quota", "--cpu-share", "--cpu-rt-period",
        "--cpu-rt-runtime", "--cpuset-cpus", "--cpuset-mems", "--kernel-memory",
        "--kernel-memory-tcp", "--memory", "--memory-reservation", "--memory-swap", "--pids-limit",
        "--l3-cache-schema", "--mem-bw-schema", "--image-path", "--work-path", "--parent-path",
    }
)  # fmt: skip
_OCI_VERSION_FLAGS = frozenset({"--version", "-v", "version"})
# containerd pkg/shim/util.go builds `-namespace NS -address A -publish-binary B -id ID [-debug] start`.
_SHIM_VALUE_FLAGS = frozenset({"-namespace", "-address", "-publish-binary", "-id", "-bundle", "-socket"})
# conmon src/cli.c: -c/--cid, -u/--cuuid, -r/--runtime, -b/--bundle, -p/--container-pidfile, …
_CONMON_ID_FLAGS = ("-c", "--cid")
_CONMON_EXEC_FLAGS = frozenset({"-e", "--exec"})


def _positionals(args: list[str], value_flags: frozenset[str]) -> list[str]:
    """Non-flag words of an argument list, skipping the values of flags that take one."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("-") and arg != "-":
            skip = "=" not in arg and arg in value_flags
            continue
        out.append(arg)
    return out


def _parse_oci(argv: list[str]) -> tuple[str | None, str | None]:
    """runc/crun: `[global flags] <subcommand> [flags] <container-id> [args]`."""
    args = argv[1:]
    if any(a in _OCI_VERSION_FLAGS for a in args[:1]) or (args and args[-1] in ("--version", "-v")):
        return "--version", None
    words = _positionals(args, _OCI_VALUE_FLAGS)
    if not words:
        return None, None
    command = words[0]
    if command in ("init", "features", "list", "spec", "help"):
        return command, None
    return command, (words[1] if len(words) > 1 else None)


def _parse_shim(argv: list[str]) -> tuple[str | None, str | None]:
    words = _positionals(argv[1:], _SHIM_VALUE_FLAGS)
    command = words[-1] if words else "serve"  # the daemonised re-exec has no action word
    return command, flag_value(argv, "-id", "--id")


def _parse_conmon(argv: list[str]) -> tuple[str | None, str | None]:
    command = "exec" if any(a in _CONMON_EXEC_FLAGS for a in argv) else "create"
    if "--version" in argv:
        command = "--version"
    return command, flag_value(argv, *_CONMON_ID_FLAGS)


def _parse_podman(argv: list[str]) -> tuple[str | None, str | None]:
    if "--version" in argv or "version" in argv[1:2]:
        return "--version", None
    if "cleanup" in argv:  # conmon's --exit-command: `podman … container cleanup [--rm] <id>`
        return "container cleanup", argv[-1] if argv[-1] != "cleanup" else None
    return None, None


def _parse_plain(argv: list[str]) -> tuple[str | None, str | None]:
    return ("--version" if "--version" in argv[1:] else None), None


_PARSERS: dict[str, Callable[[list[str]], tuple[str | None, str | None]]] = {
    "oci": _parse_oci,
    "shim": _parse_shim,
    "conmon": _parse_conmon,
    "podman": _parse_podman,
    "plain": _parse_plain,
}


def describe_exec(argv: list[str], program: Program | None = None) -> dict[str, Any]:
    """Parse a kept command line into runtime_command and container_id (pure; unit-testable)."""
    program = program or PROGRAMS_BY_NAME.get(os.path.basename(argv[0]))
    if program is None:
        return {"program": os.path.basename(argv[0]) if argv else None, "layer": None}
    command, container_id = _PARSERS[program.parser](argv)
    return {
        "program": program.name,
        # `runc --version`, `conmon --version`: the engine probing versions (moby daemon/info_unix.go,
        # podman libpod/info.go), a host-level act, not the runtime doing container work
        "layer": "host" if command == "--version" else program.layer,
        "runtime_command": command,
        "container_id": container_id,
    }


#: How far up the parent chain an exec's ancestry is followed (runc init → runc → shim → containerd
#: → dockerd is 5; conmon → podman → the service adds a few).
ANCESTRY_DEPTH = 12


def capability_reason() -> str | None:
    """Why the proc connector cannot be used by this process, or None if it may be."""
    if not os.path.isdir("/proc/self"):
        return "no /proc: not Linux"
    if os.geteuid() == 0:
        return None
    try:
        with open("/proc/self/status") as f:
            caps = next((line.split()[1] for line in f if line.startswith("CapEff:")), "0")
        if int(caps, 16) & (1 << 12):  # CAP_NET_ADMIN
            return None
    except (OSError, ValueError):
        pass
    return "not root: the kernel's process-events connector needs CAP_NET_ADMIN (run with sudo)"


@dataclass
class ExecStats:
    execs_seen: int = 0
    kept: int = 0
    unreadable: int = 0
    #: execs whose process was gone before even its name could be read (not attributable).
    vanished: int = 0
    #: ENOBUFS from the kernel: events were dropped because the reader fell behind.
    overruns: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ProcConnector:
    """The reader itself: subscribes to proc events and turns interesting execs into items.

    Transport-free on purpose: `run()` hands each item to `emit` and calls `flush` whenever the
    kernel queue is momentarily empty, so the caller decides how batches travel (a pipe from a
    reader process, or a list handed to the event loop from a reader thread).
    """

    def __init__(self, programs: tuple[Program, ...] = PROGRAMS, receive_buffer: int = 8 << 20) -> None:
        self._programs = {p.name: p for p in programs}
        self._receive_buffer = receive_buffer
        self._parents: dict[int, int] = {}
        self._sock: socket.socket | None = None
        self.stats = ExecStats()
        # proc events carry CLOCK_MONOTONIC nanoseconds; this turns them into wall-clock time.
        self._mono_to_wall = time.time() - time.monotonic()

    def open(self) -> str | None:
        """Subscribe; returns why it cannot (None on success)."""
        reason = capability_reason()
        if reason:
            return reason
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except (OSError, AttributeError) as exc:
            return f"no netlink connector: {exc}"
        try:
            force = getattr(socket, "SO_RCVBUFFORCE", 33)
            try:  # a large buffer absorbs bursts (compose up execs hundreds of runc at once)
                sock.setsockopt(socket.SOL_SOCKET, force, self._receive_buffer)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._receive_buffer)
            sock.bind((0, CN_IDX_PROC))
            sock.send(self._control(sock, PROC_CN_MCAST_LISTEN))
        except OSError as exc:
            sock.close()
            return f"process-events connector refused: {exc}"
        self._sock = sock
        return None

    def close(self) -> None:
        if self._sock is None:
            return
        try:
            self._sock.send(self._control(self._sock, PROC_CN_MCAST_IGNORE))
        except OSError:
            pass
        self._sock.close()
        self._sock = None

    @staticmethod
    def _control(sock: socket.socket, op: int) -> bytes:
        payload = struct.pack("=I", op)
        cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
        port = sock.getsockname()[0]
        return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, port) + cn

    def run(
        self, emit: Callable[[Item], None], flush: Callable[[], None], stopping: threading.Event
    ) -> str | None:
        """Read until `stopping` is set; returns an error text if the connector failed."""
        sock = self._sock
        assert sock is not None, "open() first"
        sock.settimeout(0.2)  # lets the reader notice `stopping` promptly
        buf = bytearray(16384)
        view = memoryview(buf)
        dirty = 0
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while not stopping.is_set():
            # Hand items over as soon as the kernel queue is momentarily empty (or every 32 items
            # under a flood), so a busy host never holds a finished batch back.
            if dirty and (dirty >= 32 or not poller.poll(0)):
                flush()
                dirty = 0
            try:
                n = sock.recv_into(buf)
            except TimeoutError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.stats.overruns += 1
                    continue
                return None if stopping.is_set() else f"process-events connector failed: {exc}"
            offset = 0
            while offset + _EVENT_OFFSET + _EVENT_HEAD.size <= n:
                length = _NLMSGHDR.unpack_from(view, offset)[0]
                if length < _NLMSGHDR.size:
                    break
                item = self._handle_event(view, offset + _EVENT_OFFSET)
                if item is not None:
                    emit(item)
                    dirty += 1
                offset += (length + 3) & ~3
        if dirty:
            flush()
        return None

    def _handle_event(self, view: memoryview, at: int) -> Item | None:
        what, _cpu, stamp = _EVENT_HEAD.unpack_from(view, at)
        body = at + _EVENT_HEAD.size
        if what == PROC_EVENT_FORK:
            _ppid, parent_tgid, child_pid, child_tgid = _FORK_BODY.unpack_from(view, body)
            if child_pid == child_tgid:  # a process, not a thread
                parents = self._parents
                parents[child_tgid] = parent_tgid
                if len(parents) > 8192:
                    for old in list(parents)[:4096]:
                        del parents[old]
            return None
        if what != PROC_EVENT_EXEC:
            return None
        self.stats.execs_seen += 1
        pid = _EXEC_BODY.unpack_from(view, body)[1]
        item = self._inspect(pid, stamp / 1e9 + self._mono_to_wall)
        if item is not None:
            self.stats.kept += 1
        return item

    def _ancestry(self, ppid: int | None) -> list[int]:
        """Parent pids up from `ppid`: the parent at fork time where the reader saw the fork,
        the current parent from /proc otherwise; stops at pid 1 or an unreadable process."""
        chain: list[int] = []
        current = ppid
        while current and current > 1 and len(chain) < ANCESTRY_DEPTH and current not in chain:
            chain.append(current)
            current = self._parents.get(current) or ppid_in_stat(read_bytes(f"/proc/{current}/stat", 1024))
        return chain

    def _inspect(self, pid: int, when: float) -> Item | None:
        """Read the new process at once; keep it only if it is one of the programs."""
        raw = read_bytes(f"/proc/{pid}/cmdline")
        argv = [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")[:-1]] if raw else []
        program = self._programs.get(os.path.basename(argv[0])) if argv else None
        if argv and program is None:
            return None
        stat = read_bytes(f"/proc/{pid}/stat", 1024)
        uid = uid_in_status(read_bytes(f"/proc/{pid}/status", 4096))
        ppid = self._parents.get(pid) or ppid_in_stat(stat)
        ancestors = self._ancestry(ppid)
        try:  # container processes live in the container's mount namespace, the engine's do not
            mount_ns: str | None = os.readlink(f"/proc/{pid}/ns/mnt")
        except OSError:
            mount_ns = None
        if program is None:
            # cmdline gone or empty (exited, zombie): the name in stat may still say what it was.
            name = stat[stat.find(b"(") + 1 : stat.rfind(b")")].decode("utf-8", "replace") if stat else None
            program = self._programs.get(name or "")
            if program is None:
                if name is None:
                    self.stats.vanished += 1
                return None
            self.stats.unreadable += 1
            return {
                "source": "exec",
                "time": when,
                "pid": pid,
                "ppid": ppid,
                "uid": uid,
                "ancestors": ancestors,
                "mount_ns": mount_ns,
                "program": program.name,
                "layer": program.layer,
                "argv": None,
                "unreadable": True,
                "runtime_command": None,
                "container_id": None,
            }
        item: Item = {
            "source": "exec", "time": when, "pid": pid, "ppid": ppid, "uid": uid,
            "ancestors": ancestors, "mount_ns": mount_ns, "argv": argv,
        }  # fmt: skip
        item.update(describe_exec(argv, program))
        item["unreadable"] = False
        return item


class ExecWatcher:
    """Reports execs of the programs in `programs`, in batches, on the event loop.

    The reader runs in its own process by default (`mode="process"`): it then never competes
    with the relay for Python's GIL, which matters twice over — the relay keeps its latency, and
    the reader is never parked for a GIL switch interval (5 ms) while a runc lives for 2 ms.
    `mode="thread"` runs the same reader in a dedicated thread (no extra process).
    `on_items(items)` always runs on the loop thread. `start()` returns False (and `status()`
    says why) when the connector cannot be used; nothing raises.
    """

    def __init__(
        self,
        on_items: ItemsHandler,
        *,
        programs: tuple[Program, ...] = PROGRAMS,
        mode: str = "process",
    ) -> None:
        self._on_items = on_items
        self._programs = programs
        self._mode = mode
        self._active = False
        self._reason = "not started"
        self._loop: asyncio.AbstractEventLoop | None = None
        # thread mode
        self._connector: ProcConnector | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._pending: list[Item] = []
        self._lock = threading.Lock()
        # process mode
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task | None = None
        self.stats: dict[str, int] = {}

    def status(self) -> dict[str, Any]:
        return {"source": "exec", "active": self._active, "reason": self._reason}

    def disable(self, reason: str) -> None:
        """Leave the source off for a reason found elsewhere (the engine is not on this host)."""
        self._active = False
        self._reason = reason

    async def start(self) -> bool:
        self._loop = asyncio.get_running_loop()
        reason = capability_reason()
        if reason:
            self._reason = reason
            return False
        if self._mode == "thread":
            return self._start_thread()
        return await self._start_process()

    async def stop(self) -> None:
        if self._mode == "thread":
            self._stopping.set()
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join, 2)
                self._thread = None
            if self._connector is not None:
                self.stats = self._connector.stats.to_dict()
                self._connector.close()
            self._deliver()
        elif self._proc is not None:
            if self._proc.returncode is None and not self._active:
                self._proc.kill()  # stopped while still starting: it has nothing to hand over
            if self._proc.returncode is None and self._proc.stdin is not None:
                self._proc.stdin.close()  # EOF on stdin: the reader flushes, reports stats, exits
            try:
                await asyncio.wait_for(self._pump, 3) if self._pump else None
            except (TimeoutError, asyncio.CancelledError):
                if self._proc.returncode is None:
                    self._proc.kill()
            await self._proc.wait()
        if self._proc is not None or self._connector is not None:
            self._reason = "stopped"
        self._active = False

    # -- thread mode -------------------------------------------------------------------------

    def _start_thread(self) -> bool:
        connector = ProcConnector(self._programs)
        reason = connector.open()
        if reason:
            self._reason = reason
            return False
        self._connector = connector
        self._stopping.clear()
        self._thread = threading.Thread(target=self._thread_main, name="dockertap-execs", daemon=True)
        self._thread.start()
        self._active = True
        self._reason = "process-events connector (netlink CN_IDX_PROC), reader thread"
        return True

    def _thread_main(self) -> None:
        assert self._connector is not None

        def emit(item: Item) -> None:
            with self._lock:
                self._pending.append(item)

        def flush() -> None:
            if self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:  # loop closed during shutdown
                    pass

        error = self._connector.run(emit, flush, self._stopping)
        if error:
            self._active = False
            self._reason = error

    def _deliver(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._on_items(batch)

    # -- process mode ------------------------------------------------------------------------

    async def _start_process(self) -> bool:
        names = ",".join(p.name for p in self._programs)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "dockertap.proxy.evidence.execs", "--programs", names,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 22, **tied_to_us(),
            )  # fmt: skip
        except OSError as exc:
            self._reason = f"cannot start the exec reader process: {exc}"
            return False
        assert self._proc.stdout is not None
        try:
            first = await asyncio.wait_for(self._proc.stdout.readline(), 10)
            hello = json.loads(first)["status"]
        except (TimeoutError, ValueError, KeyError, TypeError):
            hello = {"active": False, "reason": "the exec reader process did not report its status"}
        self._reason = hello["reason"]
        if not hello["active"]:
            await self._proc.wait()
            return False
        self._active = True
        self._pump = asyncio.get_running_loop().create_task(self._pump_items())
        return True

    async def _pump_items(self) -> None:
        """Read the reader's JSON lines; one `on_items` call per chunk that arrived together."""
        stream = self._proc.stdout if self._proc else None
        assert stream is not None
        rest = b""
        while chunk := await stream.read(1 << 20):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            items = []
            for line in lines:
                entry = json.loads(line)
                if "stats" in entry:
                    self.stats = entry["stats"]
                elif "error" in entry:
                    self._active = False
                    self._reason = entry["error"]
                else:
                    items.append(entry)
            if items:
                self._on_items(items)
        self._active = False


def _raise_priority() -> str:
    """Ask to be scheduled first: runc and shims live for milliseconds, and a reader that waits
    behind busy CPUs finds their /proc entries gone. The reader blocks in recv() between events,
    so a real-time class cannot starve anyone. Returns what was granted, for the status line."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(os.sched_get_priority_min(os.SCHED_RR)))
        return "real-time (SCHED_RR)"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -15)
        return "nice -15"
    except (AttributeError, OSError):
        return "normal priority"


def _serve(programs: tuple[Program, ...]) -> int:
    """Reader process main: JSON lines on stdout; stops on EOF of stdin (the parent went away)."""
    out = sys.stdout.buffer
    priority = _raise_priority()
    connector = ProcConnector(programs)
    reason = connector.open()
    status = {
        "active": reason is None,
        "reason": reason or f"process-events connector (netlink CN_IDX_PROC), reader at {priority}",
    }
    out.write(json.dumps({"status": status}).encode() + b"\n")
    out.flush()
    if reason:
        return 1
    stopping = threading.Event()

    def watch_parent() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader at interpreter
        # exit aborts with "Fatal Python error: _enter_buffered_busy".
        while os.read(0, 4096):
            pass
        stopping.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    chunks: list[bytes] = []

    def emit(item: Item) -> None:
        chunks.append(json.dumps(item).encode() + b"\n")

    def flush() -> None:
        out.write(b"".join(chunks))
        chunks.clear()
        out.flush()

    try:
        error = connector.run(emit, flush, stopping)
        if error:
            out.write(json.dumps({"error": error}).encode() + b"\n")
        out.write(json.dumps({"stats": connector.stats.to_dict()}).encode() + b"\n")
        out.flush()
    except BrokenPipeError:
        pass
    finally:
        connector.close()
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--programs", default=",".join(p.name for p in PROGRAMS))
    wanted = set(parser.parse_args().programs.split(","))
    chosen = tuple(p for p in PROGRAMS if p.name in wanted) + tuple(
        Program(name, "host", "plain", "requested on the command line")
        for name in sorted(wanted - PROGRAMS_BY_NAME.keys())
    )
    sys.exit(_serve(chosen))
