"""Shows that the assistant is working, and that Escape stops it."""

from __future__ import annotations

from textual.content import Content
from textual.timer import Timer
from textual.widgets import Static

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class BusyIndicator(Static):
    """Hidden until :meth:`start`; spins while shown."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._label = ""
        self._frame = 0
        self._timer: Timer | None = None

    @property
    def busy(self) -> bool:
        return self.has_class("-busy")

    def start(self, label: str) -> None:
        self._label = label
        self.add_class("-busy")
        self._render_frame()
        if self._timer is None:
            self._timer = self.set_interval(0.1, self._tick)

    def stop(self) -> None:
        self.remove_class("-busy")
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        self._frame = (self._frame + 1) % len(_FRAMES)
        self._render_frame()

    def _render_frame(self) -> None:
        self.update(Content.assemble(
            (_FRAMES[self._frame], "bold"), f" {self._label}  ", ("Esc cancels", "dim")
        ))
