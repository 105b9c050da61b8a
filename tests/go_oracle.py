"""Go's own HTTP/1 request parser as a test oracle: `net/http.ReadRequest`, the code dockerd and
Podman frame requests with, built once from tests/oracle/readrequests.go and cached.

`GoOracle.frame(stream)` says where Go finds each request in a byte stream (method, target, head
and body boundaries). The fuzz tests compare it with what dockertap relayed and traced: they must
agree on every message, or dockertap must have refused the bytes. Needs `go` (Debian: golang-go).

Plain module (no pytest import), like relay_harness.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

SOURCE = Path(__file__).parent / "oracle" / "readrequests.go"


class GoUnavailable(RuntimeError):
    """No Go toolchain, or the oracle would not build; the message says which."""


def _cache_dir() -> Path:
    """~/.cache/dockertap-tests/go-oracle (never under /tmp/dockertap-<uid>: that is the proxy's own)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "dockertap-tests" / "go-oracle"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build() -> Path:
    """The oracle binary, built on first use and cached by (source, Go version)."""
    go = shutil.which("go")
    if go is None:
        raise GoUnavailable("the go toolchain is not installed (Debian: apt-get install golang-go)")
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout.strip()
    digest = hashlib.sha256(SOURCE.read_bytes() + version.encode()).hexdigest()[:16]
    cache = _cache_dir()
    binary = cache / f"readrequests-{digest}"
    if binary.exists():
        return binary
    env = dict(os.environ, GOCACHE=str(cache / "gocache"), GOPATH=str(cache / "gopath"), GOFLAGS="",
               GO111MODULE="on", CGO_ENABLED="0")  # fmt: skip
    partial = cache / f".build-{os.getpid()}"
    built = subprocess.run(
        [go, "build", "-o", str(partial), str(SOURCE)], capture_output=True, text=True, env=env, timeout=600
    )
    if built.returncode != 0:
        raise GoUnavailable(f"go build of {SOURCE.name} failed:\n{built.stderr}")
    partial.rename(binary)
    return binary


class GoOracle:
    """One long-lived oracle process: a stream in, Go's framing of it out (a dict)."""

    def __init__(self) -> None:
        self.version = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
        self._process = subprocess.Popen(
            [str(build())], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )

    def frame(self, stream: bytes) -> dict:
        """{"messages": [{method, target, start, head_end, end, body, complete}], "error": str}."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(struct.pack(">I", len(stream)) + stream)
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise GoUnavailable(f"the Go oracle exited (status {self._process.poll()})")
        return json.loads(line)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
