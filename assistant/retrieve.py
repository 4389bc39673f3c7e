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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.embed import Embedder
from index.lexical import LexicalIndex
from index.store import VectorStore

RRF_K = 60  # the constant of Cormack et al.; also LlamaIndex's default


@dataclass
class Candidate:
    """A retrieved chunk with every signal that ranked it."""

    chunk_id: str
    source: str
    start: int
    end: int
    text: str
    fused: float = 0.0
    dense: float | None = None  # cosine similarity to the question
    bm25: float | None = None
    ranks: dict[str, int] = field(default_factory=dict)


@dataclass
class Retrieval:
    candidates: list[Candidate]
    top_dense: float  # best cosine similarity of any chunk to the question alone


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

    def __init__(self, embedder: Embedder, vectors: VectorStore, lexical: LexicalIndex) -> None:
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.embedder = embedder
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
    ) -> Retrieval:
        """Best ``k`` chunks for ``question``; ``context`` (earlier turns) steers, weaker.

        Lists fused: dense(question) and BM25(question) at weight 1; with context,
        dense(context + question) and BM25(context + question) at weight 0.5, so an
        elliptical follow-up finds the passages of the earlier turn's subject.
        """
        depth = max(k * 3, 20)
        qv = query_vec if query_vec is not None else self.embedder.embed_query(question)
        lists: list[tuple[str, float, list[Candidate] | list[tuple[str, float]]]] = [
            ("dense", 1.0, self.dense(qv, question, depth)),
            ("bm25", 1.0, self.lexical_search(question, depth)),
        ]
        if context:
            combined = f"{context} {question}"
            cv = self.embedder.embed_query(combined)
            lists.append(("dense_ctx", 0.5, self.dense(cv, combined, depth)))
            lists.append(("bm25_ctx", 0.5, self.lexical_search(combined, depth)))
        dense_hits = lists[0][2]
        top_dense = max((c.dense or -1.0 for c in dense_hits), default=-1.0)  # type: ignore[union-attr]
        return Retrieval(fuse(lists, k, self.lexical), top_dense)


def fuse(
    lists: Sequence[tuple[str, float, Sequence[Any]]], k: int, lexical: LexicalIndex
) -> list[Candidate]:
    """Weighted reciprocal rank fusion; keeps each list's raw score on the candidate."""
    pool: dict[str, Candidate] = {}
    need_text: list[str] = []
    for name, weight, items in lists:
        for rank, item in enumerate(items, start=1):
            if isinstance(item, Candidate):
                cid = item.chunk_id
                cand = pool.setdefault(cid, item)
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
            cand.fused += weight / (RRF_K + rank)
    if need_text:
        rows = lexical.get(need_text)
        for cid in need_text:
            row = rows.get(cid)
            if row is None:  # in BM25 but not in the chunk table: skip rather than guess
                pool.pop(cid, None)
                continue
            c = pool[cid]
            c.source, c.start, c.end, c.text = row.source, row.start, row.end, row.text
    ranked = sorted(pool.values(), key=lambda c: (-c.fused, c.source, c.start))
    return ranked[:k]
