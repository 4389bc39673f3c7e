"""A side panel listing every passage cited in this conversation, by question."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from assistant.models import Answer
from assistant.tui.messages import OpenSource
from assistant.tui.render import focus_of, one_line, plain


class SourcesPanel(Vertical):
    """Hidden until toggled; selecting an entry opens it like a citation under an answer."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._entries: list[tuple[Answer, int]] = []

    def compose(self) -> ComposeResult:
        yield Static("Sources in this conversation", classes="panel-title")
        yield OptionList(id="sources-list")

    @property
    def options(self) -> OptionList:
        return self.query_one("#sources-list", OptionList)

    def clear(self) -> None:
        self._entries = []
        self.options.clear_options()

    def add_answer(self, number: int, answer: Answer) -> None:
        options = self.options
        if not answer.citations:
            return
        options.add_option(Option(Content.assemble(
            (f"Q{number} ", "bold"), one_line(answer.question, 40)), disabled=True))
        self._entries.append((answer, -1))
        for i, c in enumerate(answer.citations):
            options.add_option(Option(Content.assemble(
                (f" [{c.n}] ", "bold"), plain(c.source), (f" {c.start}-{c.end}", "dim"))))
            self._entries.append((answer, i))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        answer, index = self._entries[event.option_index]
        if index >= 0:
            self.post_message(OpenSource(answer.citations, index, "citation", answer.question,
                                         focus_of(answer, answer.citations)))
