"""Fit the abstention model and the confidence map (assistant/abstain.py) on benchmark questions.

Answerable: SQuAD v1.1 dev questions asked of the 48 dev articles; Natural
Questions (the tuning sample of ``nq_qa.py``: search queries written without
seeing the text, so they share few words with their answer) asked of the NQ
passages; and HotpotQA's multi-hop questions asked of their own paragraphs (each
answered by sentences of two articles). Not answerable, four kinds: (1) the same
SQuAD and NQ questions with every passage that holds the gold answer taken out of
the results (on topic, answer absent: the common case in practice), (2) HotpotQA
and RGB questions (other topics), (3) SQuAD 2.0's "impossible" questions about the
same articles (written to look answerable). Fits a class-balanced L2 logistic
regression over the evidence features on one half, reports the other half, and
prints the weights to paste into abstain.py.

Confidence is then fitted on the same training half (Platt scaling of the decision's
logit): the label is whether the answer the answerer would give holds a gold
answer (always false for an unanswerable question). The held-out half gives the
reliability table: the share of answers holding the gold, per confidence band.

    python benchmarks/calibrate_abstention.py --squad ../shared/benchmarks/squad \
        --hotpot ../shared/benchmarks/hotpotqa/hotpot_dev_distractor_subset.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nq_qa  # noqa: E402
from qa_harness import add_model_options, contains, open_index, use_model_options  # noqa: E402
from squad_qa import load_questions, unanswerable, write_articles  # noqa: E402

from assistant.abstain import (  # noqa: E402
    CONFIDENCE,
    WEIGHTS,
    Evidence,
    answer_logit,
    answer_probability,
    confidence,
)
from assistant.evaluate import reliability  # noqa: E402
from assistant.retrieve import Retrieval  # noqa: E402
from index.embed import OnnxEmbedder  # noqa: E402

HERE = Path(__file__).resolve().parent


def fit_logistic(
    x: np.ndarray, y: np.ndarray, signs: np.ndarray | None = None, l2: float = 1e-3,
    iters: int = 20000, balanced: bool = True,
) -> np.ndarray:
    """Class-balanced logistic regression with sign-constrained weights; [bias, w...].

    Each weight keeps the sign the evidence must have (more of it can only make
    an answer more likely, or, for a missing answer type, less likely), which
    keeps correlated features from cancelling out in ways that do not generalise.
    Projected gradient descent: small data, so simplicity beats speed.
    """
    xb = np.hstack([np.ones((len(x), 1)), x])
    pos = y.mean()
    sw = (np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)) if balanced else np.ones_like(y)) / len(y)
    w = np.zeros(xb.shape[1])
    lr = 1.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (sw * (p - y)) + l2 * np.r_[0, w[1:]]
        w -= lr * grad
        if signs is not None:
            w[1:] = np.where(signs * w[1:] < 0, 0.0, w[1:])
    return w


def without_gold(r: Retrieval, answers: list[str], k: int) -> Retrieval:
    """The retrieval as if the passages holding the answer were not in the corpus."""
    kept = [c for c in r.candidates if not contains(c.text, answers)]
    dense = [c.dense for c in kept if c.dense is not None]
    return Retrieval(kept[:k], max(dense) if dense else -1.0, r.query_vec)


def write_hotpot_paragraphs(hotpot: Path, out: Path) -> list[dict[str, Any]]:
    """Every context paragraph of the HotpotQA questions as one file per title."""
    out.mkdir(parents=True, exist_ok=True)
    qs = json.loads(hotpot.read_text())
    for q in qs:
        for title, sents in zip(q["context"]["title"], q["context"]["sentences"], strict=True):
            name = hashlib.sha1(title.encode()).hexdigest()[:16] + ".txt"
            text = f"{title}\n\n{''.join(sents).strip()}\n"
            path = out / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
    return qs


def hotpot_rows(args: argparse.Namespace, embedder: OnnxEmbedder) -> list[dict[str, Any]]:
    corpus = args.workdir / "hotpot-corpus"
    qs = write_hotpot_paragraphs(args.hotpot, corpus)
    retriever, answerer, _ = open_index(corpus, args.workdir / "hotpot-store", embedder,
                                        args.fusion, args.qencoder)
    rows = []
    for q in qs:
        r = retriever.retrieve(q["question"], args.k)
        d = answerer.answer(q["question"], r, k=args.k)
        rows.append({"kind": "hotpot-answerable", "y": 1, "good": contains(d.draft, [q["answer"]]),
                     **d.evidence.to_json()})
    return rows


def answerable_and_removed(retriever: Any, answerer: Any, qs: list[dict[str, Any]], k: int,
                           name: str) -> list[dict[str, Any]]:
    """Even questions as asked; odd ones with the passages holding the answer taken out."""
    rows = []
    for i, q in enumerate(qs):
        r = retriever.retrieve(q["question"], 30)
        if i % 2 == 0:
            r6 = Retrieval(r.candidates[:k], r.top_dense, r.query_vec)
            kind, label = name, 1
        else:
            r6, kind, label = without_gold(r, q["answers"], k), f"{name}-answer-removed", 0
        d = answerer.answer(q["question"], r6, k=k)
        rows.append({"kind": kind, "y": label,
                     "good": bool(label) and contains(d.draft, q["answers"]),
                     **d.evidence.to_json()})
    return rows


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    corpus, store = args.workdir / "squad" / "corpus", args.workdir / "squad" / "store"
    write_articles(args.squad / "dev-v1.1.json", corpus)
    embedder = OnnxEmbedder().load()
    retriever, answerer, _ = open_index(corpus, store, embedder, args.fusion, args.qencoder)
    # A sample other than squad_qa.py's reported one (different seed).
    qs = load_questions(args.squad, 2 * args.n, args.seed)
    rows = answerable_and_removed(retriever, answerer, qs, args.k, "squad")
    for q in unanswerable(args.squad, args.hotpot, args.n // 2, args.seed):
        r = retriever.retrieve(q["question"], args.k)
        d = answerer.answer(q["question"], r, k=args.k)
        rows.append({"kind": q["kind"], "y": 0, "good": False, **d.evidence.to_json()})
    if args.nq:
        nq_rows = nq_qa.read_nq(args.nq)
        nq_dir = args.workdir / "nq"
        nq_qa.write_corpus(nq_rows, nq_dir / "corpus")
        retriever, answerer, _ = open_index(nq_dir / "corpus", nq_dir / "store", embedder,
                                            args.fusion, args.qencoder)
        rows += answerable_and_removed(retriever, answerer, nq_qa.questions(nq_rows, "tune"),
                                       args.k, "nq")
    if args.hotpot:
        rows += hotpot_rows(args, embedder)
    return rows


def report(rows: list[dict[str, Any]], weights: tuple[float, ...], title: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(f"\n{title}")
    for kind in sorted({r["kind"] for r in rows}):
        sel = [r for r in rows if r["kind"] == kind]
        ans = [answer_probability(Evidence(**_ev(r)), weights) >= 0.5 for r in sel]
        rate = sum(ans) / len(sel)
        what = "answered" if sel[0]["y"] == 1 else "answered (should abstain)"
        print(f"  {kind:20} n={len(sel):4}  {what}: {rate:.1%}")
        out[kind] = {"n": len(sel), "answered": rate}
    return out


def _ev(r: dict[str, Any]) -> dict[str, float]:
    """A row's evidence (0 for a field rows collected before it existed)."""
    return {f.name: r.get(f.name, 0.0) for f in fields(Evidence)}


def given(rows: list[dict[str, Any]], weights: tuple[float, ...],
          conf: tuple[float, ...]) -> list[tuple[float, bool]]:
    """(confidence, holds the gold) of each answer the decision weights would give."""
    evs = [(Evidence(**_ev(r)), bool(r["good"])) for r in rows]
    return [(confidence(ev, conf), good) for ev, good in evs if answer_logit(ev, weights) >= 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--hotpot", type=Path)
    ap.add_argument("--nq", type=Path, help="nq-open-oracle.jsonl.gz (its tuning sample)")
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch")
    ap.add_argument("--n", type=int, default=600, help="answerable questions per half")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--fusion", default="scores")
    ap.add_argument("--max-refusals", type=float, default=0.02,
                    help="share of answerable questions the model may refuse")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the evidence rows of the last run (after changing only the fit)")
    ap.add_argument("--keep-decision", action="store_true",
                    help="keep abstain.py's decision weights (the threshold is still set by "
                         "--max-refusals) and refit the confidence")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "abstention.json")
    add_model_options(ap)
    args = ap.parse_args()

    tag = use_model_options(args)
    cache = args.workdir / f"abstention-rows-{args.seed}-{args.n}-{tag}-reader.json"
    if args.reuse and cache.exists():
        rows = json.loads(cache.read_text())
    else:
        rows = collect(args)
        cache.write_text(json.dumps(rows))
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    train, test = rows[::2], rows[1::2]
    # SQuAD 2.0's adversarial questions are fitted with half the weight: lexical
    # evidence can hardly tell them apart, and they would push the model to
    # refuse answerable questions.
    if args.keep_decision:  # abstain.py's feature weights; only the threshold is re-set
        w = np.array(WEIGHTS, dtype=float)
    else:
        fit_rows = [r for r in train
                    for _ in range(1 if r["kind"] == "squad2-impossible" else 2)]
        x = np.array([Evidence(**_ev(r)).features() for r in fit_rows])
        y = np.array([r["y"] for r in fit_rows], dtype=float)
        w = fit_logistic(x, y, signs=np.array([1, 1, 1, 1, -1, 1, 1, -1, 1, 1]))
    # Refusing an answerable question costs the reader more than a weak answer
    # whose citation they can check, so the intercept is moved until at most
    # args.max_refusals of the answerable training questions are refused.
    margins = np.array([Evidence(**_ev(r)).features() for r in train if r["y"] == 1]) @ w[1:]
    w[0] = -float(np.quantile(margins, args.max_refusals))
    fitted = tuple(round(float(v), 3) for v in w)
    # Confidence: the same features, the label whether the answer holds the gold, no
    # class balancing and no sign constraints, so that its output is a probability.
    # It is the probability for an answer *given*, so it is fitted on the answers the
    # decision gives, and on questions as people ask them: not the answer-removed copies
    # (half the rows, made to teach refusal: they would teach it that half of all answers
    # are wrong), nor SQuAD 2.0's adversarial questions (written to look answerable;
    # refusing them is the decision's job, and a third of the answers being of that kind
    # made the confidence run 10-15 points low on real questions).
    conf_rows = [r for r in train if not r["kind"].endswith("answer-removed")
                 and r["kind"] != "squad2-impossible"
                 and answer_logit(Evidence(**_ev(r)), fitted) >= 0]
    xc = np.array([Evidence(**_ev(r)).features() for r in conf_rows])
    yc = np.array([float(r["good"]) for r in conf_rows])
    conf = tuple(round(float(v), 3) for v in fit_logistic(xc, yc, balanced=False))
    print("features: intercept, top_dense, sentence_cover, answer_cover, passage_cover, "
          "asks_type*(1-type_ok), sentence_sim, sentence_score, missing_names, reader_margin, "
          "reader_answers")
    print(f"fitted weights: {fitted}")
    print(f"current weights in abstain.py: {WEIGHTS}")
    print(f"confidence weights: {conf}")
    print(f"current in abstain.py: {CONFIDENCE}")
    asked = [r for r in test if not r["kind"].endswith("answer-removed")]
    natural = [r for r in asked if r["kind"] != "squad2-impossible"]
    table, ece = reliability(given(natural, fitted, conf))
    print("\nreliability, held-out half (answers given to questions as asked; answer-removed "
          "copies and SQuAD 2.0's adversarial questions left out):")
    for b in table:
        print(f"  confidence {b['band']}: {b['answers']:4} answers, mean confidence "
              f"{b['mean_confidence']:.2f}, holding the gold {b['correct']:.1%}")
    _, ece_adv = reliability(given(asked, fitted, conf))
    print(f"  calibration error {ece:.3f}; "
          f"with SQuAD 2.0's adversarial questions in: {ece_adv:.3f}")
    by_kind = {}
    for kind in ("nq", "squad", "hotpot-answerable"):
        _, by_kind[kind] = reliability(given([r for r in natural if r["kind"] == kind],
                                             fitted, conf))
    print("  by kind: " + ", ".join(f"{k} {v:.3f}" for k, v in by_kind.items()))
    results = {
        "fitted_weights": fitted,
        "confidence_weights": conf,
        "reliability_test": table,
        "calibration_error_test": ece,
        "calibration_error_test_with_squad2": ece_adv,
        "calibration_error_test_by_kind": by_kind,
        "train": report(train, fitted, "train half, fitted weights"),
        "test_fitted": report(test, fitted, "held-out half, fitted weights"),
        "test_current": report(test, WEIGHTS, "held-out half, weights in abstain.py"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
