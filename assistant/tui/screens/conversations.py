"""Saved conversations: open one (Enter), rename (r) or delete (d) it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from assistant.conversation import ConversationError, ConversationInfo
from assistant.tui.render import plain
from assistant.tui.screens.confirm import ConfirmScreen
from assistant.tui.screens.prompt import PromptScreen

if TYPE_CHECKING:
    from assistant.tui.app import ChatApp


def _label(info: ConversationInfo, current: bool) -> Content:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated))
    count = f"{info.turns} question{'s' if info.turns != 1 else ''}"
    return Content.assemble(
        ("● " if current else "  ", "bold"), plain(info.title), "\n",
        (f"    {count} · {when}", "dim"),
    )


class ConversationsScreen(ModalScreen[int | None]):
    """Dismisses with the id of the conversation to open, or ``None``."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
    ]

    def __init__(self, current: int | None) -> None:
        super().__init__()
        self.current = current
        self.infos: list[ConversationInfo] = []

    @property
    def chat_app(self) -> ChatApp:
        return cast("ChatApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog conversations"):
            yield Static("Conversations", classes="dialog-title")
            yield OptionList(id="conversation-list")
            yield Static("Enter open · r rename · d delete · Esc close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.reload()

    @property
    def options(self) -> OptionList:
        return self.query_one(OptionList)

    def reload(self) -> None:
        try:
            self.infos = self.chat_app.store.conversations()
        except ConversationError as exc:
            self.chat_app.show_error(exc)
            self.infos = []
        options = self.options
        keep = options.highlighted
        options.clear_options()
        options.add_options([Option(_label(i, i.id == self.current)) for i in self.infos])
        if not self.infos:
            options.add_option(Option("No saved conversations yet.", disabled=True))
        elif keep is not None:
            options.highlighted = min(keep, len(self.infos) - 1)
        else:
            options.highlighted = 0

    @property
    def selected(self) -> ConversationInfo | None:
        index = self.options.highlighted
        if index is None or not 0 <= index < len(self.infos):
            return None
        return self.infos[index]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self.infos):
            self.dismiss(self.infos[event.option_index].id)

    def action_rename(self) -> None:
        info = self.selected
        if info is None:
            return

        def renamed(title: str | None) -> None:
            if not title:
                return
            try:
                self.chat_app.store.rename(info.id, title)
            except ConversationError as exc:
                self.chat_app.show_error(exc)
                return
            self.chat_app.conversation_renamed(info.id, title)
            self.reload()

        self.app.push_screen(PromptScreen("Rename conversation", info.title), renamed)

    def action_delete(self) -> None:
        info = self.selected
        if info is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.chat_app.store.delete(info.id)
            except ConversationError as exc:
                self.chat_app.show_error(exc)
                return
            self.chat_app.conversation_deleted(info.id)
            self.reload()

        self.app.push_screen(ConfirmScreen(f"Delete “{info.title}”? This cannot be undone."),
                             confirmed)
