"""Check a written answer's citations: is each sentence backed by the passages it cites?

A language model asked to cite ``[n]`` after each claim may invent markers, cite
the wrong passage, or change a name or a figure while quoting the right one. So
once its text is complete, markers that point at no passage are removed, and every
sentence is weighed against the passages its own markers cite, with only what the
assistant already has (no NLI model ships in a wheel):

- **meaning**: the best cosine of the sentence's vector with the in-context
  vectors of the cited passages' sentences (the same vectors the index keeps, see
  :mod:`index.sentvec`);
- **lexical**: the share of the sentence's IDF-weighted content words that the
  cited passages hold (the answerer's own stemming and coverage);
- **facts**: every name (a capitalised word not opening the sentence), number and
  date in the sentence must appear in a cited passage. A changed figure moves the
  vector and the word share hardly at all, so it is a rule, not a weight.

A sentence without a marker cites nothing and is unsupported. The weights and the
threshold are fitted by ``benchmarks/citecheck_bench.py`` on SQuAD sentences with
their own passage, with one name/number/date swapped, and with another article's
passage, and on paraphrases (restated Natural Questions, the local model's own
sentences) with theirs (``benchmarks/results/citecheck.json``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.abstain import logistic
from assistant.models import Citation, SentenceCheck
from assistant.ranking import DATE, NUMBER, names
from assistant.textsafe import MARKER
from assistant.words import IdfTable, content_words, coverage, question_weights, stem, stems_of
from index import sentvec
from index.chunk import sentences

if TYPE_CHECKING:
    import numpy as np

    from index.embed import Embedder

# Fitted by benchmarks/citecheck_bench.py (logistic fit on the SQuAD fit articles,
# threshold searched there; results/citecheck.json): bias, meaning, lexical, missing facts.
# A sentence is kept when its cited passages hold about 82% of its weighted content
# words and all its facts: close restatements pass, loose paraphrases do not. A refit
# that lets meaning weigh (with NQ questions restated with their answer and the local
# model's sentences: --nq, --generated-fit) keeps 84% of paraphrases instead of 40%, but
# let 13% of restatements with a wrong answer through (this fit: none) and, with SmolLM2,
# kept its "The passage provides details about ..." sentences: shown to readers as
# backed, they answered worse than falling back (README, "Written answers"). So the
# strict fit stays until a check can tell an answer from a description of a passage.
WEIGHTS: tuple[float, float, float, float] = (-12.473, 0.0, 15.118, -50.656)
THRESHOLD = 0.48

# A marker with the blanks before it, so "claim [9]." cleans to "claim.".
_MARKER_SPACED = re.compile(r"[^\S\r\n]*" + MARKER.pattern)
_WORD = re.compile(r"\w+")
# Codes mixing letters and digits ("5G", "F-16", "A380") name one thing exactly.
_CODE = re.compile(r"\b\w*(?:\d[^\W\d_]|[^\W\d_]\d)\w*")
# Small numbers written out are the same fact as their digits ("two" / "2").
_SPELLED = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
# "one" is as often a pronoun ("one of the ...") as a count: never demanded.
_NOT_FACTS = frozenset({"one"})
# Endings that make another form of a name: demonyms ("Russian", "Chinese", "Israeli",
# "Turkish"), their plurals, and plurals ("Russians"); possessives ("China's") split off
# at the apostrophe already. Longest first only for reading: every one that fits is cut.
_NAME_ENDINGS = ("ians", "ans", "ese", "ish", "ian", "an", "es", "n", "i", "s")
_VOWELS = frozenset("aeiouy")
_MIN_ROOT = 4
_CACHED_PASSAGES = 256
NO_CITATION = "cites no passage"


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    """The answer with markers that point at no passage removed, and its sentences' checks."""

    text: str
    checks: tuple[SentenceCheck, ...]

    @property
    def any_supported(self) -> bool:
        return any(c.supported for c in self.checks)


@dataclass(frozen=True, slots=True)
class Support:
    """The evidence the cited passages give one sentence (what the weights weigh)."""

    meaning: float  # best cosine with a cited passage's sentence
    lexical: float  # share of its weighted content words the passages hold
    missing: float  # share of its names, numbers and dates no cited passage holds

    def row(self) -> tuple[float, float, float]:
        return (self.meaning, self.lexical, self.missing)


def remove_unknown_markers(text: str, known: set[int]) -> str:
    """``text`` without the ``[n]`` markers whose ``n`` is not in ``known``."""
    cleaned = _MARKER_SPACED.sub(
        lambda m: m.group(0) if int(m.group(1)) in known else "", text)
    return cleaned.strip() if cleaned != text else text


def split_sentences(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """The sentences of ``text``, each without markers, with the markers it carries.

    A marker belongs to the sentence it follows, also after the full stop ("claim.
    [1]", "claim.[1] Next"): markers are blanked out before the text is cut, and
    each goes to the last sentence that starts before it.
    """
    blanked = MARKER.sub(lambda m: " " * len(m.group(0)), text)
    spans = [(s, e) for s, e, _p in sentences(blanked)]
    cites: list[list[int]] = [[] for _ in spans]
    for m in MARKER.finditer(text):
        at = max((i for i, (s, _e) in enumerate(spans) if s <= m.start()), default=0)
        if spans and int(m.group(1)) not in cites[at]:
            cites[at].append(int(m.group(1)))
    out = []
    for (s, e), nums in zip(spans, cites, strict=True):
        bare = " ".join(_MARKER_SPACED.sub("", text[s:e]).split())
        if _WORD.search(bare):
            out.append((bare, tuple(nums)))
    return out


def fact_key(token: str) -> str:
    """A number as a fact: "1,000." and "1000" are one; spelled small numbers are digits."""
    token = token.lower().rstrip(".,").replace(",", "")
    return _SPELLED.get(token, token)


def facts(sentence: str) -> set[str]:
    """The names, numbers and dates of ``sentence``, normalised for lookup.

    Month names count only when capitalised ("may" is mostly a verb); then they are
    names anyway, so a date adds years and ordinals ("1066", "5th") beyond NUMBER.
    Codes of letters and digits ("5G") count too: "4G" for "5G" is a changed fact.
    """
    out = names(sentence, skip_first=True)
    out |= {m.group().lower() for m in _CODE.finditer(sentence)}
    out |= {fact_key(m.group()) for m in NUMBER.finditer(sentence)
            if m.group().lower() not in _NOT_FACTS}
    out |= {m.group().lower() for m in DATE.finditer(sentence) if m.group()[0].isdigit()}
    return out


def name_roots(word: str) -> set[str]:
    """The roots a name's other forms share: ``word`` less a demonym, plural or
    possessive ending, and less a final vowel.

    "russia", "russian" and "russians" share "russi"; "china" and "chinese" share
    "chin"; "japan"/"japanese", "israel"/"israeli", "italy"/"italian" and
    "germany"/"german" alike. Roots shorter than _MIN_ROOT letters are not kept: they
    join unrelated short words. Only letters: a number or a code ("5g") is one form.
    """
    if not word.isalpha():
        return set()
    bases = {word} | {word[: -len(e)] for e in _NAME_ENDINGS if word.endswith(e)}
    roots = bases | {b[:-1] for b in bases if b[-1:] in _VOWELS}
    return {r for r in roots if len(r) >= _MIN_ROOT}


@dataclass(frozen=True, slots=True)
class _Lookup:
    """What a fact is looked up in: the passages' words and numbers, normalised, and
    the roots of their words (see :func:`name_roots`)."""

    words: frozenset[str]
    roots: frozenset[str]


def _fact_words(texts: Sequence[str]) -> _Lookup:
    joined = "\n".join(texts)
    words = {w.lower() for w in _WORD.findall(joined)}
    roots = {r for w in words for r in name_roots(w)}
    return _Lookup(frozenset(words | {fact_key(m.group()) for m in NUMBER.finditer(joined)}),
                   frozenset(roots))


def _word_held(word: str, found: _Lookup) -> bool:
    return word in found.words or not name_roots(word).isdisjoint(found.roots)


def _held(fact: str, found: _Lookup) -> bool:
    """A name of several words ("o'brien") is held when each of its words is, as
    written or as another form of the same name ("China" by "Chinese", "Russians" by
    "Russia's"); a number only as itself ("3.5" is not "3" and "5")."""
    if fact in found.words:
        return True
    return not fact[0].isdigit() and all(_word_held(w, found) for w in _WORD.findall(fact))


def holds(texts: Sequence[str], fact: str) -> bool:
    """Whether one of ``texts`` holds the name, number or date ``fact`` (as written)."""
    return _held(fact_key(fact), _fact_words(texts))


def missing_facts(sentence: str, texts: Sequence[str]) -> set[str]:
    """The names, numbers and dates of ``sentence`` that none of ``texts`` holds."""
    found = _fact_words(texts)
    return {f for f in facts(sentence) if not _held(f, found)}


def as_written(fact: str, sentence: str) -> str:
    """A fact (lower-cased, normalised) as the sentence writes it, for a reader."""
    found = re.search(re.escape(fact), sentence, re.IGNORECASE)
    return found.group() if found else fact


def why_not(sentence: str, texts: Sequence[str], support: Support,
            where: str = "") -> str:
    """Why ``texts`` (the cited passages) do not back ``sentence``, in a reader's words:
    the names, numbers and dates they lack, else how little of its words they hold."""
    where = where or ("the cited passage" if len(texts) == 1 else "the cited passages")
    missing = sorted(as_written(f, sentence) for f in missing_facts(sentence, texts))
    if missing:
        shown = ", ".join(f"'{m}'" for m in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return f"not found in {where}: {shown}{more}"
    return f"{where} does not hold enough of its words ({support.lexical:.0%} of them)"


def probability(support: Support, weights: Sequence[float] = WEIGHTS) -> float:
    return logistic(weights, support.row())


class CitationChecker:
    """Checks answers against the passages they cite; one per index (its IDF table).

    Without an :class:`~assistant.words.IdfTable` every content word weighs the same.
    The cited passages' sentence vectors are kept for the last few hundred passages:
    a conversation, or a benchmark, cites the same ones again.
    """

    def __init__(
        self,
        embedder: Embedder,
        idf: IdfTable | None = None,
        weights: Sequence[float] = WEIGHTS,
        threshold: float = THRESHOLD,
    ) -> None:
        self.embedder = embedder
        self.idf = idf
        self.weights = tuple(weights)
        self.threshold = threshold
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def check(
        self, text: str, citations: Sequence[Citation], attribute: bool = False
    ) -> CheckedAnswer:
        """Each sentence of ``text`` against the citations its markers name.

        With ``attribute``, a sentence that carries no marker is weighed against each
        citation alone, and cites the one that backs it best if that one backs it
        (``attributed`` in its check): small models often state a passage's fact
        without its marker. A sentence whose markers name the wrong passage is not
        re-cited: a wrong citation is a sign of a wrong claim.
        """
        by_n = {c.n: c.text for c in citations}
        cleaned = remove_unknown_markers(text, set(by_n))
        parts = split_sentences(cleaned)
        supports = self.supports([(s, [by_n[n] for n in nums]) for s, nums in parts])
        checks = []
        for (sentence, nums), sup in zip(parts, supports, strict=True):
            if sup is not None:
                p = probability(sup, self.weights)
                ok = p >= self.threshold and sup.missing == 0.0
                why = "" if ok else why_not(sentence, [by_n[n] for n in nums], sup)
                checks.append(SentenceCheck(sentence, nums, ok, p, reason=why))
            elif attribute and by_n:
                checks.append(self._attribute(sentence, by_n))
            else:
                checks.append(SentenceCheck(sentence, nums, False, 0.0, reason=NO_CITATION))
        return CheckedAnswer(cleaned, tuple(checks))

    def _attribute(self, sentence: str, by_n: dict[int, str]) -> SentenceCheck:
        """The unmarked ``sentence`` checked against the one passage that backs it best."""
        numbers = sorted(by_n)
        found = self.supports([(sentence, [by_n[n]]) for n in numbers])
        scored = [(probability(sup, self.weights), sup.missing == 0.0, n, sup)
                  for n, sup in zip(numbers, found, strict=True) if sup is not None]
        p, whole, n, sup = max(scored, key=lambda x: (x[1], x[0]))
        if whole and p >= self.threshold:
            return SentenceCheck(sentence, (n,), True, p, attributed=True)
        why = why_not(sentence, [by_n[n]], sup, where=f"the nearest passage ([{n}])")
        return SentenceCheck(sentence, (), False, p,
                             reason=f"{NO_CITATION}, and no passage backs it: {why}")

    def supports(self, claims: Sequence[tuple[str, Sequence[str]]]) -> list[Support | None]:
        """The :class:`Support` of each (sentence, cited passage texts); None if it cites none."""
        import numpy as np

        cited = [(s, list(dict.fromkeys(texts))) for s, texts in claims if texts]
        if not cited:
            return [None] * len(claims)
        sent_vecs = iter(self.embedder.embed_documents([s for s, _t in cited]))
        self._embed_passages({t for _s, texts in cited for t in texts})
        out: list[Support | None] = []
        for sentence, texts in claims:
            if not texts:
                out.append(None)
                continue
            vec = next(sent_vecs)
            meaning = max(float(np.max(self._vectors[t] @ vec)) for t in set(texts))
            # The sentence's names and the passages' words, read once for both measures.
            names, found = facts(sentence), _fact_words(texts)
            missing = sum(1 for f in names if not _held(f, found)) / len(names) if names else 0.0
            out.append(Support(meaning, self._lexical(sentence, texts, names, found), missing))
        return out

    def _lexical(self, sentence: str, texts: Sequence[str], names: set[str],
                 found: _Lookup) -> float:
        words = content_words(sentence)
        weights = (question_weights(words, self.idf) if self.idf is not None
                   else dict.fromkeys((stem(w) for w in words), 1.0))
        held = set().union(*(stems_of(t) for t in texts))
        # A name the passages give in another form ("China" for "Chinese") is held.
        held |= {stem(w) for w in words if w in names and _word_held(w, found)}
        return coverage(held, weights)

    def _embed_passages(self, texts: set[str]) -> None:
        """Sentence vectors of the passages not cached yet, in one model run; the
        packed int8 form the index stores, so the scores match what it would give."""
        for t in texts & self._vectors.keys():
            self._vectors.move_to_end(t)
        todo = [t for t in texts if t not in self._vectors]
        if todo:
            vecs, blobs = sentvec.embed_chunks(self.embedder, todo)
            for t, vec, blob in zip(todo, vecs, blobs, strict=True):
                parts = sentvec.unpack(blob or b"", len(vec))
                self._vectors[t] = parts if parts is not None else vec[None, :]
        while len(self._vectors) > max(_CACHED_PASSAGES, len(texts)):
            self._vectors.popitem(last=False)
