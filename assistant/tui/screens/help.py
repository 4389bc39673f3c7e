"""The keys, in one place (F1, or "Help" in the command palette)."""

from __future__ import annotations

import textwrap

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Chat", [
        ("Enter", "send the question"),
        ("Up / Down", "recall earlier questions"),
        ("Esc", "cancel the question being answered"),
        ("Tab", "to the newest answer's sources; Tab again: back to the question"),
        ("Shift+Tab", "in sources: the previous answer's sources"),
        ("Enter / click", "on a source or an [n]: open the passage in its article"),
        ("Esc", "in sources: back to the question box"),
        ("PgUp / PgDn", "scroll the conversation"),
        ("Ctrl+Y", "copy the answer with its citations"),
    ]),
    ("Answers", [
        ("Ctrl+P", "“Answer with a language model…”: local, ollama:MODEL, "
                   "openai:MODEL\u00a0[URL] or llamacpp:PATH.gguf"),
        ("Ctrl+P", "“Answer extractively”: answers quote the passages (no model)"),
        ("Esc", "stop a model while it writes (its draft is not kept)"),
    ]),
    ("Source viewer", [
        ("n / p", "next / previous citation of the same answer"),
        ("y", "copy the passage"),
        ("Esc / q", "back to the chat"),
    ]),
    ("Conversations", [
        ("Ctrl+N", "new conversation"),
        ("Ctrl+O", "open a saved conversation (rename with r, delete with d)"),
        ("Ctrl+S", "export the conversation to Markdown"),
        ("Ctrl+B", "show or hide the sources panel"),
        ("Ctrl+P", "command palette: all of the above, plus re-index and the answerer"),
        ("Ctrl+Q", "quit"),
    ]),
]


KEY_WIDTH = 16  # "  " + the key, padded
# The dialog (app.tcss .help, width 90) shows about 84 columns: what a key does is
# wrapped here, under itself, so that the terminal never wraps it back to the left edge;
# a no-break space keeps "openai:MODEL [URL]" together.
WHAT_WIDTH = 66


def help_text() -> Content:
    parts: list[str | tuple[str, str]] = []
    for section, keys in KEYS:
        parts += [(section, "bold underline"), "\n"]
        for key, what in keys:
            lines = textwrap.wrap(what, WHAT_WIDTH) or [""]
            parts += [(f"  {key:<{KEY_WIDTH - 2}}", "bold"), lines[0], "\n"]
            parts += [x for line in lines[1:] for x in (" " * KEY_WIDTH + line, "\n")]
        parts.append("\n")
    parts.append(("Answers come only from the documents; [n] marks the passage a sentence "
                  "rests on. When the documents do not answer, the nearest passages are "
                  "listed instead, marked as not being evidence. A model's sentences are "
                  "checked when it has finished: those their passages do not back are left "
                  "out, listed last, struck through, each with why.", "italic"))
    return Content.assemble(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static("Keys", classes="dialog-title")
            yield Static(help_text())
