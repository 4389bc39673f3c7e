"""What the main screens look like, at a fixed size, with fixed data (no clocks, no timings).

The answers come from :class:`tui_helpers.FixedService` (real seed files, fixed
citations) so a change in ranking does not move the pictures; a change in how
the chat renders does. Update with ``pytest --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tui_helpers import SIZE, FixedService, ShortService, app_over, ask, copy_seeds, settle

from assistant.config import Config
from assistant.models import SentenceCheck
from assistant.tui.screens.chat import ChatScreen
from assistant.tui.screens.source import SourceScreen
from assistant.tui.widgets.answer_view import AnswerView

QUESTION = "What do China and Russia give each other?"


@pytest.fixture
def app(tmp_path: Path) -> Any:
    corpus = copy_seeds(tmp_path / "seeds")
    config = Config.resolve(corpus=corpus, store=tmp_path / "store")
    return app_over(config, FixedService(corpus))


async def _ready(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ChatScreen)
    screen.prompt.cursor_blink = False  # a blinking cursor would make the picture flaky


def test_empty_chat(snap_compare: Any, app: Any) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready)


def test_answer_with_citations(snap_compare: Any, app: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await ask(pilot, QUESTION)
        assert len(pilot.app.query(AnswerView)) == 1

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _answered_by(service: type[FixedService], question: str, snap_compare: Any,
                 tmp_path: Path) -> bool:
    """The chat after ``question``, answered by ``service`` over a copy of seeds/."""
    corpus = copy_seeds(tmp_path / "seeds")
    config = Config.resolve(corpus=corpus, store=tmp_path / "store")

    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await ask(pilot, question)
        assert len(pilot.app.query(AnswerView)) == 1

    app = app_over(config, service(corpus))
    return bool(snap_compare(app, terminal_size=SIZE, run_before=run_before))


def test_answer_with_its_short_answer(snap_compare: Any, tmp_path: Path) -> None:
    """The phrase the reader found, alone in bold first, then in bold in its sentence."""
    assert _answered_by(ShortService, "What does China give Russia?", snap_compare, tmp_path)


class WrittenService(FixedService):
    """FixedService's answer as a model would give it: one sentence left out, a follow-up
    rewritten for the search, a note, and the model's name."""

    generator = "local"

    def ask(self, question: str, history: Any = (), **kwargs: Any) -> Any:
        import dataclasses

        answer = super().ask(question, history)
        kept = answer.text.split(" [1] ")[0]
        return dataclasses.replace(
            answer, generator="local", searched="What do China and Russia give each other?",
            checks=(SentenceCheck(kept, (1,), True, 0.9),
                    SentenceCheck("Russia sells China all of its oil.", (2,), False, 0.1)),
            note="1 sentence the cited passages do not back left out.")


def test_model_answer_with_a_left_out_sentence(snap_compare: Any, tmp_path: Path) -> None:
    assert _answered_by(WrittenService, "And in return?", snap_compare, tmp_path)


def test_source_viewer(snap_compare: Any, app: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _ready(pilot)
        await ask(pilot, QUESTION)
        await pilot.press("tab", "down", "enter")  # the second citation
        await settle(pilot)
        assert isinstance(pilot.app.screen, SourceScreen)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
