"""A LlamaIndex ``BaseEmbedding`` over the project's bundled ONNX embedder.

Why: benchmarks that compare our index with a plain LlamaIndex pipeline must embed
with the very same model and runtime, or the comparison measures the models, not
the pipelines. It also never reaches for the network (LlamaIndex's default embed
model is OpenAI's, resolved lazily), and it can record what LlamaIndex actually
hands to the model (chunk text plus any metadata it prepends), so silent
truncation at the model's 256-token window can be counted afterwards.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import PrivateAttr

from index.embed import Embedder, OnnxEmbedder


class OnnxLlamaEmbedding(BaseEmbedding):
    """LlamaIndex face of :class:`index.embed.OnnxEmbedder` (or any ``Embedder``)."""

    _embedder: Any = PrivateAttr()
    _record: bool = PrivateAttr(default=False)
    _inputs: list[str] = PrivateAttr(default_factory=list)

    def __init__(
        self, embedder: Embedder | None = None, record_inputs: bool = False, **kwargs: Any
    ) -> None:
        emb = embedder if embedder is not None else OnnxEmbedder()
        kwargs.setdefault("model_name", emb.model_id)
        super().__init__(**kwargs)
        self._embedder = emb
        self._record = record_inputs
        self._inputs = []

    @classmethod
    def class_name(cls) -> str:
        return "OnnxLlamaEmbedding"

    @property
    def inputs(self) -> list[str]:
        """Every document text embedded so far (only with ``record_inputs=True``)."""
        return self._inputs

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embedder.embed_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if self._record:
            self._inputs.extend(texts)
        return self._embedder.embed_documents(texts).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._get_text_embeddings(texts)
