"""Fit the sentence-ranking model of the answerer (assistant/ranking.py).

For every question of the tuning samples (SQuAD dev seed 2024, the answerer's
tuning sample; the Natural Questions tuning sample of ``nq_qa.py``), the product's
retriever finds the passages and the answerer lists the sentences of its pool
with their features; a sentence is labelled as answering when it holds a gold
answer string. The model is a softmax over each question's sentences (a
conditional logit: it learns to put an answering sentence first, not to score
sentences in isolation), fitted on one half of the questions and measured on the
other: top-1 accuracy (the first sentence holds the gold), against the weights
currently in ranking.py. Questions whose pool holds no answering sentence
cannot teach the ranking and are left out of the fit.

    python benchmarks/fit_answerer.py --squad ../shared/benchmarks/squad \
        --nq ../shared/benchmarks/nq/nq-open-oracle.jsonl.gz
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nq_qa  # noqa: E402
from qa_harness import (  # noqa: E402
    add_model_options,
    contains,
    open_index,
    use_model_options,
    write_results,
)
from squad_qa import load_questions, write_articles  # noqa: E402

from assistant import ranking  # noqa: E402
from index.embed import OnnxEmbedder  # noqa: E402

HERE = Path(__file__).resolve().parent
SQUAD_TUNE = (2024, 1000)  # squad_qa.TUNED_ON's answerer sample


def groups_for(retriever: Any, answerer: Any, qs: list[dict[str, Any]], k: int,
               source: str) -> list[dict[str, Any]]:
    """Per question: its pool's feature rows and which of them hold the gold."""
    out = []
    for q in qs:
        _view, _weights, scored = answerer.rank(q["question"], retriever.retrieve(q["question"], k))
        if not scored:
            continue
        out.append({"source": source, "x": [s.features for s in scored],
                    "y": [int(contains(s.text, q["answers"])) for s in scored]})
    return out


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    embedder = OnnxEmbedder().load()
    squad_dir = args.workdir / "squad"
    write_articles(args.squad / "dev-v1.1.json", squad_dir / "corpus")
    retriever, answerer, _ = open_index(squad_dir / "corpus", squad_dir / "store", embedder,
                                        qencoder=args.qencoder)
    rows = groups_for(retriever, answerer, load_questions(args.squad, SQUAD_TUNE[1],
                                                          SQUAD_TUNE[0]), args.k, "squad")
    nq_rows = nq_qa.read_nq(args.nq)
    nq_dir = args.workdir / "nq"
    nq_qa.write_corpus(nq_rows, nq_dir / "corpus")
    retriever, answerer, _ = open_index(nq_dir / "corpus", nq_dir / "store", embedder,
                                        qencoder=args.qencoder)
    rows += groups_for(retriever, answerer, nq_qa.questions(nq_rows, "tune"), args.k, "nq")
    return rows


def fit_softmax(groups: list[dict[str, Any]], l2: float = 1e-3, iters: int = 3000,
                lr: float = 0.5) -> np.ndarray:
    """Weights maximising log P(an answering sentence) under a per-question softmax."""
    xs = [np.array(g["x"], dtype=float) for g in groups]
    ys = [np.array(g["y"], dtype=float) for g in groups]
    w = np.zeros(xs[0].shape[1])
    for _ in range(iters):
        grad = l2 * w
        for x, y in zip(xs, ys, strict=True):
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            q = p * y
            q /= q.sum()
            grad += (p - q) @ x / len(xs)
        w -= lr * grad
    return w


def top1(groups: list[dict[str, Any]], w: np.ndarray) -> float:
    hits = [g["y"][int(np.argmax(np.array(g["x"]) @ w))] for g in groups]
    return sum(hits) / max(len(hits), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--nq", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch")
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--reuse", action="store_true", help="reuse the last run's feature rows")
    ap.add_argument("--drop", default="",
                    help="features to leave out of the fit together (comma-separated; their "
                    "columns zeroed), to measure removing them at once")
    ap.add_argument("--ablate", action="store_true",
                    help="also refit without each feature in turn and report its check top-1")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "answerer.json")
    add_model_options(ap)
    args = ap.parse_args()

    cache = args.workdir / f"answerer-rows-{use_model_options(args)}.json"
    if args.reuse and cache.exists():
        groups = json.loads(cache.read_text())
    else:
        groups = collect(args)
        cache.write_text(json.dumps(groups))
    drop = {ranking.FEATURES.index(f) for f in args.drop.split(",") if f}
    if drop:
        groups = without(groups, drop)
    usable = [g for g in groups if any(g["y"])]
    random.Random(5).shuffle(usable)
    fit, check = usable[::2], usable[1::2]
    w = fit_softmax(fit)
    # No tuning question has earlier turns: an earlier turn's words count half as much
    # as the question's own (see ranking.WEIGHTS).
    w[ranking.FEATURES.index("context")] = 0.5 * w[ranking.FEATURES.index("cover")]
    current = np.array(ranking.WEIGHTS)
    print(f"questions: {len(groups)} ({len(usable)} with an answering sentence in the pool)")
    print("features: " + ", ".join(ranking.FEATURES))
    print(f"fitted weights: {tuple(round(float(v), 3) for v in w)}")
    results: dict[str, Any] = {"fitted_weights": [round(float(v), 3) for v in w],
                               "features": list(ranking.FEATURES), "check_half": {}}
    for src in ("squad", "nq", "all"):
        sel = [g for g in check if src in ("all", g["source"])]
        a, b = top1(sel, w), top1(sel, current)
        results["check_half"][src] = {"n": len(sel), "top1_fitted": a, "top1_current": b}
        print(f"  {src:6} n={len(sel):4}  top-1 fitted {a:.1%}  current {b:.1%}")
    if args.ablate:
        results["drop_one"] = ablate(fit, check)
    write_results(args.out, results)


def without(groups: list[dict[str, Any]], columns: set[int]) -> list[dict[str, Any]]:
    """``groups`` with the given feature columns zeroed (those features left out)."""
    return [{**g, "x": [[0.0 if j in columns else v for j, v in enumerate(r)]
                        for r in g["x"]]} for g in groups]


def ablate(fit: list[dict[str, Any]], check: list[dict[str, Any]]) -> dict[str, Any]:
    """Check-half top-1 with each feature left out of the fit (its column zeroed)."""
    out: dict[str, Any] = {}
    full = fit_softmax(fit)
    base = {src: top1([g for g in check if src in ("all", g["source"])], full)
            for src in ("squad", "nq", "all")}
    print(f"\ndrop one feature (check half; all features: squad {base['squad']:.1%}, "
          f"nq {base['nq']:.1%}):")
    for i, name in enumerate(ranking.FEATURES):
        if name == "context":
            continue  # not fitted (no tuning question has earlier turns)

        w = fit_softmax(without(fit, {i}))
        row = {src: top1(without([g for g in check if src in ("all", g["source"])], {i}), w)
               for src in ("squad", "nq", "all")}
        out[name] = {k: round(v - base[k], 4) for k, v in row.items()}
        print(f"  without {name:10} squad {row['squad'] - base['squad']:+.1%}  "
              f"nq {row['nq'] - base['nq']:+.1%}  all {row['all'] - base['all']:+.1%}")
    return out


if __name__ == "__main__":
    main()
