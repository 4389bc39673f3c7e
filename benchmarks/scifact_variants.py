"""The fusion variants of ``scifact_retrieval.py``, scored: each query's deep dense and BM25
lists fetched once, every variant of ``fusion_variants.variant_grid`` fused from them and
scored on the train (tune) and test queries, what each costs at its depth, the product's own
fusions replayed to prove the replay ranks as the product does, and the best variant per
depth against the product's fusion at that depth.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

from beir_metrics import Qrels, paired_gain, per_query_ndcg, score_run
from fusion_variants import Ranked, Variant, fuse, variant_grid, variant_of
from scifact_report import rounded

PRODUCT_K = 6  # assistant.config.DEFAULT_K: the app retrieves with depth max(3k, 20) = 20
LATENCY_SAMPLE = 60  # queries timed per depth when costing the variants


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and how long it took, in milliseconds."""
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1000


def p50(ms: Sequence[float]) -> float:
    return statistics.median(ms) if ms else float("nan")


def run_variants(
    args: argparse.Namespace,
    retriever: Any,
    embedder: Any,
    queries: dict[str, str],
    test: Qrels,
    tune: Qrels,
    doc_of: dict[str, str],
    order: dict[str, tuple[str, int]],
    product_runs: dict[str, tuple[Variant, dict[str, list[str]]]],
) -> dict[str, Any]:
    """Fetch deep raw lists once per query, then score every variant on tune and test."""
    wanted = (max(3 * PRODUCT_K, 20), 100, 3 * args.k, args.raw_depth)
    depths = sorted({d for d in wanted if d <= args.raw_depth})
    raw: dict[str, tuple[Ranked, Ranked]] = {}
    qids = sorted(set(test) | set(tune), key=int)
    for i, qid in enumerate(qids):
        q = queries[qid]
        hits = retriever.dense(embedder.embed_query(q), q, args.raw_depth)
        dense = [(c.chunk_id, c.dense if c.dense is not None else -1.0) for c in hits]
        raw[qid] = (dense, retriever.lexical_search(q, args.raw_depth))
        if (i + 1) % 200 == 0:
            print(f"  raw lists: {i + 1}/{len(qids)} queries", file=sys.stderr)

    # What a variant costs is the retrieval at its depth (fusion itself is sub-millisecond).
    cost: dict[int, float] = {}
    sample = sorted(test, key=int)[:LATENCY_SAMPLE]
    for depth in depths:
        ms = []
        for qid in sample:
            q = queries[qid]
            _, t = timed(lambda q=q, depth=depth: (
                retriever.dense(embedder.embed_query(q), q, depth),
                retriever.lexical_search(q, depth),
            ))
            ms.append(t)
        cost[depth] = round(p50(ms), 1)

    def run_of(v: Variant, qrels: Qrels) -> dict[str, list[str]]:
        return {q: fuse(v, *raw[q], doc_of, order) for q in qrels}

    # Each product fusion replayed on the raw lists: proves the variants model it.
    replicas = []
    for mode, (v, run) in product_runs.items():
        replay = run_of(v, test)
        same = sum(replay[q][:10] == run[q][:10] for q in test)
        replicas.append({
            "mode": mode,
            "variant": v.name(),
            **asdict(v),
            "test": rounded(score_run(replay, test)),
            "same_top10_docs": f"{same}/{len(test)}",
        })

    out = []
    grid = variant_grid(depths)
    for i, v in enumerate(grid):
        out.append({
            "name": v.name(),
            **asdict(v),
            "tune_ndcg@10": round(score_run(run_of(v, tune), tune)["ndcg@10"], 4),
            "test": rounded(score_run(run_of(v, test), test)),
            "p50_ms_retrieval_at_depth": cost[v.depth],
        })
        if (i + 1) % 40 == 0:
            print(f"  variants: {i + 1}/{len(grid)}", file=sys.stderr)
    best = max(out, key=lambda r: r["tune_ndcg@10"])
    by_depth: list[dict[str, Any]] = []
    if product_runs:
        mode, (base, run) = next(iter(product_runs.items()))
        best["test_vs_product"] = {
            "mode": mode,
            **paired_gain(per_query_ndcg(run_of(variant_of(best), test), test),
                          per_query_ndcg(run, test)),
        }
        # The app asks for a few passages (depth 20): what the best setting gains at
        # each depth over the product's own fusion replayed at that depth.
        for depth in depths:
            here = max((r for r in out if r["depth"] == depth), key=lambda r: r["tune_ndcg@10"])
            ref = replace(base, depth=depth)
            by_depth.append({
                "depth": depth,
                "product": ref.name(),
                "product_test_ndcg@10": round(score_run(run_of(ref, test), test)["ndcg@10"], 4),
                "best": here["name"],
                "best_tune_ndcg@10": here["tune_ndcg@10"],
                "best_test_ndcg@10": here["test"]["ndcg@10"],
                "test_gain": paired_gain(per_query_ndcg(run_of(variant_of(here), test), test),
                                         per_query_ndcg(run_of(ref, test), test)),
            })
    return {"variants": out, "best": best, "replicas": replicas, "by_depth": by_depth}
