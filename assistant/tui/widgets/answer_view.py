"""An answer: its text as (escaped) Markdown with clickable [n], then its sources.

When the reader found the answer phrase (``short_answer``, "Huawei"), the text opens
with it alone in bold, and it is in bold inside its sentence.

A model's answer also says what was searched (a rewritten follow-up), why it
fell back to the extractive answer, who wrote it, and, last, which sentences
were left out because their passages do not back them (struck through, each
with the reason, never as support). An extractive answer looks as it always did.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from assistant.models import Answer
from assistant.tui.messages import OpenSource
from assistant.tui.render import (
    answer_markdown,
    dropped_content,
    focus_of,
    plain,
    writer_line,
)
from assistant.tui.widgets.source_list import SourceList


def safe_parser() -> MarkdownIt:
    """CommonMark without raw HTML or autolinks: the answer text is escaped anyway."""
    return MarkdownIt("commonmark", {"html": False})


class AnswerView(Vertical):
    """Keeps its :class:`Answer` so copy and export use the data, not the screen."""

    def __init__(self, answer: Answer, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.answer = answer
        if answer.abstained:
            self.add_class("-abstained")
        if answer.low_confidence:
            self.add_class("-low-confidence")

    def compose(self) -> ComposeResult:
        answer = self.answer
        if answer.searched:
            yield Static(plain(f"Searched: {answer.searched}"), classes="searched")
        yield Markdown(answer_markdown(answer), parser_factory=safe_parser, open_links=False)
        if answer.note:
            yield Static(plain(answer.note),
                         classes="answer-note" + (" -fallback" if answer.fallback else ""))
        if answer.confidence_note():
            yield Static(answer.confidence_note(),
                         classes="confidence" + (" -low" if answer.low_confidence else ""))
        if writer_line(answer):
            yield Static(plain(writer_line(answer)), classes="generator")
        if answer.citations:
            yield Static("Sources · Tab to reach them, Enter opens the passage",
                         classes="sources-title")
            yield SourceList(answer.citations, "citation", answer.question,
                             focus_of(answer, answer.citations))
        elif answer.passages:
            yield Static("Nearest passages · not evidence for an answer",
                         classes="sources-title -nearest")
            yield SourceList(answer.passages[:3], "passage", answer.question,
                             classes="-nearest")
        if answer.left_out:  # after the answer and its sources: never read as the answer
            yield Static(dropped_content(answer.left_out), classes="dropped")

    @property
    def sources(self) -> SourceList | None:
        found = self.query(SourceList)
        return found.first() if found else None

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        """A click on an ``[n]`` marker opens citation n."""
        event.stop()
        href = event.href
        if not href.startswith("cite:"):
            return
        numbers = [c.n for c in self.answer.citations]
        try:
            index = numbers.index(int(href[5:]))
        except ValueError:
            return
        self.post_message(OpenSource(self.answer.citations, index, "citation",
                                     self.answer.question,
                                     focus_of(self.answer, self.answer.citations)))
