"""The chat's side of the answering service: what it needs, and one caller at a time.

The service is built by a factory in a worker thread (that is where LlamaIndex
and Chroma get imported) and then used from other worker threads, so a lock
keeps to the service's "one caller at a time" rule and an event tells waiting
questions that loading has finished, well or badly.

A language model (``--llm``, or the palette) is loaded after the index, in the
same thread and under the same lock: a model that cannot be loaded must not
keep the index from answering, so it becomes :attr:`Backend.llm_error` and the
chat answers extractively.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from assistant.config import Config
from assistant.errors import AssistantError, StoreError
from assistant.models import Answer

if TYPE_CHECKING:
    from assistant.llm import LlmSpec

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


class ChatService(Protocol):
    """What the chat uses of :class:`assistant.service.Assistant`."""

    def ask(self, question: str, history: Sequence[str] = (), *,
            on_delta: Callable[[str], None] | None = None,
            cancel: threading.Event | None = None,
            fallback_on_failure: bool = False) -> Answer: ...
    def use_llm(self, spec: LlmSpec | None) -> None: ...
    @property
    def generator(self) -> str: ...
    def status(self) -> Any: ...
    def document_text(self, source: str) -> str: ...
    def refresh(self, progress: Progress | None = None, rebuild: bool = False) -> Any: ...
    def reload_if_changed(self) -> bool: ...


ServiceFactory = Callable[..., ChatService]
"""``factory(config, progress=..., rebuild=...)`` returns a ready service or raises."""


def open_assistant(
    config: Config, progress: Progress | None = None, rebuild: bool = False
) -> ChatService:
    """The real service: builds or refreshes the index, loads the model."""
    from assistant.service import Assistant

    return Assistant.open(config, progress=progress, rebuild=rebuild)


class Backend:
    """Holds the service (or why there is none) for the UI and its worker threads."""

    def __init__(self, config: Config, factory: ServiceFactory,
                 llm: LlmSpec | None = None) -> None:
        self.config = config
        self.factory = factory
        self.llm = llm  # the model asked for; loaded with the service
        self.service: ChatService | None = None
        self.error: AssistantError | None = None
        self.llm_error: AssistantError | None = None  # why the model asked for is not used
        self._lock = threading.Lock()
        self._settled = threading.Event()

    @property
    def ready(self) -> bool:
        return self.service is not None and self._settled.is_set()

    @property
    def loading(self) -> bool:
        """A load or refresh has not finished (it may be building the index)."""
        return not self._settled.is_set()

    def load(self, progress: Progress | None = None, rebuild: bool = False,
             cancelled: Callable[[], bool] = lambda: False) -> ChatService | None:
        """Open the service, or refresh the open one; ``None`` if cancelled meanwhile.

        Runs in a worker thread. The work itself goes to a daemon thread the worker
        waits on: a build cannot be interrupted, and quitting must not wait for it.
        """
        outcome: dict[str, Any] = {}
        self._settled.clear()

        def run() -> None:
            try:
                outcome["service"] = self._load(progress, rebuild)
            except BaseException as exc:  # handed to the waiting worker
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="assistant-load", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.05)
            if cancelled():
                return None
        if "error" in outcome:
            raise outcome["error"]
        return cast(ChatService, outcome["service"])

    def _load(self, progress: Progress | None, rebuild: bool) -> ChatService:
        try:
            with self._lock:
                if self.service is None:
                    self.service = self.factory(self.config, progress=progress, rebuild=rebuild)
                    self._load_llm(self.service)
                else:
                    self.service.refresh(progress=progress, rebuild=rebuild)
                self.error = None
                return self.service
        except AssistantError as exc:
            self.error = exc
            raise
        except Exception as exc:  # a bug, but the chat must stay up and say so
            log.exception("opening the answering service failed")
            self.error = AssistantError(
                f"Unexpected error while loading the index ({type(exc).__name__}: {exc}).",
                "The details are in the log; please report it.")
            raise self.error from exc
        finally:
            self._settled.set()

    def _load_llm(self, service: ChatService) -> None:
        """Load the model asked for; if it cannot be, say why and answer extractively."""
        self.llm_error = None
        if self.llm is None:
            return
        try:
            service.use_llm(self.llm)
        except AssistantError as exc:
            self.llm_error, self.llm = exc, None
        except Exception as exc:  # a bug in a backend: the index still answers
            log.exception("loading the language model %s failed", self.llm.name)
            self.llm_error = AssistantError(
                f"Could not load the language model {self.llm.name} "
                f"({type(exc).__name__}: {exc}).", "The details are in the log.")
            self.llm = None

    @property
    def generator(self) -> str:
        """Who writes the answers: the service's answerer, or the one it will load."""
        if self.service is not None:
            return self.service.generator
        return self.llm.name if self.llm is not None else "extractive"

    def use_llm(self, spec: LlmSpec | None, cancelled: Callable[[], bool]) -> str | None:
        """Answer with ``spec`` from now on (None: extractively); the answerer's name, or
        ``None`` if cancelled. Waits for loading and for a question being answered."""
        while not self._settled.wait(0.05):
            if cancelled():
                return None
        with self._lock:
            if self.service is None:  # the index failed to load: use it once it does
                self.llm = spec
                return spec.name if spec is not None else "extractive"
            self.service.use_llm(spec)
            self.llm, self.llm_error = spec, None
            return self.service.generator

    def ask(self, question: str, history: Sequence[str], cancelled: Callable[[], bool],
            on_delta: Callable[[str], None] | None = None,
            cancel: threading.Event | None = None) -> Answer | None:
        """Wait for loading to finish, then answer; ``None`` if cancelled meanwhile.

        A model that cannot be reached gives way to the extractive answer, whose
        ``note`` says why: the chat must answer whatever the endpoint does.
        """
        while not self._settled.wait(0.05):
            if cancelled():
                return None
        with self._lock:
            if cancelled():
                return None
            if self.service is None:
                raise self.error or StoreError("The index is not loaded.")
            self.service.reload_if_changed()  # pick up an 'assistant index' run elsewhere
            return self.service.ask(question, history=list(history), on_delta=on_delta,
                                    cancel=cancel, fallback_on_failure=True)

    def document_text(self, source: str) -> str:
        """A corpus file's text; readable even before the index has loaded."""
        if self.service is not None:
            return self.service.document_text(source)
        root = self.config.corpus.resolve()
        path = (root / source).resolve()
        if not path.is_relative_to(root):
            raise StoreError(f"'{source}' is not a document of this corpus.")
        try:
            return Path(path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"Cannot open '{source}' ({exc}).") from exc

    def close(self) -> None:
        close = getattr(self.service, "close", None)
        if close is not None:
            close()
