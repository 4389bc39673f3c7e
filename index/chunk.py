"""Cut a document into citable passages of a few whole sentences.

A passage is what a reader is shown when checking a citation, so it is cut at
sentence boundaries, prefers to end where a paragraph ends, and never spans two
documents. Every passage carries ``[start, end)`` offsets into the document text
with ``text[start:end] == passage.text``; passages are in order, do not overlap,
and the text between them is only whitespace (or a leading BOM).

Sizes are counted in rough tokens (words and punctuation marks), which track the
model's WordPiece count closely enough to keep passages inside its window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass

_TOKEN = re.compile(r"\w+|[^\w\s]")
# End of a sentence: terminal punctuation, optional closing quotes/brackets,
# then whitespace. Line breaks are handled separately.
_TERMINAL = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]\u00bb]*(?=\s)")
_LINEBREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x85]")
_PARAGRAPH = re.compile(r"(?:\r\n|[\n\r\u2028\u2029\x85])[^\S\r\n\u2028\u2029\x85]*"
                        r"(?:\r\n|[\n\r\u2028\u2029\x85])")
_WORD_BEFORE = re.compile(r"([\w.]+)$")
_LONG_TOKEN_CHARS = 400  # a longer run without spaces (a URL, base64) is cut into slices
_LONG_TOKEN = re.compile(r"\w{401,}")  # longer than _LONG_TOKEN_CHARS
# Words after which a full stop rarely ends a sentence. This only affects where
# sentences are cut, never what is retrieved or answered.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs no nos fig figs gen col lt sgt capt cmdr adm gov sen rep "
    "pres rev hon inc ltd co corp dept univ approx est jan feb mar apr jun jul aug sep sept oct "
    "nov dec e.g i.e cf al u.s u.k u.n a.m p.m".split()
)


@dataclass(frozen=True, slots=True)
class ChunkParams:
    """Chunking settings; any change to them rebuilds the index."""

    min_tokens: int = 60
    target_tokens: int = 110
    max_tokens: int = 200
    # 3: chunks carry in-context sentence vectors (index/sentvec.py); older indexes
    # lack them, so they are rebuilt.
    version: int = 3

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Chunk:
    start: int
    end: int
    text: str


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the full stop at ``dot`` most likely belongs to an abbreviation."""
    m = _WORD_BEFORE.search(text, max(0, dot - 12), dot)
    if not m:
        return False
    word = m.group(1).lower().rstrip(".")
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. Smith"
    return word in _ABBREVIATIONS


def sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, bool]]:
    """Sentence spans ``(start, end, starts_paragraph)`` in ``text[start:end]``, trimmed."""
    end = len(text) if end is None else end
    cuts: dict[int, bool] = {}  # cut position -> is a paragraph break
    for m in _PARAGRAPH.finditer(text, start, end):
        cuts[m.start()] = True
    for m in _LINEBREAK.finditer(text, start, end):
        pos = m.start()
        if pos in cuts:
            continue
        nxt = m.end()
        # A wrapped line continues a sentence when the next line starts in lower case.
        if nxt < end and text[nxt].islower():
            continue
        cuts[pos] = True  # a line of its own: a paragraph, heading or list item
    for m in _TERMINAL.finditer(text, start, end):
        pos = m.end()
        nxt = pos
        while nxt < end and text[nxt].isspace():
            nxt += 1
        if nxt < end and text[nxt].islower():
            continue
        single_stop = text[m.start()] == "." and m.end() - m.start() == 1
        if single_stop and _is_abbreviation(text, m.start()):
            continue
        cuts.setdefault(pos, False)
    spans: list[tuple[int, int, bool]] = []
    prev = start
    paragraph = True
    for pos in sorted(cuts):
        s, e = _trim(text, prev, pos)
        if s < e:
            spans.append((s, e, paragraph))
            paragraph = False
        paragraph = paragraph or cuts[pos]
        prev = pos
    s, e = _trim(text, prev, end)
    if s < e:
        spans.append((s, e, paragraph))
    return spans


def _split_long(
    text: str, start: int, end: int, max_tokens: int
) -> Iterator[tuple[int, int, bool]]:
    """Cut an over-long sentence into pieces of at most ``max_tokens`` tokens.

    Yields ``(start, end, is_slice)``; a token longer than ``_LONG_TOKEN_CHARS``
    (a URL, base64) is cut into slices of that many characters, each a passage.
    """
    piece_start = start
    count = 0
    last_end = start
    for m in _TOKEN.finditer(text, start, end):
        long = m.end() - m.start() > _LONG_TOKEN_CHARS
        if count >= max_tokens or (long and count):
            s, e = _trim(text, piece_start, last_end)
            if s < e:
                yield s, e, False
            piece_start, count = m.start(), 0
        if long:
            for cut in range(m.start(), m.end(), _LONG_TOKEN_CHARS):
                yield cut, min(cut + _LONG_TOKEN_CHARS, m.end()), True
            piece_start = m.end()
        else:
            count += 1
        last_end = m.end()
    s, e = _trim(text, piece_start, end)
    if s < e:
        yield s, e, False


def chunk_text(text: str, params: ChunkParams | None = None) -> list[Chunk]:
    """Split ``text`` into passages (see the module docstring for the guarantees)."""
    p = params or ChunkParams()
    begin = 1 if text.startswith("\ufeff") else 0
    units: list[tuple[int, int, bool, int, bool]] = []  # start, end, paragraph, tokens, slice
    for s, e, para in sentences(text, begin):
        n = count_tokens(text[s:e])
        if n <= p.max_tokens and not _LONG_TOKEN.search(text, s, e):
            units.append((s, e, para, n, False))
        else:
            for i, (ps, pe, cut) in enumerate(_split_long(text, s, e, p.max_tokens)):
                units.append((ps, pe, para and i == 0, count_tokens(text[ps:pe]), cut))

    chunks: list[Chunk] = []
    cur_start = cur_end = -1
    cur_tokens = 0

    def flush() -> None:
        nonlocal cur_start, cur_tokens
        if cur_start >= 0:
            chunks.append(Chunk(cur_start, cur_end, text[cur_start:cur_end]))
        cur_start, cur_tokens = -1, 0

    for s, e, para, n, cut in units:
        if cur_start >= 0 and (
            cut
            or cur_tokens + n > p.max_tokens
            or (para and cur_tokens >= p.min_tokens)
        ):
            flush()
        if cur_start < 0:
            cur_start = s
        cur_end = e
        cur_tokens += n
        if cut or cur_tokens >= p.target_tokens:
            flush()  # a slice of a long token is a passage of its own
    flush()
    return _merge_short_tail(text, chunks, p)


def _merge_short_tail(text: str, chunks: list[Chunk], p: ChunkParams) -> list[Chunk]:
    """Fold a very short last passage into the one before when both fit."""
    if len(chunks) >= 2:
        last, prev = chunks[-1], chunks[-2]
        if count_tokens(last.text) < p.min_tokens // 2 and (
            count_tokens(prev.text) + count_tokens(last.text) <= p.max_tokens
        ):
            chunks[-2:] = [Chunk(prev.start, last.end, text[prev.start : last.end])]
    return chunks
