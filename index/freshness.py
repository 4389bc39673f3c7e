"""Is the index up to date with the corpus? Answered without the writer lock.

Readers (``ask``, the chat) ask this before deciding to build: it hashes every
file, which is cheap next to embedding, and compares with the manifest.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import StoreError
from index.chunk import ChunkParams
from index.load import DEFAULT_MAX_BYTES, Document, read_document, walk
from index.manifest import is_dirty, load_manifest


def is_current(
    corpus: Path,
    store: Path,
    model_id: str,
    params: ChunkParams | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bool:
    """True when the index matches the corpus: no build needed, no lock taken.

    Hashes every file (cheap next to embedding) and compares with the manifest.
    """
    params = params or ChunkParams()
    try:
        manifest = load_manifest(store)
    except StoreError:
        return False
    if manifest is None or is_dirty(store):
        return False
    if manifest.model_id != model_id or manifest.chunking != params.to_json():
        return False
    candidates, _ = walk(corpus)
    seen = 0
    for cand in candidates:
        got = read_document(cand, max_bytes)
        if not isinstance(got, Document):
            continue
        entry = manifest.documents.get(got.source)
        if entry is None or entry.sha256 != got.sha256:
            return False
        seen += 1
    return seen == len(manifest.documents)
