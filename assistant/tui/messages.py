"""Small messages the workers and widgets report with; plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from assistant.errors import AssistantError
from assistant.models import Answer, Citation, Passage


@dataclass
class IndexProgress(Message):
    """The index build advanced: ``done`` of ``total`` passages embedded."""

    done: int
    total: int


@dataclass
class ServiceReady(Message):
    """The service is open; ``status`` is its ``Assistant.status()``."""

    status: Any
    rebuilt: bool = False


@dataclass
class ServiceFailed(Message):
    error: AssistantError


@dataclass
class AnswerReady(Message):
    """An answer arrived for the question numbered ``token``."""

    token: int
    turn_id: int | None
    answer: Answer


@dataclass
class AnswerFailed(Message):
    token: int
    turn_id: int | None
    error: AssistantError


@dataclass
class OpenSource(Message):
    """Show ``items[index]`` highlighted in its document (``kind``: citation or passage)."""

    items: tuple[Citation | Passage, ...]
    index: int
    kind: str = "citation"
    question: str = ""
    focus: tuple[str, ...] = ()
    """Per item, the quoted claim inside the passage to stress (``""``: none)."""


@dataclass
class AnswerDelta(Message):
    """More of the model's draft for the question numbered ``token`` (several tokens'
    worth: the worker batches them so the screen keeps up)."""

    token: int
    text: str


@dataclass
class AnswererChanged(Message):
    """The answers are now written by ``generator`` ("extractive" or a model's spec)."""

    generator: str


@dataclass
class AnswererFailed(Message):
    """The model asked for could not be loaded; ``generator`` still writes the answers."""

    error: AssistantError
    generator: str
