"""One exception hierarchy for everything a user can cause or fix.

It lives here, in the build side, because both sides raise it: the index code
(a missing corpus, a locked or damaged store, an unreachable Chroma server, a
damaged model file) and the query side (:mod:`assistant.errors` adds its own).
The CLI turns an :class:`AssistantError` into its message and exit code; the TUI
turns it into a notification. Anything else escaping is a bug.
"""

from __future__ import annotations


class AssistantError(Exception):
    """A problem the user can understand and act on; ``hint`` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class CorpusError(AssistantError):
    """The corpus folder is missing, not a folder, or holds nothing to index."""

    exit_code = 2


class StoreLocked(AssistantError):
    """Another process is writing the index."""

    exit_code = 3


class StoreError(AssistantError):
    """The index on disk is missing, corrupt, foreign or from a newer version."""

    exit_code = 4


class ChromaUnavailable(AssistantError):
    """The Chroma server named by --chroma-url cannot be reached."""

    exit_code = 5


class ModelError(AssistantError):
    """The embedding model files are missing or do not match their checksums."""

    exit_code = 6
