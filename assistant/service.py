"""The answering service: one object the CLI, ``eval`` and the TUI all talk to.

``Assistant.open`` brings the index up to date (building it when missing or
stale), loads the model and the stores, and then ``ask`` answers questions with
plain :mod:`assistant.models` records. A writer in another process holding the
lock does not stop a reader: it answers from the index as it is and picks up
the new one with :meth:`Assistant.reload_if_changed`. Each answer comes from one
state: the chunks the loaded manifest lists (``index/views.py``), read from the
lexical index in one snapshot. An index the user may not write is answered from
a verified copy in the user's data folder (``index/readonly.py``), never refreshed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import Config, make_embedder, max_file_bytes
from assistant.errors import StoreError, StoreLocked
from assistant.models import Answer, IndexSummary

if TYPE_CHECKING:
    from assistant.answerer import Answerer
    from assistant.asking import Parts
    from assistant.llm import LlmSpec
    from assistant.reader import Reader
    from index.manifest import Manifest

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Status:
    documents: int
    chunks: int
    store: Path
    corpus: Path
    chroma_url: str | None

    def line(self) -> str:
        where = self.chroma_url or str(self.store)
        return f"{self.documents} documents, {self.chunks} passages ({where})"


class Assistant:
    """Answers questions about one corpus; thread-compatible for one caller at a time."""

    # A follow-up that points back ("Which operator is it working with?") carries the
    # earlier questions' content words into what is searched (assistant/followup.py);
    # False gives them only as context, as before (benchmarks/followup_qa.py compares).
    carry_followups = True

    def __init__(self, config: Config, embedder: object) -> None:
        self.config = config
        self.embedder = embedder
        self.last_refresh: IndexSummary | None = None
        # What the user should be told once about the index being answered from
        # (read-only and out of date); the CLI prints it, the chat shows it.
        self.notice: str | None = None
        self._stamp: tuple[int, int] | None = None
        self._vectors = None
        self._lexical = None
        self._retriever = None
        self._answerer: Answerer | None = None
        self._extractive: Answerer | None = None
        self._llm_spec: LlmSpec | None = None
        self._llm: object | None = None  # the loaded LlamaIndex LLM, kept across reloads
        self._manifest = None
        self._read_only = False
        self._qencoder: object | None = None  # the trained question encoder, once loaded
        self._reader: Reader | None = None  # the answer-phrase reader, once loaded

    # -- lifecycle ---------------------------------------------------------

    @classmethod
    def open(
        cls,
        config: Config,
        *,
        progress: Progress | None = None,
        wait: float = 0.0,
        refresh: bool = True,
        embedder: object | None = None,
        rebuild: bool = False,
        llm: LlmSpec | None = None,
    ) -> Assistant:
        """A ready service; ``rebuild`` discards the index first (it may be too damaged to
        open); ``llm`` names a model to write the answers (else they are extractive)."""
        svc = cls(config, embedder or make_embedder())
        if llm is not None:
            svc.use_llm(llm)  # a bad spec fails before any indexing
        if refresh or rebuild:
            svc.refresh(progress=progress, wait=wait, only_if_stale=not rebuild, rebuild=rebuild)
        svc._load()
        if refresh and not svc._stores_agree():
            log.warning("the index stores do not hold what the manifest lists; repairing them")
            svc.refresh(progress=progress, wait=wait)  # reconciles, then reloads
        return svc

    def refresh(
        self,
        progress: Progress | None = None,
        wait: float = 0.0,
        only_if_stale: bool = False,
        rebuild: bool = False,
    ) -> IndexSummary | None:
        """Bring the index up to date; with the lock held elsewhere, keep the old one."""
        from index.build import build_index
        from index.freshness import is_current
        from index.readonly import read_only_error, writable

        cfg = self.config
        if not writable(cfg.store):
            if only_if_stale and not rebuild:
                return None  # answered from a copy: _load says what it could not refresh
            raise read_only_error(cfg.store)
        if only_if_stale and not rebuild and is_current(
            cfg.corpus, cfg.store, self.embedder.model_id, max_bytes=max_file_bytes()
        ):
            return None
        try:
            self.last_refresh = build_index(
                cfg.corpus, cfg.store, self.embedder,  # type: ignore[arg-type]
                chroma_url=cfg.chroma_url, collection=cfg.collection, wait=wait,
                max_bytes=max_file_bytes(), progress=progress, rebuild=rebuild,
            )
        except StoreLocked:
            if (cfg.store / "manifest.json").exists():
                log.warning("index is being written by another process; using the current one")
                return None
            raise
        if self._retriever is not None:
            self._load()
        return self.last_refresh

    def _load(self) -> None:
        from assistant.answer import ExtractiveAnswerer
        from assistant.retrieve import HybridRetriever
        from index.build import LEXICAL_FILE
        from index.lexical import LexicalIndex
        from index.manifest import load_manifest, manifest_stamp
        from index.readonly import writable
        from index.store import VectorStore
        from index.views import LexicalView

        cfg = self.config
        stamp = manifest_stamp(cfg.store)
        self._read_only = not writable(cfg.store)
        source, current = self._source() if self._read_only else (cfg.store, True)
        manifest = load_manifest(source)
        if manifest is None:
            raise StoreError(
                f"No index at '{cfg.store}'.", "Run 'assistant index' first."
            )
        if manifest.model_id != self.embedder.model_id:
            raise StoreError(
                f"The index at '{cfg.store}' was built with another embedding model "
                f"({manifest.model_id}).",
                "Pass --store DIR to keep an index of your own." if self._read_only
                else "Run 'assistant index --rebuild'.",
            )
        keep = self._answerable(manifest, current)
        self.embedder.load()  # type: ignore[attr-defined]
        if self._qencoder is None:
            from assistant.qencoder import load_question_encoder

            self._qencoder = load_question_encoder(self.embedder)
        if self._reader is None:
            from assistant.reader import load_reader

            self._reader = load_reader()
        if self._lexical is not None:
            self._lexical.close()
        if self._vectors is not None and not cfg.chroma_url:
            _forget_chroma_clients()  # a reopened client sees another process's writes
        self._vectors = VectorStore(source, manifest.collection, cfg.chroma_url,
                                    owns=keep.intersection)
        self._lexical = LexicalIndex(source / LEXICAL_FILE)
        view = LexicalView(self._lexical, keep.intersection)
        self._retriever = HybridRetriever(
            self.embedder, self._vectors, view, question_encoder=self._qencoder,  # type: ignore[arg-type]
        )
        self._extractive = ExtractiveAnswerer(view, reader=self._reader)  # type: ignore[arg-type]
        self._answerer = self._writer()
        self._manifest = manifest
        self._stamp = stamp

    def use_llm(self, spec: LlmSpec | None) -> None:
        """Answer with the model ``spec`` names from now on (None: extractively).

        An in-process model is loaded here; a server is first reached when it answers.
        """
        from assistant.llm import make_llm

        if spec is None:
            self._llm_spec, self._llm = None, None
        elif spec != self._llm_spec:
            self._llm = make_llm(spec)
            self._llm_spec = spec
        if self._extractive is not None:
            self._answerer = self._writer()

    @property
    def generator(self) -> str:
        """Who writes the answers: "extractive" or the model's spec."""
        return self._llm_spec.name if self._llm_spec else "extractive"

    def _writer(self) -> Answerer | None:
        if self._llm_spec is None or self._extractive is None:
            return self._extractive
        from assistant.citecheck import CitationChecker
        from assistant.generate import GenerativeAnswerer

        checker = CitationChecker(self.embedder, self._extractive.idf)  # type: ignore[attr-defined]
        return GenerativeAnswerer(self._llm_spec, self._llm, self._extractive,  # type: ignore[arg-type]
                                  checker)

    def _source(self) -> tuple[Path, bool]:
        """A verified copy of a store this user may not write, and whether it is current."""
        from assistant.config import read_only_copies
        from index.readonly import local_copy

        cfg = self.config
        return local_copy(cfg.store, read_only_copies(cfg.store), embedded=not cfg.chroma_url)

    def _answerable(self, manifest: Manifest, current: bool) -> frozenset[str]:
        """The chunk ids answers may cite: the loaded manifest's, less (in an index this user
        may not refresh) those of files edited or deleted since, whose offsets no longer hold."""
        from index.freshness import changes
        from index.readonly import why_not_writable

        keep = manifest.chunk_ids()
        self.notice = None
        if not self._read_only:
            return frozenset(keep)
        cfg = self.config
        diff = changes(cfg.corpus, manifest, max_file_bytes())
        for source in diff.changed + diff.removed:
            keep.difference_update(manifest.documents[source].chunks)
        if diff or not current:
            left = len(manifest.documents) - len(diff.changed) - len(diff.removed)
            state = "out of date with the documents" if diff else "being written by its owner"
            self.notice = (
                f"The index at '{cfg.store}' is {state} ({diff.line()}) and could not be "
                f"refreshed: {why_not_writable(cfg.store)}. Answering from the "
                f"{left} unchanged documents it holds; its owner can run 'assistant index', "
                "or pass --store DIR to keep an index of your own."
            )
        return frozenset(keep)

    def _stores_agree(self) -> bool:
        """Whether both stores hold as many chunks as the manifest lists (counts only: cheap).

        ``is_current`` compares the corpus with the manifest alone. A vector store or
        lexical index deleted or emptied behind its back opens as an empty one and
        would answer from half an index without a word. With a writer at work (the
        ``dirty`` marker) the counts are in flux: that writer reconciles them.
        """
        from index.manifest import is_dirty

        if self._manifest is None or self._read_only or is_dirty(self.config.store):
            return True  # a read-only store was checked when it was copied
        expected = self._manifest.chunk_count()
        if self._lexical.count() != expected:  # type: ignore[attr-defined]
            return False
        # A server's collection may hold other clients' vectors: the build checks those.
        return bool(self.config.chroma_url) or self._vectors.count() == expected  # type: ignore[attr-defined]

    def reload_if_changed(self) -> bool:
        """Pick up an index another process has finished writing; True if reloaded."""
        from index.manifest import is_dirty, manifest_stamp

        stamp = manifest_stamp(self.config.store)
        if stamp == self._stamp or is_dirty(self.config.store):
            return False
        self._load()
        return True

    def close(self) -> None:
        if self._lexical is not None:
            self._lexical.close()
            self._lexical = None

    # -- queries -----------------------------------------------------------

    def status(self) -> Status:
        m = self._manifest
        return Status(
            documents=len(m.documents) if m else 0,
            chunks=m.chunk_count() if m else 0,
            store=self.config.store,
            corpus=self.config.corpus,
            chroma_url=self.config.chroma_url,
        )

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        k: int | None = None,
        on_delta: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        fallback_on_failure: bool = False,
    ) -> Answer:
        """Answer ``question``; a model's text streams to ``on_delta`` as it is written.

        A follow-up is rewritten into a standalone question by the model, when one is
        configured; without one, or when its rewrite is unusable, a follow-up that points
        back carries the earlier questions' content words (``Answer.searched`` either
        way). With ``fallback_on_failure`` a model that cannot be reached gives way to
        the extractive answer, which says why; otherwise its
        :class:`~assistant.errors.LlmUnavailable` is raised. The steps are
        :func:`assistant.asking.ask`'s, with the parts loaded now (:meth:`parts`).
        """
        from assistant.asking import ask

        return ask(self.parts(), question, history, k or self.config.k, on_delta, cancel,
                   fallback_on_failure)

    def parts(self) -> Parts:
        """What a question is answered with at this moment."""
        from assistant.asking import Parts

        if self._retriever is None or self._extractive is None or self._answerer is None:
            raise StoreError("The index is not loaded.", "Open the assistant first.")
        return Parts(self._retriever, self._lexical, self._extractive,  # type: ignore[arg-type]
                     self._answerer, self._reader, self.generator, self.carry_followups)

    def document_text(self, source: str) -> str:
        """The text of a corpus file exactly as citations index it."""
        from index.load import read_text

        root = self.config.corpus.resolve()
        path = (root / source).resolve()
        if not path.is_relative_to(root):
            raise StoreError(f"'{source}' is not a document of this corpus.")
        try:
            return read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"Cannot open '{source}' ({exc}).") from exc


def _forget_chroma_clients() -> None:
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    except Exception:  # pragma: no cover - internal API; a stale view is the fallback
        log.debug("could not clear Chroma's client cache", exc_info=True)
