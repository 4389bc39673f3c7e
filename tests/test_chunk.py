"""index.chunk: passages with exact offsets, in order, within size bounds, deterministic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rare_text import list_article, rare_names

from index.chunk import Chunk, ChunkParams, chunk_text, count_tokens, sentences
from index.write import chunk_id

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A passage is shown to a reader and embedded by a model with a 256-token window;
# a few hundred words of ordinary text is ~1-2k characters. Nothing should be far past that.
MAX_PASSAGE_CHARS = 2_000


def non_space(s: str) -> str:
    return "".join(ch for ch in s if not ch.isspace())


def check_chunks(text: str, chunks: list[Chunk], params: ChunkParams | None = None) -> None:
    """Every guarantee the module docstring makes about ``chunk_text(text)``."""
    p = params or ChunkParams()
    begin = 1 if text.startswith("\ufeff") else 0
    prev_end = 0
    for i, c in enumerate(chunks):
        assert 0 <= c.start < c.end <= len(text), f"chunk {i} has bad offsets {c.start}-{c.end}"
        assert text[c.start : c.end] == c.text, f"chunk {i}: text[start:end] != chunk.text"
        assert c.start >= prev_end, f"chunk {i} overlaps or precedes the one before"
        gap = text[prev_end : c.start]
        if prev_end == 0 and begin:
            assert gap.startswith("\ufeff")
            gap = gap[1:]
        assert gap.isspace() or gap == "", f"non-whitespace {gap!r} left out before chunk {i}"
        assert not c.text[0].isspace() and not c.text[-1].isspace(), "chunk is not trimmed"
        n = count_tokens(c.text)
        assert 1 <= n <= p.max_tokens, f"chunk {i} has {n} tokens (max {p.max_tokens})"
        prev_end = c.end
    tail = text[prev_end:]
    if prev_end == 0 and begin:
        tail = tail[1:]
    assert tail.isspace() or tail == "", f"non-whitespace {tail[:40]!r} left out at the end"
    # Together, the chunks hold every non-whitespace character, in order.
    body = text[begin:]
    assert non_space("".join(c.text for c in chunks)) == non_space(body)


# -- the seed articles ------------------------------------------------------------------


def test_every_chunk_of_every_seed_is_an_exact_slice(seed_files: list[Path], file_text) -> None:
    total = 0
    for path in seed_files:
        text = file_text(path)
        chunks = chunk_text(text)
        assert len(chunks) >= 3, f"{path.name} is several paragraphs long"
        check_chunks(text, chunks)
        total += len(chunks)
    assert total >= 10


def test_seed_chunks_are_mostly_passage_sized(seed_files: list[Path], file_text) -> None:
    sizes = [count_tokens(c.text) for p in seed_files for c in chunk_text(file_text(p))]
    in_range = [n for n in sizes if 40 <= n <= 200]
    assert len(in_range) >= 0.8 * len(sizes), sizes
    assert max(sizes) <= ChunkParams().max_tokens


def test_chunks_never_span_two_documents(seed_files: list[Path], file_text) -> None:
    """Each document is chunked on its own: a passage never reaches past its document's end,
    and a document's passages do not depend on which other documents exist."""
    texts = [file_text(p) for p in seed_files]
    alone = [chunk_text(t) for t in texts]
    for text, chunks in zip(texts, alone, strict=True):
        assert all(c.end <= len(text) and text[c.start : c.end] == c.text for c in chunks)
    assert [chunk_text(t) for t in reversed(texts)] == list(reversed(alone))


def test_smaller_target_gives_more_smaller_chunks(seed_files: list[Path], file_text) -> None:
    text = file_text(seed_files[2])
    default = chunk_text(text)
    small_params = ChunkParams(min_tokens=20, target_tokens=40, max_tokens=80)
    small = chunk_text(text, small_params)
    check_chunks(text, small, small_params)
    assert len(small) > len(default)
    assert max(count_tokens(c.text) for c in small) <= 80


# -- generated texts ----------------------------------------------------------------------


def _paragraph(i: int, sentences_per_paragraph: int) -> str:
    return " ".join(
        f"Sentence {j} of paragraph {i} talks about topic number {i * 31 + j} in some detail."
        for j in range(sentences_per_paragraph)
    )


def test_long_paragraphs_are_cut_at_sentence_ends() -> None:
    text = "\n\n".join(_paragraph(i, 40) for i in range(5)) + "\n"
    chunks = chunk_text(text)
    check_chunks(text, chunks)
    assert len(chunks) >= 10
    for c in chunks:
        assert c.text.endswith("detail."), f"chunk cut mid-sentence: ...{c.text[-40:]!r}"
        assert c.text.startswith("Sentence ")


def test_paragraphs_are_preferred_boundaries() -> None:
    paragraphs = [_paragraph(i, 6) for i in range(6)]  # ~90 tokens each
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text)
    check_chunks(text, chunks)
    assert [c.text for c in chunks] == paragraphs


def test_a_one_megabyte_line_without_punctuation() -> None:
    text = " ".join(f"word{i % 997}" for i in range(180_000))
    assert len(text) > 1_000_000 and "\n" not in text
    chunks = chunk_text(text)
    check_chunks(text, chunks)
    assert len(chunks) >= 180_000 // 200
    assert max(len(c.text) for c in chunks) <= MAX_PASSAGE_CHARS


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 1_000_000, id="1MB-single-token"),
        pytest.param("Intro sentence here. " + "QUJD" * 5_000 + " and then the end.",
                     id="base64-inside-a-sentence"),
        pytest.param("See https://example.org/" + "segment/" * 600 + "index.html for more.",
                     id="very-long-url"),
        pytest.param(("x" * 450 + " ") * 40, id="many-long-tokens"),
    ],
)
def test_a_long_token_without_spaces_is_cut_into_passages(text: str) -> None:
    chunks = chunk_text(text)
    check_chunks(text, chunks)
    longest = max(len(c.text) for c in chunks)
    assert longest <= MAX_PASSAGE_CHARS, (
        f"a passage of {longest} characters: a long unbroken token is not cut "
        f"({len(chunks)} chunk(s) for {len(text)} characters)"
    )


def test_abbreviations_do_not_end_sentences() -> None:
    text = (
        "Mr. Smith met Dr. Jones at 10 a.m. on Monday. "
        "The U.S. Senate voted on the bill. "
        "J. R. Tolkien wrote it, e.g. The Hobbit. "
        "It rained. Then it stopped!"
    )
    spans = [text[s:e] for s, e, _ in sentences(text)]
    assert spans == [
        "Mr. Smith met Dr. Jones at 10 a.m. on Monday.",
        "The U.S. Senate voted on the bill.",
        "J. R. Tolkien wrote it, e.g. The Hobbit.",
        "It rained.",
        "Then it stopped!",
    ]
    # With tiny passages every sentence is a passage: none may end after an abbreviation.
    params = ChunkParams(min_tokens=1, target_tokens=2, max_tokens=50)
    chunks = chunk_text(text, params)
    check_chunks(text, chunks, params)
    assert [c.text for c in chunks] == spans


def test_wrapped_lines_continue_a_sentence_but_headings_stand_alone() -> None:
    text = "Heading\nThe first sentence is\nwrapped onto the next line. Next one.\n- item one\n"
    spans = [text[s:e] for s, e, _ in sentences(text)]
    assert spans == [
        "Heading",
        "The first sentence is\nwrapped onto the next line.",
        "Next one.",
        "- item one",
    ]


def test_empty_and_whitespace_only_texts_have_no_chunks() -> None:
    for text in ["", " ", "\n\n\t", "\ufeff", "\ufeff \r\n", "\u3000\u00a0\u2028"]:
        assert chunk_text(text) == []


# -- the model's window ------------------------------------------------------------------


def test_no_chunk_is_cut_by_the_model_window(embedder: Any) -> None:
    """Rough tokens undercount rare names: 200 of them are ~600 model tokens."""
    text = "\n\n".join([list_article(rare_names(120)),
                        "Shorter list: " + ", ".join(rare_names(50, seed=9)) + ".",
                        "東京" * 150 + "。"])  # one 'word' of 300 model tokens, no spaces
    params = ChunkParams()
    rough = chunk_text(text, params)
    assert max(embedder.count_tokens([c.text for c in rough])) > params.window_tokens, (
        "the text must hold passages that rough sizes let past the window")

    chunks = chunk_text(text, params, embedder)
    check_chunks(text, chunks, params)
    counts = embedder.count_tokens([c.text for c in chunks])
    assert max(counts) <= params.window_tokens == 256
    # Passages that fitted are left exactly as they were.
    fitting = [c for c, n in zip(rough, embedder.count_tokens([c.text for c in rough]),
                                 strict=True) if n <= params.window_tokens]
    assert set(fitting) <= set(chunks)
    assert len(chunks) > len(rough)
    assert chunk_text(text, params, embedder) == chunks


def test_window_check_leaves_the_seed_chunks_unchanged(
        seed_files: list[Path], file_text, embedder: Any) -> None:
    for path in seed_files:
        text = file_text(path)
        assert chunk_text(text, tokens=embedder) == chunk_text(text)


# -- properties over arbitrary text ----------------------------------------------------------

_params = st.builds(
    lambda a, b, c: ChunkParams(min_tokens=a, target_tokens=a + b, max_tokens=a + b + c),
    st.integers(0, 40), st.integers(1, 60), st.integers(0, 60),
)

_word = st.one_of(
    st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True),
    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.sampled_from(["Mr.", "Dr.", "U.S.", "e.g.", "J.", "a.m.", "3.14", "—", "«", "»", "(x)",
                     "naïve", "東京", "Привет", "x" * 450, "🙂", "it's", "\"quoted.\"", "…"]),
    st.text(min_size=1, max_size=6),
)
_sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(_word, min_size=1, max_size=25),
    st.sampled_from([".", "!", "?", "...", "", ".)", ".\u201d", "\u3002", ":"]),
)
_separator = st.sampled_from([" ", "  ", "\n", "\r\n", "\n\n", "\r\n\r\n", "\r", "\t", "\u2028",
                              "\u2029", "\x85", "\u00a0", "\u3000", " \n \n", "\n\t\n"])


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_sentence, _separator), max_size=40))
    text = "".join(s + sep for s, sep in parts)
    if draw(st.booleans()):
        text = draw(st.sampled_from(["\ufeff", "", " \n"])) + text
    return text


@PROPERTY
@given(text=st.text(), params=st.none() | _params)
def test_property_arbitrary_unicode(text: str, params: ChunkParams | None) -> None:
    chunks = chunk_text(text, params)
    check_chunks(text, chunks, params)
    assert chunk_text(text, params) == chunks


@PROPERTY
@given(text=documents(), params=st.none() | _params)
def test_property_sentences_and_newlines(text: str, params: ChunkParams | None) -> None:
    chunks = chunk_text(text, params)
    check_chunks(text, chunks, params)
    assert chunk_text(text, params) == chunks


@PROPERTY
@given(text=st.text(alphabet=st.sampled_from(list("ab .!?\n\r\t\ufeff\u2028\x85A")), max_size=400),
       params=_params)
def test_property_punctuation_and_breaks_dense(text: str, params: ChunkParams) -> None:
    check_chunks(text, chunk_text(text, params), params)


_windowed = st.builds(
    lambda p, w: ChunkParams(p.min_tokens, p.target_tokens, p.max_tokens, window_tokens=w),
    _params, st.integers(8, 48),  # a single character can be 5 tokens (Hangul: 3 + 2)
)


@PROPERTY
@given(text=st.text() | documents(), params=_windowed)
def test_property_no_chunk_exceeds_a_small_window(
        embedder: Any, text: str, params: ChunkParams) -> None:
    chunks = chunk_text(text, params, embedder)
    check_chunks(text, chunks, params)
    if chunks:
        assert max(embedder.count_tokens([c.text for c in chunks])) <= params.window_tokens
    assert chunk_text(text, params, embedder) == chunks


@PROPERTY
@given(source=st.text(min_size=1), start=st.integers(0, 10**7), length=st.integers(1, 10**4),
       text=st.text(min_size=1))
def test_property_chunk_id_is_deterministic_and_distinguishes_inputs(
    source: str, start: int, length: int, text: str
) -> None:
    end = start + length
    cid = chunk_id(source, start, end, text)
    assert re.fullmatch(r"[0-9a-f]{32}", cid)
    assert chunk_id(source, start, end, text) == cid
    assert chunk_id(source + "x", start, end, text) != cid
    assert chunk_id(source, start + 1, end + 1, text) != cid
    assert chunk_id(source, start, end, text + "x") != cid


def test_chunk_ids_of_seeds_are_stable_and_unique(seed_files: list[Path], file_text) -> None:
    ids = []
    for path in seed_files:
        text = file_text(path)
        first = [chunk_id(path.name, c.start, c.end, c.text) for c in chunk_text(text)]
        again = [chunk_id(path.name, c.start, c.end, c.text) for c in chunk_text(text)]
        assert first == again
        ids += first
    assert len(ids) == len(set(ids))
