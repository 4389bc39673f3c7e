"""The article behind a citation, with the cited passage highlighted; n/p step through.

This is where a person checks an answer, so the title says which citation of
how many this is and where it sits, and warns when the file changed since the
answer was given (the offsets would no longer point at the quoted text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from assistant.errors import AssistantError
from assistant.models import Citation, Passage
from assistant.tui.render import one_line, plain
from assistant.tui.widgets.source_view import SourceView

if TYPE_CHECKING:
    from assistant.tui.app import ChatApp


class SourceScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("n", "step(1)", "Next"),
        Binding("p", "step(-1)", "Previous"),
        Binding("y", "copy_passage", "Copy passage"),
    ]
    AUTO_FOCUS = "SourceView"

    def __init__(self, items: tuple[Citation | Passage, ...], index: int,
                 kind: str = "citation", question: str = "",
                 focus: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.items = items
        self.index = index
        self.kind = kind
        self.question = question
        self.claims = focus or ("",) * len(items)
        self._texts: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="source-title")
        yield SourceView(id="document")
        yield Footer()

    async def on_mount(self) -> None:
        self.sub_title = "Sources" if self.kind == "citation" else "Nearest passages"
        await self.show(self.index)

    @property
    def item(self) -> Citation | Passage:
        return self.items[self.index]

    @property
    def view(self) -> SourceView:
        return self.query_one(SourceView)

    async def show(self, index: int) -> None:
        self.index = index
        item = self.item
        try:
            text = self._texts.get(item.source)
            if text is None:
                text = cast("ChatApp", self.app).backend.document_text(item.source)
                self._texts[item.source] = text
        except AssistantError as exc:
            cast("ChatApp", self.app).show_error(exc, title="Cannot open the source")
            self.app.pop_screen()
            return
        changed = text[item.start:item.end] != item.text
        self.query_one("#source-title", Static).update(self._title(changed))
        self.set_class(changed, "-changed")
        await self.view.show(text, item.start, item.end, self.claims[index])

    def _title(self, changed: bool) -> Content:
        item = self.item
        if isinstance(item, Citation):
            what = f"Citation [{item.n}]"
        else:
            what = f"Nearest passage {self.index + 1} (not evidence)"
        parts: list[Content | str | tuple[str, str]] = [
            (what, "bold"), f"  {self.index + 1} of {len(self.items)}  ·  ",
            plain(item.source), f"  ·  chars {item.start}-{item.end}",
        ]
        if self.question:
            parts += ["\n", ("Q: ", "bold"), one_line(self.question, 110)]
        claim = self.claims[self.index]
        if claim:
            parts += ["\n", ("Cited for: ", "bold"), ("“" + one_line(claim, 100) + "”", "italic")]
        if changed:
            parts += ["\n", ("⚠ The file changed since this answer; the highlight may be off.",
                             "bold")]
        return Content.assemble(*parts)

    async def action_step(self, step: int) -> None:
        if len(self.items) < 2:
            self.notify("This answer has only one source.", timeout=2)
            return
        await self.show((self.index + step) % len(self.items))

    def action_copy_passage(self) -> None:
        item = self.item
        self.app.copy_to_clipboard(f"{item.source}, chars {item.start}-{item.end}\n{item.text}")
        self.notify("Copied the passage.", timeout=2)
