"""The scrolling conversation: questions, answers and short notes, oldest first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from assistant.models import Answer
from assistant.tui.render import plain
from assistant.tui.widgets.answer_view import AnswerView
from assistant.tui.widgets.draft_view import DraftView
from assistant.tui.widgets.question_view import QuestionView
from assistant.tui.widgets.source_list import SourceList


def welcome(corpus_name: str) -> Content:
    return Content.assemble(
        ("Ask a question about the documents in ", ""), (corpus_name, "bold"), ".\n\n",
        "Every answer cites its passages as [1], [2]…; Tab moves to the sources and Enter\n"
        "opens the passage highlighted in its article. Up/Down recall earlier questions.\n"
        "Ctrl+P opens the command palette; F1 lists the keys.",
    )


class ChatLog(VerticalScroll):
    """Appends as the conversation goes; :meth:`clear` starts over with the welcome text."""

    can_focus = False  # the question box and the source lists take the keyboard

    def __init__(self, corpus_name: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.corpus_name = corpus_name

    def compose(self) -> ComposeResult:
        yield Static(welcome(self.corpus_name), id="welcome")

    async def clear(self) -> None:
        await self.remove_children()
        await self.mount(Static(welcome(self.corpus_name), id="welcome"))

    def _append(self, widget: Static | AnswerView) -> None:
        for old in self.query("#welcome"):
            old.remove()
        self.mount(widget)
        self.call_after_refresh(self.scroll_end, animate=False)

    def add_question(self, question: str) -> QuestionView:
        view = QuestionView(question, classes="question")
        self._append(view)
        return view

    def add_answer(self, answer: Answer) -> AnswerView:
        view = AnswerView(answer, classes="answer")
        self._append(view)
        return view

    async def add_draft(self, generator: str) -> DraftView:
        """A model's answer being written; mounted before the first text goes in."""
        for old in self.query("#welcome"):
            old.remove()
        view = DraftView(generator, classes="draft")
        await self.mount(view)
        self.call_after_refresh(self.scroll_end, animate=False)
        return view

    def add_note(self, text: str, kind: str = "info") -> Static:
        note = Static(plain(text), classes=f"note -{kind}")
        self._append(note)
        return note

    @property
    def answers(self) -> list[AnswerView]:
        return list(self.query(AnswerView))

    @property
    def source_lists(self) -> list[SourceList]:
        return list(self.query(SourceList))
