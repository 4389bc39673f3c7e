"""The exceptions a user can cause or fix: those of the index (re-exported from
:mod:`index.errors`, which both sides share) and the query side's own.
"""

from __future__ import annotations

from index.errors import (
    AssistantError,
    ChromaUnavailable,
    CorpusError,
    ModelError,
    StoreError,
    StoreLocked,
)

__all__ = [
    "AssistantError",
    "BadQuestion",
    "Cancelled",
    "ChromaUnavailable",
    "CorpusError",
    "LlmConfigError",
    "LlmUnavailable",
    "ModelError",
    "StoreError",
    "StoreLocked",
]


class BadQuestion(AssistantError):
    """An empty or unusable question."""

    exit_code = 2


class LlmConfigError(AssistantError):
    """``--llm`` names no usable model: a bad spec, a missing file or backend."""

    exit_code = 2


class LlmUnavailable(AssistantError):
    """The language model cannot be reached, or failed while answering."""

    exit_code = 7


class Cancelled(AssistantError):
    """The user stopped an answer being written (Esc in the chat, Ctrl+C in ``ask``)."""

    exit_code = 130
