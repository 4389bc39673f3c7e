"""One line under the header: whether the index is loading, ready or broken, and who
writes the answers (the extractive answerer, or a language model's spec)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import Static

from assistant.textsafe import printable


@dataclass(frozen=True)
class ServiceState:
    """What the status line shows: ``phase`` is loading, indexing, ready or error."""

    phase: str = "loading"
    detail: str = ""


class StatusLine(Static):
    """Mirrors the app's ``service_state`` and ``answerer`` so a person knows if they can
    ask yet, and what will answer."""

    def on_mount(self) -> None:
        self.watch(self.app, "service_state", self.show_state)
        self.watch(self.app, "answerer", lambda _: self.show_state(
            getattr(self.app, "service_state", ServiceState())))

    def show_state(self, state: ServiceState) -> None:
        for phase in ("loading", "indexing", "ready", "error"):
            self.set_class(state.phase == phase, f"-{phase}")
        icon = {"ready": "●", "error": "✖"}.get(state.phase, "◌")
        label = {
            "loading": "loading index…",
            "indexing": "indexing…",
            "ready": "ready",
            "error": "index not loaded",
        }.get(state.phase, state.phase)
        parts: list[str | tuple[str, str]] = [(f"{icon} {label}", "bold")]
        if state.detail:
            parts += [" · ", state.detail]
        answerer = getattr(self.app, "answerer", "")
        if answerer:
            parts += [" · answers: ", printable(answerer)]
        self.update(Content.assemble(*parts))
