"""Where an answer's short answer ("Huawei") stands in its text.

Every place that shows an answer (the chat, ``ask``, the Markdown export, the copied
text) puts the phrase alone on the answer's first line, and the chat and the export
also set it in bold inside its sentence: these say what that line is and which
characters of the answer text to set in bold. Headless: no Textual here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from assistant.models import Answer
from assistant.textsafe import MARKER, markdown_bold, markdown_with_markers

_MARKER_RUN = re.compile(r"\[\d+\](?:\s*\[\d+\])*")  # "[1]", "[1][2]", "[1] [2]"


def phrase_line(answer: Answer) -> str:
    """The short answer on one line ('' when there is none, or the answer is a refusal)."""
    short = answer.short_answer
    if short is None or answer.abstained:
        return ""
    return " ".join(short.text.split())


def answer_markdown_text(answer: Answer, marker: Callable[[int], str | None]) -> str:
    """The answer's text as literal Markdown, each ``[n]`` as ``marker(n)`` makes it (see
    :func:`~assistant.textsafe.markdown_with_markers`); with a short answer, first that
    phrase alone in bold, then the text with it in bold in its sentence."""
    body = markdown_with_markers(answer.text.strip(), marker, phrase_span(answer))
    line = phrase_line(answer)
    return f"{markdown_bold(line)}\n\n{body}" if line else body


def phrase_span(answer: Answer) -> tuple[int, int] | None:
    """Where the short answer stands in ``answer.text.strip()``, or None when it is not
    there. Its words match whatever whitespace parts them (a quoted sentence has its
    whitespace collapsed), never inside a ``[n]`` marker. Where it stands more than once,
    the place taken is, in this order: in the same characters (a model may write
    "huawei"), in the sentence quoted from the passage it was read in, whole words
    ("Xi", not the start of "Xinhua"), the first."""
    words = phrase_line(answer).split()
    short = answer.short_answer
    if not words or short is None:
        return None
    text = answer.text.strip()
    pattern = r"\s+".join(map(re.escape, words))
    markers = [m.span() for m in MARKER.finditer(text)]
    found = [m for flags in (0, re.IGNORECASE) for m in re.finditer(pattern, text, flags)
             if not any(s < m.end() and m.start() < e for s, e in markers)]
    if not found:
        return None
    holders = {c.n for c in answer.citations if c.source == short.source
               and c.start <= short.start and short.end <= c.end}

    def rank(m: re.Match[str]) -> tuple[bool, bool, bool, int]:
        return (m.re.flags & re.IGNORECASE != 0, not _closing_markers(text, m.end()) & holders,
                not _whole_words(text, m), m.start())

    return min(found, key=rank).span()


def _closing_markers(text: str, pos: int) -> set[int]:
    """The ``[n]`` markers that close the sentence going on at ``pos`` ("... [1] [2]")."""
    m = MARKER.search(text, pos)
    run = _MARKER_RUN.match(text, m.start()) if m is not None else None
    return {int(n) for n in MARKER.findall(run.group(0))} if run is not None else set()


def _whole_words(text: str, m: re.Match[str]) -> bool:
    """The match neither starts nor ends inside a word ("Xi", not the start of "Xinhua")."""
    before = text[m.start() - 1] if m.start() else " "
    after = text[m.end()] if m.end() < len(text) else " "
    return not (before.isalnum() and m.group(0)[0].isalnum()) and not (
        after.isalnum() and m.group(0)[-1].isalnum())
