"""A question in the chat, shown exactly as typed (markup and escapes stay literal)."""

from __future__ import annotations

from textual.widgets import Static

from assistant.tui.render import plain


class QuestionView(Static):
    def __init__(self, question: str, **kwargs: object) -> None:
        super().__init__(plain(question), **kwargs)  # type: ignore[arg-type]
        self.question = question
