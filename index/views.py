"""What one reader sees of the index: only the chunks of the state it loaded.

A reader loads a manifest and answers from the chunks it lists until it loads the
next one. Meanwhile a writer (another process, or another client of a shared
Chroma server) adds and deletes chunks in both stores. :class:`OwnView` (the
Chroma collection) and :class:`LexicalView` (the FTS5 index) drop every hit the
loaded manifest does not list, so a reader never answers from rows of a build
that is not complete, nor from another client's corpus; they look deeper when
such rows crowd the top. Everything but the searches passes through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from index.lexical import ChunkRow, LexicalIndex

Owns = Callable[[Sequence[str]], "set[str] | frozenset[str]"]
MAX_DEPTH = 4096  # how deep a search looks for chunks of the loaded state


def _keep(res: dict[str, Any], keep: list[list[int]]) -> dict[str, Any]:
    """``res`` with each query's per-hit lists (ids, distances, ...) cut to the ``keep`` indices."""
    rows = res["ids"]
    for key, value in list(res.items()):
        if isinstance(value, list) and len(value) == len(rows) and all(
            isinstance(v, list) for v in value
        ):
            res[key] = [[v[i] for i in k] for v, k in zip(value, keep, strict=True)]
    return res


R = TypeVar("R")


def _deepen(want: int, fetch: Callable[[int], R], done: Callable[[R, int], bool]) -> R:
    """``fetch(want)``, then four times as deep, and so on, until ``done(result, depth)``
    or MAX_DEPTH: rows of other states (or corpora) crowding the top are skipped over."""
    n = max(1, want)
    while True:
        got = fetch(n)
        if done(got, n) or n >= MAX_DEPTH:
            return got
        n = min(n * 4, MAX_DEPTH)


class OwnView:
    """A Chroma collection as one loaded state sees it; anything but ``query`` passes through.

    A hit is kept when the loaded manifest lists it and its record still exists. A
    client keeps the HNSW graph it loaded but reads records from SQLite as they are
    now, so a chunk another process has deleted since still comes back from
    ``query`` (often first: it was the edited text that matched), with no metadata
    and no text; it is dropped too.
    """

    def __init__(self, col: Any, owns: Owns) -> None:
        self._col = col
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._col, name)

    def query(self, query_embeddings: Any, n_results: int = 10, **kwargs: Any) -> Any:
        def fetch(n: int) -> tuple[dict[str, Any], list[list[int]]]:
            res = self._col.query(query_embeddings=query_embeddings, n_results=n, **kwargs)
            rows, metas = res["ids"], res.get("metadatas") or [None] * len(res["ids"])
            mine = self._owns(sorted({cid for row in rows for cid in row}))
            return res, [[i for i, cid in enumerate(row)
                          if cid in mine and (m is None or m[i] is not None)]
                         for row, m in zip(rows, metas, strict=True)]

        def done(got: tuple[dict[str, Any], list[list[int]]], n: int) -> bool:
            res, keep = got
            return (all(len(k) >= n_results for k in keep)
                    or all(len(row) < n for row in res["ids"]))  # enough, or no more to see

        res, keep = _deepen(n_results, fetch, done)
        return _keep(res, [k[:n_results] for k in keep])


class LexicalView:
    """The lexical index as one loaded state sees it; anything but the reads of chunks passes
    through (corpus statistics such as document frequencies may count a writer's new rows)."""

    def __init__(self, lexical: LexicalIndex, owns: Owns) -> None:
        self._lexical = lexical
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lexical, name)

    def search(self, question: str, k: int) -> list[tuple[str, float]]:
        Hits = list[tuple[str, float]]

        def fetch(n: int) -> tuple[Hits, Hits]:
            hits = self._lexical.search(question, n)
            mine = self._owns([cid for cid, _ in hits])
            return hits, [(cid, s) for cid, s in hits if cid in mine]

        _hits, kept = _deepen(k, fetch, lambda got, n: len(got[1]) >= k or len(got[0]) < n)
        return kept[:k]

    def get(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRow]:
        mine = self._owns(list(chunk_ids))
        return {cid: row for cid, row in self._lexical.get(chunk_ids).items() if cid in mine}
