"""The command palette (Ctrl+P): everything the chat can do, findable by name.

Opened empty, the palette lists our commands first, then Textual's own (theme,
keys, screenshot, quit). Textual runs its providers concurrently and keeps the
order their hits arrive in (every discovery hit scores 0), and ``App.COMMANDS``
is a set, so two providers come out in no set order. One provider that yields
ours, then the built-in ones, fixes the order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits
from textual.system_commands import SystemCommandsProvider

if TYPE_CHECKING:
    from assistant.tui.app import ChatApp


class ChatCommands(SystemCommandsProvider):
    """New, open, rename, export, copy, sources panel, answerer, re-index, help; then
    Textual's."""

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
            ("Answer with a language model…",
             "A model writes the answers, every sentence checked: local, ollama:, openai:",
             app.action_choose_llm),
            ("Answer extractively", "Answers quote the passages themselves (no model)",
             lambda: app.switch_answerer(None)),
            ("Re-index documents", "Pick up added, changed or removed files in the corpus",
             lambda: app.reindex(rebuild=False)),
            ("Rebuild index from scratch", "Discard the index and build it anew (if damaged)",
             lambda: app.reindex(rebuild=True)),
            ("Help", "The keys (F1)", app.action_help),
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)
        async for hit in super().discover():
            yield hit

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
        async for hit in super().search(query):
            yield hit
