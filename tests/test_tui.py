"""The chat, used the way a person uses it, over the real Assistant and a copy of seeds/."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Markdown
from tui_helpers import (
    ONE_CITATION,
    SIZE,
    TWO_CITATIONS,
    UNANSWERABLE,
    SharedService,
    app_over,
    ask,
    chat,
    enter_text,
    screen_text,
    settle,
)

from assistant.config import Config
from assistant.conversation import ConversationStore
from assistant.models import Answer
from assistant.service import Assistant
from assistant.tui.screens.chat import ChatScreen
from assistant.tui.screens.source import SourceScreen
from assistant.tui.widgets.answer_view import AnswerView
from assistant.tui.widgets.question_view import QuestionView
from assistant.tui.widgets.source_list import SourceList

pytestmark = [pytest.mark.slow, pytest.mark.anyio]



async def test_status_says_ready_with_counts(config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "ready · 3 documents, 32 passages · corpus seeds" in screen_text(app)
        assert app.focused is chat(app).prompt  # the person can type at once


async def test_question_gets_answer_with_citations(config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION, typed=True)
        (view,) = app.query(AnswerView)
        answer = view.answer
        assert not answer.abstained and answer.citations
        assert answer.question == ONE_CITATION
        shown = screen_text(app)
        assert "[1]" in shown  # the marker stays visible in the rendered Markdown
        assert f"[1] {answer.citations[0].source}  chars {answer.citations[0].start}-" in shown
        assert answer.text.split(" [1]")[0][:40] in shown
        assert app.query_one(QuestionView).question == ONE_CITATION


async def test_open_citation_by_keyboard_highlights_the_exact_slice(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, TWO_CITATIONS)
        answer = app.query_one(AnswerView).answer
        assert len(answer.citations) >= 2, answer.text
        await pilot.press("tab")  # from the question box to the newest answer's sources
        assert isinstance(app.focused, SourceList)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SourceScreen)
        for i, cited in enumerate(answer.citations):
            assert screen.index == i
            file_slice = service.document_text(cited.source)[cited.start:cited.end]
            assert screen.view.highlighted_text() == file_slice == cited.text
            assert _highlight_on_screen(screen)
            await pilot.press("n")
            await settle(pilot)
        assert screen.index == 0  # n wraps round; p goes back
        await pilot.press("p")
        await settle(pilot)
        assert screen.index == len(answer.citations) - 1
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)


def _highlight_on_screen(screen: SourceScreen) -> bool:
    """The first highlighted line lies inside the scrolled viewport."""
    view = screen.view
    para = view.highlighted()[0][0]
    top = para.virtual_region.y
    bottom = view.scroll_y + view.size.height
    return view.scroll_y <= top + para.size.height and top < bottom


async def test_open_citation_with_the_mouse(config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        sources = app.query_one(SourceList)
        await pilot.click(sources, offset=(6, 0))
        await settle(pilot)
        assert isinstance(app.screen, SourceScreen)
        cited = app.screen.item
        text = service.document_text(cited.source)
        assert app.screen.view.highlighted_text() == text[cited.start:cited.end]


async def test_click_on_marker_opens_its_citation(config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        rows = screen_text(app).splitlines()
        region = app.query_one(Markdown).region
        y = next(i for i in range(region.y, region.bottom) if "[1]" in rows[i])
        x = rows[y].index("[1]") + 1
        await pilot.click(offset=(x, y))
        await settle(pilot)
        assert isinstance(app.screen, SourceScreen)
        assert app.screen.item.n == 1


async def test_abstained_answer_lists_nearest_passages_not_citations(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, UNANSWERABLE)
        view = app.query_one(AnswerView)
        assert view.answer.abstained and not view.answer.citations
        shown = screen_text(app)
        assert "Nearest passages · not evidence for an answer" in shown
        assert "Sources ·" not in shown
        sources = app.query_one(SourceList)
        assert sources.kind == "passage"
        await pilot.press("tab", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SourceScreen)
        assert "Nearest passage 1 (not evidence)" in screen_text(app)
        p = view.answer.passages[0]
        assert app.screen.view.highlighted_text() == service.document_text(p.source)[p.start:p.end]


async def test_follow_up_passes_earlier_questions_as_history(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        await ask(pilot, "What did they agree on?")
        await ask(pilot, "And when?")
    assert service.asked == [
        (ONE_CITATION, []),
        ("What did they agree on?", [ONE_CITATION]),
        ("And when?", [ONE_CITATION, "What did they agree on?"]),
    ]


async def test_up_and_down_recall_earlier_questions(config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "first question?")
        await ask(pilot, "second question?")
        prompt = chat(app).prompt
        await pilot.press(*"draft")  # typed
        await pilot.press("up")
        assert prompt.value == "second question?"
        await pilot.press("up", "up")
        assert prompt.value == "first question?"
        await pilot.press("down")
        assert prompt.value == "second question?"
        await pilot.press("down")
        assert prompt.value == "draft"


async def test_typing_in_the_sources_goes_to_the_question_box(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, ONE_CITATION)
        await pilot.press("tab")
        assert isinstance(app.focused, SourceList)
        await pilot.press(*"And")
        assert app.focused is chat(app).prompt and chat(app).prompt.value == "And"
        await pilot.press("tab", "escape")  # Esc in the sources also goes back
        assert app.focused is chat(app).prompt


class Blocking(SharedService):
    """The real service, held back until the test lets it answer (a slow question)."""

    def __init__(self, service: Any) -> None:
        super().__init__(service)
        self.release = threading.Event()
        self.started = threading.Event()

    def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
        self.started.set()
        self.release.wait(10)
        return super().ask(question, history, **kwargs)


async def test_escape_cancels_and_the_late_answer_is_dropped(
        config: Config, opened: tuple[Config, Assistant], home: Path) -> None:
    service = Blocking(opened[1])
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await enter_text(pilot, ONE_CITATION)
        await pilot.press("enter")
        assert service.started.wait(5)
        await pilot.pause()
        screen = chat(app)
        assert screen.pending is not None
        assert "Searching the documents…" in screen_text(app)
        assert "esc Cancel" in screen_text(app)
        store = ConversationStore.open()  # saved before it is answered
        (info,) = store.conversations()
        assert [(t.question, t.answer) for t in store.turns(info.id)] == [(ONE_CITATION, None)]
        await pilot.press("escape")
        assert screen.pending is None
        service.release.set()  # the answer arrives after all
        await settle(pilot)
        assert not app.query(AnswerView)
        assert "Cancelled." in screen_text(app)
        assert store.turns(info.id)[0].answer is None
        await ask(pilot, "What did they agree on?")  # and the chat still works
        assert len(app.query(AnswerView)) == 1
        assert store.turns(info.id)[1].answer is not None
