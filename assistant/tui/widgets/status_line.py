"""One line under the header saying whether the index is loading, ready or broken."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import Static


@dataclass(frozen=True)
class ServiceState:
    """What the status line shows: ``phase`` is loading, indexing, ready or error."""

    phase: str = "loading"
    detail: str = ""


class StatusLine(Static):
    """Mirrors the app's ``service_state`` so a person knows if they can ask yet."""

    def on_mount(self) -> None:
        self.watch(self.app, "service_state", self.show_state)

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
        self.update(Content.assemble(*parts))
