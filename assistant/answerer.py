"""What every answerer is to the service, the CLI and the chat.

An answerer turns a question and what retrieval found into a :class:`Drafted`
answer. The extractive one (:mod:`assistant.answer`) is the default; a generative
one (a language model, its citations checked) is to implement the same protocol,
so that nothing above it needs to know which wrote the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assistant.abstain import Evidence
    from assistant.models import Citation, Passage
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


class Answerer(Protocol):
    name: str  # "extractive", or the spec of the model that writes the answers

    def answer(
        self, question: str, retrieval: Retrieval, context: str = "", k: int = 6
    ) -> Drafted: ...
