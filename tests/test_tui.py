"""The chat, used the way a person uses it, over the real Assistant and a copy of seeds/."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList
from textual.widgets import Markdown
from tui_helpers import (
    SIZE,
    SharedService,
    app_over,
    ask,
    copy_seeds,
    enter_text,
    screen_text,
    settle,
)

from assistant.config import Config
from assistant.conversation import ConversationStore
from assistant.models import Answer
from assistant.service import Assistant
from assistant.tui.commands import ChatCommands
from assistant.tui.screens.chat import ChatScreen
from assistant.tui.screens.conversations import ConversationsScreen
from assistant.tui.screens.help import HelpScreen
from assistant.tui.screens.source import SourceScreen
from assistant.tui.widgets.answer_view import AnswerView
from assistant.tui.widgets.question_view import QuestionView
from assistant.tui.widgets.source_list import SourceList

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

TWO_CITATIONS = "What does China provide Russia and what does Russia supply in return?"
ONE_CITATION = "Where did Vladimir Putin and Xi Jinping meet?"
UNANSWERABLE = "What is the boiling point of water on Mars?"


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Assistant]]:
    """One real Assistant (model + index) for the whole module: opening costs seconds."""
    root = tmp_path_factory.mktemp("tui")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        config = Config.resolve(corpus=copy_seeds(root / "seeds"), store=root / "store")
        service = Assistant.open(config)
    yield config, service
    service.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def service(opened: tuple[Config, Assistant], home: Path) -> SharedService:
    return SharedService(opened[1])


@pytest.fixture
def config(opened: tuple[Config, Assistant]) -> Config:
    return opened[0]


def chat(app: Any) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


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
        assert app.clipboard.startswith(answer.text.strip())
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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
