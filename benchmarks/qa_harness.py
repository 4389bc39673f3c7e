"""What the answer-quality benchmarks share: opening the product's pipeline on a
corpus, asking it questions, and grading the answers the same way everywhere.

Grading (SQuAD's normalisation: lower case, no punctuation, articles or extra
space), per question: is a gold answer string in the answer text, in its *first*
sentence (the text before the first ``[n]`` marker), in a cited passage (of the
gold file, where the benchmark names one), in any retrieved passage; did it
abstain; how many words the answer has (markers not counted); how long it took.
"In the answer" alone can be gamed by long answers; the first-sentence and
length columns are there to catch that.
"""

from __future__ import annotations

import json
import re
import statistics
import string
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.answer import ExtractiveAnswerer  # noqa: E402
from assistant.evaluate import reliability  # noqa: E402
from assistant.qencoder import load_question_encoder  # noqa: E402
from assistant.reader import load_reader  # noqa: E402
from assistant.retrieve import TUNED_FOR, HybridRetriever  # noqa: E402
from assistant.words import stems_of  # noqa: E402
from index.build import LEXICAL_FILE, build_index  # noqa: E402
from index.chunk import sentences  # noqa: E402
from index.embed import OnnxEmbedder  # noqa: E402
from index.lexical import LexicalIndex  # noqa: E402
from index.manifest import load_manifest  # noqa: E402
from index.store import VectorStore  # noqa: E402

_MARKER = re.compile(r"\s*\[\d+\]")
_PUNCT = set(string.punctuation) | {"\u2019", "\u2018"}


def squad_norm(s: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, articles or extra space."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(pred: str, gold: str) -> float:
    """SQuAD's token F1 of ``pred`` against one gold answer (both normalised)."""
    p, g = squad_norm(pred).split(), squad_norm(gold).split()
    common = sum(min(p.count(w), g.count(w)) for w in set(p) & set(g))
    if not common:
        return float(p == g)
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def span_grade(phrase: str, answers: list[str]) -> tuple[float, float]:
    """(exact match, F1) of an answer phrase against the best of ``answers``."""
    return (max(float(squad_norm(phrase) == squad_norm(a)) for a in answers),
            max(squad_f1(phrase, a) for a in answers))


def contains(haystack: str, answers: list[str]) -> bool:
    h = squad_norm(haystack)
    return any(squad_norm(a) and squad_norm(a) in h for a in answers)


# "In their own words": a question that shares at most this share of its content words
# with the sentence that answers it. On the tuning samples that is 40% of NQ's questions
# (search queries, written without the text in view) and 10% of SQuAD's (written looking
# at the paragraph); the seed articles' paraphrase questions are all at or near it.
OWN_WORDS = 0.25


def shared_words(question: str, passage: str, answers: list[str],
                 start: int | None = None) -> float | None:
    """The share of the question's content words (stemmed) that the sentence of ``passage``
    holding the answer also holds: at ``start`` when given, else where a gold answer first
    occurs; None when no sentence holds one."""
    if start is None:
        low = passage.lower()
        hits = [i for i in (low.find(a.lower()) for a in answers if a) if i >= 0]
        if not hits:
            return None
        start = min(hits)
    asked = stems_of(question)
    for a, b, _part in sentences(passage):
        if a <= start < b:
            return len(asked & stems_of(passage[a:b])) / len(asked) if asked else None
    return None


def in_own_words(share: float | None) -> bool:
    return share is not None and share <= OWN_WORDS


def first_sentence(answer: str) -> str:
    """The answer's first sentence: everything before its first ``[n]`` marker."""
    m = _MARKER.search(answer)
    return answer[: m.start()] if m else answer


def answer_words(answer: str) -> int:
    return len(_MARKER.sub(" ", answer).split())


def write_results(path: Path, data: dict[str, Any]) -> None:
    """A results file: figures only, as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwrote {path}")


QENCODER_USES = ("none", "sentences", "all")


def add_model_options(ap: Any) -> None:
    """``--qencoder``: what the trained question encoder serves (the product's use by default);
    ``--qencoder-model`` and ``--reader-model``: other trained files in the shipped ones'
    places (see :func:`use_model_options`)."""
    ap.add_argument("--qencoder", choices=QENCODER_USES, default=TUNED_FOR,
                    help="the trained question encoder: not used, for sentences only, or for "
                    f"passage retrieval too (default: {TUNED_FOR}, as the product)")
    ap.add_argument("--qencoder-model", type=Path, metavar="MODEL.onnx",
                    help="a question encoder trained by train_qencoder.py, used instead of the "
                    "shipped one (an experiment's; its sha256 is taken from the file)")
    ap.add_argument("--reader-model", type=Path, metavar="MODEL.onnx",
                    help="a reader trained by train_reader.py, used instead of the shipped one "
                    "(an experiment's; its sha256 is taken from the file)")


def use_model_options(args: Any) -> str:
    """Point the product at the ``--qencoder-model`` / ``--reader-model`` files, if given;
    returns how the question encoder is used and which files, for the benchmark's cache
    names."""
    import assistant.qencoder as qe
    from assistant import reader as rd
    from index.load import file_sha256

    tag = str(args.qencoder)
    for option, module in (("qencoder_model", qe), ("reader_model", rd)):
        path = getattr(args, option, None)
        if path is None:
            continue
        if path.name != module.MODEL_NAME or not path.is_file():
            sys.exit(f"--{option.replace('_', '-')}: no {module.MODEL_NAME} at {path}")
        module.MODEL_DIR, module.MODEL_SHA256 = path.parent, file_sha256(path)
        tag += f"-{option.split('_')[0]}-{module.MODEL_SHA256[:12]}"
    return tag


def open_index(
    corpus: Path, store: Path, embedder: OnnxEmbedder | None = None, fusion: str = "scores",
    qencoder: str = TUNED_FOR, reader: Any = "shipped",
) -> tuple[HybridRetriever, ExtractiveAnswerer, Any]:
    """Bring the index of ``corpus`` up to date; the product's retriever and answerer on it,
    the question encoder used as ``qencoder`` says (see :data:`QENCODER_USES`), and the
    answerer re-weighing sentences with ``reader`` (the shipped one by default; None: not)."""
    embedder = embedder or OnnxEmbedder().load()
    summary = build_index(corpus, store, embedder)
    manifest = load_manifest(store)
    assert manifest is not None
    lexical = LexicalIndex(store / LEXICAL_FILE)
    encoder = None if qencoder == "none" else load_question_encoder(embedder)
    retriever = HybridRetriever(embedder, VectorStore(store, manifest.collection), lexical,
                                fusion=fusion, question_encoder=encoder,
                                tuned_for=qencoder if encoder is not None else TUNED_FOR)
    if reader == "shipped":
        reader = load_reader()
    return retriever, ExtractiveAnswerer(lexical, reader=reader), summary


@dataclass
class Tally:
    """Running counts over graded questions; ``row()`` gives the rates. With ``own_words``
    (a Tally of its own), the questions asked in their own words are also counted apart
    there, and the row holds theirs as ``own_words``."""

    n: int = 0
    in_answer: int = 0
    in_first: int = 0
    in_cited: int = 0
    in_retrieved: int = 0
    abstained: int = 0
    exact: int = 0
    citations: int = 0
    words: list[int] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    confident: list[tuple[float, bool]] = field(default_factory=list)  # answers given
    own_words: Tally | None = None

    def add(self, answers: list[str], text: str, abstained: bool, cited: Iterable[Any],
            passages: Iterable[Any], ms: float, gold_source: str | None = None,
            texts: dict[str, str] | None = None, confidence: float | None = None,
            shared: float | None = None) -> bool:
        """Grade one answer (``shared``: see :func:`shared_words`); returns whether the gold
        is in its text."""
        cited = list(cited)
        if self.own_words is not None and in_own_words(shared):
            self.own_words.add(answers, text, abstained, cited, passages, ms, gold_source,
                               texts, confidence)
        self.n += 1
        self.abstained += abstained
        ok = (not abstained) and contains(text, answers)
        self.in_answer += ok
        self.in_first += (not abstained) and contains(first_sentence(text), answers)
        self.in_cited += any(contains(c.text, answers) for c in cited
                             if gold_source is None or c.source == gold_source)
        self.in_retrieved += any(contains(p.text, answers) for p in passages)
        if not abstained:
            self.words.append(answer_words(text))
            if confidence is not None:
                self.confident.append((confidence, ok))
        self.latency.append(ms)
        if texts is not None:
            for c in cited:
                self.citations += 1
                self.exact += texts[c.source][c.start : c.end] == c.text
        return ok

    def row(self) -> dict[str, Any]:
        n = max(self.n, 1)
        bands, ece = reliability(self.confident)
        lat = sorted(self.latency) or [0.0]
        own = {"own_words": self.own_words.row()} if self.own_words is not None else {}
        return {
            "n": self.n,
            "gold_in_answer": self.in_answer / n,
            "gold_in_first_sentence": self.in_first / n,
            "gold_in_cited_passage": self.in_cited / n,
            "gold_in_retrieved": self.in_retrieved / n,
            "abstained": self.abstained / n,
            "answer_words_median": statistics.median(self.words) if self.words else 0,
            "citations_exact": f"{self.exact}/{self.citations}",
            "latency_ms_p50": statistics.median(lat),
            "latency_ms_p95": lat[int(0.95 * (len(lat) - 1))],
            # How well confidence is calibrated here, as `assistant eval` reports it.
            "reliability": bands,
            "calibration_error": ece,
            **own,
        }


HEADER = (f"{'':12} {'in answer':>9} {'1st sent':>8} {'in cited':>8} {'retrieved':>9} "
          f"{'abstain':>7} {'words':>5} {'exact':>11} {'p50 ms':>6} {'p95 ms':>6}")


def line(name: str, r: dict[str, Any]) -> str:
    """``r`` as a row of the table under HEADER; and its own-words row under it, if it has one."""
    text = (f"{name:12} {r['gold_in_answer']:9.1%} {r['gold_in_first_sentence']:8.1%} "
            f"{r['gold_in_cited_passage']:8.1%} {r['gold_in_retrieved']:9.1%} "
            f"{r['abstained']:7.1%} {r['answer_words_median']:5.0f} {r['citations_exact']:>11} "
            f"{r['latency_ms_p50']:6.1f} {r['latency_ms_p95']:6.1f}")
    if "own_words" in r:
        text += f"\n{line('  own words', r['own_words'])}  ({r['own_words']['n']} questions)"
    return text


def print_reliability(row: dict[str, Any]) -> None:
    """The confidence bands of a row, one line each, and the calibration error."""
    for b in row["reliability"]:
        print(f"  confidence {b['band']}: {b['answers']:5} answers, mean {b['mean_confidence']:.2f}"
              f", gold in the answer {b['correct']:.1%}")
    print(f"  calibration error {row['calibration_error']:.3f}")


def timed_answer(retriever: HybridRetriever, answerer: ExtractiveAnswerer, question: str,
                 k: int, use: tuple[str, ...] = ("dense", "bm25")) -> tuple[Any, float]:
    """The answerer's full result for ``question`` and the milliseconds it took."""
    t = time.perf_counter()
    r = retriever.retrieve(question, k, use=use)
    out = answerer.answer(question, r, k=k)
    return out, (time.perf_counter() - t) * 1000
