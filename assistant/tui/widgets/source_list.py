"""The citations (or nearest passages) under an answer; Enter or a click opens one."""

from __future__ import annotations

from textual.widgets import OptionList
from textual.widgets.option_list import Option

from assistant.models import Citation, Passage
from assistant.tui.messages import OpenSource
from assistant.tui.render import source_label


class SourceList(OptionList):
    """Lists ``items`` as source, offsets and a short excerpt; selecting opens the viewer."""

    def __init__(self, items: tuple[Citation | Passage, ...], kind: str, question: str,
                 focus: tuple[str, ...] = (), **kwargs: object) -> None:
        focus = focus or ("",) * len(items)
        super().__init__(
            *[Option(source_label(item, i, focus[i])) for i, item in enumerate(items)],
            **kwargs,  # type: ignore[arg-type]
        )
        self.items = items
        self.kind = kind
        self.question = question
        self.claims = focus

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(OpenSource(self.items, event.option_index, self.kind, self.question,
                                     self.claims))
