"""The command palette (Ctrl+P): everything the chat can do, findable by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from assistant.tui.app import ChatApp


class ChatCommands(Provider):
    """New, open, rename, export, re-index, sources panel, copy, help."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = cast("ChatApp", self.app)
        return [
            ("New conversation", "Start an empty conversation (Ctrl+N)",
             app.chat_action("new_conversation")),
            ("Open conversation…", "Reopen, rename or delete a saved conversation (Ctrl+O)",
             app.chat_action("open_conversation")),
            ("Rename conversation…", "Give this conversation another title",
             app.action_rename_conversation),
            ("Export conversation to Markdown…",
             "Write it to a .md file, citations as footnotes (Ctrl+S)",
             app.chat_action("export")),
            ("Copy answer", "Copy the answer with its citations to the clipboard (Ctrl+Y)",
             app.chat_action("copy_answer")),
            ("Show or hide sources panel", "Every passage cited in this conversation (Ctrl+B)",
             app.chat_action("toggle_sources")),
            ("Re-index documents", "Pick up added, changed or removed files in the corpus",
             lambda: app.reindex(rebuild=False)),
            ("Rebuild index from scratch", "Discard the index and build it anew (if damaged)",
             lambda: app.reindex(rebuild=True)),
            ("Help", "The keys (F1)", app.action_help),
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
