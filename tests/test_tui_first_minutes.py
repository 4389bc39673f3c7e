"""What a newcomer met in the chat's first minutes (issue 19): where Ctrl+S exports and
what it names the file, a quoted source that starts at the document's first
character, a refusal's confidence line, the keys screen, and a follow-up that says
"it". The way a person uses them, over the real Assistant and a copy of seeds/."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import SIZE, SharedService, app_over, ask, chat, screen_text, settle

from assistant.config import Config
from assistant.tui.screens.help import HelpScreen
from assistant.tui.widgets.answer_view import AnswerView

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

FIVE_G = "Which company will build Russia's 5G network?"


async def test_export_goes_to_the_data_folder_and_numbers_only_a_second_file(
        config: Config, service: SharedService, home: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a person's current folder, e.g. a git clone
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Where did Vladimir Putin and Xi Jinping meet?")
        for _ in range(2):
            await pilot.press("ctrl+s")
            await settle(pilot)
            await pilot.press("enter")  # the offered file name, as it is
            await settle(pilot)
    stem = "where-did-vladimir-putin-and-xi-jinping"  # the title, cut at 40 characters
    written = sorted(p.name for p in (home / "exports").iterdir())
    assert written == [f"{stem}-2.md", f"{stem}.md"]  # the first is not numbered
    assert not list(tmp_path.glob("*.md")), "nothing is written into the current folder"
    first = (home / "exports" / f"{stem}.md").read_text(encoding="utf-8")
    assert first.startswith("# Where did Vladimir Putin")


async def test_a_passage_quoted_from_inside_says_from_where_not_with_an_ellipsis(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=(140, 40)) as pilot:
        await ask(pilot, "What does the document obtained by Whitehall sources warn?")
        answer = app.query_one(AnswerView).answer
        [first] = [c for c in answer.citations if c.start == 0]
        text = screen_text(app)
    assert f"chars 0-{first.end}" in text
    assert "“…" not in text
    at = first.text.find("The document, obtained by Whitehall")
    assert at > 0 and f"from char {at}: “The document, obtained" in text


async def test_a_refusal_says_how_sure_it_is(config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the boiling point of mercury in kelvin?")
        answer = app.query_one(AnswerView).answer
        assert answer.abstained and answer.confidence is not None
        line = f"Not answered: confidence {answer.confidence:.0%} that the nearest sentence"
        assert line in screen_text(app)


async def test_the_keys_screen_keeps_each_key_on_its_line(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        lines = [line.replace("\u00a0", " ").strip(" █▂▁│") for line in
                 screen_text(app).splitlines()]
    assert any("openai:MODEL [URL]" in line for line in lines), lines
    assert not any(line.startswith("[URL]") for line in lines)
    # What a key does wraps under itself, never back to the dialog's left edge.
    [model] = [i for i, line in enumerate(lines) if "Answer with a language model" in line]
    assert lines[model + 1].startswith("openai:MODEL [URL]") or "[URL]" in lines[model]


async def test_a_follow_up_that_says_it_is_answered_without_a_model(
        config: Config, service: SharedService) -> None:
    app = app_over(config, service)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, FIVE_G)
        await ask(pilot, "Which operator is it working with?")
        assert service.asked[-1] == ("Which operator is it working with?", [FIVE_G])
        answer = app.query(AnswerView).last().answer
        assert not answer.abstained
        assert "MTS" in answer.text.split("[1]")[0]  # the first sentence holds it
        assert answer.searched.startswith("Which operator is it working with? (")
        assert "Searched: Which operator is it working with?" in screen_text(app)
        assert chat(app).conversation_id is not None
