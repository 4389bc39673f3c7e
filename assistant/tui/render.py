"""Turning untrusted text into something safe to show, without losing offsets.

Documents and questions may hold Rich markup (``[bold red]``), Markdown, ANSI
escapes or control characters. They only ever reach the screen as
:class:`~textual.content.Content` built from plain strings (never parsed as
markup), as escaped Markdown, and after :func:`assistant.textsafe.printable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.content import Content

from assistant.models import Answer, Citation, Passage, SentenceCheck
from assistant.phrase import answer_markdown_text, phrase_line
from assistant.textsafe import MARKER, printable

_SPECIAL = re.compile(r"\r\n?|[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain(text: str) -> Content:
    """``text`` as literal content: markup is not parsed, control characters are shown."""
    return Content(printable(text))


def one_line(text: str, limit: int) -> str:
    """A single printable line of at most ``limit`` characters."""
    line = " ".join(printable(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def answer_markdown(answer: Answer) -> str:
    """The answer as Markdown: its text escaped, each ``[n]`` a link to citation n; with
    a short answer, first that phrase alone in bold, and it in bold in its sentence."""
    cited = {c.n for c in answer.citations}
    return answer_markdown_text(
        answer, lambda n: f"[\\[{n}\\]](cite:{n})" if n in cited else None
    )


def claims(answer: Answer) -> dict[int, str]:
    """For each marker ``[n]``, the answer text it backs (what precedes it)."""
    out: dict[int, str] = {}
    pos, last = 0, ""
    for m in MARKER.finditer(answer.text):
        last = answer.text[pos:m.start()].strip() or last
        out.setdefault(int(m.group(1)), last)
        pos = m.end()
    return out


def focus_of(answer: Answer, items: tuple[Citation | Passage, ...]) -> tuple[str, ...]:
    """Per item, the claim it backs when that claim is quoted from it, else ``""``."""
    backs = claims(answer)
    return tuple(
        backs.get(item.n, "") if isinstance(item, Citation) and backs.get(item.n, "") in item.text
        else "" for item in items
    )


def source_label(item: Citation | Passage, index: int, focus: str = "",
                 width: int = 160) -> Content:
    """Two lines: where the passage is, then the words the answer relies on (or its start)."""
    tag = f"[{item.n}]" if isinstance(item, Citation) else f"{index + 1}."
    head = Content.assemble(
        (tag, "bold"), " ", plain(item.source), (f"  chars {item.start}-{item.end}", "dim")
    )
    at = item.text.find(focus) if focus else -1
    excerpt = one_line(item.text[max(at, 0):], width)
    # Quoted from inside the passage: say from where, rather than open with "…", which
    # under "chars 0-743" read as text cut before the document's first character.
    where = (f"from char {item.start + at}: ", "dim") if at > 0 else ""
    quote = Content.assemble("    ", where, ("“" + excerpt + "”", "italic"))
    return Content.assemble(head, "\n", quote)


def writer_line(answer: Answer) -> str:
    """Who wrote the answer; ``""`` for the extractive answerer (said nothing before models)."""
    if answer.generator == "extractive":
        return ""
    if answer.fallback:
        return (f"Extracted from the passages by the extractive answerer: {answer.generator} "
                "was asked, but its answer is not shown.")
    return f"Written by {answer.generator}; each sentence checked against the passages it cites."


def model_failed(answer: Answer) -> bool:
    """The model could not be reached, so this is the extractive answer (``note`` says why).

    The other fallbacks (the model found nothing, or nothing it wrote was backed) ran
    the model: only these carry its ``generate`` time.
    """
    return answer.fallback and "generate" not in answer.timings_ms


LEFT_OUT_TITLE = "Left out of the answer · the model wrote these; the passages do not back them:"


def dropped_content(checks: list[SentenceCheck]) -> Content:
    """The left-out sentences, struck through, each with why: shown after the answer and
    its sources, so the reader knows, never as if it were the answer."""
    parts: list[str | tuple[str, str]] = [(LEFT_OUT_TITLE, "italic")]
    for c in checks:
        parts += ["\n", "  ✗ ", (printable(c.text), "strike"), (f"  {c.marks()}", ""),
                  "\n", ("    " + printable(c.why()), "italic")]
    return Content.assemble(*parts)


def answer_as_text(answer: Answer) -> str:
    """The answer (after its short answer alone, when it has one) and its citations as
    plain text, for the clipboard."""
    lines = [f"Searched: {answer.searched}", ""] if answer.searched else []
    if line := phrase_line(answer):
        lines += [line, ""]
    lines.append(answer.text.strip())
    if answer.note:
        lines += ["", f"Note: {answer.note}"]
    if answer.confidence_note():
        lines += ["", answer.confidence_note()]
    if writer_line(answer):
        lines.append(writer_line(answer))
    if answer.citations:
        lines.append("")
        for c in answer.citations:
            lines.append(f"[{c.n}] {c.source}, chars {c.start}-{c.end}")
            lines += [f"> {line}" for line in c.text.splitlines() if line.strip()]
    if answer.left_out:
        lines += ["", LEFT_OUT_TITLE]
        lines += [f"- {c.text} ({c.marks()}): {c.why()}"
                  for c in answer.left_out]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Display:
    """A document made printable, with ``offsets[i]`` = display index of file index ``i``."""

    text: str
    offsets: list[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        n = len(self.offsets) - 1
        return self.offsets[max(0, min(start, n))], self.offsets[max(0, min(end, n))]


def display_text(text: str) -> Display:
    """Show ``text`` literally: CRLF/CR become newlines, control characters visible escapes."""
    out: list[str] = []
    offsets: list[int] = []
    pos = 0
    size = 0
    for m in _SPECIAL.finditer(text):
        run = text[pos:m.start()]
        offsets.extend(range(size, size + len(run)))
        out.append(run)
        size += len(run)
        token = m.group(0)
        if token[0] == "\r":  # a line break; the \r of \r\n takes no room
            offsets.extend([size] * len(token))
            out.append("\n")
            size += 1
        else:
            shown = printable(token)
            offsets.append(size)
            out.append(shown)
            size += len(shown)
        pos = m.end()
    run = text[pos:]
    offsets.extend(range(size, size + len(run)))
    out.append(run)
    size += len(run)
    offsets.append(size)
    return Display("".join(out), offsets)


_PUNCTUATION = frozenset("\\`*_[]<>!&~|#-+=.)(:\"'")


class DraftEscaper:
    """A model's text, delta by delta, as Markdown that renders literally.

    :func:`escape_markdown` needs whole lines (a list marker ``1.`` may arrive as
    ``1`` then ``.``); here every punctuation mark that could start a block or an
    inline construct is escaped wherever it stands, and indentation at a line's
    start (a code block) is dropped, so each delta can be escaped on its own.
    """

    def __init__(self) -> None:
        self._line_start = True

    def feed(self, delta: str) -> str:
        out: list[str] = []
        for ch in printable(delta):
            if self._line_start and ch in " \t":
                continue
            self._line_start = ch == "\n"
            out.append("\\" + ch if ch in _PUNCTUATION else ch)
        return "".join(out)
