"""Extractive answers: the sentences of the retrieved passages that answer the question.

No language model: each sentence of the top passages is scored by the fitted
ranking model of :mod:`assistant.ranking` (meaning from its in-context vector,
stored at index time, see :mod:`index.sentvec`; the question's IDF-weighted words
it and its neighbours hold; its passage's retrieval scores; the kind of thing
asked for). The best sentence comes first; up to two more join only when they add
to it (see :meth:`ExtractiveAnswerer._choose`). Each is followed by the ``[n]``
marker of the passage it comes from.

Whether to answer at all is a calibrated decision over evidence scores (see
:mod:`assistant.abstain`): when the evidence is weak the answer says so, cites
nothing, and the nearest passages are returned as such.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant import ranking
from assistant.abstain import Evidence, answer_probability, confidence
from assistant.answerer import Drafted
from assistant.errors import BadQuestion
from assistant.models import Citation, Passage
from assistant.reader import asks_explanation
from assistant.retrieve import Candidate, Retrieval, sentence_similarities
from assistant.textsafe import clean_question
from assistant.words import (
    IdfTable,
    asks_each_document,
    content_words,
    coverage,
    matched,
    question_weights,
    question_words,
    stem,
    stems_of,
)
from index.chunk import sentences
from index.lexical import LexicalIndex

if TYPE_CHECKING:
    from assistant.reader import Reader

MAX_QUESTION_CHARS = 2000
# How many of the ranking's best sentences an answer hands on as where the answer is
# (Drafted.leading): a written answer's facts must be in them (assistant.generate).
LEADING_SENTENCES = 3
MAX_SENTENCES = 3
SENTENCE_POOL = 5  # passages whose sentences compete for the answer
# A further sentence joins the first only when the answerer's order gives it at least
# this share of the first one's odds (exp of the difference: the ranking's score plus
# the reader's weighed margin, so a sentence the reader demoted seldom joins), and it
# brings what the first lacks: question words the first does not hold, the sentence
# right after a chosen one (it carries the point on), or another document's account
# (weighed on the better of the order's and the ranking's odds). Chosen on the tuning
# samples (SQuAD seed 2024, NQ tune): lower adds words for little more gold in the
# answer, higher drops the second part of two-part questions.
FOLLOW_ODDS = 0.12
OTHER_DOC_ODDS = 0.3  # the same, for a sentence of a document the answer does not cite yet
TIE_ODDS = 0.4  # one the order cannot tell from the first joins whatever it adds
MIN_GAIN = 0.2  # share of the question's weighted content a further part must add
# The reader (assistant.reader) re-weighs the ranking's best READER_POOL sentences: each
# one's score gains READER_WEIGHT x the reader's margin of its best phrase over "no short
# answer here" (a question read together with the sentence). Fitted on the tuning samples
# by benchmarks/reader_qa.py --fit-rerank; 0 turns it off.
READER_POOL = 4
READER_WEIGHT = 0.4
NO_ANSWER = "The documents do not answer this question."
_WORD = re.compile(r"\w+")
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


@dataclass
class _Sentence:
    cand_index: int
    start: int  # absolute offsets in the document
    end: int
    text: str
    stems: set[str]  # computed once: scoring, choosing and the evidence all use them
    cover: float = 0.0
    sim: float = 0.0  # cosine of its vector with the question's
    score: float = 0.0  # the ranking model's logit
    reading: float | None = None  # the reader's margin of its best phrase, where it read it
    verdict: float | None = None  # the reader's logit that it answers, where it read it
    order: float = 0.0  # where it stands: its score, + the reader's weighed margin if read
    features: list[float] = field(default_factory=list)


def _next_to(a: _Sentence, b: _Sentence, cands: list[Candidate]) -> bool:
    """Whether ``b`` is the sentence right after ``a`` in the same passage."""
    if a.cand_index != b.cand_index or b.start < a.end:
        return False
    c = cands[a.cand_index]
    return not c.text[a.end - c.start : b.start - c.start].strip()


class ExtractiveAnswerer:
    """The default :class:`~assistant.answerer.Answerer`: offline, no language model."""

    name = "extractive"

    def __init__(self, lexical: LexicalIndex, weights: Sequence[float] = ranking.WEIGHTS,
                 reader: Reader | None = None, reader_weight: float = READER_WEIGHT) -> None:
        self.idf = IdfTable(lexical)
        self.weights = tuple(weights)
        self.reader = reader
        self.reader_weight = reader_weight

    def answer(
        self,
        question: str,
        retrieval: Retrieval,
        context: str = "",
        k: int = 6,
        on_delta: Callable[[str], None] | None = None,  # nothing to stream: milliseconds
        cancel: threading.Event | None = None,
    ) -> Drafted:
        cands = retrieval.candidates
        passages = [
            Passage(c.source, c.start, c.end, c.text, c.score, c.chunk_id) for c in cands[:k]
        ]
        view, q_weights, scored = self.rank(question, retrieval, context)
        each_document = asks_each_document(question)
        # The reader looks for one phrase answering the question whole; what the
        # documents say about something is answered by several, so the ranking orders them.
        if self.reader is not None and self.reader_weight and scored and not each_document:
            scored = self.reread(question, scored)
        best = scored[0] if scored else None
        chosen = self._choose(scored, q_weights, cands, each_document) if scored else []
        if chosen and view.kind in ("number", "date") and not any(
            view.holds_kind(x.text) for x in chosen
        ):
            chosen += self._typed_neighbour(chosen[0], cands, view)
        read = best if best and not asks_explanation(question) else None  # its readings count
        evidence = Evidence(
            top_dense=retrieval.top_dense,
            sentence_cover=best.cover if best else 0.0,
            answer_cover=coverage(set().union(*(s.stems for s in chosen)), q_weights),
            passage_cover=self._passage_cover(cands, chosen, q_weights),
            type_ok=1.0 if best and view.holds_kind(best.text) else 0.0,
            asks_type=1.0 if view.kind else 0.0,
            sentence_sim=best.sim if best else 0.0,
            sentence_score=best.score if best else -10.0,
            missing_names=ranking.missing_names(question, [c.text for c in cands[:k]]),
            # The reader marks phrases: the margin says nothing of the answer to a why/how
            # question (one about what the documents say is not reread: no margin).
            reader_margin=read.reading if read and read.reading is not None else 0.0,
            reader_answers=read.verdict if read and read.verdict is not None else 0.0,
        )
        conf = confidence(evidence)
        text, citations = self._compose(chosen, cands)
        leading = tuple(x.text for x in scored[:LEADING_SENTENCES])
        quoted = tuple((cands[x.cand_index].source, x.start, x.end, x.text) for x in chosen)
        if best is None or answer_probability(evidence) < 0.5:
            return Drafted(NO_ANSWER, True, [], passages, evidence, conf, text, leading=leading,
                           quoted=quoted)
        return Drafted(text, False, citations, passages, evidence, conf, text, leading=leading,
                       quoted=quoted)

    def rank(
        self, question: str, retrieval: Retrieval, context: str = ""
    ) -> tuple[ranking.QuestionView, dict[str, float], list[_Sentence]]:
        """The question as the ranking reads it, its word weights, and the sentences
        of the top passages with their features and scores, best first."""
        words = question_words(question)
        q_weights = question_weights(words, self.idf)
        ctx_weights = {
            s: 0.5 * v for s, v in question_weights(content_words(context), self.idf).items()
            if s not in q_weights
        }
        view = ranking.QuestionView(question, words)
        pool = retrieval.candidates[:SENTENCE_POOL]
        if retrieval.query_vec is not None:  # a no-op after the retriever's rerank
            sentence_similarities(pool, self.idf.lexical, retrieval.query_vec)
        return view, q_weights, self.score(pool, view, q_weights, ctx_weights)

    def reread(self, question: str, scored: list[_Sentence]) -> list[_Sentence]:
        """``scored`` with its best READER_POOL sentences re-ordered by their score plus
        ``reader_weight`` x the reader's margin, kept as each sentence's ``order``: the
        choice of further sentences weighs their odds on it, so a sentence the reader
        demoted no longer joins as a tie. The scores themselves, which the abstention
        reads, stay the ranking's."""
        top = scored[:READER_POOL]
        found = self.reader.spans(question, [x.text for x in top])  # type: ignore[union-attr]
        verdicts = self.reader.answers(question, [x.text for x in top])  # type: ignore[union-attr]
        for x, hit, verdict in zip(top, found, verdicts, strict=True):
            x.reading = hit[2] if hit else -10.0
            x.verdict = verdict
        floor = min(x.reading for x in top)
        for x in scored:  # the unread rank below the read ones, as they did by score alone
            x.order = x.score + self.reader_weight * (x.reading if x.reading is not None
                                                      else floor)
        return sorted(top, key=lambda x: -x.order) + scored[READER_POOL:]

    @staticmethod
    def _passage_cover(
        cands: list[Candidate], chosen: list[_Sentence], q_weights: dict[str, float]
    ) -> float:
        """The best of the top three passages alone, or the passages the answer cites
        together (a question two documents answer in part each); each passage's words
        read once."""
        if not cands:
            return 0.0
        cited = {s.cand_index for s in chosen}
        top = range(min(3, len(cands)))
        stems = {i: stems_of(cands[i].text) for i in {*top, *cited}}
        return max(*(coverage(stems[i], q_weights) for i in top),
                   coverage(set().union(*(stems[i] for i in cited)), q_weights))

    def score(
        self,
        cands: list[Candidate],
        view: ranking.QuestionView,
        q_weights: dict[str, float],
        ctx_weights: dict[str, float],
    ) -> list[_Sentence]:
        """Every sentence of ``cands`` with its features and score, best first."""
        out: list[_Sentence] = []
        rows: list[list[float]] = []
        top = max((c.fused for c in cands), default=1.0)
        q_pairs = ranking.pairs([stem(w) for w in view.words])
        for i, c in enumerate(cands):
            prior = c.fused / top if top > 0 else 0.0
            spans = sentences(c.text)
            sims = c.sentence_sims
            if sims is not None and len(sims) != len(spans):
                sims = None  # none stored, or not this chunk's sentences: never misalign
            texts = [c.text[s:e] for s, e, _p in spans]
            words = [content_words(t) for t in texts]
            stem_lists = [[stem(w) for w in ws] for ws in words]
            covers = [coverage(set(sl), q_weights) for sl in stem_lists]
            for j, (s, e, _para) in enumerate(spans):
                if not _WORD.search(texts[j]):
                    continue
                stems = set(stem_lists[j])
                sent = _Sentence(i, c.start + s, c.start + e, texts[j], stems, covers[j])
                # Without stored sentence vectors, the passage's own cosine stands in.
                sent.sim = float(sims[j]) if sims is not None else (c.dense or 0.0)
                rows.append(ranking.features(
                    view, texts[j], cover=covers[j], sim=sent.sim, prior=prior,
                    context=coverage(stems, ctx_weights) if ctx_weights else 0.0,
                    pairs=ranking.pair_share(q_pairs, stem_lists[j]),
                    before=covers[j - 1] if j > 0 else 0.0,
                    after=covers[j + 1] if j + 1 < len(covers) else 0.0,
                ))
                out.append(sent)
        for sent, row in zip(out, rows, strict=True):
            sent.features = row
            sent.score = sent.order = ranking.score(row, self.weights)
        out.sort(key=lambda x: (-x.score, x.cand_index, x.start))
        return out

    def _choose(
        self, scored: list[_Sentence], q_weights: dict[str, float], cands: list[Candidate],
        each_document: bool = False,
    ) -> list[_Sentence]:
        """The best sentence, then up to two more that the model rates nearly as
        likely and that add something the answer lacks so far: a part of the
        question it does not cover (at least MIN_GAIN of the question's weighted
        content), the sentence right after one chosen (which carries its point on),
        or another document's account (a question several articles speak to). A
        sentence that only repeats what the answer covers, from elsewhere in the same
        document, joins only when the model cannot tell it from the best.

        With ``each_document`` (the question asks what the documents, plural, say),
        each other document's best sentence that holds question content joins, ahead of
        further sentences of the first document, and each document's sentences stay
        together.
        """
        best = scored[0]
        chosen = [best]
        covered = matched(best.stems, q_weights)
        docs = {cands[best.cand_index].source}
        total = math.fsum(q_weights.values()) or 1.0  # exact: set order varies
        rest = scored[1:]
        if each_document:  # each other document's best say first, before more of this one
            firsts: dict[str, _Sentence] = {}
            for s in rest:
                source = cands[s.cand_index].source
                if source not in docs and source not in firsts and matched(s.stems, q_weights):
                    firsts[source] = s
            picked = {id(s) for s in firsts.values()}
            rest = [*firsts.values(), *(s for s in rest if id(s) not in picked)]
        for s in rest:
            if len(chosen) >= MAX_SENTENCES:
                break
            # Another document's account may be one the reader reads poorly (it looks
            # for a phrase answering the question whole): the ranking's odds count too.
            # (A question about what the documents say is not reread: order == score.)
            ranked = math.exp(s.score - best.score)
            odds = math.exp(s.order - best.order)
            found = matched(s.stems, q_weights)
            gain = math.fsum(q_weights[w] for w in found - covered) / total
            new_doc = cands[s.cand_index].source not in docs
            if (
                ((gain >= MIN_GAIN or any(_next_to(c, s, cands) for c in chosen))
                 and odds >= FOLLOW_ODDS)
                or (new_doc and found and (each_document or max(odds, ranked) >= OTHER_DOC_ODDS))
                or odds >= TIE_ODDS
            ):
                chosen.append(s)
                covered |= found
                docs.add(cands[s.cand_index].source)
        if each_document:  # each document's account together, in the order they came
            first_seen = list(dict.fromkeys(cands[s.cand_index].source for s in chosen))
            chosen.sort(key=lambda s: first_seen.index(cands[s.cand_index].source))
        return chosen

    def _typed_neighbour(
        self, best: _Sentence, cands: list[Candidate], view: ranking.QuestionView
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
                    if view.holds_kind(text):
                        return [_Sentence(best.cand_index, c.start + ns, c.start + ne,
                                          text, stems_of(text))]
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
