"""Hybrid retrieval: dense (Chroma through LlamaIndex) + BM25 (FTS5), fused by RRF.

The dense side is LlamaIndex's ``VectorIndexRetriever`` over ``ChromaVectorStore``
with our bundled model wrapped as a LlamaIndex embedding. Two parts are our own,
and why:

* the lexical retriever reads the FTS5 index kept by ``index.lexical`` instead of
  ``BM25Retriever``, which holds every node in memory and is rebuilt from scratch
  on any change of the corpus;
* the fusion is a weighted reciprocal rank fusion written here instead of
  ``QueryFusionRetriever(mode="reciprocal_rerank")``, because that one keeps only
  the fused rank and drops the raw evidence (cosine similarity, BM25) which the
  answerer needs to decide whether to abstain, and it runs an event loop per query.

Results leave this module as :class:`Candidate` records, never LlamaIndex nodes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from index import sentvec
from index.embed import Embedder
from index.lexical import LexicalIndex
from index.store import VectorStore

RRF_K = 60  # the constant of Cormack et al.; also LlamaIndex's default
FUSIONS = ("rrf", "scores")
DEFAULT_FUSION = "scores"


MIN_DEPTH = 40  # hits asked of each retriever before fusion
# After fusion, the best RERANK_POOL candidates are re-ordered by fused score plus
# RERANK_WEIGHT times their best sentence's cosine with the question (sentence
# vectors stored at index time: a late-interaction rerank at no model cost).
# Tuned on SQuAD dev questions other than the reported sample (benchmarks/squad_qa.py),
# with the index model's own question vector.
RERANK_POOL = 20
RERANK_WEIGHT = 1.0
# The same with the trained question encoder's vector, which points at answering sentences
# better, so it is trusted further and over more passages: chosen on the tuning samples
# (NQ tune, SQuAD seed 2024) over pools 20-60 and weights 1-2.5, where every setting of 40+
# passages and weight 1.5+ was within a question of the best.
TUNED_RERANK_POOL = 40
TUNED_RERANK_WEIGHT = 1.5
# Which searches the trained question encoder (assistant/qencoder.py) serves, when there is
# one: "sentences" (the rerank and the answerer weigh sentences with its vector; passages
# are found with the bundled model's) or "all" (its vector finds the passages too).
# Chosen by measurement on the tuning samples (benchmarks/qencoder_ablation.py).
TUNED_FOR = "sentences"


@dataclass
class Candidate:
    """A retrieved chunk with every signal that ranked it."""

    chunk_id: str
    source: str
    start: int
    end: int
    text: str
    fused: float = 0.0
    score: float = 0.0  # what it was ranked by: ``fused``, plus the rerank's term if reranked
    dense: float | None = None  # cosine similarity to the question
    bm25: float | None = None
    ranks: dict[str, int] = field(default_factory=dict)
    # Cosine of each of its sentences' stored vectors with the question, in sentence
    # order; empty when it has none stored, None until looked up (see sentence_similarities).
    sentence_sims: np.ndarray | None = None


@dataclass
class Retrieval:
    candidates: list[Candidate]
    top_dense: float  # best cosine similarity of any chunk to the question alone
    # The question's vector that sentences are weighed with: the question encoder's when
    # there is one, else the embedder's (the one passages were found with).
    query_vec: np.ndarray | None = None


def _llama_embedding(embedder: Embedder) -> Any:
    """Our embedder as a LlamaIndex ``BaseEmbedding`` (defined lazily: import cost)."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class BundledEmbedding(BaseEmbedding):
        _embedder: Any = PrivateAttr()

        def __init__(self, inner: Embedder) -> None:
            super().__init__(model_name=inner.model_id, embed_batch_size=64)
            self._embedder = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed_query(query).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed_documents([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._embedder.embed_documents(texts).tolist()

    return BundledEmbedding(embedder)


class HybridRetriever:
    """Dense + lexical retrieval over one index, fused with weighted RRF."""

    def __init__(
        self,
        embedder: Embedder,
        vectors: VectorStore,
        lexical: LexicalIndex,
        fusion: str = DEFAULT_FUSION,
        question_encoder: Embedder | None = None,
        tuned_for: str = TUNED_FOR,
    ) -> None:
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        if tuned_for not in ("sentences", "all"):
            raise ValueError("tuned_for must be 'sentences' or 'all'")
        self.fusion = fusion
        self.embedder = embedder
        self.question_encoder = question_encoder
        self.tuned_for = tuned_for
        self.vectors = vectors
        self.lexical = lexical
        store = ChromaVectorStore(chroma_collection=vectors.collection)
        self._index = VectorStoreIndex.from_vector_store(
            store, embed_model=_llama_embedding(embedder)
        )

    def dense(self, query_vec: np.ndarray, text: str, k: int) -> list[Candidate]:
        from llama_index.core.schema import QueryBundle

        retriever = self._index.as_retriever(similarity_top_k=k)
        bundle = QueryBundle(query_str=text, embedding=query_vec.tolist())
        out = []
        for nws in self.vectors.call(lambda: retriever.retrieve(bundle)):
            meta = nws.node.metadata
            sim = nws.score if nws.score is not None else 0.0
            cosine = 1.0 + math.log(sim) if sim > 0 else -1.0  # the store returns exp(-distance)
            out.append(Candidate(
                chunk_id=nws.node.node_id, source=str(meta["source"]), start=int(meta["start"]),
                end=int(meta["end"]), text=nws.node.get_content(), dense=cosine,
            ))
        return out

    def lexical_search(self, text: str, k: int) -> list[tuple[str, float]]:
        return self.lexical.search(text, k)

    def retrieve(
        self,
        question: str,
        k: int,
        context: str = "",
        query_vec: np.ndarray | None = None,
        use: tuple[str, ...] = ("dense", "bm25"),
    ) -> Retrieval:
        """Best ``k`` chunks for ``question``; ``context`` (earlier turns) steers, weaker.

        Lists fused: dense(question) and BM25(question) at weight 1; with context,
        dense(context + question) and BM25(context + question) at weight 0.5, so an
        elliptical follow-up finds the passages of the earlier turn's subject.
        ``use`` selects the retrievers (both by default; one alone for comparisons).
        """
        depth = max(k * 3, MIN_DEPTH)
        # qv finds passages; sv weighs sentences (the question encoder's, when there is one).
        encoder = self.question_encoder if query_vec is None else None
        if query_vec is not None:
            qv = sv = query_vec
        elif encoder is None:
            qv = sv = self.embedder.embed_query(question)
        else:
            sv = encoder.embed_query(question)
            qv = sv if self.tuned_for == "all" else self.embedder.embed_query(question)
        dense_hits = self.dense(qv, question, depth)
        top_dense = max((c.dense or -1.0 for c in dense_hits), default=-1.0)
        lists: list[tuple[str, float, Sequence[Any]]] = []
        if "dense" in use:
            lists.append(("dense", 1.0, dense_hits))
        if "bm25" in use:
            lists.append(("bm25", 1.0, self.lexical_search(question, depth)))
        if context:
            combined = f"{context} {question}"
            if "dense" in use:
                by = (self.question_encoder if self.question_encoder is not None
                      and self.tuned_for == "all" else self.embedder)
                cv = by.embed_query(combined)
                lists.append(("dense_ctx", 0.5, self.dense(cv, combined, depth)))
            if "bm25" in use:
                lists.append(("bm25_ctx", 0.5, self.lexical_search(combined, depth)))
        if self.fusion == "rrf":
            return Retrieval(fuse(lists, k, self.lexical), top_dense, sv)
        # The rerank adds a cosine to a score made of cosines: it needs score fusion.
        rerank_pool, weight = ((TUNED_RERANK_POOL, TUNED_RERANK_WEIGHT) if encoder is not None
                               else (RERANK_POOL, RERANK_WEIGHT))
        pool = max(k, rerank_pool) if "dense" in use else k
        fused = fuse_scores(lists, pool, self.lexical)
        if "dense" in use:
            fused = self.rerank(fused, sv, weight)
        return Retrieval(fused[:k], top_dense, sv)

    def rerank(self, cands: list[Candidate], query_vec: np.ndarray,
               weight: float) -> list[Candidate]:
        """Order by fused score plus ``weight`` x the best sentence's similarity to the
        question.

        A passage whose one sentence matches the question closely moves up past one
        that is loosely about the same things. Each candidate keeps its sentence
        similarities for the answerer. Without stored sentence vectors, the passage's
        own cosine stands in.
        """
        sentence_similarities(cands, self.lexical, query_vec)
        for c in cands:
            sims = c.sentence_sims
            best = float(sims.max()) if sims is not None and len(sims) else (c.dense or 0.0)
            c.score = c.fused + weight * best
        return sorted(cands, key=lambda c: (-c.score, c.source, c.start))


def sentence_similarities(
    cands: Sequence[Candidate], lexical: LexicalIndex, query_vec: np.ndarray
) -> None:
    """Set ``sentence_sims`` on the candidates not looked up yet: one read for them all."""
    todo = [c for c in cands if c.sentence_sims is None]
    if not todo:
        return
    blobs = lexical.sentence_vectors([c.chunk_id for c in todo])
    for c in todo:
        vecs = sentvec.unpack(blobs.get(c.chunk_id, b""), len(query_vec))
        c.sentence_sims = vecs @ query_vec if vecs is not None else np.zeros(0, np.float32)


def _collect(
    lists: Sequence[tuple[str, float, Sequence[Any]]],
) -> tuple[dict[str, Candidate], list[str]]:
    """Pool the candidates of every list, keeping each one's raw scores and ranks."""
    pool: dict[str, Candidate] = {}
    need_text: list[str] = []
    for name, _weight, items in lists:
        for rank, item in enumerate(items, start=1):
            if isinstance(item, Candidate):
                cand = pool.get(item.chunk_id)
                if cand is None:
                    cand = pool[item.chunk_id] = replace(item, dense=None, ranks={})
                if name == "dense":
                    cand.dense = item.dense
            else:
                cid, score = item
                cand = pool.get(cid)
                if cand is None:
                    cand = pool[cid] = Candidate(cid, "", 0, 0, "")
                    need_text.append(cid)
                if name == "bm25":
                    cand.bm25 = score
            cand.ranks[name] = rank
    return pool, need_text


def _hydrate(pool: dict[str, Candidate], need_text: list[str], lexical: LexicalIndex) -> None:
    """Fill in text and offsets of chunks only the lexical side returned."""
    if not need_text:
        return
    rows = lexical.get(need_text)
    for cid in need_text:
        row = rows.get(cid)
        if row is None:  # in BM25 but not in the chunk table: skip rather than guess
            pool.pop(cid, None)
            continue
        c = pool[cid]
        c.source, c.start, c.end, c.text = row.source, row.start, row.end, row.text


def fuse_scores(
    lists: Sequence[tuple[str, float, Sequence[Any]]], k: int, lexical: LexicalIndex
) -> list[Candidate]:
    """Weighted sum of each list's score: cosine for dense, BM25 / best BM25 for lexical.

    Unlike RRF this keeps how far ahead the leader is, which matters when one
    retriever is sure and the other is guessing.
    """
    pool, need_text = _collect(lists)
    for _name, weight, items in lists:
        if not items:
            continue
        if isinstance(items[0], Candidate):
            for c in items:
                pool[c.chunk_id].fused += weight * (c.dense or 0.0)
        else:
            top = max(s for _cid, s in items) or 1.0
            for cid, s in items:
                pool[cid].fused += weight * s / top
    _hydrate(pool, need_text, lexical)
    for c in pool.values():
        c.score = c.fused
    ranked = sorted(pool.values(), key=lambda c: (-c.fused, c.source, c.start))
    return ranked[:k]


def fuse(
    lists: Sequence[tuple[str, float, Sequence[Any]]], k: int, lexical: LexicalIndex
) -> list[Candidate]:
    """Weighted reciprocal rank fusion; keeps each list's raw score on the candidate."""
    pool, need_text = _collect(lists)
    for _name, weight, items in lists:
        for rank, item in enumerate(items, start=1):
            cid = item.chunk_id if isinstance(item, Candidate) else item[0]
            pool[cid].fused += weight / (RRF_K + rank)
    _hydrate(pool, need_text, lexical)
    for c in pool.values():
        c.score = c.fused
    ranked = sorted(pool.values(), key=lambda c: (-c.fused, c.source, c.start))
    return ranked[:k]
