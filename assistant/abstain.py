"""Whether the retrieved evidence answers the question: a calibrated logistic model.

The inputs are evidence scores, not words: how similar the best passage and the
best sentence are to the question (cosines of their vectors), how much of the
question's IDF-weighted content the best sentence, the answer and the passages
hold, the sentence-ranking model's score of the best sentence, whether it holds the
kind of thing asked for, and how many of the question's names no retrieved passage
holds. The weights were fitted by ``benchmarks/calibrate_abstention.py`` on
benchmark questions (answerable SQuAD, Natural Questions and HotpotQA questions
against their articles, and questions the indexed articles cannot answer); the
figures are in its results file. A second model over the same evidence gives the
answer's confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Evidence:
    top_dense: float
    sentence_cover: float  # of the question's weighted content, by the best sentence
    answer_cover: float  # ... by all the sentences of the answer together
    passage_cover: float  # ... by the best top passage, or the cited passages together
    type_ok: float
    asks_type: float
    sentence_sim: float = 0.0  # cosine of the best sentence's vector with the question's
    sentence_score: float = -10.0  # the ranking model's logit for the best sentence
    missing_names: float = 0.0  # share of the question's names no retrieved passage holds
    # The reader's margin of the best sentence's answer phrase over "no short answer here"
    # (assistant/reader.py; 0 where no reader read it).
    reader_margin: float = 0.0
    # The reader's second output for the best sentence: the logit that it answers the
    # question (0 where no reader read it).
    reader_answers: float = 0.0

    def features(self) -> list[float]:
        return [
            self.top_dense,
            self.sentence_cover,
            self.answer_cover,
            self.passage_cover,
            self.asks_type * (1.0 - self.type_ok),
            self.sentence_sim,
            self.sentence_score / 10.0,  # on the scale of the others (a logit of ~0-15)
            self.missing_names,
            max(min(self.reader_margin, 15.0), -15.0) / 10.0,  # on the scale of the others
            max(min(self.reader_answers, 15.0), -15.0) / 10.0,
        ]

    def to_json(self) -> dict[str, float]:
        return asdict(self)


# Fitted weights: intercept, then one per feature of Evidence.features(), from
# benchmarks/calibrate_abstention.py (results/abstention.json): a sign-constrained
# logistic fit with the trained question encoder's sentence cosine (assistant/qencoder.py),
# the reader's margin and its decision output (assistant/reader.py). Its intercept is set
# so that at most 2% of answerable training questions are refused (--max-refusals 0.02;
# at 2.5% the tuning samples' answerable questions were refused more). Held-out half:
# 97.7% of answerable SQuAD, 98.0% of NQ and 93.9% of HotpotQA's two-article questions
# (asked of their own paragraphs) answered; all off-topic HotpotQA, 90% of RGB news
# queries, 41% of SQuAD and 33% of NQ questions whose answer was taken out, and 12% of
# SQuAD 2.0's adversarial ones refused (the weights before the decision output, on the
# same rows: 97.7% / 98.0% / 100% answered; 100%, 88%, 38% / 32% and 10% refused).
WEIGHTS = (-5.06, 3.14, 1.032, 0.382, 1.325, 0.0, 1.127, 2.023, -1.469, 0.727, 1.659)
# Confidence: the probability that the answer holds what was asked, a logistic model
# over the same features, fitted (without class balancing, so its output is a
# probability) on whether the answer the answerer gives holds the gold answer, over the
# answers it gives to questions as people ask them: not the answer-removed copies (they
# made confidence run 20-30 points low on real answerable questions), nor SQuAD 2.0's
# adversarial questions (refusing those is the decision's job; counted in, they made it
# run 10-15 points low on NQ and SQuAD). Calibration error on the fit's held-out half
# 0.013 (NQ 0.031, SQuAD 0.052); on an answer to an adversarial question it is over-sure
# (0.171 with those counted in).
CONFIDENCE = (-1.341, 0.113, 1.485, 0.12, 0.332, 0.521, 0.556, 0.719, -0.075, 1.458, 1.492)


def logit(weights: Sequence[float], features: Sequence[float]) -> float:
    """A fitted linear model's value: ``weights[0]`` is the intercept."""
    return weights[0] + sum(w * x for w, x in zip(weights[1:], features, strict=True))


def logistic(weights: Sequence[float], features: Sequence[float]) -> float:
    """A fitted logistic model's probability (the logit clamped, so exp cannot overflow)."""
    return 1.0 / (1.0 + math.exp(-max(min(logit(weights, features), 50.0), -50.0)))


def answer_logit(ev: Evidence, weights: tuple[float, ...] = WEIGHTS) -> float:
    return logit(weights, ev.features())


def answer_probability(ev: Evidence, weights: tuple[float, ...] = WEIGHTS) -> float:
    """Whether to answer: above 0.5, the evidence is taken to answer the question."""
    return logistic(weights, ev.features())


def confidence(ev: Evidence, weights: tuple[float, ...] = CONFIDENCE) -> float:
    """The calibrated probability that the answer given holds what was asked."""
    return logistic(weights, ev.features())
