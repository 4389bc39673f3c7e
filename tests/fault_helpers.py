"""Shared pieces of the fault tests: a generated corpus, what is on disk, the answers a
store gives, stand-ins. The killable writer is in ``fault_writer``.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SEEDS, read_chroma, read_file_text, subprocess_env

from index.chunk import chunk_text, sentences
from index.load import Document, read_document, walk
from index.write import chunk_id

# Questions about the seed articles; a generated corpus reuses their sentences.
QUESTIONS = (
    "What does China provide Russia according to the UK intelligence report?",
    "Which systems could neutralise the technological edge of NATO forces?",
    "What does Russia's energy and military hardware reduce for China?",
    "Where did Vladimir Putin and Xi Jinping meet?",
)


def make_corpus(root: Path, files: int = 60, paragraphs: int = 1, seed: int = 6) -> Path:
    """``files`` articles of seed sentences, recombined and numbered so no two chunks match."""
    pool: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = read_file_text(path)
        pool += [text[s:e] for s, e, _ in sentences(text)]
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        paras = []
        for j in range(paragraphs):
            picked = rng.sample(pool, 4)
            paras.append(" ".join(
                f"{s.rstrip('.')} (note {i}.{j}.{k})." for k, s in enumerate(picked)
            ))
        body = f"Report {i}\n\n" + "\n\n".join(paras) + "\n"
        (root / f"report_{i:03d}.txt").write_text(body, encoding="utf-8")
    return root


_GENERATED: dict[str, tuple[Path, Path]] = {}


def generated_index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> tuple[Path, Path]:
    """A 60-file corpus and a clean index of it, built once per session: work on copies.

    This process wrote the index, so its own view of it is current; a copy at another
    path is one it has never opened (see ``read_store``).
    """
    if "corpus" not in _GENERATED:
        from index.build import build_index

        root = tmp_path_factory.mktemp("generated")
        corpus = make_corpus(root / "corpus")
        build_index(corpus, root / "store", embedder)
        _GENERATED["corpus"] = (corpus, root / "store")
    return _GENERATED["corpus"]


def expected_ids(corpus: Path) -> dict[str, list[str]]:
    """Chunk ids per document that a complete index of ``corpus`` holds, in order."""
    out: dict[str, list[str]] = {}
    for cand in walk(corpus)[0]:
        doc = read_document(cand)
        if isinstance(doc, Document):
            out[doc.source] = [chunk_id(doc.source, c.start, c.end, c.text)
                               for c in chunk_text(doc.text)]
    return out


# -- what is on disk ----------------------------------------------------------------


def read_store(store: Path) -> dict[str, Any]:
    """Manifest, every Chroma collection and the lexical rows of ``store``.

    A Chroma client caches its view per process: call this only in a process that
    has not opened ``store`` before, or that wrote it itself (else see ``snapshot``).
    """
    import sqlite3

    chroma = read_chroma(store / "chroma")
    db = sqlite3.connect(f"file:{store / 'lexical.sqlite'}?mode=ro", uri=True)
    try:
        lexical = db.execute(
            "SELECT c.chunk_id, c.source, c.start, c.end, c.doc_sha256, f.text "
            "FROM chunks c JOIN fts f ON f.rowid = c.rowid").fetchall()
        counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("chunks", "fts", "sentvecs")]
        sentvecs = dict(db.execute(
            "SELECT c.chunk_id, length(v.vecs) FROM chunks c JOIN sentvecs v ON v.rowid = c.rowid"
        ).fetchall())
    finally:
        db.close()
    return {"chroma": chroma, "lexical": [list(r) for r in lexical], "lexical_counts": counts,
            "sentvecs": sentvecs,
            "manifest": json.loads((store / "manifest.json").read_text()),
            "files": sorted(p.name for p in store.iterdir())}


_SNAPSHOT = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from fault_helpers import read_store
print(json.dumps(read_store(Path(sys.argv[2]))))
"""


def snapshot(store: Path) -> dict[str, Any]:
    """``read_store`` in a brand-new process: what the next run of anything finds on disk."""
    proc = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT, str(Path(__file__).parent), str(store)],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_consistent(snap: dict[str, Any], corpus: Path) -> set[str]:
    """Manifest, Chroma and FTS5 hold exactly the corpus's chunks: none missing, none twice."""
    leftovers = [f for f in snap["files"] if f in ("dirty", "written") or f.endswith(".tmp")]
    assert not leftovers, f"a completed run left {leftovers} behind"
    manifest = snap["manifest"]
    want = expected_ids(corpus)
    assert {s: d["chunks"] for s, d in manifest["documents"].items()} == want
    ids = [c for chunks in want.values() for c in chunks]
    assert len(ids) == len(set(ids))

    assert list(snap["chroma"]) == [manifest["collection"]], "stray or missing collections"
    col = snap["chroma"][manifest["collection"]]
    assert len(col["ids"]) == len(set(col["ids"])) == col["count"], "duplicate vectors"
    assert set(col["ids"]) == set(ids)
    lex_ids = [row[0] for row in snap["lexical"]]
    assert len(lex_ids) == len(set(lex_ids)) == snap["lexical_counts"][0]
    assert snap["lexical_counts"][1] == len(lex_ids), "FTS rows without a chunk row"
    assert set(lex_ids) == set(ids)

    texts: dict[str, str] = {}
    for cid, doc, meta in zip(col["ids"], col["documents"], col["metadatas"], strict=True):
        text = texts.setdefault(meta["source"], read_file_text(corpus / meta["source"]))
        assert text[meta["start"]:meta["end"]] == doc
        assert chunk_id(meta["source"], meta["start"], meta["end"], doc) == cid
    for cid, source, start, end, _sha, doc in snap["lexical"]:
        assert read_file_text(corpus / source)[start:end] == doc
        assert chunk_id(source, start, end, doc) == cid
        # Every chunk has one stored vector (384 int8 bytes) per sentence, even one
        # adopted from Chroma after a kill.
        assert snap["sentvecs"].get(cid) == 384 * len(sentences(doc)), cid
    assert snap["lexical_counts"][2] == len(lex_ids), "sentence vectors without a chunk"
    return set(ids)


def same_content(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two snapshots hold the same chunks, texts and metadata (collection names may differ)."""
    assert a["manifest"]["documents"] == b["manifest"]["documents"]
    (ca,), (cb,) = a["chroma"].values(), b["chroma"].values()
    def rows(c: dict[str, Any]) -> list[tuple[str, str, str]]:
        metas = (json.dumps(m, sort_keys=True) for m in c["metadatas"])
        return sorted(zip(c["ids"], c["documents"], metas, strict=True))

    assert rows(ca) == rows(cb)
    assert sorted(map(tuple, a["lexical"])) == sorted(map(tuple, b["lexical"]))


# -- answers -----------------------------------------------------------------------


TOLERANCE = 1e-4  # how far two answers' numbers may be apart and still be the same answer


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return (isinstance(a, int | float) and isinstance(b, int | float)
                and not isinstance(a, bool) and not isinstance(b, bool)
                and abs(a - b) <= TOLERANCE)
    return bool(a == b)


class Comparable(dict):  # type: ignore[type-arg]
    """An ``ask --json`` object without its timings, equal to another when everything else
    is, numbers within ``TOLERANCE``: how chunks were batched can move a score's 7th
    digit, and rounding instead would still tell two answers apart at a rounding boundary."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and _close(dict(self), dict(other))

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]


def comparable(answer: dict[str, Any]) -> Comparable:
    """``answer`` as a :class:`Comparable`."""
    return Comparable({k: v for k, v in answer.items() if k != "timings_ms"})


def answers_from(corpus: Path, store: Path, embedder: Any,
                 questions: Sequence[str] = QUESTIONS) -> list[dict[str, Any]]:
    """What ``ask --json`` prints for each question, answered from the store as it is."""
    from assistant.config import Config
    from assistant.service import Assistant

    svc = Assistant.open(Config.resolve(corpus=corpus, store=store), refresh=False,
                         embedder=embedder)
    try:
        return [comparable(svc.ask(q).to_json()) for q in questions]
    finally:
        svc.close()


# -- stand-ins ----------------------------------------------------------------------


def garble(path: Path, keep: int = 0) -> None:
    """Keep the first ``keep`` bytes, replace the rest with noise of the same length."""
    data = path.read_bytes()
    noise = np.random.default_rng(7).integers(0, 256, len(data) - keep, dtype=np.uint8)
    path.write_bytes(data[:keep] + noise.tobytes())


class HashEmbedder:
    """Stand-in vectors (a hash of the text) under the real model's id: for building a big
    store fast where the test is about the store's files, not about what is retrieved."""

    def __init__(self, model_id: str) -> None:
        self.model_id, self.dim = model_id, 384
        self.embedded = 0  # texts embedded so far

    def _vec(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        v = np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_documents(self, texts: Any, progress: Any = None) -> np.ndarray:
        self.embedded += len(texts)
        if progress:
            progress(len(texts))
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def embed_passages(self, texts: Any, spans: Any, progress: Any = None) -> Any:
        parts = [np.stack([self._vec(t[a:b]) for a, b in sp]) if sp else np.zeros((0, self.dim))
                 for t, sp in zip(texts, spans, strict=True)]
        return self.embed_documents(texts, progress), parts

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def load(self) -> HashEmbedder:
        return self
