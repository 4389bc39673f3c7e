"""The chat beyond one answer: saved conversations, Markdown export, copying, the command
palette, the sources panel, Markdown escaping, what the chat imports, and how confidence
shows; the way a person uses them, over the real Assistant and a copy of seeds/."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList
from textual.widgets import Markdown
from tui_helpers import (
    ONE_CITATION,
    SIZE,
    TWO_CITATIONS,
    SharedService,
    app_over,
    ask,
    chat,
    enter_text,
    screen_text,
    settle,
)

from assistant.config import Config
from assistant.models import Answer
from assistant.phrase import phrase_line
from assistant.service import Assistant
from assistant.tui.commands import ChatCommands
from assistant.tui.screens.conversations import ConversationsScreen
from assistant.tui.screens.help import HelpScreen
from assistant.tui.screens.source import SourceScreen
from assistant.tui.widgets.answer_view import AnswerView

pytestmark = [pytest.mark.slow, pytest.mark.anyio]



async def test_conversation_is_saved_reopened_renamed_and_deleted(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        first_answer = app.query_one(AnswerView).answer
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert not app.query(AnswerView) and chat(app).conversation_id is None
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert isinstance(app.screen, ConversationsScreen)
        assert ONE_CITATION in screen_text(app)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"Summit", "enter")  # typed, like a person
        await settle(pilot)
        assert "Summit" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        screen = chat(app)
        assert screen.sub_title == "Summit"
        reopened = app.query_one(AnswerView).answer
        assert reopened.text == first_answer.text
        assert [(c.n, c.source, c.start, c.end, c.text) for c in reopened.citations] == [
            (c.n, c.source, c.start, c.end, c.text) for c in first_answer.citations]
        await ask(pilot, "What did they agree on?")  # a follow-up in the reopened conversation
        assert service.asked[-1][1] == [ONE_CITATION]
        await pilot.press("ctrl+o")
        await settle(pilot)
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert "No saved conversations yet." in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert chat(app).conversation_id is None  # the open one was deleted


async def test_export_writes_markdown_with_footnotes(
        config: Config, service: SharedService, tmp_path: Path) -> None:
    app = app_over(config, service)
    target = tmp_path / "out.md"
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, TWO_CITATIONS)
        answer = app.query_one(AnswerView).answer
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k")
        await enter_text(pilot, str(target))
        await pilot.press("enter")
        await settle(pilot)
    md = target.read_text()
    assert md.startswith("# What does China provide Russia")
    for c in answer.citations:
        assert f"[^{c.n}]: {c.source}, chars {c.start}-{c.end}\n\n    > " in md
        assert f"[^{c.n}]" in md.split("[^1]:")[0]  # the marker in the answer text


async def test_copy_answer_with_citations(config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        await pilot.press("ctrl+y")
        answer = app.query_one(AnswerView).answer
        c = answer.citations[0]
        # the phrase the reader found ("Moscow") alone on the first line, then the answer
        line = phrase_line(answer)
        assert line and app.clipboard.startswith(f"{line}\n\n{answer.text.strip()}")
        assert f"[1] {c.source}, chars {c.start}-{c.end}" in app.clipboard
        assert answer.confidence_note() and answer.confidence_note() in app.clipboard


async def test_command_palette_offers_the_chat_commands(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        assert "New conversation" in screen_text(app)  # offered before typing anything
        for query, name in [("new", "New conversation"), ("open conv", "Open conversation…"),
                            ("export", "Export conversation to Markdown…"),
                            ("re-index", "Re-index documents"),
                            ("sources panel", "Show or hide sources panel"),
                            ("copy", "Copy answer"), ("help", "Help")]:
            await enter_text(pilot, query)
            await pilot.pause(0.3)
            assert name in screen_text(app), name
            await pilot.press("ctrl+a", "ctrl+k")
        await pilot.press(*"help", "enter")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)


async def test_command_palette_lists_our_commands_before_textuals(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        ours = [name for name, _h, _run in ChatCommands(app.screen)._commands()]  # noqa: SLF001
        builtin = sorted(c.title for c in app.get_system_commands(app.screen) if c.discover)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.pause(0.3)
        listed = app.screen.query_one(CommandList)
        shown = [listed.get_option_at_index(i).hit.text for i in range(listed.option_count)]
        assert shown == ours + builtin  # each once: ours first, then Textual's, by name
        lines = screen_text(app).splitlines()
        first = next(i for i, line in enumerate(lines) if ours[0] in line)
        assert all(ours[0] not in line for line in lines[:first])
        assert not any(b in line for line in lines[:first] for b in builtin), (
            "a built-in command is shown above ours")


async def test_sources_panel_lists_and_opens_citations(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        await pilot.press("ctrl+b")
        await pilot.pause()
        answer = app.query_one(AnswerView).answer
        assert "Sources in this conversation" in screen_text(app)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SourceScreen)
        assert app.screen.item == answer.citations[0]


async def test_markdown_is_escaped_but_markers_stay_links(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        source = app.query_one(Markdown).source
        assert "[\\[1\\]](cite:1)" in source


def test_tui_does_not_import_llama_index_or_chroma() -> None:
    code = ("import sys, assistant.tui.app; "
            "bad = [m for m in ('llama_index', 'chromadb', 'onnxruntime') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


class ConfidenceSet(SharedService):
    """The real answers, with their confidence set by the test: what the chat shows for
    a low-confidence answer must not hang on where the calibration puts a question."""

    def __init__(self, service: Any, confidence: float) -> None:
        super().__init__(service)
        self.confidence = confidence

    def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
        import dataclasses

        return dataclasses.replace(super().ask(question, history, **kwargs),
                                   confidence=self.confidence)


@pytest.mark.parametrize(("confidence", "shown", "low"), [
    (0.3, "Low confidence (30%): check the cited passages", True),
    (0.9, "Confidence 90%.", False),
])
async def test_low_confidence_answers_are_marked(
        config: Config, opened: tuple[Config, Assistant], home: Path,
        confidence: float, shown: str, low: bool) -> None:
    app = app_over(config, ConfidenceSet(opened[1], confidence))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        view = app.query_one(AnswerView)
        assert not view.answer.abstained
        assert shown in screen_text(app)
        assert view.has_class("-low-confidence") is low
        assert ("Low confidence" in screen_text(app)) is low
