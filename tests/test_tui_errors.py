"""Faults become notifications with a hint, never a traceback; hostile text stays literal."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import SIZE, app_over, ask, copy_seeds, screen_styles, screen_text, settle

from assistant.config import Config
from assistant.models import Answer
from assistant.service import Assistant
from assistant.tui.app import make_app
from assistant.tui.screens.source import SourceScreen
from assistant.tui.widgets.answer_view import AnswerView
from assistant.tui.widgets.question_view import QuestionView
from index.manifest import WriterLock

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
QUESTION = "Where did Vladimir Putin and Xi Jinping meet?"


def errors(app: Any) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def warnings(app: Any) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "warning"]


def open_with(embedder: Any) -> Any:
    """The real factory's path (Assistant.open), sharing the session's loaded model."""
    def factory(config: Config, progress: Any = None, rebuild: bool = False) -> Any:
        svc = Assistant(config, embedder)
        if rebuild:
            svc.refresh(progress=progress, rebuild=True)
        return Assistant.open(config, progress=progress, embedder=embedder)
    return factory


async def test_locked_index_is_a_notification_then_reindex_recovers(
        tmp_path: Path, embedder: Any) -> None:
    config = Config.resolve(corpus=copy_seeds(tmp_path / "seeds"), store=tmp_path / "store")
    config.store.mkdir()
    lock = WriterLock(config.store).acquire()  # another 'assistant index' is writing it
    app = make_app(config, service_factory=open_with(embedder))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            (message,) = errors(app)
            assert "is being written by" in message and "Wait for it to finish" in message
            assert "index not loaded" in screen_text(app)
            await ask(pilot, QUESTION)  # answering is refused politely, the app carries on
            assert "Not answered: The index at" in screen_text(app)
            lock.release()
            app.reindex()
            await settle(pilot)
            assert app.service_state.phase == "ready"
            await ask(pilot, QUESTION)
            assert app.query(AnswerView)
    finally:
        lock.release()


async def test_corrupt_index_is_a_notification_and_rebuild_recovers(tmp_path: Path) -> None:
    config = Config.resolve(corpus=copy_seeds(tmp_path / "seeds"), store=tmp_path / "store")
    config.store.mkdir()
    (config.store / "manifest.json").write_text('{"format": 1, "model_id": ')  # torn write
    app = make_app(config)  # the real default factory
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        (message,) = errors(app)
        assert "damaged" in message and "--rebuild" in message
        assert "choose “Rebuild index from scratch”" in message  # what to do in the chat
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"rebuild", "enter")
        await settle(pilot, rounds=6)
        assert app.service_state.phase == "ready", app.service_state
        assert "ready · 3 documents, 32 passages" in screen_text(app)


async def test_unreachable_chroma_server_is_a_notification(tmp_path: Path) -> None:
    config = Config.resolve(corpus=copy_seeds(tmp_path / "seeds"), store=tmp_path / "store",
                            chroma_url="http://127.0.0.1:9")
    app = make_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        (message,) = errors(app)
        assert "Cannot reach the Chroma server at http://127.0.0.1:9" in message
        assert "chroma run" in message  # the hint
        assert "fix it, then choose “Re-index documents”" in message
        assert app.is_running


class Broken:
    """A service with a bug: the app must report it and stay usable."""

    generator = "extractive"

    def __init__(self) -> None:
        self.calls = 0

    def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
        self.calls += 1
        raise RuntimeError("boom")

    def status(self) -> Any:
        from assistant.service import Status

        return Status(1, 1, Path("."), Path("."), None)

    def reload_if_changed(self) -> bool:
        return False


async def test_unexpected_service_error_is_reported_not_raised(tmp_path: Path) -> None:
    config = Config.resolve(corpus=tmp_path, store=tmp_path / "store")
    service = Broken()
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "anything?")
        await ask(pilot, "again?")
        assert service.calls == 2
        assert len(errors(app)) == 2
        assert "Unexpected error while answering (RuntimeError: boom)" in errors(app)[0]
        assert app.is_running


async def test_damaged_history_is_moved_aside_with_a_notification(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Any) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    (home / "conversations.sqlite").write_bytes(b"\x00garbage" * 512)
    config = Config.resolve(corpus=copy_seeds(tmp_path / "seeds"), store=tmp_path / "store")
    app = make_app(config, service_factory=open_with(embedder))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        (message,) = warnings(app)
        assert "damaged" in message and "moved to" in message
        assert list(home.glob("conversations.sqlite.damaged-*"))
        await ask(pilot, QUESTION)
        assert app.store.conversations()[0].turns == 1  # the fresh history works


async def test_locked_history_still_answers_and_says_it_did_not_save(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Any) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    config = Config.resolve(corpus=copy_seeds(tmp_path / "seeds"), store=tmp_path / "store")
    app = make_app(config, service_factory=open_with(embedder))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        other = sqlite3.connect(home / "conversations.sqlite", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another program holds the history
        try:
            await ask(pilot, QUESTION)
        finally:
            other.execute("ROLLBACK")
        assert app.query(AnswerView)
        assert any("locked" in m for m in errors(app))


HOSTILE = (
    "The zebra password is [bold red]X[/] and the zebra link is [link=http://evil]y[/link].\n"
    "A zebra bell \x07 rings, zebra colour \x1b[31mRED\x1b[0m, a zebra title \x1b]0;pwned\x07.\n"
    "Zebra markdown **strong** and <b>html</b> and [click](http://evil) and `code`.\n"
)
LITERAL = ["[bold red]X[/]", "[link=http://evil]y[/link]", "\\x07", "\\x1b[31mRED\\x1b[0m",
           "\\x1b]0;pwned\\x07", "**strong**", "<b>html</b>", "[click](http://evil)"]


async def test_hostile_document_and_question_render_literally(
        tmp_path: Path, embedder: Any) -> None:
    corpus = tmp_path / "hostile"
    corpus.mkdir()
    (corpus / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    config = Config.resolve(corpus=corpus, store=tmp_path / "store")
    app = make_app(config, service_factory=open_with(embedder))
    question = "What is the zebra password [bold red]X[/] \x1b[31m?"
    async with app.run_test(size=(160, 40)) as pilot:
        await ask(pilot, question)
        assert app.query_one(QuestionView).question == question
        chat_text = screen_text(app)
        assert "What is the zebra password [bold red]X[/] \\x1b[31m?" in chat_text
        view = app.query_one(AnswerView)
        source = view.answer.citations[0] if view.answer.citations else view.answer.passages[0]
        assert source.source == "hostile.txt"
        await pilot.press("tab", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SourceScreen)
        shown = screen_text(app)
        for literal in LITERAL:
            assert literal in shown, literal
        for text in (chat_text, shown):
            assert "\x1b" not in text and "\x07" not in text
        for style in screen_styles(app):
            assert not style.link and not (style.color and style.color.name == "red")
