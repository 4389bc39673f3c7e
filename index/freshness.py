"""Is the index up to date with the corpus? Answered without the writer lock.

Readers (``ask``, the chat) ask this before deciding to build: it hashes every
file, which is cheap next to embedding, and compares with the manifest. A reader
that may not write the index asks :func:`changes` which files it would miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from index.chunk import ChunkParams
from index.errors import StoreError
from index.load import DEFAULT_MAX_BYTES, Document, read_document, walk
from index.manifest import Manifest, is_dirty, load_manifest


@dataclass(frozen=True)
class Changes:
    """How the corpus differs from a manifest, by source path."""

    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed or self.added)

    def line(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in
                 (("changed", self.changed), ("removed", self.removed), ("added", self.added)) if v]
        return ", ".join(parts) or "no changes"


def changes(corpus: Path, manifest: Manifest, max_bytes: int = DEFAULT_MAX_BYTES) -> Changes:
    """Which files of ``corpus`` the manifest has with other content, lacks, or has in excess."""
    candidates, _ = walk(corpus)
    changed, added, seen = [], [], set()
    for cand in candidates:
        got = read_document(cand, max_bytes)
        if not isinstance(got, Document):
            continue
        seen.add(got.source)
        entry = manifest.documents.get(got.source)
        if entry is None:
            added.append(got.source)
        elif entry.sha256 != got.sha256:
            changed.append(got.source)
    removed = sorted(set(manifest.documents) - seen)
    return Changes(tuple(sorted(changed)), tuple(removed), tuple(sorted(added)))


def is_current(
    corpus: Path,
    store: Path,
    model_id: str,
    params: ChunkParams | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bool:
    """True when the index matches the corpus: no build needed, no lock taken."""
    params = params or ChunkParams()
    try:
        manifest = load_manifest(store)
    except StoreError:
        return False
    if manifest is None or is_dirty(store):
        return False
    if manifest.model_id != model_id or manifest.chunking != params.to_json():
        return False
    return not changes(corpus, manifest, max_bytes)
