"""index.store: the same search gets the same nearest chunks in every run.

Chroma keeps the newest vectors (up to 999) only in its log and every process inserts
them into its HNSW graph again, in parallel, so two runs search different graphs; the
store searches wide enough (``EF_SEARCH``) that they still agree, and widens collections
made before it did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import PROJECT_ROOT, subprocess_env

from index.store import EF_SEARCH, VectorStore

NAME = "vectors-test"
DIM = 384
_SEARCH = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from index.store import VectorStore
store = VectorStore(Path(sys.argv[2]), sys.argv[3])
queries = np.random.default_rng(9).standard_normal((60, 384)).astype(np.float32)
print(json.dumps([[h.chunk_id for h in store.query(q, 40)] for q in queries]))
"""


def _fill(store: Path, n: int) -> None:
    """``n`` random vectors (hard for HNSW: no clusters to follow), all in Chroma's log."""
    vs = VectorStore(store, NAME)
    vectors = np.random.default_rng(5).standard_normal((n, DIM)).astype(np.float32)
    meta = [{"source": "a.txt", "start": i, "end": i + 1} for i in range(n)]
    vs.upsert([f"c{i}" for i in range(n)], vectors, ["text"] * n, meta)


def _search_in_a_new_process(store: Path) -> list[list[str]]:
    out = subprocess.run([sys.executable, "-c", _SEARCH, str(PROJECT_ROOT), str(store), NAME],
                         capture_output=True, text=True, env=subprocess_env(), check=True)
    return json.loads(out.stdout)


def test_two_runs_find_the_same_nearest_chunks(tmp_path: Path) -> None:
    _fill(tmp_path, 900)
    first, second = _search_in_a_new_process(tmp_path), _search_in_a_new_process(tmp_path)
    assert len(first) == 60 and all(len(ids) == 40 for ids in first)
    assert first == second


def test_a_new_collection_searches_wide(tmp_path: Path) -> None:
    vs = VectorStore(tmp_path, NAME)
    assert vs.collection.configuration["hnsw"]["ef_search"] == EF_SEARCH


def test_a_collection_made_with_chromas_default_is_widened_and_keeps_its_vectors(
        tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(  # as the store opens it: one client per folder
        str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False, allow_reset=False))
    col = client.create_collection(NAME, embedding_function=None,
                                   configuration={"hnsw": {"space": "cosine"}})
    col.add(ids=["x", "y"], embeddings=np.eye(2, DIM, dtype=np.float32),
            documents=["x", "y"], metadatas=[{"source": "a.txt", "start": 0, "end": 1}] * 2)
    assert col.configuration["hnsw"]["ef_search"] < EF_SEARCH
    vs = VectorStore(tmp_path, NAME)
    assert vs.collection.configuration["hnsw"]["ef_search"] == EF_SEARCH
    assert vs.count() == 2
    assert [h.chunk_id for h in vs.query(np.eye(1, DIM, 1, dtype=np.float32)[0], 1)] == ["y"]
