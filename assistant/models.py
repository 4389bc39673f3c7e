"""Plain data types the answering core hands to its interfaces (CLI, TUI, eval).

Nothing here imports LlamaIndex or Chroma: retrieval results are converted into
these frozen records at the boundary, so the TUI and tests never touch them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from index.summary import IndexSummary

__all__ = [
    "Answer", "Citation", "IndexSummary", "LOW_CONFIDENCE", "Passage", "SentenceCheck",
    "ShortAnswer",
]

# Below this confidence an answer is marked for checking (the chat, ask's text output).
LOW_CONFIDENCE = 0.5


def writer_name(generator: str) -> str:
    """Who writes answers, as a reader names them: "extractive" is not a name."""
    return "the extractive answerer" if generator == "extractive" else generator


def _public(record: Any) -> dict[str, Any]:
    """A record as its JSON contract: fields in order, the score rounded."""
    out = asdict(record)
    out["score"] = round(float(out["score"]), 6)
    return out


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk: ``text == file_text[start:end]`` of ``source``."""

    source: str
    start: int
    end: int
    text: str
    score: float
    chunk_id: str = ""

    def to_json(self) -> dict[str, Any]:
        out = _public(self)
        out.pop("chunk_id")
        return out


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage an answer sentence relies on, numbered as its ``[n]`` marker."""

    n: int
    source: str
    start: int
    end: int
    text: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return _public(self)


@dataclass(frozen=True, slots=True)
class ShortAnswer:
    """The answer phrase inside a quoted sentence (``short_answer`` in ``ask --json``):
    ``text == file_text[start:end]`` of ``source``. Found by :mod:`assistant.reader`."""

    text: str
    source: str
    start: int
    end: int
    score: float  # 0-1: the fitted probability that the phrase is the answer

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "start": self.start,
                "end": self.end, "score": round(float(self.score), 6)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ShortAnswer | None:
        if not data:
            return None
        return cls(str(data["text"]), str(data["source"]), int(data["start"]),
                   int(data["end"]), float(data.get("score", 0.0)))


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    """One written sentence and whether the passages it cites back it (``checks`` in
    ``ask --json``; :mod:`assistant.citecheck` makes them). Its citation numbers are
    the passages' places in the answer's ``passages`` (1-based)."""

    text: str  # without its markers
    citations: tuple[int, ...]
    supported: bool
    score: float  # 0-1: the fitted probability that the cited passages back it
    attributed: bool = False  # written without a marker; the check found the passage
    # Why a left-out sentence was left out, in a reader's words ("not found in the cited
    # passage: 'China'"); "" for a kept one (and for checks saved before reasons).
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "citations": list(self.citations),
                "supported": self.supported, "score": round(float(self.score), 6),
                "attributed": self.attributed, "reason": self.reason}

    def marks(self) -> str:
        """Its citations as the reader saw them: "[1][2]", or "no citation"."""
        return "".join(f"[{n}]" for n in self.citations) or "no citation"

    def why(self) -> str:
        """Why it was left out (a check saved before reasons: what it cites)."""
        return self.reason or f"not backed by {self.marks()}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SentenceCheck:
        return cls(str(data["text"]), tuple(int(n) for n in data.get("citations", ())),
                   bool(data["supported"]), float(data.get("score", 0.0)),
                   bool(data.get("attributed", False)), str(data.get("reason", "")))


@dataclass(frozen=True, slots=True)
class Answer:
    """What the assistant says, with the evidence behind it."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Calibrated probability that the answer holds what was asked (for a refusal:
    # that the nearest sentence would have; low, or it would not have refused).
    # None for an answer saved before answers carried one.
    confidence: float | None = None
    generator: str = "extractive"  # "extractive", or the spec of the model that wrote it
    fallback: bool = False  # a model was asked, but this is the extractive answer
    # With a model: each sentence it wrote and its citation check (dropped ones too).
    checks: tuple[SentenceCheck, ...] = ()
    searched: str = ""  # the question searched, when a follow-up was rewritten ("" = as asked)
    note: str = ""  # how it was written, when the reader should know (a fallback, a drop)
    # The answer phrase in a quoted sentence ("Huawei"), when the reader is sure of one.
    short_answer: ShortAnswer | None = None

    @property
    def low_confidence(self) -> bool:
        """An answer given, but one a reader should check against its passages."""
        return (not self.abstained and self.confidence is not None
                and self.confidence < LOW_CONFIDENCE)

    @property
    def left_out(self) -> list[SentenceCheck]:
        """The sentences a model wrote that their passages do not back (not in ``text``)."""
        return [c for c in self.checks if not c.supported]

    def confidence_note(self) -> str:
        """How sure the answer is, in words a reader can act on ('' when unknown)."""
        if self.confidence is None:
            return ""
        pct = f"{self.confidence:.0%}"
        if self.abstained:
            return f"Not answered: confidence {pct} that the nearest sentence answers it."
        if self.low_confidence:
            return f"Low confidence ({pct}): check the cited passages before relying on it."
        return f"Confidence {pct}."

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": None if self.confidence is None else round(float(self.confidence), 3),
            "generator": self.generator,
            "fallback": self.fallback,
            "checks": [c.to_json() for c in self.checks],
            "searched": self.searched or self.question,
            "note": self.note,
            "short_answer": None if self.short_answer is None else self.short_answer.to_json(),
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
