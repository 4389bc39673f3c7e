"""The chat's side of the answering service: what it needs, and one caller at a time.

The service is built by a factory in a worker thread (that is where LlamaIndex
and Chroma get imported) and then used from other worker threads, so a lock
keeps to the service's "one caller at a time" rule and an event tells waiting
questions that loading has finished, well or badly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from assistant.config import Config
from assistant.errors import AssistantError, StoreError
from assistant.models import Answer

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


class ChatService(Protocol):
    """What the chat uses of :class:`assistant.service.Assistant`."""

    def ask(self, question: str, history: Sequence[str] = ()) -> Answer: ...
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

    def __init__(self, config: Config, factory: ServiceFactory) -> None:
        self.config = config
        self.factory = factory
        self.service: ChatService | None = None
        self.error: AssistantError | None = None
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

    def ask(self, question: str, history: Sequence[str],
            cancelled: Callable[[], bool]) -> Answer | None:
        """Wait for loading to finish, then answer; ``None`` if cancelled meanwhile."""
        while not self._settled.wait(0.05):
            if cancelled():
                return None
        with self._lock:
            if cancelled():
                return None
            if self.service is None:
                raise self.error or StoreError("The index is not loaded.")
            self.service.reload_if_changed()  # pick up an 'assistant index' run elsewhere
            return self.service.ask(question, history=list(history))

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
