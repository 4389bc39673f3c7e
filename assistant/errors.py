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
    "ChromaUnavailable",
    "CorpusError",
    "ModelError",
    "StoreError",
    "StoreLocked",
]


class BadQuestion(AssistantError):
    """An empty or unusable question."""

    exit_code = 2
