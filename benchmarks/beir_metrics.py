"""Ranking metrics as BEIR reports them (trec_eval's linear-gain nDCG@10, MRR@10,
recall@100) over documents, and a paired bootstrap to tell a gain from noise.

A run maps query ids to ranked ids; qrels map query ids to graded relevance.
Retrieval returns chunks: :func:`distinct_docs` ranks a document where its best chunk ranks.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

Qrels = dict[str, dict[str, int]]


def distinct_docs(chunk_ids: Iterable[str], doc_of: dict[str, str]) -> list[str]:
    """Documents in order of their best-ranked chunk (first occurrence)."""
    return list(dict.fromkeys(doc_of[c] for c in chunk_ids if c in doc_of))


def ndcg(ranked: Sequence[str], rels: dict[str, int], n: int = 10) -> float:
    """Linear gain rel / log2(rank + 1), as trec_eval's ndcg_cut that BEIR reports."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:n]))
    ideal = sorted(rels.values(), reverse=True)[:n]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr(ranked: Sequence[str], rels: dict[str, int], n: int = 10) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:n]) if rels.get(d, 0) > 0), 0.0)


def recall(ranked: Sequence[str], rels: dict[str, int], n: int = 100) -> float:
    return len(set(ranked[:n]) & set(rels)) / len(rels) if rels else 0.0


def per_query_ndcg(run: dict[str, list[str]], qrels: Qrels) -> dict[str, float]:
    return {q: ndcg(run.get(q, []), rels) for q, rels in qrels.items()}


def paired_gain(new: dict[str, float], old: dict[str, float], rounds: int = 2000) -> dict[str, Any]:
    """Mean per-query difference with a bootstrap 95% interval: is a gain more than noise?"""
    qids = sorted(old)
    diffs = [new[q] - old[q] for q in qids]
    rng = random.Random(0)
    means = sorted(
        statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(rounds)
    )
    return {
        "mean_diff": round(statistics.fmean(diffs), 4),
        "ci95": [round(means[int(0.025 * rounds)], 4), round(means[int(0.975 * rounds)], 4)],
        "better/same/worse": [sum(d > 1e-9 for d in diffs), sum(abs(d) <= 1e-9 for d in diffs),
                              sum(d < -1e-9 for d in diffs)],
    }


def score_run(run: dict[str, list[str]], qrels: Qrels) -> dict[str, float]:
    """Mean metrics over the judged queries (a query with no results scores 0)."""
    qids = sorted(qrels)
    return {
        "ndcg@10": statistics.fmean(ndcg(run.get(q, []), qrels[q]) for q in qids),
        "recall@100": statistics.fmean(recall(run.get(q, []), qrels[q]) for q in qids),
        "mrr@10": statistics.fmean(mrr(run.get(q, []), qrels[q]) for q in qids),
        "docs_per_query": statistics.fmean(len(run.get(q, [])[:100]) for q in qids),
    }
