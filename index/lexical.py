"""The lexical (BM25) side of the index: SQLite FTS5 beside the Chroma store.

Why FTS5 rather than LlamaIndex's ``BM25Retriever``: that retriever keeps every
node in memory and rebuilds its whole matrix (and its pickle) on any change,
which is what dominates a small edit of a large corpus. FTS5 updates
incrementally inside a transaction, is durable under a kill (WAL), answers from
disk without a load step, and ranks with Okapi BM25 (k1=1.2, b=0.75). It also
holds each chunk's source and offsets, so any retrieved id can be turned into a
citable passage without asking Chroma.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from index.errors import StoreError
from index.manifest import disk_full, disk_full_error

_WORD = re.compile(r"\w+")
# Function words carry no evidence and make OR-queries match nearly every row.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves s t don also according""".split()
) | frozenset(
    # How people ask about a document set, not what they ask about.
    """article articles document documents text texts passage passages author authors writer
    say says said mention mentions mentioned describe describes described tell tells discuss
    discusses discussed""".split()
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks(
    rowid INTEGER PRIMARY KEY,
    chunk_id TEXT UNIQUE NOT NULL,
    source TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    doc_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(source);
-- Packed in-context sentence vectors of a chunk (index/sentvec.py), keyed by its rowid.
CREATE TABLE IF NOT EXISTS sentvecs(rowid INTEGER PRIMARY KEY, vecs BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    text, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


def sqlite_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """What went wrong with the lexical index, and what to do about it."""
    if disk_full(path.parent, exc):
        return disk_full_error(path.parent)
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"The lexical index '{path}' is busy ({exc}).",
                          "Another program holds it; try again in a moment.")
    if name.startswith("SQLITE_CANTOPEN") or name.startswith("SQLITE_READONLY"):
        return StoreError(f"Cannot open the lexical index '{path}' ({exc}).",
                          "Check that the index folder is readable and writable.")
    return StoreError(
        f"The lexical index '{path}' is damaged ({exc}).",
        "Run 'assistant index --rebuild' to rebuild it from the documents.",
    )


_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(method: _F) -> _F:
    """SQLite finds most damage only when it reads the damaged page: report it, never crash."""

    @functools.wraps(method)
    def wrapper(self: LexicalIndex, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc) from exc

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class ChunkRow:
    chunk_id: str
    source: str
    start: int
    end: int
    doc_sha256: str
    text: str
    sentvecs: bytes | None = None  # packed sentence vectors (index/sentvec.py), if known


def query_terms(question: str) -> list[str]:
    """Distinct content words of a question, in order (all words if none is left)."""
    words = [w.lower() for w in _WORD.findall(question)]
    content = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(content or words))


class LexicalIndex:
    """Chunk table + FTS5 index in one SQLite file."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                uri = f"file:{path}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            else:
                self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM chunks").fetchone()
            self._has_sentvecs = bool(self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'sentvecs'").fetchone())
        except sqlite3.Error as exc:
            raise sqlite_error(path, exc) from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one committed state (a read transaction), however many
        reads one answer makes: rows a writer commits or deletes meanwhile (between a
        search and the fetch of its rows) stay out of it."""
        try:
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise sqlite_error(self.path, exc) from exc
        try:
            yield
        finally:
            self._db.rollback()  # only reads happened: nothing to keep

    @_guarded
    def add(self, rows: Sequence[ChunkRow]) -> None:
        """Insert chunks (replacing any with the same id) in one transaction."""
        with self._db:
            self._delete(r.chunk_id for r in rows)
            for r in rows:
                cur = self._db.execute(
                    "INSERT INTO chunks(chunk_id, source, start, end, doc_sha256) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (r.chunk_id, r.source, r.start, r.end, r.doc_sha256),
                )
                self._db.execute(
                    "INSERT INTO fts(rowid, text) VALUES (?, ?)", (cur.lastrowid, r.text)
                )
                if r.sentvecs:
                    self._db.execute(
                        "INSERT INTO sentvecs(rowid, vecs) VALUES (?, ?)",
                        (cur.lastrowid, r.sentvecs),
                    )

    @_guarded
    def delete(self, chunk_ids: Iterable[str]) -> None:
        with self._db:
            self._delete(chunk_ids)

    def _delete(self, chunk_ids: Iterable[str]) -> None:
        ids = list(chunk_ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            rowids = [
                r[0]
                for r in self._db.execute(
                    f"SELECT rowid FROM chunks WHERE chunk_id IN ({marks})", part
                )
            ]
            if rowids:
                rmarks = ",".join("?" * len(rowids))
                self._db.execute(f"DELETE FROM fts WHERE rowid IN ({rmarks})", rowids)
                self._db.execute(f"DELETE FROM sentvecs WHERE rowid IN ({rmarks})", rowids)
                self._db.execute(f"DELETE FROM chunks WHERE rowid IN ({rmarks})", rowids)

    @_guarded
    def clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM chunks")
            self._db.execute("DELETE FROM fts")
            self._db.execute("DELETE FROM sentvecs")

    @_guarded
    def ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT chunk_id FROM chunks")}

    @_guarded
    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    @_guarded
    def search(self, question: str, k: int) -> list[tuple[str, float]]:
        """Best ``k`` chunk ids by BM25 (higher score is better)."""
        terms = query_terms(question)
        if not terms or k <= 0:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = self._db.execute(
            "SELECT c.chunk_id, bm25(fts) AS s FROM fts JOIN chunks c ON c.rowid = fts.rowid "
            "WHERE fts MATCH ? ORDER BY s LIMIT ?",
            (match, k),
        ).fetchall()
        return [(cid, -float(s)) for cid, s in rows]

    @_guarded
    def get(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRow]:
        out: dict[str, ChunkRow] = {}
        ids = list(chunk_ids)
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            for cid, source, start, end, sha, text in self._db.execute(
                "SELECT c.chunk_id, c.source, c.start, c.end, c.doc_sha256, f.text "
                f"FROM chunks c JOIN fts f ON f.rowid = c.rowid WHERE c.chunk_id IN ({marks})",
                part,
            ):
                out[cid] = ChunkRow(cid, source, start, end, sha, text)
        return out

    @_guarded
    def sentence_vectors(self, chunk_ids: Sequence[str]) -> dict[str, bytes]:
        """Packed sentence vectors of those chunks that have them."""
        ids = list(chunk_ids)
        if not self._has_sentvecs:  # an index from before they were kept: read-only here
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self._db.execute(
            "SELECT c.chunk_id, v.vecs FROM chunks c JOIN sentvecs v ON v.rowid = c.rowid "
            f"WHERE c.chunk_id IN ({marks})", ids,
        ).fetchall()) if ids else {}

    @_guarded
    def document_frequency(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each term (after the index's stemming)."""
        out: dict[str, int] = {}
        for t in terms:
            row = self._db.execute(
                "SELECT count(*) FROM fts WHERE fts MATCH ?", (f'"{t}"',)
            ).fetchone()
            out[t] = int(row[0])
        return out
