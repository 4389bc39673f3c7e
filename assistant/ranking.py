"""Which sentence answers the question: features of a candidate sentence, and the
fitted model that weighs them.

A question shares few words with its answer when it is asked in the reader's own
words, so word overlap is one signal among several: the cosine of the sentence's
in-context vector with the question's vector from the trained question encoder
(:mod:`assistant.qencoder`: meaning, learned from questions and the sentences that
answer them), how much of the question's IDF-weighted content the sentence and its
neighbours hold, its passage's retrieval score, whether it holds the kind of thing
the question asks for (a number, a date, a name) that the question itself does not
already hold, and whether it is a heading.

The weights are fitted by ``benchmarks/fit_answerer.py`` (a softmax over each
question's candidate sentences, so they learn to put the answering sentence
first) on tuning samples of SQuAD (questions written from the text) and Natural
Questions (search queries written without seeing it); see its results file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+")
CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*")
NUMBER = re.compile(
    r"\b\d[\d,.]*(?!\w)|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty|thirty|forty|fifty|hundred|thousand|million|billion|dozen|half)\b",
    re.IGNORECASE,
)
DATE = re.compile(
    r"\b(?:1\d{3}|20\d{2}|\d{1,2}(?:st|nd|rd|th))\b|"
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b",
    re.IGNORECASE,
)
# What kind of answer a question asks for, from its first wh-word (a later one
# opens a clause: "what should they do when ..."): English question grammar, the
# same for every corpus.
_WH = re.compile(r"\b(?:who|whom|whose|what|when|where|which|how|why)\b", re.IGNORECASE)
_ASKS_NUMBER = re.compile(
    r"how (?:many|much|long|far|old|large|big|high|often|tall|deep|fast)|what "
    r"(?:percentage|percent|number|amount|proportion|share|fraction)", re.IGNORECASE)
_ASKS_DATE = re.compile(r"when|what (?:year|date|decade|century|month|day)|"
                        r"which (?:year|decade|century|month)|"
                        r"what(?:'s| is| was) the (?:date|year)", re.IGNORECASE)
_ASKS_NAME = re.compile(r"who|whom|whose|where|which", re.IGNORECASE)
_TERMINAL = re.compile(r"[.!?…][\"'”’)\]]*\s*$")

FEATURES = (
    "cover",  # share of the question's IDF-weighted content stems the sentence holds
    "sim",  # cosine of its in-context vector with the question encoder's vector
    "prior",  # its passage's fused retrieval score over the best one's
    "context",  # share of earlier turns' content it holds (follow-ups)
    "type",  # +1 holds the kind asked for (beyond what the question holds), -1 not, 0 none asked
    "heading",  # no closing punctuation: a title or heading line
    "pairs",  # share of the question's adjacent content-word pairs it holds in order
    "before",  # the cover of the sentence before it in its passage
    "after",  # ... and of the one after (the question's subject may be named there)
)

# Fitted by benchmarks/fit_answerer.py; one weight per FEATURES entry (results/answerer.json).
# The tuning questions have no earlier turns, so "context" is not fitted: it is set
# to half the weight of "cover" (an earlier turn's words count half as much).
# With the trained question encoder, its cosine carries most of the weight; the passage's
# own cosine and rank, new names, novelty, first-in-passage and length were dropped: left
# out together they cost nothing on the tuning check (results/answerer.json, "dropped").
WEIGHTS: tuple[float, ...] = (2.363, 11.498, 5.073, 1.181, 1.146, -1.565, 0.919, 0.562, 0.147)


def expected_type(question: str) -> str | None:
    wh = _WH.search(question)
    if wh is None:
        return None
    for kind, pattern in (("number", _ASKS_NUMBER), ("date", _ASKS_DATE), ("name", _ASKS_NAME)):
        if pattern.match(question, wh.start()):
            return kind
    return None


_POSSESSIVE = re.compile(r"['’]s?$")


def names(text: str, skip_first: bool) -> set[str]:
    out = set()
    for m in CAPITALISED.finditer(text):
        if skip_first and m.start() == 0:
            continue
        out.add(_POSSESSIVE.sub("", m.group().lower()))
    return out


def missing_names(question: str, texts: Sequence[str]) -> float:
    """The share of the question's names and numbers that none of ``texts`` (the
    retrieved passages) holds.

    A question about something the documents never name (a person, a place, a year
    they do not mention) is often one they cannot answer, however close its other
    words come to a passage."""
    asked = names(question, skip_first=True) | {m.group().lower() for m in NUMBER.finditer(
        question) if m.group()[0].isdigit()}
    if not asked:
        return 0.0
    words = {w.lower() for t in texts for w in _WORD.findall(t)}
    return sum(1 for n in asked if not set(_WORD.findall(n)) <= words) / len(asked)


def _already_asked(kind: str | None, question: str) -> frozenset[str]:
    """What of ``kind`` the question itself holds: an answer must hold something else."""
    if kind == "name":
        return frozenset(names(question, skip_first=False) | set(question.lower().split()))
    if kind in ("number", "date"):
        pattern = NUMBER if kind == "number" else DATE
        return frozenset(m.group().lower() for m in pattern.finditer(question))
    return frozenset()


def _holds(text: str, kind: str | None, asked: frozenset[str]) -> bool:
    if kind is None:
        return True
    if kind == "name":
        return bool(names(text, skip_first=True) - asked)
    pattern = NUMBER if kind == "number" else DATE
    return any(m.group().lower() not in asked for m in pattern.finditer(text))


def has_type(text: str, kind: str | None, question: str = "") -> bool:
    """Whether ``text`` holds a ``kind`` the question does not already hold."""
    return _holds(text, kind, _already_asked(kind, question))


class QuestionView:
    """What every sentence is compared with: the question's words, names and kind,
    read once per question."""

    def __init__(self, question: str, words: Sequence[str]) -> None:
        self.text = question
        self.kind = expected_type(question)
        self.words = list(words)  # its content words, in order (for adjacent pairs)
        self.content = set(self.words)
        self.names = names(question, skip_first=False) | self.content
        self._asked = _already_asked(self.kind, question)

    def holds_kind(self, text: str) -> bool:
        """Whether ``text`` holds the kind asked for beyond what the question holds."""
        return _holds(text, self.kind, self._asked)


def features(
    q: QuestionView,
    text: str,
    *,
    cover: float,
    sim: float,
    prior: float,
    context: float,
    pairs: float,
    before: float,
    after: float,
) -> list[float]:
    """The FEATURES of one sentence."""
    kind = (1.0 if q.holds_kind(text) else -1.0) if q.kind else 0.0
    return [
        cover, sim, prior, context, kind,
        0.0 if _TERMINAL.search(text) else 1.0,
        pairs, before, after,
    ]


def pairs(stems: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(stems, stems[1:], strict=False))


def pair_share(q_pairs: set[tuple[str, str]], stems: Sequence[str]) -> float:
    if not q_pairs:
        return 0.0
    return len(q_pairs & pairs(stems)) / len(q_pairs)


def score(row: Sequence[float], weights: Sequence[float] = WEIGHTS) -> float:
    return sum(w * x for w, x in zip(weights, row, strict=True))
