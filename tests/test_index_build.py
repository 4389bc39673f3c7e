"""index.build.build_index with the real model, a real Chroma PersistentClient and FTS5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rare_text import list_article, rare_names

from index.build import LEXICAL_FILE, build_index
from index.chunk import ChunkParams, chunk_text
from index.lexical import LexicalIndex
from index.manifest import MANIFEST, load_manifest
from index.write import chunk_id

pytestmark = pytest.mark.slow

SETTINGS = {"anonymized_telemetry": False, "allow_reset": False}  # as index.store opens it


def chroma_client(store: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(store / "chroma"), settings=Settings(**SETTINGS))


def expected_chunks(corpus: Path, file_text, params: ChunkParams | None = None) -> dict[str, list]:
    return {
        p.name: chunk_text(file_text(p), params)
        for p in sorted(corpus.iterdir())
        if p.suffix in (".txt", ".md")
    }


def assert_consistent(store: Path, corpus: Path, file_text,
                      params: ChunkParams | None = None) -> set[str]:
    """Manifest, Chroma and the lexical index hold exactly the corpus's current chunks."""
    manifest = load_manifest(store)
    assert manifest is not None
    manifest_ids = [c for d in manifest.documents.values() for c in d.chunks]
    assert len(manifest_ids) == len(set(manifest_ids)), "duplicate chunk ids in the manifest"

    want = expected_chunks(corpus, file_text, params)
    assert set(manifest.documents) == set(want)
    for source, chunks in want.items():
        assert manifest.documents[source].chunks == [
            chunk_id(source, c.start, c.end, c.text) for c in chunks
        ]

    col = chroma_client(store).get_collection(manifest.collection)
    got = col.get(include=["documents", "metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])), "duplicate ids in Chroma"
    assert col.count() == len(got["ids"]) == manifest.chunk_count()
    assert set(got["ids"]) == set(manifest_ids)
    for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
        source, start, end = meta["source"], meta["start"], meta["end"]
        text = file_text(corpus / source)
        assert text[start:end] == doc, f"Chroma passage {cid} is not the file's [start:end)"
        assert chunk_id(source, start, end, doc) == cid
        assert cid in manifest.documents[source].chunks, "a chunk filed under another document"
        assert meta["doc_sha256"] == manifest.documents[source].sha256

    lex = LexicalIndex(store / LEXICAL_FILE, readonly=True)
    try:
        assert lex.count() == manifest.chunk_count()
        assert lex.ids() == set(manifest_ids)
        rows = lex.get(manifest_ids)
        assert set(rows) == set(manifest_ids)
        for row in rows.values():
            assert file_text(corpus / row.source)[row.start : row.end] == row.text
    finally:
        lex.close()
    return set(manifest_ids)


def test_seeds_index_is_consistent(seeds_index: Path, seed_files, file_text) -> None:
    assert_consistent(seeds_index, seed_files[0].parent, file_text)


def test_first_run_adds_and_second_run_does_nothing(
    corpus: Path, store: Path, counting_embedder, file_text
) -> None:
    want = expected_chunks(corpus, file_text)
    total = sum(len(c) for c in want.values())

    first = build_index(corpus, store, counting_embedder)
    assert (first.added, first.updated, first.removed, first.unchanged) == (3, 0, 0, 0)
    assert first.documents == 3
    assert first.chunks == total
    assert sorted(counting_embedder.texts) == sorted(c.text for cs in want.values() for c in cs)
    assert first.skipped == ()
    ids = assert_consistent(store, corpus, file_text)

    counting_embedder.reset()
    second = build_index(corpus, store, counting_embedder)
    assert (second.added, second.updated, second.removed) == (0, 0, 0)
    assert second.unchanged == 3
    assert second.chunks == total
    assert counting_embedder.calls == [], "an unchanged corpus must not be embedded again"
    assert assert_consistent(store, corpus, file_text) == ids


def test_links_inside_the_corpus_are_indexed_once_under_the_real_name(
    corpus: Path, store: Path, counting_embedder, file_text
) -> None:
    seed = sorted(corpus.iterdir())[0].name
    (corpus / "sub").mkdir()
    (corpus / "sub" / "notes.md").write_text("# Notes\n\nThe archive keeps the minutes.\n")
    (corpus / "a-link.txt").symlink_to(seed)
    (corpus / "a-folder-link").symlink_to("sub", target_is_directory=True)

    summary = build_index(corpus, store, counting_embedder)
    manifest = load_manifest(store)
    assert manifest is not None
    names = {p.name for p in corpus.glob("*.txt") if not p.is_symlink()} | {"sub/notes.md"}
    assert set(manifest.documents) == names and summary.documents == 4
    embedded = counting_embedder.texts
    assert len(embedded) == len(set(embedded)) == summary.chunks == manifest.chunk_count()
    assert ("a-link.txt", f"link to '{seed}' in the corpus, which is read under its own name"
            ) in summary.skipped

    # The names do not depend on the links: removing them changes nothing.
    (corpus / "a-link.txt").unlink()
    (corpus / "a-folder-link").unlink()
    counting_embedder.reset()
    again = build_index(corpus, store, counting_embedder)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 4)
    assert counting_embedder.texts == []


def test_every_stored_chunk_fits_the_model_window(
    corpus: Path, store: Path, counting_embedder, file_text
) -> None:
    (corpus / "settlers.txt").write_text(list_article(rare_names(120)), encoding="utf-8")
    summary = build_index(corpus, store, counting_embedder)
    window = ChunkParams().window_tokens
    stored = chroma_client(store).get_collection(load_manifest(store).collection).get()
    counts = counting_embedder.count_tokens(stored["documents"])
    assert len(counts) == summary.chunks and max(counts) <= window
    # What was embedded is what is stored: nothing of it fell outside the window.
    assert max(counting_embedder.count_tokens(counting_embedder.texts)) <= window
    text = file_text(corpus / "settlers.txt")
    want = chunk_text(text, ChunkParams(), counting_embedder)
    assert len(want) > len(chunk_text(text)), "the window split a passage"
    assert load_manifest(store).documents["settlers.txt"].chunks == [
        chunk_id("settlers.txt", c.start, c.end, c.text) for c in want]


def test_editing_one_file_reembeds_only_that_file(
    corpus: Path, store: Path, counting_embedder, file_text
) -> None:
    build_index(corpus, store, counting_embedder)
    before = load_manifest(store)
    assert before is not None
    edited = sorted(corpus.iterdir())[1]
    with open(edited, "a", encoding="utf-8", newline="") as fh:
        fh.write("\n\nA new closing paragraph was added by the editor. It says something new.\n")
    new_chunks = chunk_text(file_text(edited))

    counting_embedder.reset()
    summary = build_index(corpus, store, counting_embedder)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (0, 1, 0, 2)
    assert len(counting_embedder.texts) == len(new_chunks)
    assert sorted(counting_embedder.texts) == sorted(c.text for c in new_chunks)

    after = load_manifest(store)
    assert after is not None
    for source in before.documents:
        if source != edited.name:
            assert after.documents[source] == before.documents[source]
    assert after.documents[edited.name].sha256 != before.documents[edited.name].sha256
    assert_consistent(store, corpus, file_text)


def test_deleting_a_file_removes_its_chunks_everywhere(
    corpus: Path, store: Path, counting_embedder, file_text
) -> None:
    build_index(corpus, store, counting_embedder)
    victim = sorted(corpus.iterdir())[0]
    manifest = load_manifest(store)
    assert manifest is not None
    gone = manifest.documents[victim.name].chunks
    assert gone
    query = "Whitehall intelligence report alignment"
    lex = LexicalIndex(store / LEXICAL_FILE, readonly=True)
    try:
        assert {cid for cid, _ in lex.search(query, 50)} & set(gone), "found before deletion"
    finally:
        lex.close()
    victim.unlink()

    counting_embedder.reset()
    summary = build_index(corpus, store, counting_embedder)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (0, 0, 1, 2)
    assert summary.documents == 2
    assert counting_embedder.calls == []

    col = chroma_client(store).get_collection(manifest.collection)
    assert col.get(ids=gone)["ids"] == []
    assert not {m["source"] for m in col.get(include=["metadatas"])["metadatas"]} & {victim.name}
    lex = LexicalIndex(store / LEXICAL_FILE, readonly=True)
    try:
        assert not lex.ids() & set(gone)
        # A phrase only the deleted article used is no longer found by BM25.
        hits = {cid for cid, _ in lex.search(query, 50)}
        assert not hits & set(gone)
    finally:
        lex.close()
    assert summary.chunks == col.count()
    assert_consistent(store, corpus, file_text)


def test_adding_a_file_embeds_only_the_new_file(
    corpus: Path, store: Path, counting_embedder, file_text, seed_files
) -> None:
    build_index(corpus, store, counting_embedder)
    (corpus / "notes").mkdir()
    new = corpus / "notes" / "extra.md"
    new.write_text("# Extra\n\nA short new note about rivers. It mentions the Danube twice.\n")
    (corpus / "notes" / "scan.pdf").write_bytes(b"%PDF-1.4\n")

    counting_embedder.reset()
    summary = build_index(corpus, store, counting_embedder)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (1, 0, 0, 3)
    assert counting_embedder.texts == [c.text for c in chunk_text(file_text(new))]
    assert [s for s, _ in summary.skipped] == ["notes/scan.pdf"]
    manifest = load_manifest(store)
    assert manifest is not None and "notes/extra.md" in manifest.documents
    col = chroma_client(store).get_collection(manifest.collection)
    assert col.count() == manifest.chunk_count() == summary.chunks


def test_changing_chunk_params_rebuilds_by_itself(
    corpus: Path, store: Path, counting_embedder, file_text
) -> None:
    build_index(corpus, store, counting_embedder)
    small = ChunkParams(min_tokens=20, target_tokens=40, max_tokens=80)
    want = expected_chunks(corpus, file_text, small)

    counting_embedder.reset()
    summary = build_index(corpus, store, counting_embedder, params=small)
    assert summary.added + summary.updated == 3
    assert summary.removed == 0
    assert sorted(counting_embedder.texts) == sorted(c.text for cs in want.values() for c in cs)
    manifest = load_manifest(store)
    assert manifest is not None and manifest.chunking == small.to_json()
    assert summary.chunks == manifest.chunk_count() == sum(len(c) for c in want.values())
    assert_consistent(store, corpus, file_text, small)

    counting_embedder.reset()
    again = build_index(corpus, store, counting_embedder, params=small)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 3)
    assert counting_embedder.calls == []


def test_changing_chunk_params_leaves_no_stale_vectors(
    corpus: Path, store: Path, embedder, file_text
) -> None:
    """After a rebuild for new settings the store holds only the current vectors."""
    build_index(corpus, store, embedder)
    small = ChunkParams(target_tokens=50, min_tokens=25)
    build_index(corpus, store, embedder, params=small)
    manifest = load_manifest(store)
    assert manifest is not None
    client = chroma_client(store)
    counts = {c.name: client.get_collection(c.name).count() for c in client.list_collections()}
    assert sum(counts.values()) == manifest.chunk_count(), (
        f"vectors of the old settings are left behind: {counts}, "
        f"current collection {manifest.collection!r}"
    )


def test_missing_vectors_are_repaired_and_strays_removed(
    corpus: Path, store: Path, counting_embedder, file_text
) -> None:
    """Like after a killed run: the stores disagree with the manifest; the next run fixes it."""
    build_index(corpus, store, counting_embedder)
    manifest = load_manifest(store)
    assert manifest is not None
    source = sorted(manifest.documents)[2]
    lost = manifest.documents[source].chunks
    col = chroma_client(store).get_collection(manifest.collection)
    col.delete(ids=lost)
    col.add(ids=["stray"], embeddings=[[0.1] * 384], documents=["stray"],
            metadatas=[{"source": "nowhere.txt", "start": 0, "end": 5, "doc_sha256": "x"}])

    counting_embedder.reset()
    build_index(corpus, store, counting_embedder)
    assert len(counting_embedder.texts) == len(lost), "only the lost chunks are embedded again"
    assert col.get(ids=["stray"])["ids"] == []
    assert_consistent(store, corpus, file_text)


def test_rebuild_recovers_from_a_corrupt_manifest(
    corpus: Path, store: Path, counting_embedder, file_text, chroma_on_disk
) -> None:
    """``build_index(rebuild=True)`` in a process that already used the store (TUI, service)."""
    first = build_index(corpus, store, counting_embedder)
    ids = assert_consistent(store, corpus, file_text)
    (store / MANIFEST).write_text("{ this is not json")

    counting_embedder.reset()
    summary = build_index(corpus, store, counting_embedder, rebuild=True)
    assert (summary.added, summary.removed) == (3, 0)
    assert summary.chunks == first.chunks
    manifest = load_manifest(store)
    assert manifest is not None and manifest.chunk_ids() == ids, "chunk ids are deterministic"

    # What another process (the query side, the next CLI run) finds on disk:
    on_disk = chroma_on_disk(store)
    assert {name: len(c["ids"]) for name, c in on_disk.items()} == {
        manifest.collection: first.chunks
    }, "the rebuilt vectors are not on disk"
    assert set(on_disk[manifest.collection]["ids"]) == ids
    assert len(counting_embedder.texts) == first.chunks, "a rebuild embeds everything anew"
    assert_consistent(store, corpus, file_text)
