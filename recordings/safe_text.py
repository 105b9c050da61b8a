"""The one sanitiser for text that reaches a terminal: nothing displayed can drive the terminal.

Client command lines, request targets, error messages, JSON bodies, container output, evidence
fields and everything read back from a recording are data from someone else. Written raw, an
ESC or C1 byte starts a control sequence (OSC 0 sets the title, OSC 52 writes the clipboard, OSC 8
makes links, `CSI 2J` clears the screen, `CSI 8m` hides text), and bidi or zero-width format
characters make a line read differently from what it holds. rich strips only a few C0 bytes.

Every display path (trace lines, live view, narration, `replay --serve` log, doctor, error lines)
passes such text through one of these functions where it builds the renderable: they escape,
never drop, so what was there stays visible (`\\x1b`, `\\u202e`). The relay never imports this
module: it moves bytes; sanitising is a display concern.

* `safe_line`: one-line fields — every character that is not printable is escaped, newlines too;
* `safe_block`: multi-line bodies and container output — `\\n` and `\\t` kept, the rest escaped;
* `safe_markup`: `safe_line` for rich markup strings (brackets escaped too);
* `json_safe`: a JSON document with the same escapes as JSON `\\uXXXX` sequences (same data).
"""

from __future__ import annotations

import re
import unicodedata

from rich.markup import escape

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    """Controls (C0, DEL, C1), format characters (bidi, zero-width), line/paragraph separators,
    surrogates, private-use and unassigned code points; ordinary spaces of any script are fine."""
    return not char.isprintable() and unicodedata.category(char) != "Zs"


def _sanitise(text: str, keep: str) -> str:
    if text.isprintable():  # the common case, checked at C speed
        return text
    return "".join(_escape_char(c) if c not in keep and _unsafe(c) else c for c in text)


def safe_line(text: object) -> str:
    """`text` for a one-line field: nothing in it can move the cursor, start a sequence or reorder."""
    return _sanitise(text if isinstance(text, str) else str(text), "")


def safe_block(text: str) -> str:
    """`text` for multi-line output (bodies, container output): newlines and tabs stay."""
    return _sanitise(text, "\n\t")


def safe_markup(text: object) -> str:
    """`safe_line` for a string that goes into rich markup: `[` cannot open a tag either."""
    return escape(safe_line(text))


_JSON_UNSAFE = re.compile(r"[^\x20-\x7e]")


def json_safe(document: str) -> str:
    """A JSON text whose unsafe characters are `\\uXXXX` escapes: parses to the same value.

    `json.dumps(..., ensure_ascii=False)` escapes C0 but leaves DEL, C1 and bidi characters raw.
    """
    if document.isprintable():
        return document

    def escape_match(match: re.Match[str]) -> str:
        char = match.group()
        if char in "\n\t" or not _unsafe(char):  # raw ones are layout (indent): strings escape theirs
            return char
        code = ord(char)
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return _JSON_UNSAFE.sub(escape_match, document)
