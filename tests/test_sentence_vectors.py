"""In-context sentence vectors: pooled from the model's token outputs, stored per chunk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.config import Config
from assistant.service import Assistant
from index import sentvec
from index.build import LEXICAL_FILE, build_index
from index.chunk import sentences
from index.lexical import LexicalIndex

pytestmark = pytest.mark.slow

TEXT = ("Huawei will supply 5G equipment to MTS. The deal was signed in Moscow in June. "
        "Tomatoes grow best in warm, sunny gardens.")
SUPPLIER = "Which company will supply 5G technology to Russia?"


def spans_of(text: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e, _p in sentences(text)]


def test_each_span_gets_its_own_unit_vector(embedder: Any) -> None:
    spans = spans_of(TEXT)
    assert len(spans) == 3
    vecs, parts = embedder.embed_passages([TEXT], [spans])
    assert np.allclose(vecs, embedder.embed_documents([TEXT]), atol=1e-6)
    rows = parts[0]
    assert rows.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    sims = rows @ rows.T
    assert sims[0, 1] < 0.99 and sims[0, 2] < 0.99, "spans were not pooled separately"
    # The question about the supplier matches the supplier sentence best, the tomato one least.
    q = embedder.embed_query("Who supplies 5G equipment to MTS?")
    assert int(np.argmax(rows @ q)) == 0 and int(np.argmin(rows @ q)) == 2


def test_a_whole_text_span_is_the_passage_and_an_empty_one_falls_back(embedder: Any) -> None:
    vecs, parts = embedder.embed_passages([TEXT], [[(0, len(TEXT)), (len(TEXT), len(TEXT))]])
    whole, empty = parts[0]
    assert float(whole @ vecs[0]) > 0.98  # the same tokens, minus [CLS] and [SEP]
    assert np.array_equal(empty, vecs[0]), "a span with no tokens gets the passage's vector"


def test_spans_beyond_the_model_window_get_the_passage_vector(embedder: Any) -> None:
    long = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(120))
    spans = spans_of(long)
    vecs, parts = embedder.embed_passages([long], [spans])
    rows = parts[0]
    assert len(rows) == len(spans) == 120
    assert not np.array_equal(rows[0], vecs[0])
    assert np.array_equal(rows[-1], vecs[0]), "the last sentences lie past 256 tokens"


def test_packing_keeps_cosines_within_a_hundredth(embedder: Any) -> None:
    _v, parts = embedder.embed_passages([TEXT], [spans_of(TEXT)])
    q = embedder.embed_query(SUPPLIER)
    unpacked = sentvec.unpack(sentvec.pack(parts[0]), embedder.dim)
    assert unpacked is not None
    assert np.abs(unpacked @ q - parts[0] @ q).max() < 0.01
    assert sentvec.unpack(b"\x01" * (embedder.dim + 1), embedder.dim) is None
    assert sentvec.from_text("not base64!") is None


def test_every_seed_chunk_stores_one_vector_per_sentence(
    corpus: Path, store: Path, embedder: Any
) -> None:
    build_index(corpus, store, embedder)
    lex = LexicalIndex(store / LEXICAL_FILE, readonly=True)
    try:
        rows = lex.get(sorted(lex.ids()))
        blobs = lex.sentence_vectors(list(rows))
    finally:
        lex.close()
    assert set(blobs) == set(rows)
    q = embedder.embed_query(SUPPLIER)
    ranked = []
    for cid, row in rows.items():
        vecs = sentvec.unpack(blobs[cid], embedder.dim)
        assert vecs is not None and len(vecs) == len(sentences(row.text))
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=0.03)
        ranked += [(float(v @ q), row.text[s:e]) for v, (s, e, _p) in
                   zip(vecs, sentences(row.text), strict=True)]
    ranked.sort(reverse=True)
    assert len(ranked) > 100
    assert any("Huawei will become the supplier" in t for _s, t in ranked[:3])


class ChunkVectorsOnly:
    """A model that gives passage vectors only (no token outputs), like a remote API."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim

    def load(self) -> ChunkVectorsOnly:
        return self

    def embed_documents(self, texts: Any, progress: Any = None) -> Any:
        return self.inner.embed_documents(texts, progress=progress)

    def embed_query(self, text: str) -> Any:
        return self.inner.embed_query(text)


def test_without_sentence_vectors_the_passage_cosine_stands_in(
    corpus: Path, store: Path, embedder: Any
) -> None:
    svc = Assistant.open(Config.resolve(corpus=corpus, store=store),
                         embedder=ChunkVectorsOnly(embedder))
    try:
        assert svc._lexical.sentence_vectors(sorted(svc._lexical.ids())) == {}  # noqa: SLF001
        answer = svc.ask(SUPPLIER)
    finally:
        svc.close()
    assert not answer.abstained and "Huawei" in answer.text
