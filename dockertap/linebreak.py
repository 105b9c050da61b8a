# ruff: noqa: E501  (the kinsoku character sets read best on one line)
"""Line breaking for mixed Japanese and ASCII text, by display width (East Asian Width via rich's cell_len).

rich wraps at ASCII spaces, so 「… dockerd がネットワーク…」 can break at the space and start the next line with
the particle が. Here a line may break between wide (CJK) characters, after a space, or between a wide and a
narrow character, but never before a particle, a small kana, a prolonged sound mark or closing punctuation,
and never after opening punctuation (kinsoku shori, JIS X 4051 in its simple form). Inside an ASCII word a
line only breaks when the word alone is wider than the line.
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len
from rich.text import Text

#: Particles that must stay with the word before them.
PARTICLES = frozenset("がをにはのでとへもやか")
#: Characters a line must not start with: closing punctuation, small kana, iteration and length marks.
NO_START = PARTICLES | frozenset(
    "、。，．・：；？！ー…‥)]}）］｝〕〉》」』】〙〗〟’”｠»"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ々〻゛゜ゝゞヽヾ"
)
#: Characters a line must not end with: opening punctuation.
NO_END = frozenset("([{（［｛〔〈《「『【〘〖〝‘“｟«")


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def may_start_line(text: str, i: int) -> bool:
    """Whether a line may begin at `text[i]` (the line before it ends at `text[i - 1]`)."""
    if i <= 0 or i >= len(text):
        return False
    prev, ch = text[i - 1], text[i]
    if ch in NO_START or prev in NO_END or ch == " ":
        return False
    if prev == " ":
        return True
    return _wide(prev) or _wide(ch)


def _starts_badly(text: str, i: int) -> bool:
    """A line starting at `i` (after dropping spaces) would begin with a forbidden character."""
    while i < len(text) and text[i] == " ":
        i += 1
    return i < len(text) and text[i] in NO_START


def _fits(text: str, start: int, end: int, width: int) -> bool:
    return cell_len(text[start:end].rstrip(" ")) <= width


def line_starts(text: str, width: int, indent: int = 0) -> list[int]:
    """Offsets where the lines of one paragraph begin (first is 0), greedy by display width.

    Continuation lines are indented by `indent` cells, so they have `width - indent` cells for text.
    """
    starts = [0]
    start, avail = 0, width
    while cell_len(text[start:]) > avail:
        chosen = None
        for i in range(start + 1, len(text)):
            if not _fits(text, start, i, avail):
                break
            if may_start_line(text, i) and text[start:i].strip(" "):
                chosen = i
        if chosen is None:  # one word wider than the line: cut it, still not before a forbidden character
            chosen = start + 1
            while chosen < len(text) and _fits(text, start, chosen + 1, avail):
                chosen += 1
            while chosen - 1 > start and _starts_badly(text, chosen):
                chosen -= 1
        while chosen < len(text) and text[chosen] == " ":
            chosen += 1
        if chosen >= len(text):
            break
        starts.append(chosen)
        start, avail = chosen, max(8, width - indent)
    return starts


def wrap_text(text: Text, width: int) -> Text:
    """`text` with its lines broken to `width` cells by the rules above; styles kept, indentation repeated."""
    out = Text()
    for n, line in enumerate(text.split("\n", allow_blank=True)):
        if n:
            out.append("\n")
        plain = line.plain
        indent = len(plain) - len(plain.lstrip(" "))
        starts = line_starts(plain, width, indent)
        pieces = line.divide(starts[1:])
        for k, piece in enumerate(pieces):
            if k:
                out.append("\n" + " " * indent)
            piece.rstrip()
            out.append_text(piece)
    return out


def protect_spaces(text: str) -> str:
    """Spaces where no line may break become no-break spaces (for browsers, which break at any space)."""
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch == " " and 0 < i < len(chars) - 1 and (chars[i + 1] in NO_START or chars[i - 1] in NO_END):
            chars[i] = "\u00a0"
    return "".join(chars)
