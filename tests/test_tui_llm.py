"""The chat with a language model writing the answers: the real app, the real bundled model.

Each answer from SmolLM2 costs seconds (far more on a busy machine), so these tests
are few and each checks several things. What the model writes varies with the
question, so the assertions hold for any outcome the answerer allows: sentences
kept with checked citations, sentences left out, or the extractive fallback.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown
from tui_helpers import SIZE, SharedService, app_over, enter_text, screen_text, settle

from assistant.config import Config
from assistant.conversation import ConversationStore
from assistant.errors import Cancelled
from assistant.export import export_markdown
from assistant.llm import LlmSpec
from assistant.models import Answer
from assistant.service import Assistant
from assistant.tui.screens.chat import ChatScreen
from assistant.tui.screens.prompt import PromptScreen
from assistant.tui.screens.source import SourceScreen
from assistant.tui.widgets.answer_view import AnswerView
from assistant.tui.widgets.draft_view import DraftView

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

QUESTION = "Where did Vladimir Putin and Xi Jinping meet?"
PLANTED_KEY = "sk-planted-TUI-4f9c2e7d"


class Recording(SharedService):
    """The real service; remembers how each ask ended (an answer or an exception).

    Each streamed piece reaches the chat ``DELTA_DELAY`` later, as from a slower model:
    on a quiet machine (or a second time, its prompt cached by llama.cpp) SmolLM2 writes
    a short answer in a fraction of a second, before a test could see it streaming or
    press Esc while it writes.
    """

    DELTA_DELAY = 0.05

    def __init__(self, service: Any) -> None:
        super().__init__(service)
        self.outcomes: list[Answer | BaseException] = []

    def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
        chat_delta = kwargs.get("on_delta")
        if chat_delta is not None:
            def slowed(delta: str) -> None:
                time.sleep(self.DELTA_DELAY)
                chat_delta(delta)

            kwargs["on_delta"] = slowed
        try:
            answer = super().ask(question, history, **kwargs)
        except BaseException as exc:
            self.outcomes.append(exc)
            raise
        self.outcomes.append(answer)
        return answer


@pytest.fixture
def service(opened: tuple[Config, Assistant]) -> Recording:
    return Recording(opened[1])


def notes(app: Any, severity: str) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications if n.severity == severity]


async def wait_for_draft(pilot: Pilot[Any], seconds: float = 300) -> DraftView:
    """Until the model's first words are on screen (slow on a busy machine)."""
    for _ in range(int(seconds / 0.1)):
        found = pilot.app.query(DraftView)
        if found and found.first().appends:
            return found.first()
        await pilot.pause(0.1)
    raise AssertionError("the model wrote nothing")


async def test_answer_streams_into_a_draft_then_the_checked_answer_replaces_it(
        opened: tuple[Config, Assistant], service: Recording,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = opened[0]
    appends: list[tuple[str, bool]] = []  # (fragment, was the answer already shown?)
    real_append = Markdown.append

    def spy(self: Markdown, markdown: str) -> Any:
        if isinstance(self.parent, DraftView):
            appends.append((markdown, bool(self.app.query(AnswerView))))
        return real_append(self, markdown)

    monkeypatch.setattr(Markdown, "append", spy)
    app = app_over(config, service, llm=LlmSpec.parse("local"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "answers: local" in screen_text(app)
        await enter_text(pilot, QUESTION)
        await pilot.press("enter")
        draft = await wait_for_draft(pilot)
        assert "local is writing" in screen_text(app)
        await settle(pilot)
        (answer,) = service.outcomes
        assert isinstance(answer, Answer) and answer.generator == "local"
        assert len(appends) >= 3, appends  # appended piece by piece, not set once
        assert not any(shown for _f, shown in appends)  # all before the answer came
        assert draft.text and not draft.is_attached  # the checked answer replaced it
        assert not app.query(DraftView)
        view = app.query_one(AnswerView)
        assert view.answer == answer
        shown = screen_text(app)
        words = " ".join(shown.split())  # lines wrap at the terminal's width
        if answer.fallback:
            assert ("Extracted from the passages by the extractive answerer: local was asked"
                    in words)
            assert answer.note[:40] in words
        else:
            assert "Written by local; each sentence checked" in shown
        for check in answer.checks:
            if not check.supported:  # left out, and shown as such, never as support
                assert check.text not in answer.text
                assert check.reason and check.reason[:30] in words  # with why
        if any(not c.supported for c in answer.checks):
            assert "Left out of the answer · the model wrote these;" in words
            # Below the answer and its sources, never above it.
            dropped = view.query_one(".dropped").region.y
            assert view.query_one(Markdown).region.y < dropped
            assert view.query_one(".sources-title").region.y < dropped
        # Every marker of the final answer opens its passage, file[start:end]-exact.
        assert answer.citations
        markdown = view.query_one(Markdown)
        for i, cited in enumerate(answer.citations):
            assert f"[\\[{cited.n}\\]](cite:{cited.n})" in markdown.source
            markdown.post_message(Markdown.LinkClicked(markdown, f"cite:{cited.n}"))
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, SourceScreen) and screen.index == i
            file_slice = service.document_text(cited.source)[cited.start:cited.end]
            assert screen.view.highlighted_text() == file_slice == cited.text
            await pilot.press("escape")
            await pilot.pause()
        assert isinstance(app.screen, ChatScreen)


async def test_escape_stops_the_model_and_keeps_no_answer(
        opened: tuple[Config, Assistant], service: Recording) -> None:
    config = opened[0]
    app = app_over(config, service, llm=LlmSpec.parse("local"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await enter_text(pilot, QUESTION)
        await pilot.press("enter")
        await wait_for_draft(pilot)
        await pilot.press("escape")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChatScreen) and screen.pending is None
        assert not app.query(DraftView) and not app.query(AnswerView)
        assert "Cancelled. The model was stopped; its draft is not kept." in screen_text(app)
        await settle(pilot)
        (outcome,) = service.outcomes
        assert isinstance(outcome, Cancelled)  # the model stopped, not just the display
        store = ConversationStore.open()
        (info,) = store.conversations()
        assert [(t.question, t.answer) for t in store.turns(info.id)] == [(QUESTION, None)]
        assert not app.query(AnswerView)


async def _palette(pilot: Pilot[Any], command: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause(0.3)
    await enter_text(pilot, command)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await settle(pilot)


async def _choose_model(pilot: Pilot[Any], spec: str) -> None:
    await _palette(pilot, "language model")
    assert isinstance(pilot.app.screen, PromptScreen)
    await pilot.press("ctrl+a", "ctrl+k")
    await enter_text(pilot, spec)
    await pilot.press("enter")
    await settle(pilot)


async def test_palette_switches_the_answerer(
        opened: tuple[Config, Assistant], service: Recording) -> None:
    config, real = opened
    real.use_llm(None)
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "answers: extractive" in screen_text(app)
        await _choose_model(pilot, "local")
        assert real.generator == "local"
        assert "answers: local" in screen_text(app)
        assert any("written by local" in n for n in notes(app, "information"))
        await _choose_model(pilot, "bogus:model")  # a bad spec: a notification, no change
        (error,) = notes(app, "error")
        assert "Unknown language model 'bogus:model'" in error and "Traceback" not in error
        assert real.generator == "local" and "answers: local" in screen_text(app)
        await _palette(pilot, "answer extractively")
        assert real.generator == "extractive"
        assert "answers: extractive" in screen_text(app)


async def test_unreachable_endpoint_answers_extractively_and_says_why(
        opened: tuple[Config, Assistant], service: Recording,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = opened[0]
    monkeypatch.setenv("ASSISTANT_LLM_KEY", PLANTED_KEY)
    url = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    app = app_over(config, service, llm=LlmSpec.parse("openai:tiny-model", url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "answers: openai:tiny-model" in screen_text(app)
        await enter_text(pilot, QUESTION)
        await pilot.press("enter")
        await settle(pilot)
        answer = app.query_one(AnswerView).answer
        assert answer.fallback and answer.citations and not answer.abstained
        (warning,) = notes(app, "warning")
        assert warning.startswith("Language model not reachable:")
        assert "openai:tiny-model" in warning and url in warning
        shown = " ".join(screen_text(app).split())
        assert ("Extracted from the passages by the extractive answerer: openai:tiny-model "
                "was asked") in shown
        await pilot.press("ctrl+y")
        clipboard = app.clipboard
        store = ConversationStore.open()
        (info,) = store.conversations()
        exported = export_markdown(info.title, store.turns(info.id))
        saved = store.turns(info.id)[0].answer
        assert saved is not None and saved.note == answer.note and saved.fallback
    assert "Note: The language model openai:tiny-model" in clipboard
    assert ("_Extracted from the passages by the extractive answerer (openai:tiny-model was "
            "asked)._") in exported
    home = Path(os.environ["ASSISTANT_HOME"])
    files = [p.read_bytes().decode("latin-1") for p in home.rglob("*") if p.is_file()]
    with sqlite3.connect(home / "conversations.sqlite") as db:
        rows = [repr(row) for table in ("conversations", "turns")
                for row in db.execute(f"SELECT * FROM {table}")]  # noqa: S608
    assert any(answer.note in row for row in rows)  # what was saved is searched below
    everything = [warning, shown, clipboard, exported, *files, *rows]
    everything += [n.message for n in app._notifications]
    assert not [text for text in everything if PLANTED_KEY in text]
