"""Ways to fuse a query's dense and BM25 lists, replayed outside the product so that
``scifact_retrieval.py`` can score each one: reciprocal rank or score sums, weights,
depth, chunk or document level. ``Variant("sum", "chunk", ...)`` is the product's own
score fusion (``assistant.retrieve.fuse_scores``); the script checks that its replay
ranks as the product does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from beir_metrics import distinct_docs

Ranked = list[tuple[str, float]]  # (chunk id, raw score), best first


@dataclass(frozen=True)
class Variant:
    """One way to fuse the dense and BM25 lists of a query.

    ``method``: "rrf" (reciprocal rank, constant ``c``), "sum" (cosine + BM25 / best
    BM25, the product's score fusion) or "minmax" (each list's scores scaled to
    [0, 1]). ``level``: fuse chunks, then rank documents by their best chunk, or
    collapse each list to documents (best chunk) first and fuse documents.
    """

    method: str
    level: str
    depth: int  # how many chunks each side contributes
    w_dense: float = 1.0
    w_bm25: float = 1.0
    c: int = 60

    def name(self) -> str:
        rrf = f" c={self.c}" if self.method == "rrf" else ""
        return (f"{self.method}-{self.level}{rrf} w={self.w_dense:g}:{self.w_bm25:g}"
                f" d={self.depth}")


def _rrf(keys: Sequence[str]) -> Callable[[int], dict[str, float]]:
    """Reciprocal-rank scores of ``keys`` for a given constant."""
    return lambda c: {key: 1.0 / (c + rank) for rank, key in enumerate(keys, start=1)}


def _normalised(hits: Ranked, method: str, dense: bool) -> dict[str, float]:
    """Scores of one list as the fusion adds them; keys keep the list's order."""
    if not hits:
        return {}
    if method == "sum":
        if dense:
            return dict(hits)  # cosine as is
        top = hits[0][1] or 1.0
        return {cid: s / top for cid, s in hits}
    lo, hi = min(s for _, s in hits), max(s for _, s in hits)
    span = hi - lo or 1.0
    return {cid: (s - lo) / span for cid, s in hits}


def _by_doc(scores: dict[str, float], doc_of: dict[str, str]) -> dict[str, float]:
    """Each document's best chunk score (first occurrence wins a tie)."""
    best: dict[str, float] = {}
    for cid, s in scores.items():
        d = doc_of.get(cid)
        if d is not None and s > best.get(d, -math.inf):
            best[d] = s
    return best


def fuse(
    v: Variant,
    dense: Ranked,
    bm25: Ranked,
    doc_of: dict[str, str],
    order: dict[str, tuple[str, int]],
) -> list[str]:
    """Ranked doc ids for one query under variant ``v`` (100 at most)."""
    dense, bm25 = dense[: v.depth], bm25[: v.depth]
    sides: list[tuple[float, dict[str, float]]] = []
    for weight, hits, is_dense in ((v.w_dense, dense, True), (v.w_bm25, bm25, False)):
        if v.method == "rrf":
            keys = [c for c, _ in hits]
            scores = _rrf(keys if v.level == "chunk" else distinct_docs(keys, doc_of))(v.c)
        else:
            scores = _normalised(hits, v.method, is_dense)
            if v.level == "doc":
                scores = _by_doc(scores, doc_of)
        sides.append((weight, scores))
    fused: dict[str, float] = {}
    for weight, scores in sides:
        for key, s in scores.items():
            fused[key] = fused.get(key, 0.0) + weight * s
    if v.level == "chunk":
        # The product's tie-break: source, then offset.
        chunks = sorted(fused, key=lambda c: (-fused[c], *order.get(c, ("", 0))))
        return distinct_docs(chunks, doc_of)[:100]
    return sorted(fused, key=lambda d: (-fused[d], d))[:100]


WEIGHTS = ((1.0, 1.0), (1.5, 1.0), (1.0, 1.5), (2.0, 1.0), (1.0, 2.0))


def variant_grid(depths: Sequence[int]) -> list[Variant]:
    """Every variant scored: small enough to run all on both splits in a few minutes."""
    grid = [
        Variant("rrf", level, depth, wd, wb, c)
        for level in ("chunk", "doc")
        for depth in depths
        for c in (5, 10, 30, 60)
        for wd, wb in WEIGHTS
    ]
    grid += [
        Variant(method, level, depth, wd, wb)
        for method in ("sum", "minmax")
        for level in ("chunk", "doc")
        for depth in depths
        for wd, wb in WEIGHTS
    ]
    return grid


def one_factor(base: Variant, depths: Iterable[int]) -> list[Variant]:
    """The product's fusion with one setting changed at a time."""
    steps = [base, *(replace(base, w_dense=wd, w_bm25=wb) for wd, wb in WEIGHTS[1:])]
    steps.append(replace(base, level="doc" if base.level == "chunk" else "chunk"))
    steps += [replace(base, method=m, c=60) for m in ("rrf", "sum", "minmax")]
    steps += [replace(base, method="rrf", c=c) for c in (5, 10, 30)]
    steps += [replace(base, depth=d) for d in depths]
    return list(dict.fromkeys(steps))


def variant_of(row: dict[str, Any]) -> Variant:
    return Variant(**{f.name: row[f.name] for f in fields(Variant)})
