"""Pure helpers behind safe rendering: offsets survive, Markdown renders literally."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from assistant.models import Answer, Citation, SentenceCheck
from assistant.textsafe import escape_markdown, printable
from assistant.tui.render import (
    DraftEscaper,
    answer_as_text,
    answer_markdown,
    claims,
    display_text,
    focus_of,
    model_failed,
    source_label,
    writer_line,
)


def test_display_keeps_offsets_through_crlf_cr_and_controls() -> None:
    text = "ab\r\ncd\re\x1bf\x07g\u202eh"
    shown = display_text(text)
    assert shown.text == "ab\ncd\ne\\x1bf\\x07g\\u202eh"
    assert len(shown.offsets) == len(text) + 1
    for start, end, expected in [(0, 2, "ab"), (4, 6, "cd"), (7, 8, "e"), (9, 10, "f"),
                                 (8, 9, "\\x1b"), (0, len(text), shown.text)]:
        a, b = shown.span(start, end)
        assert shown.text[a:b] == expected
    a, b = shown.span(2, 4)  # a cited CRLF is one newline on screen
    assert shown.text[a:b] == "\n"


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_display_of_plain_text_is_identity(text: str) -> None:
    clean = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", "", text)
    shown = display_text(clean)
    assert shown.text == clean
    assert shown.offsets == list(range(len(clean) + 1))


_MD = MarkdownIt("commonmark", {"html": False})


def _rendered_text(markdown: str) -> str:
    out = _MD.renderInline(markdown)
    assert "<" not in out.replace("&lt;", "")  # no tags: no emphasis, links, code or HTML
    return html.unescape(out)


@given(st.text(alphabet=st.sampled_from(list("ab *_`[]()<>!&#~|\\-+=.1)x:/")), max_size=40))
def test_escaped_markdown_renders_as_the_literal_text(text: str) -> None:
    line = " ".join(text.split())
    assert _rendered_text(escape_markdown(line)) == line


def test_escaped_markdown_has_no_blocks() -> None:
    for text in ["# title", "- item", "1. one", "> quote", "    code", "---", "==="]:
        tokens = [t.type for t in _MD.parse(escape_markdown("x\n" + text))]
        assert tokens == ["paragraph_open", "inline", "paragraph_close"], text


def test_hostile_markup_stays_literal_in_markdown() -> None:
    text = "[bold red]X[/] [link=http://evil]y[/link] **b** <i>h</i> \x1b[31m"
    assert _rendered_text(escape_markdown(text)) == printable(text)


ANSWER = Answer(
    "q", "Alpha **is** first. [1] Beta [2] then [7] too.", False,
    (Citation(1, "a.txt", 0, 30, "Intro. Alpha **is** first. More.", 0.1),
     Citation(2, "b.txt", 5, 9, "nothing alike", 0.1)),
)


def test_answer_markdown_links_cited_markers_only() -> None:
    md = answer_markdown(ANSWER)
    assert "[\\[1\\]](cite:1)" in md and "[\\[2\\]](cite:2)" in md
    assert "\\[7\\]" in md and "cite:7" not in md
    assert "\\*\\*is\\*\\*" in md


def test_claims_and_focus_point_into_the_passage() -> None:
    assert claims(ANSWER) == {1: "Alpha **is** first.", 2: "Beta", 7: "then"}
    assert focus_of(ANSWER, ANSWER.citations) == ("Alpha **is** first.", "")
    label = source_label(ANSWER.citations[0], 0, "Alpha **is** first.").plain
    assert label.startswith("[1] a.txt  chars 0-30\n")
    # Quoted from inside a passage that starts at the document's first character: it
    # says from where, and opens with no "…" (which read as text cut before char 0).
    assert "    from char 7: “Alpha **is** first. More.”" in label
    assert "…" not in label
    whole = source_label(ANSWER.citations[0], 0, "Intro.").plain
    assert "    “Intro. Alpha" in whole and "from char" not in whole


def test_answer_as_text_quotes_each_citation() -> None:
    text = answer_as_text(ANSWER)
    assert text.startswith("Alpha **is** first. [1] Beta [2] then [7] too.\n\n")
    assert "[1] a.txt, chars 0-30\n> Intro. Alpha **is** first. More." in text


class _Viewer:
    """A bare app around one SourceView: the widget on its own, no service needed."""

    @staticmethod
    def app() -> object:
        from textual.app import App, ComposeResult

        from assistant.tui.widgets.source_view import SourceView

        class Viewer(App[None]):
            CSS_PATH = str(Path(__file__).resolve().parent.parent / "assistant/tui/app.tcss")

            def compose(self) -> ComposeResult:
                yield SourceView()

        return Viewer()


@pytest.mark.anyio
async def test_source_view_highlights_crlf_and_far_passages() -> None:
    from assistant.tui.widgets.source_view import SourceView

    lines = [f"Line {i} of the report, with [bold]markup[/] and \x1b[2J in it." for i in range(300)]
    text = "\r\n".join(lines)
    start = text.index("Line 250")
    end = text.index("Line 252")  # two lines and the CRLF between them
    app = _Viewer.app()
    async with app.run_test(size=(80, 20)) as pilot:  # type: ignore[attr-defined]
        view = app.query_one(SourceView)  # type: ignore[attr-defined]
        await view.show(text, start, end, focus=lines[251])
        await pilot.pause()
        await pilot.pause()
        expected = display_text(text[start:end]).text
        assert view.highlighted_text() == expected.rstrip("\n")
        assert "[bold]markup[/]" in expected and "\\x1b[2J" in expected
        para = view.highlighted()[0][0]
        assert view.scroll_y <= para.virtual_region.y < view.scroll_y + view.size.height


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab *_`[]()<>!&#~|\\-+=.1)x:/\n\t ")),
                        max_size=12), max_size=8))
def test_a_streamed_draft_renders_literally_whatever_the_deltas(deltas: list[str]) -> None:
    escaper = DraftEscaper()
    markdown = "".join(escaper.feed(d) for d in deltas)
    tokens = {t.type for t in _MD.parse(markdown)}
    assert tokens <= {"paragraph_open", "inline", "paragraph_close"}, markdown
    rendered = re.sub(r"</?p>|<br />", " ", _MD.render(markdown))
    assert "<" not in rendered  # no emphasis, links, code or HTML
    assert html.unescape(rendered).split() == "".join(deltas).split()


WRITTEN = Answer(
    "q", "Alpha is first. [1]", False,
    (Citation(1, "a.txt", 0, 30, "Intro. Alpha is first. More.", 0.1),),
    confidence=0.8, generator="local", searched="Who is first in a?",
    checks=(SentenceCheck("Alpha is first.", (1,), True, 0.9),
            SentenceCheck("Beta came *second*.", (2,), False, 0.1,
                          reason="not found in the cited passage: 'Beta'")),
    note="1 sentence the cited passages do not back left out.",
)


def test_copied_model_answer_names_its_writer_and_marks_left_out_sentences() -> None:
    text = answer_as_text(WRITTEN)
    assert text.startswith("Searched: Who is first in a?\n\nAlpha is first. [1]\n")
    assert ("Left out of the answer · the model wrote these; the passages do not back "
            "them:\n- Beta came *second*. ([2]): not found in the cited passage: 'Beta'"
            in text)
    assert "Confidence 80%.\nWritten by local; each sentence checked" in text
    # Never above the answer: after it, its writer and its sources.
    assert text.index("Alpha is first.") < text.index("[1] a.txt") < text.index("Left out")
    assert writer_line(ANSWER) == "" and "Written" not in answer_as_text(ANSWER)
    failed = dataclasses.replace(WRITTEN, fallback=True, checks=(), note="x failed.")
    assert model_failed(failed) and not model_failed(WRITTEN)
    assert not model_failed(dataclasses.replace(failed, timings_ms={"generate": 1.0}))
    assert writer_line(failed).startswith(
        "Extracted from the passages by the extractive answerer: local was asked")
