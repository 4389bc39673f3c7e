"""The writing stage of a build: new documents chunked, embedded and written to both stores.

Chunks go in batches of ``WRITE_BATCH``: their ids are journalled before Chroma's upsert
(so a killed run's leftovers are known and removed or adopted), and the manifest is saved
at most every ``CHECKPOINT_SECONDS``, so a kill loses little work. A chunk Chroma already
holds (a killed run's, or another client's on a shared server) is adopted, not embedded
again. ``index.build`` decides what to write; this module writes it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from index import sentvec
from index.chunk import Chunk, ChunkParams, TokenCounter, chunk_text
from index.embed import Embedder
from index.journal import append_journal
from index.lexical import ChunkRow, LexicalIndex
from index.load import Document
from index.manifest import DocEntry, Manifest, save_manifest
from index.store import VectorStore

CHECKPOINT_SECONDS = 5.0
WRITE_BATCH = 256  # chunks embedded and written together; a kill loses at most this much work

Progress = Callable[[int, int], None]  # (chunks done, chunks to do)


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{source}\x00{start}\x00{end}\x00".encode())
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@dataclass
class _Pending:
    doc: Document
    chunks: list[Chunk]
    ids: list[str] = field(default_factory=list)


Lookup = Callable[[list[str]], set[str]]


def lookup_in(vectors: VectorStore, existing: set[str] | None) -> Lookup:
    """Which of some chunk ids Chroma already holds (so they are adopted, not embedded).

    Embedded, that is known from the reconcile scan (or nothing is there to adopt);
    on a server, another client may have written them, so Chroma is asked.
    """
    if vectors.url is not None:
        return lambda ids: vectors.existing(ids)
    if existing is None:
        return lambda ids: set()
    return lambda ids: existing & set(ids)


def add_documents(
    docs: list[Document],
    store: Path,
    embedder: Embedder,
    params: ChunkParams,
    manifest: Manifest,
    vectors: VectorStore,
    lexical: LexicalIndex,
    lookup: Lookup,
    lex_existing: set[str] | None,
    progress: Progress | None,
) -> None:
    pending = []
    # A model that can count its tokens keeps every chunk inside its window; one that
    # cannot (a remote API) gets chunks sized by rough tokens only.
    tokens = embedder if isinstance(embedder, TokenCounter) else None
    for doc in docs:
        chunks = chunk_text(doc.text, params, tokens)
        pending.append(
            _Pending(doc, chunks, [chunk_id(doc.source, c.start, c.end, c.text) for c in chunks])
        )
    total = sum(len(p.chunks) for p in pending)
    done = 0
    if progress:
        progress(0, total)
    last_save = time.monotonic()
    batch: list[_Pending] = []
    size = 0
    for i, item in enumerate(pending):
        batch.append(item)
        size += len(item.chunks)
        if size < WRITE_BATCH and i + 1 < len(pending):
            continue
        done = _write_batch(batch, store, embedder, vectors, lexical, lookup, lex_existing,
                            progress, done, total)
        for p in batch:
            manifest.documents[p.doc.source] = DocEntry(p.doc.sha256, p.doc.size, p.ids)
        batch, size = [], 0
        if time.monotonic() - last_save > CHECKPOINT_SECONDS:
            save_manifest(store, manifest)
            last_save = time.monotonic()


def _write_batch(
    batch: list[_Pending],
    store: Path,
    embedder: Embedder,
    vectors: VectorStore,
    lexical: LexicalIndex,
    lookup: Lookup,
    lex_existing: set[str] | None,
    progress: Progress | None,
    done: int,
    total: int,
) -> int:
    rows = [
        ChunkRow(cid, p.doc.source, c.start, c.end, p.doc.sha256, c.text)
        for p in batch
        for c, cid in zip(p.chunks, p.ids, strict=True)
    ]
    present = lookup([r.chunk_id for r in rows])
    need_lex = {r.chunk_id for r in rows if lex_existing is None or r.chunk_id not in lex_existing}
    # A chunk adopted from Chroma also needs its sentence vectors: a server keeps them in
    # the chunk's metadata; embedded, only a killed run leaves such chunks, re-embedded.
    packed = vectors.sentence_blobs(sorted(present & need_lex)) if present & need_lex else {}
    todo = [r for r in rows if r.chunk_id not in present
            or (r.chunk_id in need_lex and r.chunk_id not in packed)]
    adopted = len(rows) - len(todo)
    if adopted and progress:
        done += adopted
        progress(done, total)
    if todo:
        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        vecs, blobs = sentvec.embed_chunks(embedder, [r.text for r in todo], tick)
        packed.update((r.chunk_id, b) for r, b in zip(todo, blobs, strict=True) if b)
        # A chunk Chroma holds was only embedded again for its sentence vectors: its id
        # is a hash of its text and place, so the stored vector is already the right one.
        # Embedded, it is not written again: a second write of one id in Chroma's log can
        # race with the first when a process opening the store replays the log in
        # parallel, and leave the record unreachable by search (chroma-core/chroma#7758;
        # seen here in 1 of 40 repairs of a killed build: the repaired chunk's passage
        # lost its dense score). On a server the write puts the sentence vectors in the
        # record's metadata, for the other clients to adopt.
        new = [i for i, r in enumerate(todo) if vectors.url or r.chunk_id not in present]
        if new:
            append_journal(store, [todo[i].chunk_id for i in new])
            vectors.upsert(
                [todo[i].chunk_id for i in new],
                vecs[new],
                [todo[i].text for i in new],
                [{"source": r.source, "start": r.start, "end": r.end,
                  "doc_sha256": r.doc_sha256,
                  **({"sentvecs": sentvec.to_text(packed[r.chunk_id])}
                     if vectors.url and r.chunk_id in packed else {})}
                 for r in (todo[i] for i in new)],
            )
    lexical.add([replace(r, sentvecs=packed.get(r.chunk_id)) for r in rows
                 if r.chunk_id in need_lex])
    return done
