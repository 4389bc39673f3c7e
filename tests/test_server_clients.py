"""Two clients of one real ``chroma run``, each with its own ``--store`` as two machines
would have: one adopts the other's vectors, neither deletes the other's chunks, and a
rebuild or new settings leave none of a client's old vectors behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chroma_server import (
    QUESTION,
    ChromaServer,
    collection_ids,
    copy_corpus,
    manifest_ids,
    sentence_vectors,
    server_client,
)
from conftest import CountingEmbedder

from assistant.config import Config
from assistant.service import Assistant
from index.build import build_index
from index.manifest import load_manifest

pytestmark = [pytest.mark.server, pytest.mark.slow]


# -- two clients of one server --------------------------------------------------------------


def test_second_client_adopts_vectors_then_sees_new_documents(
        server: ChromaServer, tmp_path: Path, embedder: Any) -> None:
    corpus_a = copy_corpus(tmp_path / "machine-a" / "adopt-seeds")
    corpus_b = copy_corpus(tmp_path / "machine-b" / "adopt-seeds")  # a copy, same name
    store_a, store_b = tmp_path / "machine-a" / "store", tmp_path / "machine-b" / "store"
    emb_a, emb_b = CountingEmbedder(embedder), CountingEmbedder(embedder)

    a = build_index(corpus_a, store_a, emb_a, chroma_url=server.url)
    assert a.added == 3 and len(emb_a.texts) == 32
    b = build_index(corpus_b, store_b, emb_b, chroma_url=server.url)
    assert b.added == 3 and b.chunks == 32
    assert emb_b.texts == []  # adopted A's vectors: nothing embedded
    assert manifest_ids(store_a) == manifest_ids(store_b)
    # ... and their sentence vectors, kept in the chunks' metadata on the server.
    assert len(sentence_vectors(store_a)) == 32
    assert sentence_vectors(store_b) == sentence_vectors(store_a)
    assert load_manifest(store_b).collection == load_manifest(store_a).collection  # type: ignore[union-attr]

    # B's lexical index was filled from the chunk texts: BM25 answers on B.
    svc_b = Assistant.open(Config.resolve(corpus=corpus_b, store=store_b,
                                          chroma_url=server.url), embedder=embedder)
    assert "Huawei" in svc_b.ask(QUESTION).text

    new = ("Aurora Lumen Labs opened a quantum sensor foundry in Tromsø in 2024. "
           "The foundry makes diamond magnetometers for submarine cable inspection, "
           "and its director is Ingrid Halvorsen.\n")
    for root in (corpus_a, corpus_b):  # a shared folder, or a synced copy
        (root / "foundry.txt").write_text(new, encoding="utf-8")
    emb_a.reset()
    a2 = build_index(corpus_a, store_a, emb_a, chroma_url=server.url)
    assert a2.added == 1 and a2.unchanged == 3 and len(emb_a.texts) == 1

    emb_b.reset()
    svc_b.embedder = emb_b
    b2 = svc_b.refresh(only_if_stale=True)
    assert b2 is not None and b2.added == 1 and b2.chunks == 33
    assert emb_b.texts == []  # the new document's vector came from A
    assert sentence_vectors(store_b) == sentence_vectors(store_a)
    answer = svc_b.ask("Where did Aurora Lumen Labs open its quantum sensor foundry?")
    assert not answer.abstained and "Tromsø" in answer.text
    assert {c.source for c in answer.citations} == {"foundry.txt"}
    svc_b.close()
    ids = collection_ids(server.url, load_manifest(store_a).collection)  # type: ignore[union-attr]
    assert len(ids) == len(set(ids)) == 33


def _other_corpus(root: Path) -> Path:
    root.mkdir(parents=True)
    topics = ["glaciers", "lighthouses", "beekeeping", "tidal power"]
    for i, topic in enumerate(topics):
        body = " ".join(
            f"Paragraph {j} about {topic}: observers in station {i}-{j} recorded how {topic} "
            f"changed over season {j}, and the notes were archived in ledger {i * 10 + j}."
            for j in range(12)
        )
        (root / f"{topic.replace(' ', '-')}.txt").write_text(body + "\n", encoding="utf-8")
    # The same file name as one of the seeds, different text.
    (root / "001_6d44a654a7eeca9a.txt").write_text(
        "A different article under a seed's file name, about salt marsh restoration.\n",
        encoding="utf-8")
    return root


def test_clients_with_different_corpora_never_delete_each_others_chunks(
        server: ChromaServer, tmp_path: Path, embedder: Any) -> None:
    corpus_a = copy_corpus(tmp_path / "a" / "docs")
    corpus_b = _other_corpus(tmp_path / "b" / "docs")
    store_a, store_b = tmp_path / "a" / "store", tmp_path / "b" / "store"
    shared = "team-shared"

    build_index(corpus_a, store_a, embedder, chroma_url=server.url, collection=shared)
    build_index(corpus_b, store_b, embedder, chroma_url=server.url, collection=shared)
    ids_a, ids_b = manifest_ids(store_a), manifest_ids(store_b)
    assert ids_a and ids_b and not ids_a & ids_b
    assert set(collection_ids(server.url, shared)) == ids_a | ids_b

    # A refreshes (a full reconcile, as after a killed run): B's chunks stay.
    (store_a / "dirty").write_text("1")
    again = build_index(corpus_a, store_a, embedder, chroma_url=server.url, collection=shared)
    assert again.unchanged == 3 and set(collection_ids(server.url, shared)) == ids_a | ids_b

    # B removes a document and rebuilds from scratch: only B's own chunks change.
    removed = corpus_b / "glaciers.txt"
    gone = {c for c in ids_b if c in load_manifest(store_b).documents["glaciers.txt"].chunks}  # type: ignore[union-attr]
    removed.unlink()
    build_index(corpus_b, store_b, embedder, chroma_url=server.url, collection=shared)
    assert set(collection_ids(server.url, shared)) == ids_a | (ids_b - gone)
    build_index(corpus_b, store_b, embedder, chroma_url=server.url, collection=shared,
                rebuild=True)
    assert set(collection_ids(server.url, shared)) == ids_a | (ids_b - gone)

    # A still answers from its own documents.
    svc = Assistant.open(Config.resolve(corpus=corpus_a, store=store_a, chroma_url=server.url,
                                        collection=shared), embedder=embedder)
    answer = svc.ask(QUESTION)
    assert "Huawei" in answer.text
    assert {p.source for p in answer.passages} <= set(load_manifest(store_a).documents)  # type: ignore[union-attr]
    foreign = svc.ask("What did observers in station 1 record about lighthouses?")
    assert {p.source for p in foreign.passages} <= set(load_manifest(store_a).documents)  # type: ignore[union-attr]
    svc.close()


def test_rebuild_and_new_settings_leave_none_of_this_clients_vectors_behind(
        server: ChromaServer, tmp_path: Path, embedder: Any) -> None:
    from index.chunk import ChunkParams

    mine = copy_corpus(tmp_path / "a" / "leftovers")  # one folder name: one default collection
    theirs = _other_corpus(tmp_path / "b" / "leftovers")
    store_a, store_b = tmp_path / "a" / "store", tmp_path / "b" / "store"
    build_index(mine, store_a, embedder, chroma_url=server.url)
    build_index(theirs, store_b, embedder, chroma_url=server.url)
    old = load_manifest(store_a).collection  # type: ignore[union-attr]
    assert load_manifest(store_b).collection == old  # type: ignore[union-attr]
    ids_b = manifest_ids(store_b)

    # A deletes a document, then rebuilds from scratch: that document's vectors go too.
    (mine / "000_00f3cd67555e5323.txt").unlink()
    build_index(mine, store_a, embedder, chroma_url=server.url, rebuild=True)
    assert set(collection_ids(server.url, old)) == manifest_ids(store_a) | ids_b
    assert not (store_a / "written").exists()

    # New chunking settings: a new collection; of the old one only B's vectors stay.
    params = ChunkParams(target_tokens=90)
    build_index(mine, store_a, embedder, chroma_url=server.url, params=params)
    new = load_manifest(store_a).collection  # type: ignore[union-attr]
    assert new != old
    assert set(collection_ids(server.url, new)) == manifest_ids(store_a)
    assert set(collection_ids(server.url, old)) == ids_b

    # B follows: the old collection, empty now, goes.
    build_index(theirs, store_b, embedder, chroma_url=server.url, params=params)
    names = {c.name for c in server_client(server.url).list_collections()}
    assert old not in names and new in names
    assert set(collection_ids(server.url, new)) == manifest_ids(store_a) | manifest_ids(store_b)


def test_default_collection_names_differ_by_corpus_folder(server: ChromaServer,
                                                          tmp_path: Path, embedder: Any) -> None:
    a = copy_corpus(tmp_path / "news")
    b = _other_corpus(tmp_path / "nature")
    build_index(a, tmp_path / "sa", embedder, chroma_url=server.url)
    build_index(b, tmp_path / "sb", embedder, chroma_url=server.url)
    name_a = load_manifest(tmp_path / "sa").collection  # type: ignore[union-attr]
    name_b = load_manifest(tmp_path / "sb").collection  # type: ignore[union-attr]
    assert name_a != name_b and name_a.startswith("news-") and name_b.startswith("nature-")
    assert set(collection_ids(server.url, name_a)) == manifest_ids(tmp_path / "sa")
