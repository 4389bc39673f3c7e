"""The answer phrase (``short_answer``, "Huawei") wherever a person sees an answer: alone on
the answer's first line, and in bold inside its sentence (chat, export), in plain text first
(``ask``, the copied answer); literal whatever it holds; an answer without one unchanged."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from tui_helpers import (
    PHRASE,
    SIZE,
    FixedService,
    ShortService,
    app_over,
    ask,
    chat,
    copy_seeds,
    settle,
)

from assistant.cli import format_answer
from assistant.config import Config
from assistant.conversation import Turn
from assistant.export import export_markdown
from assistant.models import Answer, Citation, ShortAnswer
from assistant.phrase import phrase_line, phrase_span
from assistant.tui.render import answer_as_text, answer_markdown
from assistant.tui.screens.source import SourceScreen
from assistant.tui.widgets.answer_view import AnswerView

DOC = "Intro line.\nThe network: Huawei will  build\nRussia's 5G network, Huawei said. End.\n"
SENTENCE = "Huawei will build Russia's 5G network, Huawei said."  # whitespace collapsed
PHRASE_AT = DOC.index("Huawei will")
CITED = Citation(1, "a.txt", 0, len(DOC), DOC, 0.5)
HUAWEI = Answer(
    "Which company will build Russia's 5G network?", f"{SENTENCE} [1]", False, (CITED,),
    confidence=0.8,
    short_answer=ShortAnswer("Huawei", "a.txt", PHRASE_AT, PHRASE_AT + 6, 0.9),
)
_MD = MarkdownIt("commonmark", {"html": False})


def _short(answer: Answer, phrase: str, source: str = "a.txt", at: int = 0) -> Answer:
    return dataclasses.replace(
        answer, short_answer=ShortAnswer(phrase, source, at, at + len(phrase), 0.9))


def _bold_runs(markdown: str) -> list[str]:
    """What CommonMark sets in bold in ``markdown``, as the reader sees it."""
    out, inside = [], False
    for block in _MD.parse(markdown):
        for t in block.children or ():
            if t.type in ("strong_open", "strong_close"):
                inside = t.type == "strong_open"
                out += [""] if inside else []
            elif inside:
                out[-1] += t.content
    return out


# -- where the phrase stands ------------------------------------------------------------


def test_the_phrase_is_found_whatever_whitespace_the_answer_collapsed() -> None:
    answer = _short(HUAWEI, "build\nRussia's  5G", at=DOC.index("build"))
    assert phrase_line(answer) == "build Russia's 5G"
    start, end = phrase_span(answer)  # type: ignore[misc]
    assert answer.text[start:end] == "build Russia's 5G"


def test_the_phrase_is_set_in_bold_once_at_its_first_place() -> None:
    start, end = phrase_span(HUAWEI)  # type: ignore[misc]
    assert (start, end) == (0, 6)  # "Huawei ... Huawei said": the first, only
    md = answer_markdown(HUAWEI)
    assert md.startswith("**Huawei**\n\n**Huawei** will build")
    assert _bold_runs(md) == ["Huawei", "Huawei"]  # the first line, then once in the sentence
    assert "Huawei said" in md and "[\\[1\\]](cite:1)" in md  # the marker still a link


def test_the_phrase_is_bold_in_the_sentence_quoted_from_where_it_was_read() -> None:
    other = "Xinhua says ZTE bid. [1] Officials said ZTE will build it. [2]"
    doc2 = "Officials said ZTE will build it."
    answer = Answer("q", other, False,
                    (Citation(1, "x.txt", 0, 20, "Xinhua says ZTE bid.", 0.5),
                     Citation(2, "y.txt", 0, len(doc2), doc2, 0.5)))
    start, end = phrase_span(_short(answer, "ZTE", "y.txt", doc2.index("ZTE")))  # type: ignore[misc]
    assert start == other.index("ZTE will")  # not the first "ZTE", in the other sentence
    start, end = phrase_span(_short(answer, "Xi", "z.txt", 0))  # type: ignore[misc]
    assert (start, end) == (0, 2) and answer.text[start:end] == "Xi"
    # A whole word beats a piece of one ("Xi" in "Xinhua") when no sentence holds it.
    worded = dataclasses.replace(answer, text="Xinhua says Xi met him. [1]")
    start, end = phrase_span(_short(worded, "Xi", "z.txt", 0))  # type: ignore[misc]
    assert start == worded.text.index("Xi met")


def test_a_phrase_that_is_not_in_the_answer_or_only_in_a_marker_is_not_bolded() -> None:
    assert phrase_span(_short(HUAWEI, "1")) is None  # only inside "[1]"
    absent = _short(HUAWEI, "ZTE")
    assert phrase_span(absent) is None
    # Still shown first: the reader found it in a quoted sentence.
    assert answer_markdown(absent).startswith("**ZTE**\n\n") and _bold_runs(
        answer_markdown(absent)) == ["ZTE"]
    lower = _short(HUAWEI, "HUAWEI")  # a model may write another case: the same letters
    assert phrase_span(lower) == (0, 6)
    assert phrase_line(dataclasses.replace(HUAWEI, abstained=True)) == ""


def test_bold_that_commonmark_would_not_read_as_bold_stays_plain() -> None:
    answer = Answer("q", "It cost US$5 billion. [1]", False, (CITED,))
    md = answer_markdown(_short(answer, "$5 billion"))
    assert md == "**$5 billion**\n\nIt cost US$5 billion. [\\[1\\]](cite:1)"
    assert _bold_runs(md) == ["$5 billion"]  # no stray "**" shown around "$5 billion"


def test_an_answer_without_a_phrase_renders_exactly_as_before() -> None:
    plain = dataclasses.replace(HUAWEI, short_answer=None)
    assert answer_markdown(plain) == f"{SENTENCE} [\\[1\\]](cite:1)"
    assert answer_as_text(plain).startswith(f"{SENTENCE} [1]\n")
    assert format_answer(plain).startswith(f"{SENTENCE} [1]\n")
    assert "**" not in export_markdown("t", [Turn(1, plain.question, plain, 0.0)])


def test_markup_in_the_phrase_and_its_sentence_renders_literally() -> None:
    text = "The [bold]X[/] and **b** [link=x]y[/link] ran. [1]"
    answer = _short(Answer("q", text, False, (CITED,)), "[bold]X[/] and **b**")
    md = answer_markdown(answer)
    assert _bold_runs(md) == ["[bold]X[/] and **b**", "[bold]X[/] and **b**"]
    shown = html.unescape(_MD.renderInline(md.split("\n\n")[1]))
    assert shown == ("The <strong>[bold]X[/] and **b**</strong> [link=x]y[/link] ran. "
                     '<a href="cite:1">[1]</a>')


@given(st.text(alphabet=st.sampled_from(list("ab *_`[]()<>!&#~|\\-+=.1)x:/$")), max_size=30),
       st.sampled_from(["Say ", "Say", "Say(", "Say*"]),
       st.sampled_from([" now", "now", ".", "x*"]))
def test_any_phrase_renders_as_typed_and_never_leaves_stray_asterisks(
        typed: str, before: str, after: str) -> None:
    phrase = " ".join(typed.split())
    assume(phrase and not phrase.isdigit())  # a number alone may be a marker's
    text = f"{before}{phrase}{after} [1]"
    md = answer_markdown(_short(Answer("q", text, False, (CITED,)), phrase))
    runs = _bold_runs(md)
    assert runs[0] == phrase and runs[1:] in ([], [phrase])  # first line; in its sentence
    rendered = html.unescape(re.sub(r"<[^>]+>", "", _MD.render(md)))
    assert rendered.split() == f"{phrase} {text}".split()


# -- ask, the copied answer, the export --------------------------------------------------


def test_ask_prints_the_phrase_alone_first() -> None:
    out = format_answer(HUAWEI)
    assert out.startswith(f"Huawei\n\n{SENTENCE} [1]\n\nConfidence 80%.\n")
    hostile = _short(HUAWEI, "Hua\x1b[2Jwei")
    assert format_answer(hostile).startswith("Hua\\x1b[2Jwei\n\n")  # no terminal escape


def test_ask_json_carries_the_phrase() -> None:
    data = HUAWEI.to_json()
    assert data["short_answer"] == {"text": "Huawei", "source": "a.txt", "start": PHRASE_AT,
                                    "end": PHRASE_AT + 6, "score": 0.9}
    assert DOC[PHRASE_AT:PHRASE_AT + 6] == data["short_answer"]["text"]
    assert dataclasses.replace(HUAWEI, short_answer=None).to_json()["short_answer"] is None


def test_the_copied_answer_opens_with_the_phrase() -> None:
    text = answer_as_text(HUAWEI)
    assert text.startswith(f"Huawei\n\n{SENTENCE} [1]\n")
    searched = dataclasses.replace(HUAWEI, searched="Who builds 5G in Russia?")
    assert answer_as_text(searched).startswith(
        f"Searched: Who builds 5G in Russia?\n\nHuawei\n\n{SENTENCE} [1]\n")


def test_the_export_opens_the_answer_with_the_phrase_in_bold() -> None:
    md = export_markdown("Talk", [Turn(1, HUAWEI.question, HUAWEI, 0.0)])
    section = md.split("\n\n", 2)[2]  # after the title and the question
    assert section.startswith("**Huawei**\n\n**Huawei** will build Russia's 5G network, "
                              "Huawei said. [^1]\n")
    assert _bold_runs(section.split("[^1]:")[0]) == ["Huawei", "Huawei"]


# -- the chat --------------------------------------------------------------------------

def _lines(app: Any) -> list[tuple[str, str]]:
    """Each screen line as (its text, the text of its bold cells)."""
    out = []
    for strip in app.screen._compositor.render_strips():
        bold = "".join(seg.text for seg in strip if seg.style is not None and seg.style.bold)
        out.append((strip.text.rstrip(), bold))
    return out


def _answer_lines(app: Any) -> tuple[tuple[str, str], list[tuple[str, str]]]:
    """The answer's first line, and the lines of the paragraph after it (its sentences)."""
    lines = _lines(app)
    first = next(i for i, (text, _) in enumerate(lines) if text.strip() == PHRASE)
    assert not lines[first + 1][0].strip()
    end = next(i for i in range(first + 2, len(lines)) if not lines[i][0].strip())
    return lines[first], lines[first + 2:end]


def _assert_phrase_shown(app: Any) -> None:
    (_, lead_bold), body = _answer_lines(app)
    assert lead_bold.strip() == PHRASE  # the first line: the phrase alone, in bold
    assert body[0][0].strip().startswith("The UK assessment notes that China provides")
    bold = " ".join(b for _, b in body).split()
    assert bold == PHRASE.split()  # in bold once in its sentence, nothing else bold
    shown = " ".join(t.strip() for t, _ in body)
    assert f"Russia with {PHRASE}, insulating" in shown
    assert "sanctions. [1] They united" in shown and shown.endswith("Middle East. [2]")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return copy_seeds(tmp_path / "seeds")


def _app(corpus: Path, service: FixedService) -> Any:
    return app_over(Config.resolve(corpus=corpus, store=corpus.parent / "store"), service)


@pytest.mark.anyio
async def test_the_chat_shows_the_phrase_first_and_bold_in_its_sentence(
        corpus: Path, home: Path) -> None:
    app = _app(corpus, ShortService(corpus))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What does China give Russia?")
        _assert_phrase_shown(app)
        await pilot.press("tab")  # the citations still work: Tab, Enter opens the first
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SourceScreen)
        assert app.screen.items[app.screen.index].n == 1  # type: ignore[union-attr]
        await pilot.press("escape")
        await settle(pilot)
        app.copy_to_clipboard("")
        await pilot.press("ctrl+y")
        await settle(pilot)
        assert app.clipboard.startswith(f"{PHRASE}\n\nThe UK assessment")


@pytest.mark.anyio
async def test_a_reopened_conversation_shows_the_phrase_in_bold(corpus: Path, home: Path) -> None:
    app = _app(corpus, ShortService(corpus))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What does China give Russia?")
        saved = chat(app).conversation_id
        assert saved is not None
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert not app.query(AnswerView)
        await chat(app).load_conversation(saved)
        await settle(pilot)
        assert app.query_one(AnswerView).answer.short_answer is not None
        _assert_phrase_shown(app)
        assert [info.id for info in app.store.conversations()] == [saved]


@pytest.mark.anyio
async def test_markup_in_a_phrase_shows_as_typed_in_the_chat(corpus: Path, home: Path) -> None:
    hostile = "[bold red]X[/] **y** \x1b[2J"

    class Hostile(ShortService):
        def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
            answer = super().ask(question, history)
            return dataclasses.replace(answer, text=f"It gave {hostile} here. [1]")

    app = _app(corpus, Hostile(corpus, hostile))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What does China give Russia?")
        shown = "[bold red]X[/] **y** \\x1b[2J"
        lines = [(t.strip(), b.strip()) for t, b in _lines(app)]
        assert (shown, shown) in lines  # the first line, literal, all of it bold
        (sentence,) = [(t, b) for t, b in lines if t.startswith("It gave")]
        assert sentence == (f"It gave {shown} here. [1]", shown)
