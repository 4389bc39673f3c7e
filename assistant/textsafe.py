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


def markdown_bold(line: str) -> str:
    """One line of untrusted text (a short answer) as literal Markdown, in bold."""
    return f"**{escape_markdown(line)}**"


MARKER = re.compile(r"\[(\d+)\]")  # an answer's citation marker: [1], [2] ...


def markdown_with_markers(text: str, marker: Callable[[int], str | None],
                          strong: tuple[int, int] | None = None) -> str:
    """An answer's text as literal Markdown, each ``[n]`` replaced by ``marker(n)``.

    A marker for which ``marker`` returns ``None`` (no such citation) stays as
    escaped text; everything between markers goes through :func:`escape_markdown`.
    ``text[start:end]`` of ``strong`` (the short answer) is set in bold, unless it cuts
    a marker or CommonMark would not read its ``**`` as bold there (``US$5``: "$5"
    bold after a letter), where it stays plain rather than show stray asterisks.
    """
    if strong is not None:
        start, end = strong
        cut = any(m.start() < at < m.end() for m in MARKER.finditer(text) for at in strong)
        if start < end and not cut:
            before, inside, after = (markdown_with_markers(part, marker)
                                     for part in (text[:start], text[start:end], text[end:]))
            bold = f"{before}**{inside}**{after}"
            if _one_bold(bold):
                return bold
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


def _one_bold(markdown: str) -> bool:
    """CommonMark reads exactly one bold span in ``markdown`` (its one pair of ``**``)."""
    from markdown_it import MarkdownIt  # Textual's Markdown parser; `ask` never needs it

    tokens = MarkdownIt("commonmark", {"html": False}).parse(markdown)
    kinds = [t.type for block in tokens for t in block.children or ()]
    return kinds.count("strong_open") == 1 and kinds.count("strong_close") == 1
