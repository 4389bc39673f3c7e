"""What a query sees of a Chroma collection: views that drop hits this store must not use.

:class:`OwnView` is a shared server collection as one client sees it (only its own
corpus's chunks); :class:`LiveView` an embedded one while another process writes it
(no chunks deleted since the client loaded its graph). Both pass everything but
``query`` through to the collection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _keep(res: dict[str, Any], keep: list[list[int]]) -> dict[str, Any]:
    """``res`` with each query's per-hit lists (ids, distances, ...) cut to the ``keep`` indices."""
    rows = res["ids"]
    for key, value in list(res.items()):
        if isinstance(value, list) and len(value) == len(rows) and all(
            isinstance(v, list) for v in value
        ):
            res[key] = [[v[i] for i in k] for v, k in zip(value, keep, strict=True)]
    return res


Owns = Callable[[Sequence[str]], set[str]]
MAX_DEPTH = 4096  # how deep a query on a shared collection looks for this corpus's chunks


class LocalChunkIds:
    """Which ids are chunks of this store's corpus: its lexical index, read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __call__(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        with self._lock:
            if self._db is None:
                if not self.path.exists():
                    return set()
                self._db = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, timeout=30
                )
            out: set[str] = set()
            for i in range(0, len(ids), 500):
                part = list(ids[i : i + 500])
                marks = ",".join("?" * len(part))
                out.update(r[0] for r in self._db.execute(
                    f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks})", part
                ))
            return out


class OwnView:
    """A shared collection as one client sees it; anything but ``query`` passes through."""

    def __init__(self, col: Any, owns: Owns) -> None:
        self._col = col
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._col, name)

    def query(self, query_embeddings: Any, n_results: int = 10, **kwargs: Any) -> Any:
        n = max(1, n_results)
        while True:
            res = self._col.query(query_embeddings=query_embeddings, n_results=n, **kwargs)
            rows = res["ids"]
            mine = self._owns(sorted({cid for row in rows for cid in row}))
            short = any(sum(cid in mine for cid in row) < n_results for row in rows)
            exhausted = all(len(row) < n for row in rows)
            if not short or exhausted or n >= MAX_DEPTH:
                break
            n = min(n * 4, MAX_DEPTH)  # others' chunks crowd the top: look deeper
        keep = [[i for i, cid in enumerate(row) if cid in mine][:n_results] for row in rows]
        return _keep(res, keep)


class LiveView:
    """An embedded collection as a reader sees it while another process writes the index.

    A client keeps the HNSW graph it loaded but reads records from SQLite as they are
    now, so a chunk another process has deleted since still comes back from ``query``
    (often first: it was the edited text that matched), with no metadata and no text.
    Those hits are dropped; the reader answers from what the index holds until it
    reloads (``Assistant.reload_if_changed``). Anything but ``query`` passes through.
    """

    def __init__(self, col: Any) -> None:
        self._col = col

    def __getattr__(self, name: str) -> Any:
        return getattr(self._col, name)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        res = self._col.query(*args, **kwargs)
        metas, rows = res.get("metadatas"), res["ids"]
        if not metas:
            return res
        keep = [[i for i, m in enumerate(row) if m is not None] for row in metas]
        if all(len(k) == len(row) for k, row in zip(keep, rows, strict=True)):
            return res
        return _keep(res, keep)
