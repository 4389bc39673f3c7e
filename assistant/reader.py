"""The reader: our own model, trained to find the answer phrase inside a sentence.

The extractive answerer chooses whole sentences. The reader reads the question together
with each of the best one to three of them and scores every token as the start or the end
of the answer phrase, and the ``[CLS]`` token as "no short answer here". The best span
over those sentences becomes the answer's ``short_answer`` ("Huawei"), shown first and in
bold inside its sentence, when the reader is sure enough; a wrong phrase in bold misleads
more than none, so the threshold is set for precision (``SHOW_AT``, fitted on the tuning
samples by ``benchmarks/reader_qa.py``, as is the model of how sure a phrase is:
``phrase_evidence``).

The network is all-MiniLM-L6-v2 with a span head, trained here on public data
(``benchmarks/train_reader.py``; base, data, figures and licences in the model card
beside it). The file is sha256-checked before it is loaded, like the embedder: an
altered or missing file is a :class:`~index.errors.ModelError` (exit 6). Nothing here
imports torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from assistant.models import ShortAnswer

T = TypeVar("T")

MODEL_NAME = "model.onnx"
# The graph's second output: for each pair, the logit that the sentence answers the
# question (benchmarks/reader_decision.py fits it over the last hidden layer; the answerer
# weighs it in deciding whether to answer). A reader without it reads as 0.
DECISION_OUTPUT = "answers_logit"
CARD_NAME = "MODEL_CARD.md"
MODEL_DIR = Path(__file__).with_name("data") / "reader"
MODEL_SHA256 = "7f23fb7d8e30eedfb2d56de8ea84d3579ca81951edbb71daef26af2e94c0794e"
MAX_TOKENS = 192  # question and sentence together
MAX_QUESTION_TOKENS = 48
MAX_ANSWER_TOKENS = 24
SPAN_TRIES = 20  # the best spans looked at for one whose brackets and quotes are balanced
# The probability that a shown phrase is right is a logistic model of the evidence
# ``phrase_evidence`` gathers (in PHRASE_EVIDENCE's order, then the bias); a phrase is shown
# at SHOW_AT or above. Fitted on the tuning samples by benchmarks/reader_qa.py --fit: the
# lowest threshold at which the shown phrases are right (F1 >= 0.5) 88% of the time, SQuAD's
# and NQ's tuning shares averaged.
PHRASE_EVIDENCE = ("margin", "confidence", "echo", "length", "several", "lead")
PHRASE_WEIGHTS = (0.1321, 1.8925, -0.8122, -0.7182, -1.7726, 0.1275, 0.2876)
SHOW_AT = 0.8
LEAD_CAP = 10.0
# A question that asks for an explanation has no short answer to mark.
_EXPLAIN = re.compile(
    r"^\s*(why\b|how\s+(do|does|did|can|could|should|would|will|is|are|was|were)\b|"
    r"explain\b|describe\b|what\s+(happens|happened)\b)", re.IGNORECASE)


def asks_explanation(question: str) -> bool:
    """Whether ``question`` asks why or how something works (no phrase answers it)."""
    return bool(_EXPLAIN.search(question))


@dataclass(frozen=True, slots=True)
class Span:
    """The best span of one encoded pair: token indices and its margin over no answer."""

    first: int
    last: int
    margin: float


_OPENS, _CLOSES = "([{\u201c", ")]}\u201d"


def balanced(phrase: str) -> bool:
    """Whether every bracket or double quote ``phrase`` opens it also closes, in order (a
    phrase such as ``15 kilometres (9 miles`` reads as cut off)."""
    depth = {o: 0 for o in _OPENS}
    for ch in phrase:
        if ch in _OPENS:
            depth[ch] += 1
        elif ch in _CLOSES:
            o = _OPENS[_CLOSES.index(ch)]
            if depth[o] == 0:
                return False
            depth[o] -= 1
    return not any(depth.values()) and phrase.count('"') % 2 == 0


def best_span(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, word_end: np.ndarray,
              max_tokens: int = MAX_ANSWER_TOKENS,
              keep: Callable[[int, int], bool] | None = None) -> Span | None:
    """The span ``first..last`` maximising ``start[first] + end[last]`` among tokens where
    ``allowed`` (a word's first token may start one) and ``word_end`` (a word's last token
    may end one), at most ``max_tokens`` long, and that ``keep(first, last)`` accepts (of
    the best SPAN_TRIES; the best of all when it accepts none of them); its margin is that
    sum minus the ``[CLS]`` (no answer) sum. None when the text has no token to mark."""
    n = len(start)
    s = np.where(allowed, start, -np.inf)
    e = np.where(word_end, end, -np.inf)
    grid = s[:, None] + e[None, :]
    i, j = np.indices((n, n))
    grid[(j < i) | (j - i >= max_tokens)] = -np.inf
    flat = int(np.argmax(grid))
    if keep is not None and not keep(*divmod(flat, n)):
        tries = np.argsort(-grid, axis=None, kind="stable")[:SPAN_TRIES]
        flat = next((int(f) for f in tries if math.isfinite(float(grid.flat[f]))
                     and keep(*divmod(int(f), n))), flat)
    first, last = divmod(flat, n)
    if not math.isfinite(float(grid[first, last])):
        return None
    return Span(first, last, float(grid[first, last] - (start[0] + end[0])))


def token_masks(encoding: Any) -> tuple[np.ndarray, np.ndarray]:
    """For one encoded (question, sentence) pair: which tokens may start a span (the first
    token of a sentence word) and which may end one (a sentence word's last token)."""
    seq = encoding.sequence_ids
    words = encoding.word_ids
    n = len(seq)
    starts = np.zeros(n, bool)
    ends = np.zeros(n, bool)
    for t in range(n):
        if seq[t] != 1:
            continue
        starts[t] = t == 0 or seq[t - 1] != 1 or words[t - 1] != words[t]
        ends[t] = t + 1 >= n or seq[t + 1] != 1 or words[t + 1] != words[t]
    return starts, ends


def tokenizer(path: Path) -> Any:
    """The MiniLM word-piece tokenizer set up for (question, sentence) pairs."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS, strategy="only_second")
    return tok


def encode_pairs(tok: Any, question: str, texts: Sequence[str]) -> list[Any]:
    """Each text paired with the question (cut to MAX_QUESTION_TOKENS first)."""
    q_ids = tok.encode(question, add_special_tokens=False)
    if len(q_ids.ids) > MAX_QUESTION_TOKENS:
        question = question[: q_ids.offsets[MAX_QUESTION_TOKENS - 1][1]]
    return tok.encode_batch([(question, t) for t in texts])


def padded(encodings: Sequence[Any]) -> dict[str, np.ndarray]:
    """The model's inputs for a batch of encodings, padded to the longest."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for i, e in enumerate(encodings):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
        types[i, : len(e.ids)] = e.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def phrase_evidence(question: str, phrase: str, margin: float, confidence: float,
                    runner_up: float | None) -> tuple[float, ...]:
    """What says a phrase is the answer, in PHRASE_EVIDENCE's order: the reader's
    ``margin`` over "no short answer"; the answer's ``confidence``; the share of the
    phrase's content words the question already says (a phrase that echoes the question
    seldom answers it); its length in words (log); whether another quoted sentence holds
    a phrase too (the answer is less sure where it is); and the margin's lead over that
    ``runner_up`` (capped at LEAD_CAP; 0 when there is none)."""
    from assistant.words import content_words, stem

    asked = {stem(w) for w in content_words(question)}
    said = [stem(w) for w in content_words(phrase)]
    echo = sum(w in asked for w in said) / len(said) if said else 1.0
    lead = 0.0 if runner_up is None else min(margin - runner_up, LEAD_CAP)
    return (margin, confidence, echo, math.log1p(len(phrase.split())),
            float(runner_up is not None), lead)


def leading_phrase(hits: Iterable[tuple[float, str, T]]) -> tuple[tuple[float, str, T],
                                                                  float | None] | None:
    """Of ``(margin, phrase, anything)`` readings, the one with the highest margin whose
    phrase is not blank, and the next such one's margin (None when there is no other);
    None when no phrase is left. What ``phrase_evidence`` is given, in the product and in
    the benchmark that fits it."""
    ranked = sorted((h for h in hits if h[1].strip()), key=lambda h: -h[0])
    if not ranked:
        return None
    return ranked[0], (ranked[1][0] if len(ranked) > 1 else None)


def probability(evidence: Sequence[float], weights: Sequence[float] = PHRASE_WEIGHTS) -> float:
    """The fitted probability that a phrase with this ``evidence`` (``phrase_evidence``)
    is the answer; ``weights`` ends with the bias."""
    z = sum(w * x for w, x in zip(weights, evidence, strict=False)) + weights[-1]
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


class Reader:
    """Finds the answer phrase in the sentences an answer quotes."""

    def __init__(self, model_path: Path, tokenizer_path: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self._session = ort.InferenceSession(str(model_path), opts,
                                             providers=["CPUExecutionProvider"])
        self._tok = tokenizer(tokenizer_path)
        names = [o.name for o in self._session.get_outputs()]  # the span logits first
        self._outputs = [names[0], *(n for n in names if n == DECISION_OUTPUT)]
        # The last question's readings, each text's best phrase and the decision output's
        # verdict: the answerer re-weighs sentences with them and the answer phrase is then
        # read from the chosen ones, without a second run.
        self._memo: tuple[str, dict[str, tuple[tuple[int, int, float] | None, float]]] = (
            "", {})

    def _read(self, question: str, texts: Sequence[str]
              ) -> list[tuple[tuple[int, int, float] | None, float]]:
        """Each text's reading, from the memo or one run over those it lacks."""
        if self._memo[0] != question:
            self._memo = (question, {})
        memo = self._memo[1]
        todo = list(dict.fromkeys(t for t in texts if t not in memo))
        if todo:
            encs = encode_pairs(self._tok, question, todo)
            out = self._session.run(self._outputs, padded(encs))
            logits = out[0]
            verdicts = out[1] if len(out) > 1 else np.zeros(len(todo), np.float32)
            for k, (text, enc) in enumerate(zip(todo, encs, strict=True)):
                n = len(enc.ids)
                allowed, word_end = token_masks(enc)
                span = best_span(logits[k, :n, 0], logits[k, :n, 1], allowed, word_end,
                                 keep=lambda a, b, t=text, o=enc.offsets:
                                 balanced(t[o[a][0]:o[b][1]]))
                memo[text] = (None if span is None else (
                    enc.offsets[span.first][0], enc.offsets[span.last][1], span.margin),
                    float(verdicts[k]))
        return [memo[t] for t in texts]

    def spans(self, question: str, texts: Sequence[str]) -> list[tuple[int, int, float] | None]:
        """For each text, its best phrase as ``(start, end, margin)`` character offsets
        into the text, or None when nothing in it can be marked."""
        return [span for span, _verdict in self._read(question, texts)]

    def answers(self, question: str, texts: Sequence[str]) -> list[float]:
        """For each text, the logit that it answers ``question`` (the graph's decision
        output; 0 for a reader without one)."""
        return [verdict for _span, verdict in self._read(question, texts)]

    def read(self, question: str, sentences: Sequence[tuple[str, int, int, str]],
             confidence: float = 0.0) -> ShortAnswer | None:
        """The phrase answering ``question`` in ``sentences`` (``(source, start, end,
        text)`` with ``text == file_text[start:end]``) of an answer with this
        ``confidence``, or None: the question asks for an explanation, or no phrase
        reaches SHOW_AT."""
        if not sentences or asks_explanation(question):
            return None
        found = self.spans(question, [s[3] for s in sentences])
        lead = leading_phrase((hit[2], s[3][hit[0]:hit[1]], (s, hit[0], hit[1]))
                              for s, hit in zip(sentences, found, strict=True) if hit is not None)
        if lead is None:
            return None
        (margin, phrase, ((source, start, _end, _text), a, b)), runner_up = lead
        score = probability(phrase_evidence(question, phrase, margin, confidence, runner_up))
        if score < SHOW_AT:
            return None
        return ShortAnswer(phrase, source, start + a, start + b, score)


def load_reader() -> Reader:
    """The sha256-checked reader. It reads text with the bundled model's word pieces,
    whatever model the index was embedded with."""
    from index.embed import _verified, default_model_files

    model = _verified(
        MODEL_DIR / MODEL_NAME, MODEL_SHA256, "reader (assistant/data/reader/model.onnx)",
        "pip install --force-reinstall research-assistant, or 'git checkout -- "
        "assistant/data' in a checkout of the project",
    )
    return Reader(model, default_model_files()[1])
