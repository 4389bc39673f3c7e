"""Make untrusted text (documents, questions) safe to show in a terminal.

Documents may contain ANSI escape sequences or control characters that would
move the cursor, recolour or retitle the terminal. They are shown as visible
escapes (``\\x1b``) instead, so what is displayed is what the file holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character (but newline and tab) made visible."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def clean_question(text: str) -> str:
    """A question with control characters turned into spaces and runs of space folded."""
    return " ".join(_CONTROL.sub(" ", text).split())


# ``_`` inside a word cannot start emphasis in CommonMark, so file names stay readable.
_MD_INLINE = re.compile(r"([\\`*\[\]<>!&~|#]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_MD_LINE_START = re.compile(r"^([-+=]|\d+[.)])", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """``text`` as Markdown that renders literally: no emphasis, links, HTML or blocks.

    Untrusted document text and questions go through this before they are put
    into Markdown, so ``**x**``, ``[a](b)`` or ``<b>`` in an article show as typed.
    Indentation after a line break is dropped (it would start a code block); the
    text's very start is kept, as it may continue a line, so strip it if it starts one.
    """
    text = _MD_INLINE.sub(r"\\\1", re.sub(r"\n[ \t]+", "\n", printable(text)))
    return _MD_LINE_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)


MARKER = re.compile(r"\[(\d+)\]")  # an answer's citation marker: [1], [2] ...


def markdown_with_markers(text: str, marker: Callable[[int], str | None]) -> str:
    """An answer's text as literal Markdown, each ``[n]`` replaced by ``marker(n)``.

    A marker for which ``marker`` returns ``None`` (no such citation) stays as
    escaped text; everything between markers goes through :func:`escape_markdown`.
    """
    parts: list[str] = []
    pos = 0
    for m in MARKER.finditer(text):
        shown = marker(int(m.group(1)))
        if shown is None:
            continue
        parts.append(escape_markdown(text[pos : m.start()]))
        parts.append(shown)
        pos = m.end()
    parts.append(escape_markdown(text[pos:]))
    return "".join(parts)
