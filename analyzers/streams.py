"""Docker's multiplexed stdio framing (layer-model.md §5.1), decoded for display.

A non-TTY attach, exec or `logs` stream is a sequence of frames: an 8-byte header
`[stream, 0, 0, 0, size (big-endian uint32)]` followed by `size` payload bytes, with stream
0 = stdin, 1 = stdout, 2 = stderr, 3 = systemerr (a daemon error). TTY streams are raw bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

STREAM_NAMES = {0: "stdin", 1: "stdout", 2: "stderr", 3: "systemerr"}
MULTIPLEXED_TYPE = "application/vnd.docker.multiplexed-stream"
RAW_TYPE = "application/vnd.docker.raw-stream"
_HEADER = struct.Struct(">BxxxI")


@dataclass(frozen=True, slots=True)
class StreamFrame:
    stream: str  # stdin | stdout | stderr | systemerr | raw
    data: bytes


def looks_multiplexed(data: bytes) -> bool:
    """True when `data` starts with a plausible frame header (for raw-stream-labelled streams)."""
    if len(data) < 8:
        return False
    kind, size = _HEADER.unpack_from(data)
    return kind in STREAM_NAMES and data[1:4] == b"\0\0\0" and size <= 1 << 26


def demultiplex(data: bytes) -> tuple[list[StreamFrame], bytes]:
    """Split framed bytes into frames; returns the frames and any incomplete tail."""
    frames: list[StreamFrame] = []
    pos = 0
    while pos + 8 <= len(data):
        kind, size = _HEADER.unpack_from(data, pos)
        if kind not in STREAM_NAMES or data[pos + 1 : pos + 4] != b"\0\0\0":
            # Not framed after all: the rest is raw bytes.
            frames.append(StreamFrame("raw", data[pos:]))
            return frames, b""
        end = pos + 8 + size
        if end > len(data):
            break
        frames.append(StreamFrame(STREAM_NAMES[kind], data[pos + 8 : end]))
        pos = end
    return frames, data[pos:]


def decode_stream(data: bytes, content_type: str | None, tty: bool | None = None) -> list[StreamFrame]:
    """Frames of a captured stream, raw when it is a TTY stream or not framed."""
    multiplexed = (content_type or "").startswith(MULTIPLEXED_TYPE) or (
        tty is not True and looks_multiplexed(data)
    )
    if not multiplexed:
        return [StreamFrame("raw", data)] if data else []
    frames, tail = demultiplex(data)
    if tail:
        frames.append(StreamFrame("partial", tail))
    return frames
