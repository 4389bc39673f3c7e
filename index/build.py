"""Build or refresh the index of a corpus folder: incremental, idempotent, repairable.

One writer at a time (``WriterLock``). A run compares each file's sha256 with the
manifest, removes the chunks of edited and deleted files from both stores, then
chunks, embeds and writes only what is new. Chunk ids are derived from
``(source, start, end, text)``, so re-running never duplicates a vector, and a
chunk already present in Chroma (left by a killed run, or written by another
client of the same server) is adopted instead of embedded again.

With a Chroma server the collection may be shared by several clients, each with
its own local store (manifest, lexical index). A build then deletes only ids it
owns: those in its own manifest, and those it wrote itself (recorded in the
``written`` journal before each upsert, so a killed run's leftovers are still
known). Vectors other clients wrote are never touched, whatever corpus they index.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from index.chunk import ChunkParams
from index.embed import Embedder
from index.errors import CorpusError, StoreError
from index.journal import append_journal, clear_journal, read_journal
from index.lexical import LexicalIndex
from index.load import DEFAULT_MAX_BYTES, Document, Skipped, read_document, walk
from index.manifest import (
    Manifest,
    WriterLock,
    clear_dirty,
    is_dirty,
    load_manifest,
    mark_dirty,
    remove_stale_temps,
    save_manifest,
    write_error,
)
from index.readonly import read_only_error, writable
from index.store import VectorStore
from index.summary import IndexSummary
from index.write import Progress, add_documents, lookup_in

log = logging.getLogger(__name__)
LEXICAL_FILE = "lexical.sqlite"


def collection_name(model_id: str, params: ChunkParams, label: str = "corpus") -> str:
    """A Chroma collection name that changes whenever vectors would change."""
    key = hashlib.sha256(f"{model_id}|{sorted(params.to_json().items())}".encode()).hexdigest()
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", label).strip("-_")[:40] or "corpus"
    return f"{slug}-{key[:10]}"


def _open_stores(
    store: Path, collection: str, chroma_url: str | None, rebuild: bool
) -> tuple[VectorStore, LexicalIndex]:
    if rebuild:
        (store / LEXICAL_FILE).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            (store / (LEXICAL_FILE + suffix)).unlink(missing_ok=True)
        if not chroma_url:
            try:
                vectors = VectorStore(store, collection, None)
                vectors.wipe()
            except StoreError:  # too damaged to open: start from nothing
                shutil.rmtree(store / "chroma", ignore_errors=True)
                vectors = VectorStore(store, collection, None)
            return vectors, LexicalIndex(store / LEXICAL_FILE)
    vectors = VectorStore(store, collection, chroma_url)
    lexical = LexicalIndex(store / LEXICAL_FILE)
    return vectors, lexical


def _settings_tag(model_id: str, params: ChunkParams) -> dict[str, str]:
    chunking = ",".join(f"{k}={v}" for k, v in sorted(params.to_json().items()))
    return {"assistant_model": model_id, "assistant_chunking": chunking}


def why_skipped(skipped: Sequence[Skipped], limit: int = 3) -> str:
    """The files skipped and why, for the error that none was readable ("" if none)."""
    if not skipped:
        return ""
    shown = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:limit])
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    files = "1 file" if len(skipped) == 1 else f"{len(skipped)} files"
    return f" ({files} skipped: {shown}{more})"


def build_index(
    corpus: Path,
    store: Path,
    embedder: Embedder,
    *,
    chroma_url: str | None = None,
    collection: str | None = None,
    params: ChunkParams | None = None,
    rebuild: bool = False,
    wait: float = 0.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
) -> IndexSummary:
    """Bring the index in ``store`` up to date with ``corpus``; see the module doc."""
    t0 = time.perf_counter()
    params = params or ChunkParams()
    candidates, skipped = walk(corpus)
    root = corpus.resolve()
    collection = collection or collection_name(embedder.model_id, params, root.name)
    if not writable(store):
        raise read_only_error(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"Cannot create the index folder '{store}' ({exc.strerror}).") from exc

    with WriterLock(store).acquire(wait):
        remove_stale_temps(store)
        documents: list[Document] = []
        for cand in candidates:
            got = read_document(cand, max_bytes)
            (documents if isinstance(got, Document) else skipped).append(got)  # type: ignore[arg-type]
        if not documents:
            raise CorpusError(
                f"No readable .txt or .md files in '{root}'{why_skipped(skipped)}.",
                "Point --corpus at a folder of text or Markdown articles.",
            )
        old = _previous_manifest(store, rebuild)
        if rebuild:
            mark_dirty(store)  # before the stores are emptied: the old manifest no longer holds
        vectors, lexical = _open_stores(store, collection, chroma_url, rebuild)
        try:
            if chroma_url:
                vectors.claim(_settings_tag(embedder.model_id, params))
            return _refresh(
                root, store, embedder, params, collection, old, rebuild, vectors, lexical,
                documents, skipped, progress, t0,
            )
        except OSError as exc:  # writing the store's own small files (the journal)
            raise write_error(store, exc) from exc
        finally:
            lexical.close()


def _previous_manifest(store: Path, rebuild: bool) -> Manifest | None:
    """The manifest a run starts from; for ``--rebuild`` only to know what it owned
    (a manifest too damaged to read is then no obstacle)."""
    try:
        return load_manifest(store)
    except StoreError:
        if rebuild:
            return None
        raise


def _refresh(
    root: Path,
    store: Path,
    embedder: Embedder,
    params: ChunkParams,
    collection: str,
    old: Manifest | None,
    rebuild: bool,
    vectors: VectorStore,
    lexical: LexicalIndex,
    documents: list[Document],
    skipped: list[Skipped],
    progress: Progress | None,
    t0: float,
) -> IndexSummary:
    chunking = params.to_json()
    known_before = set(old.documents) if old and not rebuild else set()
    manifest = None if rebuild else old
    shared = vectors.url is not None
    journal = read_journal(store)
    if manifest is None or not manifest.compatible(embedder.model_id, chunking, collection):
        if manifest is not None:
            log.info("model or chunking changed: rebuilding the index")
            mark_dirty(store)  # the stores are about to be emptied: the manifest no longer holds
            lexical.clear()
            if not shared:
                vectors.drop()
        if old is not None and old.collection != collection:
            vectors.retire(old.collection, sorted(old.chunk_ids() | journal))
        if old is not None and shared and old.collection == collection:
            # --rebuild on a server: what it owned and the new build does not list goes at
            # the end (the reconcile below); journalled so a killed rebuild still knows.
            append_journal(store, sorted(old.chunk_ids() - journal))
            journal |= old.chunk_ids()
        else:
            clear_journal(store)  # ids written for another collection or settings
            journal = set()
        manifest = Manifest(embedder.model_id, chunking, collection)

    # Anything the manifest does not vouch for is checked against the stores:
    # after a killed run, a lost manifest, or another client of the same server.
    # Embedded, the collection is ours alone: every id in it is ours. On a server
    # it may be shared, so only the ids this store owns are looked up (and may go).
    existing: set[str] | None = None
    lex_existing: set[str] | None = None
    if _needs_reconcile(store, manifest, vectors, lexical, journal):
        if shared:
            existing = vectors.existing(sorted(manifest.chunk_ids() | journal))
        else:
            existing = vectors.ids()
        lex_existing = lexical.ids()
        for src, entry in list(manifest.documents.items()):
            if not all(c in existing and c in lex_existing for c in entry.chunks):
                del manifest.documents[src]  # incomplete: treat as new, adopt what is there

    current = {d.source: d for d in documents}
    removed = [s for s in manifest.documents if s not in current]
    changed = [
        s for s, d in current.items()
        if s in manifest.documents and manifest.documents[s].sha256 != d.sha256
    ]
    added = [s for s in current if s not in manifest.documents]
    unchanged = len(current) - len(changed) - len(added)

    if removed or changed or added or existing is not None:
        mark_dirty(store)
        stale = [c for s in removed + changed for c in manifest.documents[s].chunks]
        if stale:
            vectors.delete(stale)
            lexical.delete(stale)
        for s in removed + changed:
            del manifest.documents[s]
        save_manifest(store, manifest)
        add_documents(
            [current[s] for s in sorted(changed + added)],
            store, embedder, params, manifest, vectors, lexical,
            lookup_in(vectors, existing), lex_existing, progress,
        )
        if existing is not None:
            expected = manifest.chunk_ids()
            vectors.delete(sorted(existing - expected))
            lexical.delete(sorted((lex_existing or set()) - expected))
        save_manifest(store, manifest)
        clear_dirty(store)
        clear_journal(store)

    return IndexSummary(
        added=len([s for s in added if s not in known_before]),
        updated=len(changed) + len([s for s in added if s in known_before]),
        removed=len(removed),
        unchanged=unchanged,
        documents=len(manifest.documents),
        chunks=vectors.count(),
        seconds=time.perf_counter() - t0,
        skipped=tuple((s.source, s.reason) for s in skipped),
    )


def _needs_reconcile(
    store: Path, manifest: Manifest, vectors: VectorStore, lexical: LexicalIndex,
    journal: set[str],
) -> bool:
    expected = manifest.chunk_count()
    if is_dirty(store) or journal or lexical.count() != expected:
        return True
    n = vectors.count()
    if vectors.url is None or n <= expected:
        return n != expected
    # A shared collection holds other clients' vectors too: are all of ours there?
    return len(vectors.existing(sorted(manifest.chunk_ids()))) != expected
