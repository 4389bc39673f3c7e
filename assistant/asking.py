"""One question's way through a loaded index: search, draft, answer phrase, timings.

:class:`~assistant.service.Assistant` owns the loading (index, models, stores) and hands
each question the :class:`Parts` loaded at that moment, so an answer is made from one
state even when a reload or a switch of model happens meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from assistant.errors import LlmUnavailable
from assistant.models import Answer, ShortAnswer

if TYPE_CHECKING:
    from assistant.answerer import Answerer, Drafted
    from assistant.reader import Reader
    from assistant.retrieve import HybridRetriever
    from index.lexical import LexicalIndex


@dataclass(frozen=True)
class Parts:
    """What one question is answered with: the retriever and the lexical index it reads
    (its snapshot holds one state), the extractive answerer, the answerer that writes
    (the same one, or a model's whose citations are checked), the reader of answer
    phrases, who writes (``generator``) and whether a follow-up carries the earlier
    questions' words into what is searched."""

    retriever: HybridRetriever
    lexical: LexicalIndex
    extractive: Answerer
    answerer: Answerer
    reader: Reader | None
    generator: str
    carry_followups: bool = True


def ask(
    parts: Parts,
    question: str,
    history: Sequence[str],
    k: int,
    on_delta: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    fallback_on_failure: bool = False,
) -> Answer:
    """Answer ``question`` (see :meth:`assistant.service.Assistant.ask`)."""
    from assistant.answer import validate_question

    t0 = time.perf_counter()
    q = validate_question(question)
    earlier = [h for h in (safe_history(x) for x in history[-2:]) if h]
    answerer = parts.answerer
    timings: dict[str, float] = {}
    context = " ".join(earlier)
    plain = None  # what standalone gave, computed at most once
    try:
        searched, ready = q, None
        if earlier and hasattr(answerer, "condense"):
            # The history still weighs in: a rewrite that lost the thread is helped
            # back by it, a good one hardly moved.
            searched = answerer.condense(q, earlier) or q
            timings["condense"] = (time.perf_counter() - t0) * 1000
        if searched == q:
            plain = standalone(parts, q, earlier, k, context)
            searched, ready = plain
        if ready is not None and answerer is parts.extractive:
            drafted, t1 = ready  # the carried question was answered just now
        else:
            drafted, t1 = draft(parts, answerer, searched, k, context, on_delta, cancel)
    except LlmUnavailable as exc:
        if not fallback_on_failure:
            raise
        searched, ready = plain or standalone(parts, q, earlier, k, context)
        drafted, t1 = ready or draft(parts, parts.extractive, searched, k, context)
        drafted = replace(drafted, generator=parts.generator, fallback=True,
                          note=f"{exc.message} Answered extractively.")
    t_read = time.perf_counter()
    short = short_answer(parts.reader, searched, drafted)
    t2 = time.perf_counter()
    if parts.reader is not None:
        timings["read"] = (t2 - t_read) * 1000
    for name, ms in drafted.timings_ms.items():
        timings[name] = (t1 - t0) * 1000 + ms  # from the moment the question came
    return Answer(
        question=q,
        text=drafted.text,
        abstained=drafted.abstained,
        citations=tuple(drafted.citations),
        passages=tuple(drafted.passages),
        confidence=drafted.confidence,
        generator=drafted.generator,
        fallback=drafted.fallback,
        checks=tuple(drafted.checks),
        searched="" if searched == q else searched,
        note=drafted.note,
        short_answer=short,
        timings_ms={
            **timings,
            "retrieve": (t1 - t0) * 1000,
            "answer": (t2 - t1) * 1000,
            "total": (t2 - t0) * 1000,
        },
    )


def short_answer(reader: Reader | None, question: str, drafted: Drafted) -> ShortAnswer | None:
    """The answer phrase in the sentences the extractive answer quotes. A written
    answer gets it only when a sentence the check kept holds it: the phrase must be
    what the shown answer says."""
    if reader is None or drafted.abstained:
        return None
    found = reader.read(question, drafted.quoted, drafted.confidence)
    if found is None or drafted.generator == "extractive" or drafted.fallback:
        return found
    phrase = " ".join(found.text.lower().split())
    kept = [" ".join(c.text.lower().split()) for c in drafted.checks if c.supported]
    return found if any(phrase in k for k in kept) else None


def standalone(
    parts: Parts, question: str, earlier: Sequence[str], k: int, context: str
) -> tuple[str, tuple[Drafted, float] | None]:
    """What to search for a follow-up without a model's rewrite: the question with
    the earlier questions' content carried, when the extractive answer found with it
    speaks to the question itself (or is a refusal); else the question as asked.
    With the carried question comes that extractive answer (and ``draft``'s time),
    so that it is not drafted twice; None when the question is searched as asked."""
    from assistant.followup import speaks_to
    from assistant.followup import standalone as carry

    carried = carry(question, earlier) if parts.carry_followups else question
    if carried == question:
        return question, None
    drafted = draft(parts, parts.extractive, carried, k, context)
    if drafted[0].abstained or speaks_to(question, drafted[0].text):
        return carried, drafted
    return question, None


def draft(
    parts: Parts,
    answerer: Answerer,
    question: str,
    k: int,
    context: str,
    on_delta: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Drafted, float]:
    """Retrieve for ``question`` and have ``answerer`` answer from that one snapshot;
    and when retrieval ended (the answerer's time starts there)."""
    with parts.lexical.snapshot():
        retrieval = parts.retriever.retrieve(question, k, context=context)
        t1 = time.perf_counter()
        drafted = answerer.answer(
            question, retrieval, context=context, k=k, on_delta=on_delta, cancel=cancel
        )
    return drafted, t1


def safe_history(text: str) -> str:
    from assistant.answer import MAX_QUESTION_CHARS
    from assistant.textsafe import clean_question

    return clean_question(str(text))[:MAX_QUESTION_CHARS]
