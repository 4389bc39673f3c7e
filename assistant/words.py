"""Word-level evidence: which words of a question count, how much each weighs, and
how much of them a sentence or passage holds.

Shared by the extractive answerer (:mod:`assistant.answer`) and the citation check
(:mod:`assistant.citecheck`). Words are lower-cased and stemmed (Porter, with the
irregular past forms a suffix stemmer cannot join); weights are IDF over the chunks
of the index.
"""

from __future__ import annotations

import math
import re
import statistics
from functools import lru_cache

from index.lexical import STOPWORDS, LexicalIndex

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
    articles describe ...", "which articles discuss ..."): then each one that speaks to
    it is quoted. "The articles of ..." names something ("the Articles of Confederation",
    "articles of association") and does not count."""
    words = [m.lower() for m in _WORD.findall(question)]
    return any(w in _FRAMING_NOUNS and w.endswith("s") and i
               and (words[i - 1] in _DETERMINERS or words[i - 1] == "which")
               and words[i + 1: i + 2] != ["of"]
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
    """The share of the question's weight (``weights``) that ``stems`` covers. Summed
    exactly (``math.fsum``): the stems come in set order, which changes from one process
    to the next, and a plain sum's last bit with it -- enough to turn a threshold."""
    total = math.fsum(weights.values())
    if total <= 0:
        return 0.0
    return math.fsum(weights[s] for s in matched(stems, weights)) / total


def stems_of(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)}
