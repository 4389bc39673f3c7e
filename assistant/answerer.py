"""What every answerer is to the service, the CLI and the chat.

An answerer turns a question and what retrieval found into a :class:`Drafted`
answer. The extractive one (:mod:`assistant.answer`) is the default; a generative
one (:mod:`assistant.generate`: a language model, its citations checked) implements
the same protocol, so nothing above them needs to know which wrote the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assistant.abstain import Evidence
    from assistant.models import Citation, Passage, SentenceCheck
    from assistant.retrieve import Retrieval


@dataclass(frozen=True, slots=True)
class Drafted:
    """What the answerer hands back: the answer and what it rests on."""

    text: str
    abstained: bool
    citations: list[Citation]
    passages: list[Passage]
    evidence: Evidence
    confidence: float  # calibrated probability that the answer is supported
    draft: str = ""  # the answer it would give, also when it abstains (for calibration)
    generator: str = "extractive"  # who wrote it: "extractive" or the model's spec
    fallback: bool = False  # a model was asked, but the extractive answer is given
    checks: tuple[SentenceCheck, ...] = ()  # each written sentence's citation check
    timings_ms: dict[str, float] = field(default_factory=dict)  # first_token, generate
    note: str = ""  # what the reader should know about how it was written
    # The sentences the extractive ranking rates likeliest to answer, best first: where
    # the answer is, which a written answer must agree with (assistant.generate).
    leading: tuple[str, ...] = ()
    # The sentences the extractive answer quotes, as ``(source, start, end, text)`` with
    # ``text == file_text[start:end]``: where the reader looks for the answer phrase.
    quoted: tuple[tuple[str, int, int, str], ...] = ()


class Answerer(Protocol):
    name: str  # "extractive", or the spec of the model that writes the answers

    def answer(
        self,
        question: str,
        retrieval: Retrieval,
        context: str = "",
        k: int = 6,
        on_delta: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Drafted:
        """The answer; a writing answerer streams its text to ``on_delta`` as it comes,
        and stops (raising :class:`~assistant.errors.Cancelled`) once ``cancel`` is set."""
        ...
