"""The chat app: a thin shell that owns the service, the conversation store and the palette.

:func:`make_app` is the one factory the CLI and the tests both use; the answering
service comes from ``service_factory`` and is opened in a worker thread after the
first paint, so the screen appears at once and the person can type while the
model and index load (or get built, with progress in the status line). A language
model (``--llm``, or "Answer with a language model…" in the palette) is loaded in
a worker too; the status line says who writes the answers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import get_current_worker

from assistant.config import Config
from assistant.conversation import ConversationError, ConversationStore
from assistant.errors import AssistantError
from assistant.models import writer_name
from assistant.tui.backend import Backend, ServiceFactory, open_assistant
from assistant.tui.commands import ChatCommands
from assistant.tui.messages import (
    AnswererChanged,
    AnswererFailed,
    IndexProgress,
    ServiceFailed,
    ServiceReady,
)
from assistant.tui.render import one_line
from assistant.tui.screens.chat import ChatScreen
from assistant.tui.widgets.status_line import ServiceState

if TYPE_CHECKING:
    from assistant.llm import LlmSpec

log = logging.getLogger(__name__)
StoreFactory = Callable[[], ConversationStore]
TIMINGS_ENV = "ASSISTANT_TUI_TIMINGS"  # benchmarks: append paint/ready times, quit when ready


class ChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "Research assistant"
    COMMANDS = {ChatCommands}  # ours, then Textual's built-in commands (see commands.py)
    BINDINGS = [Binding("f1", "help", "Help")]

    service_state: reactive[ServiceState] = reactive(ServiceState, init=False)
    answerer: reactive[str] = reactive("", init=False)  # who writes the answers

    def __init__(self, config: Config, service_factory: ServiceFactory,
                 store_factory: StoreFactory, timings: Path | None = None,
                 llm: LlmSpec | None = None) -> None:
        super().__init__()
        self.config = config
        self.backend = Backend(config, service_factory, llm)
        self.store_factory = store_factory
        self.store = ConversationStore.in_memory()
        self.corpus_name = config.corpus.name or str(config.corpus)
        self.timings = timings

    def get_default_screen(self) -> Screen[Any]:
        return ChatScreen()

    @property
    def chat(self) -> ChatScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, ChatScreen)
        return screen

    def on_mount(self) -> None:
        self._mark("mount")
        llm = self.backend.llm
        self.answerer = f"{llm.name} (loading…)" if llm is not None else "extractive"
        self._open_store()
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        """Start the heavy imports only now: a thread holding the GIL would delay the paint."""
        self._mark("paint")
        self.load_service()

    def on_unmount(self) -> None:
        self.store.close()

    def _mark(self, event: str) -> None:
        """Record when the screen first painted and when the service got ready."""
        log.info("chat %s", event)
        if self.timings is not None:
            with self.timings.open("a") as fh:
                fh.write(json.dumps({"event": event, "t": time.time()}) + "\n")

    def _open_store(self) -> None:
        try:
            self.store = self.store_factory()
        except AssistantError as exc:
            self.show_error(exc, title="Conversations will not be saved")
            return
        if self.store.notice:
            self.notify(self.store.notice, title="Conversation history", severity="warning",
                        timeout=15, markup=False)

    # -- the service -------------------------------------------------------

    @work(thread=True, exclusive=True, group="service", exit_on_error=False)
    def load_service(self, rebuild: bool = False) -> None:
        worker = get_current_worker()
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if done >= total or now - last > 0.1:
                last = now
                self.post_message(IndexProgress(done, total))

        try:
            service = self.backend.load(progress, rebuild, lambda: worker.is_cancelled)
            if service is None:
                return
            status = service.status()
        except AssistantError as exc:
            self.post_message(ServiceFailed(exc))
            return
        self.post_message(ServiceReady(status, rebuild))

    def reindex(self, rebuild: bool = False) -> None:
        self.service_state = ServiceState("indexing", "rebuilding…" if rebuild else "checking…")
        self.load_service(rebuild)

    def on_index_progress(self, message: IndexProgress) -> None:
        if message.done >= message.total:
            self.service_state = ServiceState("loading", "index built; opening it")
        else:
            self.service_state = ServiceState(
                "indexing", f"{message.done}/{message.total} passages embedded")

    def on_service_ready(self, message: ServiceReady) -> None:
        status = message.status
        self.service_state = ServiceState("ready", f"{_count(status.documents, 'document')}, "
                                          f"{_count(status.chunks, 'passage')}"
                                          f" · corpus {self.corpus_name}")
        self.chat.on_service_ready_for_chat()
        self.answerer = self.backend.generator
        if self.backend.llm_error is not None:
            self.show_error(self.backend.llm_error, title="Answering extractively",
                            then="Ctrl+P › “Answer with a language model…” tries another.")
            self.backend.llm_error = None
        summary = getattr(self.backend.service, "last_refresh", None)
        skipped = getattr(summary, "skipped", ())
        if skipped:
            names = ", ".join(f"{s} ({why})" for s, why in skipped[:3])
            more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            self.notify(f"Skipped {names}{more}.", title="Some files were not indexed",
                        severity="warning", markup=False, timeout=10)
        notice = getattr(self.backend.service, "notice", None)
        if notice:
            self.notify(notice, title="Index not refreshed", severity="warning", markup=False,
                        timeout=15)
        if message.rebuilt:
            self.notify("The index was rebuilt.", timeout=4)
        self._mark("ready")
        if self.timings is not None:
            self.exit()

    def on_service_failed(self, message: ServiceFailed) -> None:
        error = message.error
        self.answerer = self.backend.generator  # loaded with the index, once it loads
        command = _recovery(error)
        fix = "" if command.startswith("Rebuild") else "fix it, then "
        self.service_state = ServiceState(
            "error", f"{one_line(error.message, 48)} · {fix}Ctrl+P › {command}")
        self.show_error(error, title="Index not loaded",
                        then=f"In the chat: {fix}choose “{command}” in the command palette "
                             "(Ctrl+P).")
        self._mark("failed")
        if self.timings is not None:
            self.exit(return_code=1)

    def show_error(self, error: AssistantError, title: str = "Error", then: str = "") -> None:
        """An :class:`AssistantError` as a notification: what went wrong and what to do."""
        text = "\n".join(x for x in (error.message, error.hint or "", then) if x)
        self.notify(text, title=title, severity="error", timeout=12, markup=False)

    # -- who writes the answers --------------------------------------------

    def action_choose_llm(self) -> None:
        """Ask for a model spec, then load it off the UI thread."""
        from assistant.tui.screens.prompt import PromptScreen

        llm = self.backend.llm
        default = "local" if llm is None else f"{llm.name} {llm.url or ''}".strip()

        def chosen(text: str | None) -> None:
            if text:
                self.switch_answerer(text)

        self.push_screen(PromptScreen(
            "Answer with a language model", default,
            "local · ollama:MODEL · openai:MODEL [URL] · llamacpp:PATH.gguf · Enter loads it"),
            chosen)

    def switch_answerer(self, text: str | None) -> None:
        """Answer with the model ``text`` names from now on (None: extractively)."""
        self.answerer = f"{one_line(text, 40)} (loading…)" if text else "extractive"
        self._load_answerer(text)

    @work(thread=True, exclusive=True, group="llm", exit_on_error=False)
    def _load_answerer(self, text: str | None) -> None:
        from assistant.llm import resolve

        worker = get_current_worker()
        try:
            spec, url = (text or "").strip(), None
            head, _, tail = spec.rpartition(" ")
            if head and "://" in tail:  # "openai:MODEL http://host:port/v1"
                spec, url = head.strip(), tail
            name = self.backend.use_llm(resolve(spec or "extractive", url),
                                        lambda: worker.is_cancelled)
        except AssistantError as exc:
            self.post_message(AnswererFailed(exc, self.backend.generator))
            return
        except Exception as exc:  # a bug in a backend: say so, keep the chat up
            log.exception("loading the language model %r failed", text)
            self.post_message(AnswererFailed(AssistantError(
                f"Could not load the language model ({type(exc).__name__}: {exc}).",
                "The details are in the log."), self.backend.generator))
            return
        if name is not None:
            self.post_message(AnswererChanged(name))

    def on_answerer_changed(self, message: AnswererChanged) -> None:
        self.answerer = message.generator
        extractive = message.generator == "extractive"
        self.notify("Answers are extracted from the passages." if extractive else
                    f"Answers are written by {message.generator}; each sentence is checked "
                    "against the passages it cites.", title="Answerer", markup=False)

    def on_answerer_failed(self, message: AnswererFailed) -> None:
        self.answerer = message.generator
        self.show_error(message.error, title="Language model not loaded",
                        then=f"Answers are still written by {writer_name(message.generator)}.")

    # -- actions (palette and keys) ----------------------------------------

    def chat_action(self, name: str) -> Callable[[], Any]:
        """A palette command that returns to the chat screen and runs one of its actions."""
        async def run() -> None:
            while len(self.screen_stack) > 1:
                await self.pop_screen()
            await self.run_action(name, self.chat)
        return run

    def action_help(self) -> None:
        from assistant.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_rename_conversation(self) -> None:
        from assistant.tui.screens.prompt import PromptScreen

        cid = self.chat.conversation_id
        info = self.store.get(cid) if cid is not None else None
        if cid is None or info is None:
            self.notify("Ask a question first: a conversation is saved with its first question.",
                        severity="warning")
            return

        def renamed(title: str | None) -> None:
            if title:
                try:
                    self.store.rename(cid, title)
                except ConversationError as exc:
                    self.show_error(exc)
                    return
                self.conversation_renamed(cid, title)

        self.push_screen(PromptScreen("Rename conversation", info.title), renamed)

    def conversation_renamed(self, conversation_id: int, title: str) -> None:
        if self.chat.conversation_id == conversation_id:
            self.chat.sub_title = title

    def conversation_deleted(self, conversation_id: int) -> None:
        if self.chat.conversation_id == conversation_id:
            self.run_worker(self.chat.new_conversation(), group="load-chat")

    def export_conversation(self, conversation_id: int | None) -> None:
        from assistant.export import export_path, exports_folder
        from assistant.tui.screens.prompt import PromptScreen

        info = self.store.get(conversation_id) if conversation_id is not None else None
        if conversation_id is None or info is None:
            self.notify("Nothing to export yet: ask a question first.", severity="warning")
            return
        default = export_path(exports_folder(), info.title)

        def chosen(target: str | None) -> None:
            from assistant.export import export_markdown

            if not target:
                return
            path = Path(target).expanduser()
            try:
                text = export_markdown(info.title, self.store.turns(conversation_id))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except (OSError, AssistantError) as exc:
                message = exc.message if isinstance(exc, AssistantError) else str(exc)
                self.show_error(AssistantError(f"Could not export to '{path}' ({message})."))
                return
            self.notify(f"Exported to {path}", title="Exported", markup=False)

        self.push_screen(PromptScreen("Export the conversation to Markdown", str(default),
                                      "Enter to write the file · Esc to cancel"), chosen)


def _recovery(error: AssistantError) -> str:
    """The palette command that fixes ``error``: a damaged index needs a rebuild."""
    return "Rebuild index from scratch" if "--rebuild" in (error.hint or "") \
        else "Re-index documents"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def make_app(config: Config, service_factory: ServiceFactory | None = None,
             store_factory: StoreFactory | None = None, llm: LlmSpec | None = None) -> ChatApp:
    """The chat over ``config``, answering with ``llm`` (None: extractively); tests pass
    their own factories, the CLI the defaults."""
    timings = os.environ.get(TIMINGS_ENV)
    return ChatApp(
        config,
        service_factory or open_assistant,
        store_factory or ConversationStore.open,
        Path(timings) if timings else None,
        llm,
    )


def _log_to_file() -> None:
    """Nothing may print while the TUI runs: send log records to a file instead, with
    any API key taken out (a library's error text may quote it)."""
    from assistant.config import user_home
    from assistant.llm import redact_logs

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler):
            root.removeHandler(handler)
    try:
        folder = user_home() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(folder / "chat.log", encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    redact_logs()


def run_chat(config: Config, llm: LlmSpec | None = None) -> int:
    """``assistant`` / ``assistant chat``: run the chat until the person quits."""
    _log_to_file()
    app = make_app(config, llm=llm)
    app.run()
    if app.backend.loading:
        # The loading thread cannot be interrupted and Python would wait for it (an index
        # build takes seconds). Quitting must be quick, and a build cut short is safe: the
        # next run finds the 'dirty' marker and reconciles the stores.
        log.warning("quit while the index was loading; leaving without waiting for it")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(app.return_code or 0)
    app.backend.close()
    return app.return_code or 0
