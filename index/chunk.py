"""Cut a document into citable passages of a few whole sentences.

A passage is what a reader is shown when checking a citation, so it is cut at
sentence boundaries, prefers to end where a paragraph ends, and never spans two
documents. Every passage carries ``[start, end)`` offsets into the document text
with ``text[start:end] == passage.text``; passages are in order, do not overlap,
and the text between them is only whitespace (or a leading BOM).

Passage sizes (``min``/``target``/``max_tokens``) are counted in rough tokens
(words and punctuation marks): cheap, and close to the model's count for ordinary
prose. The model's window is a hard limit, so it is checked with the model's own
tokenizer (a :class:`TokenCounter`, the embedder): a passage the model would cut
(rare words and names break into many WordPiece tokens) is split again at sentence
ends, or inside an over-long sentence, until every piece fits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from index.embed import MAX_TOKENS

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
    # In model tokens, [CLS] and [SEP] included: no passage is longer, when a
    # TokenCounter is given (the index build passes the embedder).
    window_tokens: int = MAX_TOKENS
    # 3: chunks carry in-context sentence vectors (index/sentvec.py); older indexes
    # lack them, so they are rebuilt.
    # 4: passages the model's window would cut are split (window_tokens).
    version: int = 4

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Chunk:
    start: int
    end: int
    text: str


@runtime_checkable
class TokenCounter(Protocol):
    """The model's own tokenizer, as the chunker needs it."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text, special tokens included, never truncated."""
        ...


def count_tokens(text: str) -> int:
    """Rough tokens: words and punctuation marks."""
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


def chunk_text(
    text: str, params: ChunkParams | None = None, tokens: TokenCounter | None = None
) -> list[Chunk]:
    """Split ``text`` into passages (see the module docstring for the guarantees).

    With ``tokens`` no passage is longer than ``params.window_tokens`` model tokens.
    """
    p = params or ChunkParams()
    chunks = _chunk_by_rough_size(text, p)
    return chunks if tokens is None else _fit_window(text, chunks, p.window_tokens, tokens)


def _chunk_by_rough_size(text: str, p: ChunkParams) -> list[Chunk]:
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


def _fit_window(text: str, chunks: list[Chunk], limit: int, tokens: TokenCounter) -> list[Chunk]:
    """Split every passage the model's window would cut; leave the others as they are."""
    counts = tokens.count_tokens([c.text for c in chunks])
    out: list[Chunk] = []
    for chunk, n in zip(chunks, counts, strict=True):
        if n <= limit:
            out.append(chunk)
        else:
            out += (Chunk(s, e, text[s:e]) for s, e in _split_to_fit(text, chunk, n, limit, tokens))
    return out


def _split_to_fit(
    text: str, chunk: Chunk, n: int, limit: int, tokens: TokenCounter
) -> list[tuple[int, int]]:
    """Near-equal pieces of whole sentences, each within ``limit`` model tokens.

    WordPiece counts add up over pieces cut at whitespace (the model's tokenizer
    splits there first), so sentence counts are summed, not re-measured; a sentence
    over the limit on its own is cut inside (:func:`_cut_sentence`). Each piece is
    measured once more at the end, so the limit holds whatever the tokenizer does.
    """
    spans = [(s, e) for s, e, _p in sentences(text, chunk.start, chunk.end)]
    overhead, *counts = tokens.count_tokens(["", *(text[s:e] for s, e in spans)])
    units: list[tuple[int, int, int]] = []  # start, end, model tokens without the specials
    for (s, e), c in zip(spans, counts, strict=True):
        if c <= limit:
            units.append((s, e, c - overhead))
        else:
            units += ((a, b, limit - overhead) for a, b in _cut_sentence(text, s, e, limit, tokens))
    budget = limit - overhead
    pieces = -(-(n - overhead) // budget)  # as few as fit; then as even as the sentences allow
    share = (n - overhead) / pieces
    out: list[tuple[int, int]] = []
    start = end = -1
    size = 0
    for s, e, c in units:
        if start >= 0 and (size + c > budget or size >= share):
            out.append((start, end))
            start, size = -1, 0
        if start < 0:
            start = s
        end, size = e, size + c
    out.append((start, end))
    measured = tokens.count_tokens([text[s:e] for s, e in out])
    fitted: list[tuple[int, int]] = []
    for (s, e), m in zip(out, measured, strict=True):
        fitted += [(s, e)] if m <= limit else _cut_sentence(text, s, e, limit, tokens)
    return fitted


def _cut_sentence(
    text: str, start: int, end: int, limit: int, tokens: TokenCounter
) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into pieces of at most ``limit`` model tokens.

    Each piece is the longest that fits, found by bisection over the places a cut
    may fall: before a word or mark, or, inside a word too long for the window on
    its own (a run of CJK characters), before any character.
    """
    out: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        cuts = [m.start() for m in _TOKEN.finditer(text, pos, end)][1:] + [end]
        best = _longest_fit(text, pos, cuts, limit, tokens)
        if best is None:  # the first word alone is too long: cut inside it
            best = _longest_fit(text, pos, list(range(pos + 1, cuts[0] + 1)), limit, tokens)
        if best is None:  # not even one character fits (a window of 2): keep going anyway
            best = pos + 1
        s, e = _trim(text, pos, best)
        if s < e:
            out.append((s, e))
        pos = best
    return out


def _longest_fit(
    text: str, start: int, cuts: list[int], limit: int, tokens: TokenCounter
) -> int | None:
    """The furthest cut ``c`` with ``text[start:c]`` (trimmed) within ``limit``, if any."""
    lo, hi, best = 0, len(cuts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        s, e = _trim(text, start, cuts[mid])
        if tokens.count_tokens([text[s:e]])[0] <= limit:
            best, lo = cuts[mid], mid + 1
        else:
            hi = mid - 1
    return best
