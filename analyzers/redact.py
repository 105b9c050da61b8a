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

import functools
import json
import re
from collections.abc import Callable, Sequence
from importlib.resources import files
from urllib.parse import quote, quote_plus, unquote_plus

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
    {
        "name": "set-cookie",
        "why": "a response's session cookie (authenticating front proxies, TCP engines behind them)",
        "source": "RFC 6265 §4.1",
    },
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

#: Names that match a pattern above but name a reference to a secret, or something public.
NOT_SECRET_NAME_PATTERNS: list[dict[str, str]] = [
    {"pattern": r"(?<!SESSION)_ID$|_NAME$", "why": "SecretID, SecretName: which secret, not its value"},
    {"pattern": r"PUBLIC_?KEY", "why": "CertIssuerPublicKey: public by definition"},
    {"pattern": r"^DETACH_?KEYS$", "why": "detachKeys: the key sequence that detaches a terminal"},
    {"pattern": r"^SANDBOX_?KEY$", "why": "NetworkSettings.SandboxKey: a network namespace path"},
    {"pattern": r"^ROTATE_", "why": "swarm update rotate*Token flags: booleans"},
]
_NOT_SECRET_NAME = re.compile("|".join(f"(?:{row['pattern']})" for row in NOT_SECRET_NAME_PATTERNS))

#: Fields that are secrets only where a schema says so (their names alone look harmless). The
#: generator `analyzers/data/gen_secret_fields.py` finds every route whose request or response
#: schema reaches one of them (and every secret-named field) in Moby's swagger, and writes
#: `analyzers/data/secret_fields.json`; the redactor treats these keys as secret on those routes.
#: A new secret field is one row here (or none, when its name already says it), then a regeneration.
SECRET_SCHEMA_FIELDS: list[dict[str, str]] = [
    {
        "schema": "SecretSpec",
        "field": "Data",
        "why": "the secret itself, base64 (docker secret create)",
        "source": "moby api/swagger.yaml SecretSpec.Data; api/types/swarm/secret.go",
    },
    {
        "schema": "ConfigSpec",
        "field": "Data",
        "why": "config payloads routinely hold credentials (docker config create)",
        "source": "moby api/swagger.yaml ConfigSpec.Data; api/types/swarm/config.go",
    },
    {
        "schema": "JoinTokens",
        "field": "Worker",
        "why": "swarm join token: whoever has it joins the swarm as a worker",
        "source": "moby api/swagger.yaml JoinTokens; GET /swarm (docker swarm join-token)",
    },
    {
        "schema": "JoinTokens",
        "field": "Manager",
        "why": "swarm join token: whoever has it joins the swarm as a manager (root on every node)",
        "source": "moby api/swagger.yaml JoinTokens; GET /swarm (docker swarm join-token)",
    },
]

#: Routes whose whole request body is a secret (not JSON with named fields).
SECRET_BODY_ROUTES: list[dict[str, str]] = [
    {
        "route": "POST /libpod/secrets/create",
        "why": "Podman's libpod API takes the secret's raw bytes as the body",
        "source": "containers/podman pkg/api/handlers/libpod/secrets.go: CreateSecret",
    },
]

#: Hijacked streams whose payload is withheld from every sink in both directions (sizes and
#: timing kept): BuildKit's session carries `--secret` values, SSH agent traffic and the registry
#: credentials the CLI hands to the builder. Client stdin of every other hijack (attach, exec) is
#: withheld too unless `--record-stdin`.
WITHHELD_STREAM_ROUTES: list[dict[str, str]] = [
    {
        "route": "POST /session",
        "why": "BuildKit session: secrets provider, SSH forwarding, registry auth provider",
        "source": "moby api/server/router/session; buildkit session/secrets, session/auth",
    },
    {
        "route": "POST /grpc",
        "why": "BuildKit control API over h2c: solve requests carry build args and frontend attrs",
        "source": "moby api/server/router/grpc; buildkit api/services/control",
    },
]

#: Command-line flags whose next word (`-p SECRET`), attached value (`-pSECRET`) or `=value` is a
#: secret, keyed by the subcommand word that gives them that meaning (`-p` is `--publish` in `run`).
SECRET_COMMAND_FLAGS: dict[str, tuple[str, ...]] = {
    "login": ("-p", "--password"),  # docker login (cli/command/registry/login.go)
    "join": ("--token",),  # docker swarm join --token (cli/command/swarm/join.go)
    "unlock": ("--key",),  # defensive: unlock keys are read from stdin by the CLI
}

# `"NAME":"value"` in JSON text (object members with a string value).
_JSON_MEMBER = re.compile(r'"((?:[^"\\]|\\.){1,200})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
# `"NAME=value"` in JSON text (Env entries, build args in lists).
_JSON_ASSIGNMENT = re.compile(r'"([A-Za-z_][A-Za-z0-9_.\-]{0,200})=((?:[^"\\]|\\.)*)"')
# scheme://user:password@host in any text.
# The scheme is at most 32 characters: unbounded, the search would rescan a long alphanumeric run
# (base64) from each of its positions (7 s for 64 KiB); bounded it is linear, and a longer run
# still matches its last 32 characters.
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]{0,31}://"
_URL_PASSWORD = re.compile("(" + _SCHEME + r"""[^/\s:@"']+):([^@\s/"']+)@""")


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


#: Checked against the name with every separator removed, so no way of joining words escapes a
#: pattern anchored at a word boundary (`SigningCAKey`, `signing.ca-key`, `signingcakey`).
_SECRET_COMPACT_NAME = re.compile(r"KEYS?$|AUTH$|APIKEY|ACCESSKEY|SESSIONID")


def is_secret_name(name: str) -> bool:
    """True when a variable, key or label name looks like it holds a secret.

    Words are split at camel-case humps, acronym ends (`CAKey` → `CA_KEY`) and any non-alphanumeric
    separator before the table is applied; the compact form catches words run together.
    """
    split = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    split = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", split)
    upper = re.sub(r"[^A-Za-z0-9]+", "_", split).upper()
    if _NOT_SECRET_NAME.search(upper):
        return False
    if _SECRET_NAME.search(upper):
        return True
    return bool(_SECRET_COMPACT_NAME.search(upper.replace("_", "")))


_assert_hints_cover_the_tables()


# -- text ---------------------------------------------------------------------------------------


# A member or assignment whose string value runs to the end of the text: the capture limit cut it.
_JSON_MEMBER_CUT = re.compile(r'"((?:[^"\\]|\\.){1,200})"(\s*:\s*)"((?:[^"\\]|\\.)*\\?)\Z')
_JSON_ASSIGNMENT_CUT = re.compile(r'"([A-Za-z_][A-Za-z0-9_.\-]{0,200})=((?:[^"\\]|\\.)*\\?)\Z')
# scheme://user:password cut before its `@`.
_URL_PASSWORD_CUT = re.compile("(" + _SCHEME + r"""[^/\s:@"']+):([^@\s/"']+)\Z""")


def _redact_spans(text: str, secret_keys: frozenset[str] = frozenset()) -> list[tuple[int, int, str]]:
    """Replacement spans (start, end, new) for secrets in JSON-ish text.

    `secret_keys`: member names that are secrets on this route although their name says nothing
    (`Data` of a secret). A value cut off at the end of the text (the capture limit) is replaced
    whole when its name is secret: a prefix of a password is a secret too.
    """
    spans: list[tuple[int, int, str]] = []

    def secret(name: str) -> bool:
        return name in secret_keys or is_secret_name(name)

    for match in _JSON_MEMBER.finditer(text):
        if secret(match.group(1)) and match.group(3) and match.group(3) != REDACTED:
            spans.append((match.start(3), match.end(3), REDACTED))
    for match in _JSON_ASSIGNMENT.finditer(text):
        if is_secret_name(match.group(1)) and match.group(2) != REDACTED:
            spans.append((match.start(2), match.end(2), REDACTED))
    for match in _URL_PASSWORD.finditer(text):
        if match.group(2) != REDACTED:
            spans.append((match.start(2), match.end(2), REDACTED))
    for pattern, name_group, value_group in (
        (_JSON_MEMBER_CUT, 1, 3),
        (_JSON_ASSIGNMENT_CUT, 1, 2),
        (_URL_PASSWORD_CUT, 0, 2),
    ):
        cut = pattern.search(text)
        if cut and cut.group(value_group) and (name_group == 0 or secret(cut.group(name_group))):
            spans.append((cut.start(value_group), cut.end(value_group), REDACTED))
    spans.sort()
    merged: list[tuple[int, int, str]] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            continue
        merged.append(span)
    return merged


def redact_text(text: str, secret_keys: frozenset[str] = frozenset()) -> str:
    """Secrets in JSON-ish text replaced by `<redacted>` (works on truncated and streamed JSON)."""
    out, pos = [], 0
    for start, end, new in _redact_spans(text, secret_keys):
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _redact_bytes_mapped(
    data: bytes, secret_keys: frozenset[str] = frozenset()
) -> tuple[bytes, Callable[[int], int]] | None:
    """Redacted bytes and a function mapping old byte offsets to new ones; None if unchanged."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        codec = "latin-1"
    else:
        codec = "utf-8"
    spans = _redact_spans(text, secret_keys)
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


def _decoded_query_value(value: str) -> str:
    """A query value percent-decoded until stable (at most 3 rounds: doubly encoded URLs too)."""
    for _ in range(3):
        decoded = unquote_plus(value)
        if decoded == value:
            break
        value = decoded
    return value


def redact_target(target: str, secret_keys: frozenset[str] = frozenset()) -> str:
    """The request target with credential query values redacted.

    Every value is percent-decoded before the text rules run, so `remote=https%3A%2F%2Fuser%3Atok%40…`
    is the URL `https://user:tok@…` to them; a changed value is re-encoded.
    """
    path, sep, query = target.partition("?")
    if not sep:
        return target
    rules = {row["name"]: row["kind"] for row in SECRET_QUERY_KEYS}
    parts = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        plain_name = _decoded_query_value(name)
        kind = rules.get(plain_name.lower())
        if eq and value and (kind == "whole" or plain_name in secret_keys or is_secret_name(plain_name)):
            value = quote(REDACTED)
        elif eq and value:
            decoded = _decoded_query_value(value)
            redacted = redact_text(decoded, secret_keys)
            if redacted != decoded:
                value = quote_plus(redacted, safe="")
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


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A client's arguments (as the kernel keeps them, NUL-separated) with secret values redacted.

    `login -p S`, `-pS`, `--password=S`, `--password "a b"` (one argument, however many spaces);
    `NAME=S`, `-eNAME=S`, `--env=NAME=S` for secret-looking names; `--any-secret-name=S`; and
    passwords in `scheme://user:pass@` URLs anywhere.
    """
    secret_flags = {flag for word, flags in SECRET_COMMAND_FLAGS.items() if word in argv for flag in flags}
    out: list[str] = []
    hide_next = False
    for word in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        flag, eq, _ = word.partition("=")
        if flag in secret_flags:
            if eq:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(word)
                hide_next = True
            continue
        attached = next(
            (f for f in secret_flags if len(f) == 2 and word.startswith(f) and len(word) > 2), None
        )
        if attached is not None:
            out.append(f"{attached}{REDACTED}")
            continue
        if word.startswith("--") and eq and is_secret_name(flag[2:]):
            out.append(f"{flag}={REDACTED}")
            continue
        word = _redact_assignment(word)
        if "?" in word:  # a URL given whole (curl http://d/build?remote=https%3A%2F%2Fu%3Ap%40…)
            word = redact_target(word)
        elif "%" in word and _URL_PASSWORD.search(_decoded_query_value(word)):
            word = _decoded_query_value(word)
        out.append(_URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", word))
    return out


def redact_command(command: str | None) -> str | None:
    """A command line known only as text (imports, old recordings): words split at spaces."""
    if not command:
        return command
    return " ".join(redact_argv(command.split(" ")))


def _redact_assignment(word: str) -> str:
    """`DB_PASSWORD=x`, `--env=DB_PASSWORD=x`, `-eDB_PASSWORD=x` → value redacted."""
    match = re.match(r"^((?:--?[A-Za-z-]+=|-[a-z])?)([A-Za-z_][A-Za-z0-9_.\-]*)=(.*)$", word, re.S)
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


def redact_capture(capture: Capture, chunked: bool, secret_keys: frozenset[str] = frozenset()) -> int | None:
    """Redact a captured body in place; returns the new payload length, or None if unchanged."""
    raw = bytes(capture.data)
    if not raw:
        return None
    if not chunked:
        if not secret_keys and not may_hold_secret(raw):
            return None
        result = _redact_bytes_mapped(raw, secret_keys)
        if result is None:
            return None
        new, mapped = result
        _replace(capture, new, mapped)
        return len(new)
    spans = list(iter_chunks(raw))
    payload = b"".join(raw[a:b] for _, a, b, _ in spans)
    if not secret_keys and not may_hold_secret(payload):
        return None
    result = _redact_bytes_mapped(payload, secret_keys)
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


def redact_exchange_head(
    ex: Exchange, commands: dict[tuple[str, ...] | str, tuple[str | None, list[str] | None]] | None = None
) -> bool:
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
    peer = ex.peer
    original: tuple[str, ...] | str | None = peer.argv or peer.command
    if original:
        if commands is None or original not in commands:
            argv = redact_argv(original) if isinstance(original, tuple) else None
            command = " ".join(argv) if argv is not None else redact_command(peer.command)
            if commands is not None:
                if len(commands) >= _COMMAND_MEMO:
                    commands.clear()
                commands[original] = (command, argv)
        else:
            command, argv = commands[original]
        if command != peer.command:
            peer.command = command
        if argv is not None:
            peer.argv = tuple(argv)
    return changed


_COMMAND_MEMO = 4096


# -- route-scoped rules ---------------------------------------------------------------------------


_RouteRules = tuple[dict[tuple[str, str], frozenset[str]], frozenset[str], frozenset[str], tuple[str, ...]]


@functools.cache
def _route_rules() -> _RouteRules:
    """From the tables and the generated `secret_fields.json`: (route, where) → keys secret there,
    whole-body routes, withheld-stream routes, and the first path segments any of them starts with."""
    doc = json.loads(files("dockertap.analyzers").joinpath("data/secret_fields.json").read_text())
    keys: dict[tuple[str, str], set[str]] = {}
    for row in doc["fields"]:
        if row["kind"] == "context":
            keys.setdefault((row["route"], row["where"]), set()).add(row["key"])
    bodies = frozenset(row["route"] for row in SECRET_BODY_ROUTES)
    streams = frozenset(row["route"] for row in WITHHELD_STREAM_ROUTES)
    routes = {route for route, _ in keys} | bodies | streams
    segments = tuple(sorted({"/" + route.split(" ", 1)[1].split("/")[1] for route in routes}))
    return {k: frozenset(v) for k, v in keys.items()}, bodies, streams, segments


def _route_template(ex: Exchange) -> str | None:
    """The exchange's route template when some route-scoped rule could apply to it, else None."""
    *_, segments = _route_rules()
    method, target = ex.method_and_target
    path = _VERSION.sub("", target.split("?", 1)[0])
    if not path.startswith(segments):
        return None
    from dockertap.analyzers.routes import match_route

    return match_route(method, target).template


_VERSION = re.compile(r"^/v\d+(?:\.\d+)*(?=/)")


def _secret_keys(route: str | None, where: str) -> frozenset[str]:
    if route is None:
        return frozenset()
    return _route_rules()[0].get((route, where), frozenset())


def _withhold_body(capture: Capture, chunked: bool) -> int:
    """Replace a whole captured body with `<redacted>` (one chunk when chunked); the new length."""
    new = REDACTED.encode()
    if chunked:
        complete = bytes(capture.data).endswith(b"0\r\n\r\n")
        wire = f"{len(new):x}\r\n".encode() + new + b"\r\n" + (b"0\r\n\r\n" if complete else b"")
        _replace(capture, wire, lambda offset: min(offset, len(wire)))
    else:
        _replace(capture, new, lambda offset: min(offset, len(new)))
    return len(new)


def redact_request_body(ex: Exchange, route: str | None = None) -> bool:
    if not ex.request_body.data:
        return False
    if route is not None and route in _route_rules()[1]:
        new_len: int | None = _withhold_body(ex.request_body, ex.request_chunked)
    elif not _is_textual(ex.request_head, request=True):
        return False
    else:
        new_len = redact_capture(ex.request_body, ex.request_chunked, _secret_keys(route, "request"))
    if new_len is None:
        return False
    if not ex.request_chunked and not ex.request_body.truncated:
        ex.request_head = _set_content_length(ex.request_head, new_len)
    return True


def redact_response_body(ex: Exchange, route: str | None = None) -> bool:
    if ex.hijack is not None or not ex.response_body.data:
        return False
    if not _is_textual(ex.response_head, request=False):
        return False
    new_len = redact_capture(ex.response_body, ex.response_chunked, _secret_keys(route, "response"))
    if new_len is None:
        return False
    if not ex.response_chunked and not ex.response_body.truncated and ex.response_head:
        ex.response_head = _set_content_length(ex.response_head, new_len)
    return True


def withhold_hijacked(ex: Exchange, route: str | None, *, keep_stdin: bool) -> bool:
    """Drop the payload of hijacked frames no sink may see; each frame's time and size stay.

    Client stdin (attach, exec) unless `keep_stdin`; both directions of BuildKit's session.
    """
    hijack = ex.hijack
    if hijack is None:
        return False
    both = route is not None and route in _route_rules()[2]
    if keep_stdin and not both:
        return False
    changed = False
    for i, (t, direction, data) in enumerate(hijack.frames):
        if data and (both or direction == "client"):
            hijack.withheld[i] = len(data)
            hijack.frames[i] = (t, direction, b"")
            changed = True
    return changed


class Redactor:
    """Pipeline processor that must run first: the request head and command line as soon as seen,
    everything else once, at the end of the exchange (no capture appends land after rewritten bytes).

    Sinks see `request`/`response` events only for open exchanges (the live view's panel shows their
    route and command line, never bodies), so bodies wait for `end`. Each step first checks cheaply
    whether anything could need redaction (`may_hold_secret`), which is exact, not a heuristic;
    route-scoped rules (`secret_fields.json`) run only on the routes they name.

    `record_stdin`: keep what clients typed into attach/exec sessions (off by default: `docker exec -i`
    is how secrets are piped into containers).
    """

    def __init__(self, record_stdin: bool = False) -> None:
        self.redacted = 0
        self.record_stdin = record_stdin
        self._commands: dict[tuple[str, ...] | str, tuple[str | None, list[str] | None]] = {}

    def __call__(self, kind: str, ex: Exchange) -> None:
        changed = redact_exchange_head(ex, self._commands)
        if kind == "end":
            route = _route_template(ex)
            changed = redact_request_body(ex, route) or changed
            changed = redact_response_body(ex, route) or changed
            changed = redact_response_head(ex) or changed
            changed = withhold_hijacked(ex, route, keep_stdin=self.record_stdin) or changed
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
