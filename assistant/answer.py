"""Extractive answers: the sentences of the retrieved passages that answer the question.

No language model: each sentence of the top passages is scored by how much of
the question's evidence (IDF-weighted content words, stemmed) it holds, how close
its in-context vector (stored at index time, see :mod:`index.sentvec`) is to the
question's vector, a prior from its passage's retrieval score, and whether it
holds the kind of thing the question asks for (a number, a date). The best one
to three sentences become the answer, each followed by the ``[n]`` marker of the
passage it comes from.

Whether to answer at all is a calibrated decision over evidence scores (see
:mod:`assistant.abstain`): when the evidence is weak the answer says so, cites
nothing, and the nearest passages are returned as such.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from functools import lru_cache

from assistant.abstain import Evidence, answer_probability
from assistant.errors import BadQuestion
from assistant.models import Citation, Passage
from assistant.retrieve import Candidate, Retrieval, sentence_similarities
from assistant.textsafe import clean_question
from index.chunk import sentences
from index.lexical import STOPWORDS, LexicalIndex

MAX_QUESTION_CHARS = 2000
MAX_SENTENCES = 3
# Sentence selection, tuned on SQuAD dev questions (benchmarks/squad_qa.py, a sample
# other than the one reported): how much the passage's retrieval score counts next
# to the sentence's own evidence, and how close to the best a further sentence must be.
PRIOR_WEIGHT = 0.5
FOLLOW_RATIO = 0.7
SENTENCE_POOL = 5  # passages whose sentences compete for the answer
TYPE_BONUS = 0.3  # for a sentence holding the kind of thing asked for (a date, a number)
SEMANTIC_WEIGHT = 1.0  # times the cosine of the sentence's vector with the question's
NO_ANSWER = "The documents do not answer this question."
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(
    r"\b\d[\d,.]*(?!\w)|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen|half)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(?:1\d{3}|20\d{2}|\d{1,2}(?:st|nd|rd|th))\b|"
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b",
    re.IGNORECASE,
)
# What kind of answer a question asks for, from its opening words. This shapes
# which sentence is chosen; it is one input among the calibrated evidence.
_ASKS_NUMBER = re.compile(
    r"^\W*(?:how (?:many|much|long|far|old|large|big|high|often)|what (?:percentage|percent|"
    r"number|amount|proportion|share|fraction))\b", re.IGNORECASE)
_ASKS_DATE = re.compile(r"^\W*(?:when|(?:in |on )?what (?:year|date|decade|century|month|day)|"
                        r"(?:in )?which (?:year|decade|century|month)|"
                        r"what(?:'s| is| was) the (?:date|year))\b", re.IGNORECASE)
# Past forms a suffix stemmer cannot join to their verb ("chosen" / "choose").
_IRREGULAR = {
    form: verb
    for verb, forms in (
        line.split(":") for line in """
        be:was,were,been begin:began,begun bring:brought buy:bought build:built choose:chose,chosen
        come:came do:did,done draw:drew,drawn drive:drove,driven eat:ate,eaten fall:fell,fallen
        feel:felt fight:fought find:found fly:flew,flown forget:forgot,forgotten get:got,gotten
        give:gave,given go:went,gone grow:grew,grown hold:held keep:kept know:knew,known lead:led
        leave:left lose:lost make:made mean:meant meet:met pay:paid rise:rose,risen run:ran
        say:said see:saw,seen sell:sold send:sent shake:shook,shaken sink:sank,sunk
        speak:spoke,spoken spend:spent stand:stood steal:stole,stolen strike:struck
        take:took,taken teach:taught tell:told think:thought throw:threw,thrown
        understand:understood win:won write:wrote,written
        """.split()
    )
    for form in forms.split(",")
}


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - nltk is untyped
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer(mode=PorterStemmer.ORIGINAL_ALGORITHM)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer().stem(_IRREGULAR.get(word, word))


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` minus function words."""
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOPWORDS]


def validate_question(question: str) -> str:
    """The question cleaned of control characters; raises :class:`BadQuestion` if unusable."""
    if not isinstance(question, str):
        raise BadQuestion("The question must be text.")
    cleaned = clean_question(question)
    if not cleaned:
        raise BadQuestion("The question is empty.", "Type a question about the documents.")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise BadQuestion(
            f"The question is {len(question):,} characters long; the limit is "
            f"{MAX_QUESTION_CHARS:,}.",
            "Ask a shorter question: a sentence or two works best.",
        )
    if not _WORD.search(cleaned):
        raise BadQuestion("The question has no words in it.", "Type a question in words.")
    return cleaned


def expected_type(question: str) -> str | None:
    if _ASKS_NUMBER.search(question):
        return "number"
    if _ASKS_DATE.search(question):
        return "date"
    return None


def has_type(text: str, kind: str | None) -> bool:
    if kind == "number":
        return bool(_NUMBER.search(text))
    if kind == "date":
        return bool(_DATE.search(text))
    return True


@dataclass
class _Sentence:
    cand_index: int
    start: int  # absolute offsets in the document
    end: int
    text: str
    stems: set[str]  # computed once: scoring, choosing and the evidence all use them
    cover: float = 0.0
    sim: float = 0.0  # cosine of its vector with the question's
    score: float = 0.0


class IdfTable:
    """IDF of words over the chunks of the index, looked up lazily and cached.

    A word no chunk holds gets ``None``: the corpus cannot say how specific it is.
    """

    def __init__(self, lexical: LexicalIndex) -> None:
        self.lexical = lexical
        self.n = max(lexical.count(), 1)
        self._cache: dict[str, float | None] = {}

    def __call__(self, words: list[str]) -> dict[str, float | None]:
        missing = [w for w in words if w not in self._cache]
        if missing:
            for w, df in self.lexical.document_frequency(missing).items():
                self._cache[w] = (
                    math.log(1.0 + (self.n - df + 0.5) / (df + 0.5)) if df else None
                )
        return {w: self._cache[w] for w in words}


def _weights(words: list[str], idf: IdfTable) -> dict[str, float]:
    """Stem -> weight: the largest IDF among the words that share the stem.

    A word the corpus never uses weighs as much as the median known word: its
    absence still counts against every sentence, but an unknown synonym ("give"
    for "provide") does not outweigh the rest of the question.
    """
    known: dict[str, float] = {}
    unknown: set[str] = set()
    for w, v in idf(list(dict.fromkeys(words))).items():
        s = stem(w)
        if v is None:
            unknown.add(s)
        else:
            known[s] = max(known.get(s, 0.0), v)
    fill = statistics.median(known.values()) if known else 1.0
    return {**{s: fill for s in unknown - known.keys()}, **known}


def _related(a: str, b: str) -> bool:
    """Stems of one word family the stemmer left apart: "suppli"/"supplier",
    "partner"/"partnership" (one a prefix of the other, the rest a short suffix)."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 5 and len(long_) - len(short) <= 4 and long_.startswith(short)


def matched(stems: set[str], weights: dict[str, float]) -> set[str]:
    """The question stems (keys of ``weights``) that ``stems`` holds or relates to."""
    found = stems & weights.keys()
    for q in weights.keys() - found:
        if any(_related(q, s) for s in stems):
            found.add(q)
    return found


def _coverage(stems: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(weights[s] for s in matched(stems, weights)) / total


def _stems(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}


class ExtractiveAnswerer:
    def __init__(self, lexical: LexicalIndex) -> None:
        self.idf = IdfTable(lexical)

    def answer(
        self, question: str, retrieval: Retrieval, context: str = "", k: int = 6
    ) -> tuple[str, bool, list[Citation], list[Passage], Evidence]:
        cands = retrieval.candidates
        passages = [
            Passage(c.source, c.start, c.end, c.text, c.score, c.chunk_id) for c in cands[:k]
        ]
        q_weights = _weights(content_words(question), self.idf)
        ctx_weights = {
            s: 0.5 * v for s, v in _weights(content_words(context), self.idf).items()
            if s not in q_weights
        }
        kind = expected_type(question)
        pool = cands[:SENTENCE_POOL]
        if retrieval.query_vec is not None:  # a no-op after the retriever's rerank
            sentence_similarities(pool, self.idf.lexical, retrieval.query_vec)
        scored = self._score(pool, q_weights, ctx_weights, kind)
        best = scored[0] if scored else None
        chosen = self._choose(scored, q_weights) if scored else []
        if chosen and kind and not any(has_type(x.text, kind) for x in chosen):
            chosen += self._typed_neighbour(chosen[0], cands, kind)
        evidence = Evidence(
            top_dense=retrieval.top_dense,
            sentence_cover=best.cover if best else 0.0,
            answer_cover=_coverage(set().union(*(s.stems for s in chosen)), q_weights),
            passage_cover=max(
                (_coverage(_stems(c.text), q_weights) for c in cands[:3]), default=0.0
            ),
            type_ok=1.0 if best and has_type(best.text, kind) else 0.0,
            asks_type=1.0 if kind else 0.0,
            sentence_sim=best.sim if best else 0.0,
        )
        if best is None or answer_probability(evidence) < 0.5:
            return NO_ANSWER, True, [], passages, evidence
        text, citations = self._compose(chosen, cands)
        return text, False, citations, passages, evidence

    def _score(
        self,
        cands: list[Candidate],
        q_weights: dict[str, float],
        ctx_weights: dict[str, float],
        kind: str | None,
    ) -> list[_Sentence]:
        out: list[_Sentence] = []
        top = max((c.fused for c in cands), default=1.0)
        for i, c in enumerate(cands):
            prior = c.fused / top if top > 0 else 0.0
            spans = sentences(c.text)
            sims = c.sentence_sims
            if sims is not None and len(sims) != len(spans):
                sims = None  # none stored, or not this chunk's sentences: never misalign
            for j, (s, e, _para) in enumerate(spans):
                text = c.text[s:e]
                if not _WORD.search(text):
                    continue
                stems = _stems(text)
                cover = _coverage(stems, q_weights)
                ctx = _coverage(stems, ctx_weights) if ctx_weights else 0.0
                typed = TYPE_BONUS if kind and has_type(text, kind) else 0.0
                sent = _Sentence(i, c.start + s, c.start + e, text, stems, cover)
                # Without stored sentence vectors, the passage's own cosine stands in.
                sent.sim = float(sims[j]) if sims is not None else (c.dense or 0.0)
                sent.score = (cover + 0.3 * ctx + PRIOR_WEIGHT * prior + typed
                              + SEMANTIC_WEIGHT * sent.sim)
                out.append(sent)
        out.sort(key=lambda x: (-x.score, x.cand_index, x.start))
        return out

    def _choose(self, scored: list[_Sentence], q_weights: dict[str, float]) -> list[_Sentence]:
        """The best sentence, then up to two that score nearly as well.

        Among those, sentences that hold question words the answer lacks so far
        come first, so a question about two things gets a sentence for each.
        """
        best = scored[0]
        close = [s for s in scored[1:] if s.score >= FOLLOW_RATIO * best.score and s.cover > 0]
        chosen = [best]
        found = {id(s): matched(s.stems, q_weights) for s in (best, *close)}
        covered = set(found[id(best)])
        while close and len(chosen) < MAX_SENTENCES:
            gains = [len(found[id(s)] - covered) for s in close]
            i = max(range(len(close)), key=lambda j: (gains[j] > 0, close[j].score))
            pick = close.pop(i)
            chosen.append(pick)
            covered |= found[id(pick)]
        return sorted(chosen, key=lambda x: -x.score)

    def _typed_neighbour(
        self, best: _Sentence, cands: list[Candidate], kind: str
    ) -> list[_Sentence]:
        """The sentence next to ``best`` that holds what is asked for (a date, a number).

        A headline and its dateline, or a claim and the figure after it, are often
        separate sentences; the asked-for one would otherwise never be chosen.
        """
        c = cands[best.cand_index]
        spans = sentences(c.text)
        for i, (s, _e, _p) in enumerate(spans):
            if c.start + s != best.start:
                continue
            for j in (i + 1, i - 1):
                if 0 <= j < len(spans):
                    ns, ne, _ = spans[j]
                    text = c.text[ns:ne]
                    if has_type(text, kind):
                        return [_Sentence(best.cand_index, c.start + ns, c.start + ne,
                                          text, _stems(text))]
        return []

    def _compose(
        self, chosen: list[_Sentence], cands: list[Candidate]
    ) -> tuple[str, list[Citation]]:
        numbers: dict[int, int] = {}
        citations: list[Citation] = []
        parts = []
        for s in chosen:
            c = cands[s.cand_index]
            if s.cand_index not in numbers:
                numbers[s.cand_index] = len(numbers) + 1
                citations.append(
                    Citation(numbers[s.cand_index], c.source, c.start, c.end, c.text, c.score)
                )
            parts.append(f"{' '.join(s.text.split())} [{numbers[s.cand_index]}]")
        return " ".join(parts), citations
