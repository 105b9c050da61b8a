"""Redaction: secrets in captured exchanges are rewritten before any sink can show or store them.

The relay has already forwarded the original bytes when the pipeline runs, so rewriting the
captures in place is safe: the engine got the real credentials, while screens, JSON traces,
recordings and exports only ever see `<redacted>`.

What counts as a secret is data (tables below, each row with its source); the functions only
apply the tables. Redaction is deliberately generous: a false positive hides a harmless value,
a false negative leaks a password into a file someone shares.

Length changes are kept consistent: a rewritten body gets a matching `Content-Length`, a chunked
body is re-chunked along its original chunk boundaries, and capture marks are moved with it, so a
replay of a redacted session is still well-formed HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from dockertap.proxy.exchange import Capture, Exchange
from dockertap.proxy.framing import iter_chunks

REDACTED = "<redacted>"

#: Request headers whose whole value is a credential.
SECRET_HEADERS: list[dict[str, str]] = [
    {
        "name": "x-registry-auth",
        "why": "base64 AuthConfig JSON (username, password, identitytoken) on pull/push/service create",
        "source": "moby api/types/registry/authconfig.go AuthHeader; client/image_pull.go",
    },
    {
        "name": "x-registry-config",
        "why": "base64 map of registry → AuthConfig sent with every build",
        "source": "moby api/server/router/build/build_routes.go (X-Registry-Config); cli build",
    },
    {
        "name": "authorization",
        "why": "HTTP credentials (TCP engines behind auth proxies)",
        "source": "RFC 9110 §11.6.2",
    },
    {"name": "proxy-authorization", "why": "HTTP proxy credentials", "source": "RFC 9110 §11.7.2"},
    {"name": "cookie", "why": "session cookies of authenticating front proxies", "source": "RFC 6265"},
]

#: Query parameters whose value is a credential, or a JSON map of name → value checked by name.
SECRET_QUERY_KEYS: list[dict[str, str]] = [
    {"name": "authconfig", "kind": "whole", "source": "legacy Engine API and libpod query-string auth"},
    {
        "name": "registryauth",
        "kind": "whole",
        "source": "defensive: query-string variants of X-Registry-Auth",
    },
    {"name": "password", "kind": "whole", "source": "defensive"},
    {"name": "token", "kind": "whole", "source": "defensive"},
    {"name": "identitytoken", "kind": "whole", "source": "AuthConfig field name (api/types/registry)"},
    {
        "name": "buildargs",
        "kind": "json-map",
        "source": "POST /build buildargs: JSON map of build-arg → value (api/server/router/build)",
    },
]

#: Names (environment variables, JSON keys, build args, labels) whose values are secrets.
#: Matched against the name upper-cased; a row matches anywhere in the name unless anchored.
SECRET_NAME_PATTERNS: list[dict[str, str]] = [
    {
        "pattern": r"PASSW(?:OR)?D|PASSPHRASE|(?:^|_)PASS(?:_|$)|(?:^|_)PWD(?:_|$)(?<!^PWD)",
        "why": "passwords",
    },
    {"pattern": r"TOKEN", "why": "API, registry and identity tokens (IdentityToken, registrytoken)"},
    {"pattern": r"SECRET", "why": "AWS_SECRET_ACCESS_KEY, client secrets"},
    {"pattern": r"(?:^|_)(?:API_?)?KEY(?:_|S?$)|APIKEY|ACCESS_?KEY", "why": "API and access keys"},
    {"pattern": r"PRIVATE", "why": "private keys (SSH_PRIVATE_KEY)"},
    {"pattern": r"CREDENTIAL", "why": "credential blobs"},
    {
        "pattern": r"^AUTH$|(?:^|_)AUTH(?:_|$)|AUTHORIZATION|AUTHTOKEN",
        "why": "AuthConfig.auth (base64 user:pass)",
    },
    {"pattern": r"(?:^|_)DSN$|CONN(?:ECTION)?_?STR", "why": "connection strings carry passwords"},
    {"pattern": r"SESSION_?ID|COOKIE", "why": "session identifiers"},
]
_SECRET_NAME = re.compile("|".join(f"(?:{row['pattern']})" for row in SECRET_NAME_PATTERNS))

#: Command-line flags whose next word (or `=value`) is a secret, per subcommand word.
SECRET_COMMAND_FLAGS: dict[str, tuple[str, ...]] = {
    "login": ("-p", "--password"),  # docker login -p (cli/command/registry/login.go)
}

# `"NAME":"value"` in JSON text (object members with a string value).
_JSON_MEMBER = re.compile(r'"((?:[^"\\]|\\.){1,200})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
# `"NAME=value"` in JSON text (Env entries, build args in lists).
_JSON_ASSIGNMENT = re.compile(r'"([A-Za-z_][A-Za-z0-9_.\-]{0,200})=((?:[^"\\]|\\.)*)"')
# scheme://user:password@host in any text.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@\"']+):([^@\s/\"']+)@")


#: Every secret name above contains one of these (case-insensitively, in ASCII text), and every URL
#: password needs "://": a body or head without any of them cannot change, so it is never scanned.
#: Exact, not a guess: `_assert_hints_cover_the_tables` checks the tables against it at import.
_SECRET_HINTS: tuple[bytes, ...] = (
    b"pass",
    b"pwd",
    b"token",
    b"secret",
    b"key",
    b"private",
    b"credential",
    b"auth",
    b"dsn",
    b"conn",
    b"session",
    b"cookie",
    b"://",
)
#: Every secret header name contains one of these.
_HEADER_HINTS: tuple[bytes, ...] = (b"auth", b"cookie", b"x-registry")


def _assert_hints_cover_the_tables() -> None:
    for row in SECRET_HEADERS:
        assert any(h in row["name"].encode() for h in _HEADER_HINTS), row
    # each alternative of each name pattern spells out one hint in capitals
    for row in SECRET_NAME_PATTERNS:
        for alternative in re.split(r"\|(?![^(]*\))", row["pattern"]):
            letters = re.sub(r"[^A-Z]", "", re.sub(r"\(\?[^)]*\)\??|\?|\(\?:|\)|\^|\$", "", alternative))
            assert any(h.decode().upper() in letters for h in _SECRET_HINTS if h != b"://"), alternative


def may_hold_secret(data: bytes) -> bool:
    """False only when redaction provably leaves `data` alone (ASCII text naming no secret).

    Non-ASCII text takes the full path: `str.upper()` maps e.g. "ſ" to "S", so a name could match
    the patterns without spelling a hint in ASCII.
    """
    if not data.isascii():
        return True
    lowered = data.lower()
    for hint in _SECRET_HINTS:
        if hint in lowered:
            return True
    return False


def _head_may_hold_secret(head: bytes, *, request: bool) -> bool:
    """Whether `redact_head` could change this head: a secret header name, or a query string."""
    lowered = head.lower()
    for hint in _HEADER_HINTS:
        if hint in lowered:
            return True
    if not request:
        return False
    line_end = head.find(b"\r\n")
    return b"?" in (head if line_end < 0 else head[:line_end])


def is_secret_name(name: str) -> bool:
    """True when a variable, key or label name looks like it holds a secret."""
    upper = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper().replace("-", "_")
    return bool(_SECRET_NAME.search(upper))


_assert_hints_cover_the_tables()


# -- text ---------------------------------------------------------------------------------------


def _redact_spans(text: str) -> list[tuple[int, int, str]]:
    """Replacement spans (start, end, new) for secrets in JSON-ish text."""
    spans: list[tuple[int, int, str]] = []
    for match in _JSON_MEMBER.finditer(text):
        if is_secret_name(match.group(1)) and match.group(3) and match.group(3) != REDACTED:
            spans.append((match.start(3), match.end(3), REDACTED))
    for match in _JSON_ASSIGNMENT.finditer(text):
        if is_secret_name(match.group(1)) and match.group(2) != REDACTED:
            spans.append((match.start(2), match.end(2), REDACTED))
    for match in _URL_PASSWORD.finditer(text):
        if match.group(2) != REDACTED:
            spans.append((match.start(2), match.end(2), REDACTED))
    spans.sort()
    merged: list[tuple[int, int, str]] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            continue
        merged.append(span)
    return merged


def redact_text(text: str) -> str:
    """Secrets in JSON-ish text replaced by `<redacted>` (works on truncated and streamed JSON)."""
    out, pos = [], 0
    for start, end, new in _redact_spans(text):
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _redact_bytes_mapped(data: bytes) -> tuple[bytes, Callable[[int], int]] | None:
    """Redacted bytes and a function mapping old byte offsets to new ones; None if unchanged."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        codec = "latin-1"
    else:
        codec = "utf-8"
    spans = _redact_spans(text)
    if not spans:
        return None
    out = bytearray()
    shifts: list[tuple[int, int, int]] = []  # (old byte start, old byte end, new byte start)
    pos = 0
    for start, end, new in spans:
        out += text[pos:start].encode(codec)
        old_start = len(text[:start].encode(codec))
        old_end = len(text[:end].encode(codec))
        shifts.append((old_start, old_end, len(out)))
        out += new.encode(codec)
        pos = end
    out += text[pos:].encode(codec)
    new_len = len(out)

    def mapped(offset: int) -> int:
        delta = 0
        for old_start, old_end, new_start in shifts:
            if offset < old_start:
                break
            if offset < old_end:
                return new_start
            delta = new_start + len(REDACTED.encode(codec)) - old_end
        return min(offset + delta, new_len)

    return bytes(out), mapped


# -- request line and headers -------------------------------------------------------------------


def redact_target(target: str) -> str:
    """The request target with credential query values redacted."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    rules = {row["name"]: row["kind"] for row in SECRET_QUERY_KEYS}
    parts = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        kind = rules.get(unquote(name).lower())
        if eq and kind == "whole" and value:
            value = quote(REDACTED)
        elif eq and kind == "json-map" and value:
            value = quote(redact_text(unquote(value)), safe="")
        elif eq and value and is_secret_name(unquote(name)):
            value = quote(REDACTED)
        parts.append(f"{name}{eq}{value}")
    return f"{path}?{'&'.join(parts)}"


def redact_head(head: bytes, *, request: bool) -> bytes:
    """A head with secret header values (and, for requests, query values) redacted."""
    lines = head.split(b"\r\n")
    secret = {row["name"].encode() for row in SECRET_HEADERS}
    if request and lines:
        words = lines[0].split(b" ")
        if len(words) >= 2:
            words[1] = redact_target(words[1].decode("latin-1")).encode("latin-1")
            lines[0] = b" ".join(words)
    for i, line in enumerate(lines[1:], 1):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in secret and value.strip() != REDACTED.encode():
            lines[i] = name + b": " + REDACTED.encode()
    return b"\r\n".join(lines)


def _set_content_length(head: bytes, length: int) -> bytes:
    return re.sub(
        rb"(?im)^(content-length:[ \t]*)\d+", lambda m: m.group(1) + str(length).encode(), head, count=1
    )


def redact_command(command: str | None) -> str | None:
    """A client command line with `NAME=secret` words and `login -p secret` values redacted."""
    if not command:
        return command
    words = command.split(" ")
    secret_flags = {flag for word, flags in SECRET_COMMAND_FLAGS.items() if word in words for flag in flags}
    out, hide_next = [], False
    for word in words:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        flag, eq, value = word.partition("=")
        if flag in secret_flags:
            if eq:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(word)
                hide_next = True
            continue
        out.append(_redact_assignment(word))
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", " ".join(out))


def _redact_assignment(word: str) -> str:
    """`DB_PASSWORD=x`, `--env=DB_PASSWORD=x`, `-eDB_PASSWORD=x` → value redacted."""
    match = re.match(r"^((?:--?[A-Za-z-]+=|-[a-z])?)([A-Za-z_][A-Za-z0-9_.\-]*)=(.*)$", word)
    if match and match.group(3) and is_secret_name(match.group(2)):
        return f"{match.group(1)}{match.group(2)}={REDACTED}"
    return word


# -- bodies -------------------------------------------------------------------------------------


def _is_textual(head: bytes | None, *, request: bool) -> bool:
    """Bodies worth scanning: JSON or plain text; never stdio streams or archives."""
    if not head:
        return False
    match = re.search(
        rb"(?im)^content-type:[ \t]*([^\r\n;]*)", head.rstrip(b"\r\n").rsplit(b"\r\n\r\n", 1)[-1]
    )
    kind = match.group(1).strip().lower() if match else b""
    if b"json" in kind or kind.startswith(b"text/plain") or kind == b"application/x-www-form-urlencoded":
        return True
    return request and not kind  # a request body without a type: usually JSON from old clients


def redact_capture(capture: Capture, chunked: bool) -> int | None:
    """Redact a captured body in place; returns the new payload length, or None if unchanged."""
    raw = bytes(capture.data)
    if not raw:
        return None
    if not chunked:
        if not may_hold_secret(raw):
            return None
        result = _redact_bytes_mapped(raw)
        if result is None:
            return None
        new, mapped = result
        _replace(capture, new, mapped)
        return len(new)
    spans = list(iter_chunks(raw))
    payload = b"".join(raw[a:b] for _, a, b, _ in spans)
    if not may_hold_secret(payload):
        return None
    result = _redact_bytes_mapped(payload)
    if result is None:
        return None
    new_payload, mapped = result
    # Re-chunk along the original chunk boundaries (moved by the redactions); what follows the
    # last data chunk (the terminating chunk, or nothing when the capture was cut) is kept.
    rebuilt = bytearray()
    starts: list[tuple[int, int]] = []  # (old raw offset, new raw offset) of each chunk
    payload_pos, last_end = 0, 0
    for line_start, a, b, declared in spans:
        lo, hi = mapped(payload_pos), mapped(payload_pos + (b - a))
        payload_pos += b - a
        starts.append((line_start, len(rebuilt)))
        piece = new_payload[lo:hi]
        rebuilt += f"{len(piece):x}\r\n".encode() + piece
        if b - a == declared:
            rebuilt += raw[b : b + 2]
        last_end = min(b + 2, len(raw)) if b - a == declared else b
    rebuilt += raw[last_end:]

    def raw_mapped(offset: int) -> int:
        best = 0
        for old, new in starts:
            if old <= offset:
                best = new + (offset - old)
        return min(best, len(rebuilt))

    _replace(capture, bytes(rebuilt), raw_mapped)
    return len(new_payload)


def _replace(capture: Capture, new: bytes, mapped: Callable[[int], int]) -> None:
    old_len = len(capture.data)
    if not capture.truncated:
        capture.total += len(new) - old_len
    capture.data[:] = new
    capture.marks = [(t, mapped(offset)) for t, offset in capture.marks]


# -- the exchange -------------------------------------------------------------------------------


def redact_exchange_head(ex: Exchange, commands: dict[str, str | None] | None = None) -> bool:
    """Redact the request head and client command; returns True when the head changed.

    `commands` memoizes redacted command lines: a client's command line is the same for every
    exchange of its connections, so it is redacted once.
    """
    changed = False
    if _head_may_hold_secret(ex.request_head, request=True):
        new_head = redact_head(ex.request_head, request=True)
        if new_head != ex.request_head:
            ex.request_head = new_head
            changed = True
    original = ex.peer.command
    if original:
        if commands is None:
            command = redact_command(original)
        else:
            command = commands.get(original, _MISSING)
            if command is _MISSING:
                if len(commands) >= _COMMAND_MEMO:
                    commands.clear()
                command = commands[original] = redact_command(original)
        if command != original:
            ex.peer.command = command
    return changed


_MISSING: Any = object()
_COMMAND_MEMO = 4096


def redact_request_body(ex: Exchange) -> bool:
    if not ex.request_body.data or not _is_textual(ex.request_head, request=True):
        return False
    new_len = redact_capture(ex.request_body, ex.request_chunked)
    if new_len is None:
        return False
    if not ex.request_chunked and not ex.request_body.truncated:
        ex.request_head = _set_content_length(ex.request_head, new_len)
    return True


def redact_response_body(ex: Exchange) -> bool:
    if ex.hijack is not None or not ex.response_body.data:
        return False
    if not _is_textual(ex.response_head, request=False):
        return False
    new_len = redact_capture(ex.response_body, ex.response_chunked)
    if new_len is None:
        return False
    if not ex.response_chunked and not ex.response_body.truncated and ex.response_head:
        ex.response_head = _set_content_length(ex.response_head, new_len)
    return True


class Redactor:
    """Pipeline processor that must run first: the request head and command line as soon as seen,
    everything else once, at the end of the exchange (no capture appends land after rewritten bytes).

    Sinks see `request`/`response` events only for open exchanges (the live view's panel shows their
    route and command line, never bodies), so bodies wait for `end`. Each step first checks cheaply
    whether anything could need redaction (`may_hold_secret`), which is exact, not a heuristic.
    """

    def __init__(self) -> None:
        self.redacted = 0
        self._commands: dict[str, str | None] = {}

    def __call__(self, kind: str, ex: Exchange) -> None:
        changed = redact_exchange_head(ex, self._commands)
        if kind == "end":
            changed = redact_request_body(ex) or changed
            changed = redact_response_body(ex) or changed
            changed = redact_response_head(ex) or changed
        if changed:
            self.redacted += 1
            _rebuild_messages(ex)


def redact_response_head(ex: Exchange) -> bool:
    if not ex.response_head or not _head_may_hold_secret(ex.response_head, request=False):
        return False
    new = redact_head(ex.response_head, request=False)
    if new == ex.response_head:
        return False
    ex.response_head = new
    return True


def _rebuild_messages(ex: Exchange) -> None:
    """Rebuild the mitmproxy objects from the redacted captures."""
    from dockertap.proxy.capture import build_request, build_response

    if ex.request is not None:
        ex.request = build_request(ex)
    if ex.response is not None:
        ex.response = build_response(ex)


def redact(ex: Exchange) -> Exchange:
    """Redact a finished exchange completely (for imports and offline use); returns it."""
    Redactor()("end", ex)
    return ex
