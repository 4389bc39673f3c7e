"""A model's answer as it is being written: text appended as it arrives, never re-rendered.

The draft is not the answer: nothing in it has been checked yet, so it is shown
dim under a label that says so, and the checked answer replaces it. Deltas come
from the worker already batched (a few per second); if the screen still falls
behind, what arrived meanwhile goes in one :meth:`Markdown.append`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Markdown, Static

from assistant.tui.render import DraftEscaper
from assistant.tui.widgets.answer_view import safe_parser

BATCH_SECONDS = 0.05  # at most ~20 messages a second, whatever the model's token rate


class DeltaBatcher:
    """Collects a model's deltas in the worker thread and hands them on in batches:
    one message per token would flood the UI's queue (a fast server sends hundreds a
    second). The first delta goes at once, so the first words show without delay."""

    def __init__(self, post: Callable[[str], None]) -> None:
        self.post = post
        self._parts: list[str] = []
        self._last = -BATCH_SECONDS
        self._lock = threading.Lock()

    def add(self, delta: str) -> None:
        with self._lock:
            self._parts.append(delta)
            now = time.monotonic()
            if now - self._last < BATCH_SECONDS:
                return
            text, self._last = "".join(self._parts), now
            self._parts.clear()
        self.post(text)


class DraftView(Vertical):
    """Keeps what it was sent (``text``) and how many appends reached its Markdown."""

    def __init__(self, generator: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.generator = generator
        self.appends = 0
        self._received: list[str] = []
        self._escaper = DraftEscaper()
        self._pending: list[str] = []
        self._flushing = False

    def compose(self) -> ComposeResult:
        yield Static(Content.assemble(
            (f"{self.generator} is writing", "bold"),
            " · a draft: each sentence is checked against its passages when it is complete",
        ), classes="draft-title")
        yield Markdown(parser_factory=safe_parser, open_links=False)

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    @property
    def text(self) -> str:
        """Everything the model has written so far (as written, not escaped)."""
        return "".join(self._received)

    def add(self, delta: str) -> None:
        """Queue ``delta`` to be appended (from the UI thread)."""
        self._received.append(delta)
        self._pending.append(self._escaper.feed(delta))
        if not self._flushing:
            self._flushing = True
            self.run_worker(self._flush(), group="draft", exit_on_error=False)

    async def _flush(self) -> None:
        try:
            while self._pending and self.is_attached:
                chunk = "".join(self._pending)
                self._pending.clear()
                self.appends += 1
                await self.markdown.append(chunk)
        finally:
            self._flushing = False
