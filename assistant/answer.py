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
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from assistant import ranking
from assistant.abstain import Evidence, answer_probability, confidence
from assistant.answerer import Drafted
from assistant.errors import BadQuestion
from assistant.models import Citation, Passage
from assistant.retrieve import Candidate, Retrieval, sentence_similarities
from assistant.textsafe import clean_question
from index.chunk import sentences
from index.lexical import STOPWORDS, LexicalIndex

MAX_QUESTION_CHARS = 2000
MAX_SENTENCES = 3
SENTENCE_POOL = 5  # passages whose sentences compete for the answer
# A further sentence joins the first only when the ranking model gives it at least
# this share of the first one's odds (exp of the score difference), and it brings
# what the first lacks: question words the first does not hold, the sentence right
# after a chosen one (it carries the point on), or another document's account.
# Chosen on the tuning samples (SQuAD seed 2024, NQ tune): lower adds words for
# little more gold in the answer, higher drops the second part of two-part questions.
FOLLOW_ODDS = 0.3
OTHER_DOC_ODDS = 0.3  # the same, for a sentence of a document the answer does not cite yet
TIE_ODDS = 0.9  # one the model cannot tell from the first joins whatever it adds
MIN_GAIN = 0.2  # share of the question's weighted content a further part must add
NO_ANSWER = "The documents do not answer this question."
_WORD = re.compile(r"\w+")
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


# Words with which a reader points at the documents themselves ("what do the
# articles say about ...", "according to the report's author"): they frame a
# question to any document assistant and never name what is asked, so no answer
# sentence is expected to hold them.
FRAMING = frozenset("""
according article articles author authors describe described describes discuss discussed
discusses document documents mention mentioned mentions passage passages say says text texts
""".split())
_SKIP = STOPWORDS | FRAMING


_FRAMING_NOUNS = frozenset("article articles document documents passage passages text texts"
                           .split())
_DETERMINERS = frozenset("the this that these those each both".split())


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` minus function words and document-framing words."""
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _SKIP]


def asks_each_document(question: str) -> bool:
    """Whether the question asks what the documents, plural, say ("how do the
    articles describe ..."): then each one that speaks to it is quoted."""
    words = [m.lower() for m in _WORD.findall(question)]
    return any(w in _FRAMING_NOUNS and w.endswith("s") and i and words[i - 1] in _DETERMINERS
               for i, w in enumerate(words))


def question_words(question: str) -> list[str]:
    """The question's content words, less those that only say which document is
    meant ("the first article", "the 2019 article"): a determiner, up to two words,
    then a framing noun."""
    words = [m.lower() for m in _WORD.findall(question)]
    drop: set[int] = set()
    for i, w in enumerate(words):
        if w in _FRAMING_NOUNS:
            for j in range(max(0, i - 3), i):
                if words[j] in _DETERMINERS:
                    drop.update(range(j, i))
    return [w for i, w in enumerate(words) if i not in drop and w not in _SKIP]


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
    features: list[float] = field(default_factory=list)


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


def question_weights(words: list[str], idf: IdfTable) -> dict[str, float]:
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


def coverage(stems: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(weights[s] for s in matched(stems, weights)) / total


def stems_of(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}


def _next_to(a: _Sentence, b: _Sentence, cands: list[Candidate]) -> bool:
    """Whether ``b`` is the sentence right after ``a`` in the same passage."""
    if a.cand_index != b.cand_index or b.start < a.end:
        return False
    c = cands[a.cand_index]
    return not c.text[a.end - c.start : b.start - c.start].strip()


class ExtractiveAnswerer:
    """The default :class:`~assistant.answerer.Answerer`: offline, no language model."""

    name = "extractive"

    def __init__(self, lexical: LexicalIndex, weights: Sequence[float] = ranking.WEIGHTS) -> None:
        self.idf = IdfTable(lexical)
        self.weights = tuple(weights)

    def answer(
        self, question: str, retrieval: Retrieval, context: str = "", k: int = 6
    ) -> Drafted:
        cands = retrieval.candidates
        passages = [
            Passage(c.source, c.start, c.end, c.text, c.score, c.chunk_id) for c in cands[:k]
        ]
        words = question_words(question)
        q_weights = question_weights(words, self.idf)
        ctx_weights = {
            s: 0.5 * v for s, v in question_weights(content_words(context), self.idf).items()
            if s not in q_weights
        }
        view = ranking.QuestionView(question, set(words))
        pool = cands[:SENTENCE_POOL]
        if retrieval.query_vec is not None:  # a no-op after the retriever's rerank
            sentence_similarities(pool, self.idf.lexical, retrieval.query_vec)
        scored = self.score(pool, view, q_weights, ctx_weights)
        best = scored[0] if scored else None
        chosen = (self._choose(scored, q_weights, cands, asks_each_document(question))
                  if scored else [])
        if chosen and view.kind in ("number", "date") and not any(
            ranking.has_type(x.text, view.kind, question) for x in chosen
        ):
            chosen += self._typed_neighbour(chosen[0], cands, view)
        evidence = Evidence(
            top_dense=retrieval.top_dense,
            sentence_cover=best.cover if best else 0.0,
            answer_cover=coverage(set().union(*(s.stems for s in chosen)), q_weights),
            # The best of the top passages alone, or the passages the answer cites
            # together (a question two documents answer in part each).
            passage_cover=max(
                *(coverage(stems_of(c.text), q_weights) for c in cands[:3]),
                coverage(set().union(*(stems_of(cands[i].text)
                                        for i in {s.cand_index for s in chosen})), q_weights),
            ) if cands else 0.0,
            type_ok=1.0 if best and ranking.has_type(best.text, view.kind, question) else 0.0,
            asks_type=1.0 if view.kind else 0.0,
            sentence_sim=best.sim if best else 0.0,
            sentence_score=best.score if best else -10.0,
            missing_names=ranking.missing_names(question, [c.text for c in cands[:k]]),
        )
        conf = confidence(evidence)
        text, citations = self._compose(chosen, cands)
        if best is None or answer_probability(evidence) < 0.5:
            return Drafted(NO_ANSWER, True, [], passages, evidence, conf, text)
        return Drafted(text, False, citations, passages, evidence, conf, text)

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
                    view, texts[j], words[j], cover=covers[j], sim=sent.sim, prior=prior,
                    rank=i, dense=c.dense if c.dense is not None else 0.0,
                    context=coverage(stems, ctx_weights) if ctx_weights else 0.0,
                    first=j == 0,
                    pairs=ranking.pair_share(q_pairs, stem_lists[j]),
                    before=covers[j - 1] if j > 0 else 0.0,
                    after=covers[j + 1] if j + 1 < len(covers) else 0.0,
                ))
                out.append(sent)
        for sent, row in zip(out, rows, strict=True):
            sent.features = row
            sent.score = ranking.score(row, self.weights)
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
        each other document's best sentence that holds question content joins.
        """
        best = scored[0]
        chosen = [best]
        covered = matched(best.stems, q_weights)
        docs = {cands[best.cand_index].source}
        total = sum(q_weights.values()) or 1.0
        for s in scored[1:]:
            if len(chosen) >= MAX_SENTENCES:
                break
            odds = math.exp(s.score - best.score)
            found = matched(s.stems, q_weights)
            gain = sum(q_weights[w] for w in found - covered) / total
            new_doc = cands[s.cand_index].source not in docs
            if (
                ((gain >= MIN_GAIN or any(_next_to(c, s, cands) for c in chosen))
                 and odds >= FOLLOW_ODDS)
                or (new_doc and found and (each_document or odds >= OTHER_DOC_ODDS))
                or odds >= TIE_ODDS
            ):
                chosen.append(s)
                covered |= found
                docs.add(cands[s.cand_index].source)
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
                    if ranking.has_type(text, view.kind, view.text):
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
