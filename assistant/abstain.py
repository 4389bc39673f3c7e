"""Whether the retrieved evidence answers the question: a calibrated logistic model.

The inputs are evidence scores, not words: how similar the best passage and the
best sentence are to the question (cosines of their vectors), how much of the
question's IDF-weighted content the best sentence and the best passages hold, and
whether the best sentence holds the kind of thing asked for. The weights were
fitted by ``benchmarks/calibrate_abstention.py`` on benchmark questions
(answerable SQuAD questions against their articles, and questions the indexed
articles cannot answer); the figures are in its results file.
"""

from __future__ import annotations

import math
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
        ]

    def to_json(self) -> dict[str, float]:
        return asdict(self)


# Fitted weights: intercept, then one per feature of Evidence.features(), from
# benchmarks/calibrate_abstention.py (results/abstention.json): a sign-constrained
# logistic fit, its intercept set so that at most 2% of answerable training
# questions are refused. Held out: 96.6% of answerable SQuAD questions and 97.7% of
# HotpotQA's two-article questions (asked of their own paragraphs) answered; all
# off-topic HotpotQA, 77% of RGB news queries, 31% of on-topic questions whose
# answer was taken out, and 8% of SQuAD 2.0's adversarial ones refused.
WEIGHTS = (-5.94, 2.586, 0.96, 0.544, 1.628, -0.262, 2.156, 2.286, -1.778)
# Confidence: the probability that the answer holds what was asked, a logistic model
# over the same features, fitted (without class balancing, so its output is a
# probability) on whether the answer the answerer gives holds the gold answer.
CONFIDENCE = (-7.103, 1.135, 1.003, 0.839, 1.194, -0.317, 2.04, 2.086, -1.506)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def answer_logit(ev: Evidence, weights: tuple[float, ...] = WEIGHTS) -> float:
    return weights[0] + sum(w * x for w, x in zip(weights[1:], ev.features(), strict=True))


def answer_probability(ev: Evidence, weights: tuple[float, ...] = WEIGHTS) -> float:
    """Whether to answer: above 0.5, the evidence is taken to answer the question."""
    return _sigmoid(answer_logit(ev, weights))


def confidence(ev: Evidence, weights: tuple[float, ...] = CONFIDENCE) -> float:
    """The calibrated probability that the answer given holds what was asked."""
    return _sigmoid(answer_logit(ev, weights))
