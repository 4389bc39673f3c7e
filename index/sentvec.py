"""Sentence vectors of a chunk: made with its vector (:func:`embed_chunks`), and packed
small, int8, one row of ``dim`` bytes per sentence.

Each vector is unit-length, so its components lie in [-1, 1]; scaled by 127 and
rounded, a cosine with a query vector changes by well under 0.01, far below the
differences the answerer acts on. A chunk's sentences are those of
:func:`index.chunk.sentences` over its text, in order.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from index.chunk import sentences

if TYPE_CHECKING:
    import numpy as np

    from index.embed import Embedder

SCALE = 127.0


def pack(vectors: np.ndarray) -> bytes:
    import numpy as np

    return np.clip(np.rint(vectors * SCALE), -127, 127).astype(np.int8).tobytes()


def unpack(blob: bytes, dim: int) -> np.ndarray | None:
    """The float vectors of a packed blob (None when it does not hold whole rows)."""
    import numpy as np

    if not blob or len(blob) % dim:
        return None
    return np.frombuffer(blob, dtype=np.int8).reshape(-1, dim).astype(np.float32) / SCALE


def to_text(blob: bytes) -> str:
    """For Chroma metadata, which holds strings, not bytes."""
    return base64.b64encode(blob).decode("ascii")


def from_text(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def embed_chunks(
    embedder: Embedder, texts: Sequence[str], progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, list[bytes | None]]:
    """Chunk vectors, and each chunk's packed sentence vectors when the model gives them."""
    embed_passages = getattr(embedder, "embed_passages", None)
    if embed_passages is None:  # a model without token outputs: chunk vectors only
        return embedder.embed_documents(texts, progress=progress), [None] * len(texts)
    spans = [[(s, e) for s, e, _p in sentences(t)] for t in texts]
    vecs, parts = embed_passages(texts, spans, progress=progress)
    return vecs, [pack(p) for p in parts]
