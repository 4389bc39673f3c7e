"""The outcome of one build: the ``assistant index --json`` contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class IndexSummary:
    """The outcome of one ``assistant index`` run (the ``index --json`` contract)."""

    added: int
    updated: int
    removed: int
    unchanged: int
    documents: int
    chunks: int
    seconds: float
    skipped: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.documents} documents, "
            f"{self.chunks} chunks in {self.seconds:.2f}s"
        )
