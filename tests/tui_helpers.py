"""Shared pieces of the TUI tests: building the app, waiting like a person, reading the screen."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot

from assistant.config import PROJECT_ROOT, Config
from assistant.models import Answer, Citation, Passage, ShortAnswer
from assistant.tui.app import ChatApp, make_app
from assistant.tui.screens.chat import ChatScreen

SEEDS = PROJECT_ROOT / "seeds"
SIZE = (100, 32)
# Questions about the seed articles whose answers the chat tests know the shape of.
TWO_CITATIONS = "What does China provide Russia and what does Russia supply in return?"
ONE_CITATION = "Where did Vladimir Putin and Xi Jinping meet?"
UNANSWERABLE = "What is the boiling point of water on Mars?"


def copy_seeds(target: Path) -> Path:
    shutil.copytree(SEEDS, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def chat(app: Any) -> ChatScreen:
    """The chat screen, which must be the one showing."""
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


def app_over(config: Config, service: Any, **kwargs: Any) -> ChatApp:
    """The real app factory, handed an already-open service."""
    return make_app(config, service_factory=lambda *_a, **_k: service, **kwargs)


async def settle(pilot: Pilot[Any], rounds: int = 4) -> None:
    """Wait until workers are done and the widgets they added have mounted and painted."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def ask(pilot: Pilot[Any], question: str, typed: bool = False) -> None:
    """Type (or paste, which is quicker under Pilot) a question, press Enter, wait."""
    await enter_text(pilot, question, typed)
    await pilot.press("enter")
    await settle(pilot)


async def enter_text(pilot: Pilot[Any], text: str, typed: bool = False) -> None:
    if typed:
        await pilot.press(*text)
        return
    focused = pilot.app.focused
    assert focused is not None
    focused.post_message(events.Paste(text))
    await pilot.pause()


def screen_text(app: ChatApp) -> str:
    """What the terminal shows, as plain text, line by line."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def screen_styles(app: ChatApp) -> list[Any]:
    return [seg.style for strip in app.screen._compositor.render_strips() for seg in strip
            if seg.style is not None]


class SharedService:
    """The module's one real Assistant, with asks recorded; the app may not close it."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self.asked: list[tuple[str, list[str]]] = []

    def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
        self.asked.append((question, list(history)))
        return self._service.ask(question, history=history, **kwargs)

    def close(self) -> None:
        """The module fixture closes the real one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


class FixedService:
    """Real seed documents and fixed answers: screenshots must not move when ranking does."""

    generator = "extractive"

    def __init__(self, corpus: Path) -> None:
        self.corpus = corpus

    def use_llm(self, spec: Any) -> None:
        self.generator = spec.name if spec is not None else "extractive"

    def document_text(self, source: str) -> str:
        return (self.corpus / source).read_bytes().decode("utf-8")

    def _cite(self, n: int, source: str, sentence: str) -> tuple[Citation, str]:
        """The line of ``source`` holding ``sentence``, cited as a passage; and the sentence."""
        text = self.document_text(source)
        at = text.index(sentence)
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        return Citation(n, source, start, end, text[start:end], 0.5), sentence

    def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
        c1, s1 = self._cite(1, "000_00f3cd67555e5323.txt",
                            "The UK assessment notes that China provides Russia with critical "
                            "technology and economic lifelines, insulating Moscow from sanctions.")
        c2, s2 = self._cite(2, "002_5cf907d0daebd109.txt",
                            "They united in their criticism of US policy and decision-making on "
                            "trade, Iran, North Korea and the Middle East.")
        passages = tuple(Passage(c.source, c.start, c.end, c.text, c.score) for c in (c1, c2))
        return Answer(question, f"{s1} [1] {s2} [2]", False, (c1, c2), passages, {"total": 1.0},
                      confidence=0.42)

    def status(self) -> Any:
        from assistant.service import Status

        return Status(3, 32, self.corpus / "store", self.corpus, None)

    def refresh(self, progress: Any = None, rebuild: bool = False) -> None:
        return None

    def reload_if_changed(self) -> bool:
        return False


PHRASE = "critical technology and economic lifelines"  # in FixedService's first sentence


class ShortService(FixedService):
    """FixedService's answer with the answer phrase the reader would find in it
    (``phrase``, read at the place of :data:`PHRASE` in the first cited document)."""

    def __init__(self, corpus: Path, phrase: str = PHRASE) -> None:
        super().__init__(corpus)
        self.phrase = phrase

    def ask(self, question: str, history: Sequence[str] = (), **kwargs: Any) -> Answer:
        answer = super().ask(question, history)
        source = answer.citations[0].source
        at = self.document_text(source).index(PHRASE)
        return dataclasses.replace(answer, short_answer=ShortAnswer(
            self.phrase, source, at, at + len(self.phrase), 0.9))
