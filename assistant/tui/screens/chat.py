"""The chat: questions go in at the bottom, cited answers come back above.

Each question is saved before it is answered; the answer is computed in a
thread worker and matched to its question by a token, so a cancelled (Escape)
question's late answer is dropped instead of shown. When a language model writes
the answer, its text streams into a draft (batched deltas, appended) and Escape
also sets the event that stops the model; the checked answer replaces the draft.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Input
from textual.worker import Worker, get_current_worker

from assistant.conversation import ConversationError, title_from
from assistant.errors import AssistantError
from assistant.models import Answer
from assistant.tui.messages import AnswerDelta, AnswerFailed, AnswerReady, OpenSource
from assistant.tui.render import answer_as_text, model_failed
from assistant.tui.widgets.answer_view import AnswerView
from assistant.tui.widgets.busy import BusyIndicator
from assistant.tui.widgets.chat_log import ChatLog
from assistant.tui.widgets.draft_view import DeltaBatcher, DraftView
from assistant.tui.widgets.prompt import PromptInput
from assistant.tui.widgets.question_view import QuestionView
from assistant.tui.widgets.source_list import SourceList
from assistant.tui.widgets.sources_panel import SourcesPanel
from assistant.tui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from assistant.tui.app import ChatApp

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """The question being answered, so Escape can cancel it and a late answer be dropped."""

    token: int
    turn_id: int | None
    question: str
    worker: Worker[None]
    cancel: threading.Event  # stops a model mid-answer (the worker's flag cannot)
    draft: DraftView | None = None


class ChatScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("escape", "back_to_prompt", "Back", show=False),
        Binding("tab", "cycle_focus", "Sources", priority=False),
        Binding("shift+tab", "cycle_focus(-1)", "Older sources", show=False),
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("ctrl+o", "open_conversation", "Open"),
        Binding("ctrl+s", "export", "Export"),
        Binding("ctrl+y", "copy_answer", "Copy"),
        Binding("ctrl+b", "toggle_sources", "Panel", show=False),
        Binding("pageup", "scroll_log(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_log(1)", "Scroll down", show=False),
    ]
    AUTO_FOCUS = "#prompt"

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: int | None = None
        self.pending: Pending | None = None
        self._token = 0

    @property
    def chat_app(self) -> ChatApp:
        return cast("ChatApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusLine(id="status")
        with Horizontal(id="body"):
            yield ChatLog(self.chat_app.corpus_name, id="log")
            yield SourcesPanel(id="sources-panel")
        yield BusyIndicator(id="busy")
        yield PromptInput(id="prompt", placeholder="Ask a question about the documents, then Enter",
                          select_on_focus=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "New conversation"

    @property
    def log_view(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    # -- asking ------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self.prompt:
            return
        question = event.value.strip()
        if not question:
            return
        if self.pending is not None:
            self.notify("Still answering the last question; Esc cancels it.", severity="warning")
            return
        self.prompt.clear()
        self.prompt.remember(question)
        self.ask(question)

    def ask(self, question: str) -> None:
        """Save the question, show it, and answer it in a worker."""
        history = self._history()
        turn_id = self._save_question(question)
        self.log_view.add_question(question)
        self._token += 1
        cancel = threading.Event()
        worker = self._answer(self._token, turn_id, question, history, cancel)
        self.pending = Pending(self._token, turn_id, question, worker, cancel)
        waiting = not self.chat_app.backend.ready
        self.query_one(BusyIndicator).start(
            "Waiting for the index to load…" if waiting else "Searching the documents…")
        self.refresh_bindings()

    def _history(self) -> list[str]:
        if self.conversation_id is None:
            return []
        try:
            return self.chat_app.store.questions(self.conversation_id)
        except ConversationError:
            return [view.question for view in self.log_view.query(QuestionView)]

    def _save_question(self, question: str) -> int | None:
        store = self.chat_app.store
        try:
            if self.conversation_id is None:
                self.conversation_id = store.create(title_from(question))
                self.sub_title = title_from(question)
            return store.add_question(self.conversation_id, question)
        except ConversationError as exc:
            self.chat_app.show_error(exc, title="Not saved")
            return None

    @work(thread=True, exclusive=True, group="ask", exit_on_error=False)
    def _answer(self, token: int, turn_id: int | None, question: str, history: list[str],
                cancel: threading.Event) -> None:
        worker = get_current_worker()
        batch = DeltaBatcher(lambda text: self.post_message(AnswerDelta(token, text)))
        try:
            answer = self.chat_app.backend.ask(question, history, lambda: worker.is_cancelled,
                                               on_delta=batch.add, cancel=cancel)
        except AssistantError as exc:
            self.post_message(AnswerFailed(token, turn_id, exc))
            return
        except Exception as exc:  # a bug: say so, keep the app alive, log the details
            log.exception("answering %r failed", question)
            self.post_message(AnswerFailed(token, turn_id, AssistantError(
                f"Unexpected error while answering ({type(exc).__name__}: {exc}).",
                "The details are in the log; please report it.")))
            return
        if answer is not None and not worker.is_cancelled:
            self.post_message(AnswerReady(token, turn_id, answer))

    async def on_answer_delta(self, message: AnswerDelta) -> None:
        pending = self.pending
        if pending is None or message.token != pending.token:
            return
        if pending.draft is None:
            draft = await self.log_view.add_draft(self.chat_app.backend.generator)
            if self.pending is not pending:  # cancelled or answered while it mounted
                draft.remove()
                return
            pending.draft = draft
            self.query_one(BusyIndicator).start("The model is writing…")
        pending.draft.add(message.text)
        self.log_view.call_after_refresh(self.log_view.scroll_end, animate=False)

    def on_answer_ready(self, message: AnswerReady) -> None:
        if self.pending is None or message.token != self.pending.token:
            log.debug("dropping a late answer to %r", message.answer.question)
            return
        self._done()
        if model_failed(message.answer):
            self.notify(message.answer.note, title="Language model not reachable",
                        severity="warning", timeout=12, markup=False)
        if message.turn_id is not None:
            try:
                self.chat_app.store.set_answer(message.turn_id, message.answer)
            except ConversationError as exc:
                self.chat_app.show_error(exc, title="Answer not saved")
        self.show_answer(message.answer)

    def on_answer_failed(self, message: AnswerFailed) -> None:
        if self.pending is None or message.token != self.pending.token:
            return
        self._done()
        self.log_view.add_note(f"Not answered: {message.error.message}", "error")
        self.chat_app.show_error(message.error, title="Could not answer")

    def show_answer(self, answer: Answer) -> None:
        self.log_view.add_answer(answer)
        number = len(self.log_view.answers)
        self.query_one(SourcesPanel).add_answer(number, answer)
        self.call_after_refresh(self.refresh_bindings)  # "tab Sources" now applies

    def action_cancel(self) -> None:
        pending = self.pending
        if pending is None:
            return
        pending.cancel.set()
        pending.worker.cancel()
        self._done()
        stopped = "The model was stopped; its draft is not kept. " if pending.draft else ""
        self.log_view.add_note(f"Cancelled. {stopped}The question is kept; ask again with Up, "
                               "Enter.")

    def on_unmount(self) -> None:
        if self.pending is not None:  # quitting: let the model's thread end at once
            self.pending.cancel.set()

    def _done(self) -> None:
        if self.pending is not None and self.pending.draft is not None:
            self.pending.draft.remove()  # the checked answer (or a note) takes its place
        self.pending = None
        self.query_one(BusyIndicator).stop()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.pending is not None
        if action == "back_to_prompt":
            return self.focused is not self.prompt
        if action == "cycle_focus":
            return any(s.option_count for s in self.log_view.source_lists)
        return True

    def on_key(self, event: events.Key) -> None:
        """Typing while a source list has the keyboard goes to the question box."""
        if isinstance(self.focused, SourceList) and event.is_printable and event.character:
            event.stop()
            self.prompt.focus()
            self.prompt.insert_text_at_cursor(event.character)

    def action_back_to_prompt(self) -> None:
        self.prompt.focus()

    def on_service_ready_for_chat(self) -> None:
        """Called by the app when loading ends, to relabel a waiting question."""
        if self.pending is not None:
            self.query_one(BusyIndicator).start("Searching the documents…")

    # -- sources -----------------------------------------------------------

    def on_open_source(self, message: OpenSource) -> None:
        from assistant.tui.screens.source import SourceScreen

        self.app.push_screen(SourceScreen(message.items, message.index, message.kind,
                                          message.question, message.focus))

    def action_cycle_focus(self, step: int = 1) -> None:
        """Tab: question box ⇄ newest answer's sources; Shift+Tab walks to older ones."""
        lists = [s for s in self.log_view.source_lists if s.option_count]
        focused = self.focused
        if not lists:
            self.prompt.focus()
            return
        if focused in lists:
            i = lists.index(cast(SourceList, focused))
            if step > 0 or i == 0:
                self.prompt.focus()
                return
            target = lists[i - 1]
        elif focused is self.prompt or focused is None:
            target = lists[-1]
        else:
            self.app.action_focus_next() if step > 0 else self.app.action_focus_previous()
            return
        target.focus()
        if target.highlighted is None:
            target.highlighted = 0
        target.scroll_visible()

    def action_toggle_sources(self) -> None:
        panel = self.query_one(SourcesPanel)
        panel.toggle_class("-shown")
        if panel.has_class("-shown"):
            panel.options.focus()
        else:
            self.prompt.focus()

    def action_scroll_log(self, pages: int) -> None:
        log_view = self.log_view
        log_view.scroll_page_down() if pages > 0 else log_view.scroll_page_up()

    # -- conversations -----------------------------------------------------

    def current_answer(self) -> AnswerView | None:
        focused = self.focused
        for view in self.log_view.answers:
            if focused is not None and focused in view.query(SourceList):
                return view
        answers = self.log_view.answers
        return answers[-1] if answers else None

    def action_copy_answer(self) -> None:
        view = self.current_answer()
        if view is None:
            self.notify("No answer to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(answer_as_text(view.answer))
        n = len(view.answer.citations)
        self.notify(f"Copied the answer with {n} citation{'s' if n != 1 else ''}.")

    async def new_conversation(self) -> None:
        if self.pending is not None:
            self.action_cancel()
        self.conversation_id = None
        self.sub_title = "New conversation"
        await self.log_view.clear()
        self.query_one(SourcesPanel).clear()
        self.prompt.focus()

    async def action_new_conversation(self) -> None:
        await self.new_conversation()

    async def load_conversation(self, conversation_id: int) -> None:
        """Replay a saved conversation: its questions, answers and sources."""
        app = self.chat_app
        try:
            info = app.store.get(conversation_id)
            turns = app.store.turns(conversation_id)
        except ConversationError as exc:
            app.show_error(exc)
            return
        if info is None:
            return
        await self.new_conversation()
        self.conversation_id = conversation_id
        self.sub_title = info.title
        for turn in turns:
            self.log_view.add_question(turn.question)
            if turn.answer is None:
                self.log_view.add_note("Not answered (cancelled or interrupted).")
            else:
                self.show_answer(turn.answer)
        self.prompt.set_history([t.question for t in turns])

    def action_open_conversation(self) -> None:
        from assistant.tui.screens.conversations import ConversationsScreen

        def opened(conversation_id: int | None) -> None:
            if conversation_id is not None:
                self.run_worker(self.load_conversation(conversation_id), group="load-chat")

        self.app.push_screen(ConversationsScreen(self.conversation_id), opened)

    def action_export(self) -> None:
        self.chat_app.export_conversation(self.conversation_id)
