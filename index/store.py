"""The dense side of the index: a Chroma collection holding our own vectors.

Embedded (``PersistentClient`` in ``<store>/chroma``) by default, or a Chroma
server with ``chroma_url``. A server's collection may be shared with other
clients indexing other corpora; given ``owns`` (the chunk ids of the state a reader
loaded), the collection handed to retrieval is an :class:`~index.views.OwnView` that
keeps only those, fetching deeper when others' chunks crowd the top. Telemetry is
off, Chroma's downloading default embedding function is never attached, ids are
ours and deterministic, and the metadata is flat: ``source``, ``start``, ``end``, ``doc_sha256``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from index.errors import ChromaUnavailable, StoreError
from index.manifest import disk_full, disk_full_error
from index.views import Owns, OwnView

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
TOKEN_ENV = "ASSISTANT_CHROMA_TOKEN"
# How wide Chroma's HNSW search looks. Chroma saves its graph only every 1,000 new
# vectors and every process that opens the store inserts the rest of its log again, in
# parallel, so each run searches a slightly different graph. With Chroma's default (100),
# 7.5% of 1,200 SQuAD dev questions miss one of their exact 40 nearest chunks (2,622
# chunks) and 28 get other chunks in another run; at 400, 0.08% and none, for 0.45 ms more
# a search. At 10k chunks: 13% and 38 against 2.4% and 1, for 0.8 ms more
# (benchmarks/hnsw_search.py).
EF_SEARCH = 400
HNSW = {"space": "cosine", "ef_search": EF_SEARCH}


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: str
    similarity: float
    source: str
    start: int
    end: int
    text: str


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


def _http_client(url: str) -> Any:
    import chromadb

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ChromaUnavailable(
            f"'{url}' is not a Chroma server URL.", "Use --chroma-url http://HOST:PORT."
        )
    headers = {}
    token = os.environ.get(TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname,
            port=port,
            ssl=parsed.scheme == "https",
            headers=headers,
            settings=_settings(),
        )
        client.heartbeat()
    except Exception as exc:
        if _refused(exc):
            raise _auth_error(url, exc) from exc
        raise ChromaUnavailable(
            f"Cannot reach the Chroma server at {url} ({type(exc).__name__}).",
            "Is it running? Start one with 'chroma run --path DIR --host HOST --port PORT'.",
        ) from exc
    return client


def _refused(exc: BaseException) -> bool:
    """Did the server turn us away (401/403) rather than fail?"""
    name = type(exc).__name__
    return "Auth" in name or "Forbidden" in name or "Unauthorized" in str(exc)


def _auth_error(url: str, exc: BaseException) -> ChromaUnavailable:
    hint = (
        f"Check the token in {TOKEN_ENV}." if os.environ.get(TOKEN_ENV)
        else f"The server wants a token: set {TOKEN_ENV}."
    )
    return ChromaUnavailable(
        f"The Chroma server at {url} refused the request ({type(exc).__name__}: {exc}).", hint
    )


def _forget_failed_client(path: str) -> None:
    """Drop the client chromadb cached for ``path`` although it failed to start.

    chromadb caches a client's system per path *before* starting it, so after one
    failed start (a damaged chroma.sqlite3) every later client of that path in the
    process got the broken one: even ``--rebuild``, which removes the folder and
    opens it again, failed with "'RustBindingsAPI' object has no attribute 'bindings'".
    """
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(path, None)
        SharedSystemClient._identifier_to_refcount.pop(path, None)
    except Exception:  # pragma: no cover - internal API; then only a new process recovers
        log.debug("could not drop Chroma's cached client for %s", path, exc_info=True)


class VectorStore:
    """One Chroma collection; every call maps Chroma failures to our errors."""

    def __init__(
        self,
        store_dir: Path,
        collection: str,
        chroma_url: str | None = None,
        owns: Owns | None = None,
    ) -> None:
        self.url = chroma_url
        self.name = collection
        self._where = chroma_url or str(store_dir / "chroma")
        if chroma_url:
            self._client = _http_client(chroma_url)
        else:
            import chromadb

            try:
                self._client = chromadb.PersistentClient(
                    path=str(store_dir / "chroma"), settings=_settings()
                )
            except Exception as exc:
                _forget_failed_client(str(store_dir / "chroma"))
                if disk_full(store_dir, exc):
                    raise disk_full_error(store_dir) from exc
                raise StoreError(
                    f"The vector store at '{store_dir / 'chroma'}' cannot be opened ({exc}).",
                    "Run 'assistant index --rebuild' to rebuild it.",
                ) from exc
        self._col = self._open(collection)
        self._batch = self.call(self._client.get_max_batch_size)
        self._owns = owns
        if not chroma_url:
            self._widen_search()

    def _open(self, name: str) -> Any:
        """The collection ``name``, made with our settings if it is not there (never
        with Chroma's downloading default embedding function)."""
        return self.call(lambda: self._client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": HNSW}))

    def _widen_search(self) -> None:
        """Give a collection made before EF_SEARCH was set the same search width. Only
        embedded: a server's collection may be shared, its settings not one client's to
        change. Best effort: a read-only or busy store keeps searching as it did."""
        try:
            hnsw = (self._col.configuration or {}).get("hnsw") or {}
            if int(hnsw.get("ef_search") or 0) < EF_SEARCH:
                self._col.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
        except Exception:
            log.debug("could not set ef_search on %s", self._where, exc_info=True)

    def call(self, fn: Any) -> Any:
        try:
            return fn()
        except (ChromaUnavailable, StoreError):
            raise
        except Exception as exc:
            if self.url and _refused(exc):
                raise _auth_error(self.url, exc) from exc
            if self.url:
                raise ChromaUnavailable(
                    f"The Chroma server at {self.url} failed: {type(exc).__name__}: {exc}",
                    "Check that it is running, then run the command again (an index build "
                    "resumes where it stopped).",
                ) from exc
            if disk_full(Path(self._where), exc):
                raise disk_full_error(Path(self._where).parent) from exc
            raise StoreError(
                f"The vector store at '{self._where}' failed: {type(exc).__name__}: {exc}",
                "Run 'assistant index --rebuild' if this persists.",
            ) from exc

    @property
    def collection(self) -> Any:
        """The collection LlamaIndex queries: only the chunks ``owns`` vouches for, if given."""
        return OwnView(self._col, self._owns) if self._owns else self._col

    def claim(self, settings: dict[str, str]) -> None:
        """Tag a server collection with the model and chunking its vectors come from.

        Chunk ids do not depend on the model, so a client with another model must
        not adopt (or add to) a collection named explicitly by ``--collection``.
        """
        meta = dict(self.call(lambda: self._col.metadata) or {})
        theirs = {k: meta[k] for k in settings if k in meta}
        if not theirs:
            self.call(lambda: self._col.modify(metadata={**meta, **settings}))
        elif theirs != settings:
            raise StoreError(
                f"The collection '{self.name}' on {self.url} holds vectors made with other "
                f"settings ({', '.join(f'{k}={v}' for k, v in theirs.items())}).",
                "Use another --collection name, or leave it out to get one for these settings.",
            )

    def drop(self) -> None:
        """Delete the collection and start an empty one."""
        self.call(lambda: self._client.delete_collection(self.name))
        self._col = self._open(self.name)

    def wipe(self) -> None:
        """Delete every collection of this store through the client (``--rebuild``).

        Deleting the files instead would leave a client cached in this process
        writing to unlinked files: the rebuilt index would never reach the disk.
        """
        for col in self.call(self._client.list_collections):
            name = col if isinstance(col, str) else col.name
            self.call(lambda name=name: self._client.delete_collection(name))
        self._col = self._open(self.name)

    def retire(self, name: str, ids: Sequence[str]) -> None:
        """Remove this store's chunks from a collection it no longer uses (old settings).

        Embedded, the collection is this store's alone: it goes. On a server only
        ``ids`` (those this store owns) are deleted; the collection goes once that
        leaves it empty, else it keeps other clients' vectors.
        """
        names = {c if isinstance(c, str) else c.name
                 for c in self.call(self._client.list_collections)}
        if name == self.name or name not in names:
            return
        if self.url:
            col = self.call(lambda: self._client.get_collection(name, embedding_function=None))
            self.delete(ids, col)
            if self.call(col.count):
                return
        self.call(lambda: self._client.delete_collection(name))

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        for i in range(0, len(ids), self._batch):
            j = i + self._batch
            self.call(
                lambda i=i, j=j: self._col.upsert(
                    ids=list(ids[i:j]),
                    embeddings=embeddings[i:j],
                    documents=list(texts[i:j]),
                    metadatas=list(metadatas[i:j]),
                )
            )

    def delete(self, ids: Sequence[str], col: Any = None) -> None:
        col = col if col is not None else self._col
        for i in range(0, len(ids), self._batch):
            part = list(ids[i : i + self._batch])
            self.call(lambda part=part: col.delete(ids=part))

    def count(self) -> int:
        return int(self.call(self._col.count))

    def ids(self) -> set[str]:
        out: set[str] = set()
        total = self.count()
        page = 10_000
        for offset in range(0, total, page):
            got = self.call(
                lambda offset=offset: self._col.get(include=[], limit=page, offset=offset)
            )
            out.update(got["ids"])
        return out

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection holds (asks for ids only, in batches)."""
        out: set[str] = set()
        for i in range(0, len(ids), self._batch):
            part = list(ids[i : i + self._batch])
            got = self.call(lambda part=part: self._col.get(ids=part, include=[]))
            out.update(got["ids"])
        return out

    def sentence_blobs(self, ids: Sequence[str]) -> dict[str, bytes]:
        """Packed sentence vectors kept in the metadata of those chunks (server mode)."""
        from index.sentvec import from_text

        out: dict[str, bytes] = {}
        for i in range(0, len(ids), self._batch):
            part = list(ids[i : i + self._batch])
            got = self.call(lambda part=part: self._col.get(ids=part, include=["metadatas"]))
            for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
                blob = from_text((meta or {}).get("sentvecs"))
                if blob:
                    out[cid] = blob
        return out

    def get(self, ids: Sequence[str]) -> list[Hit]:
        got = self.call(lambda: self._col.get(ids=list(ids), include=["documents", "metadatas"]))
        return [
            Hit(cid, 0.0, str(m["source"]), int(m["start"]), int(m["end"]), doc or "")
            for cid, doc, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        ]

    def query(self, embedding: np.ndarray, k: int) -> list[Hit]:
        n = min(k, self.count())
        if n <= 0:
            return []
        res = self.call(
            lambda: self.collection.query(
                query_embeddings=[embedding],
                n_results=n,
                include=["documents", "metadatas", "distances"],
            )
        )
        return [
            Hit(cid, 1.0 - float(d), str(m["source"]), int(m["start"]), int(m["end"]), doc or "")
            for cid, doc, m, d in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0],
                strict=True,
            )
        ]
