"""``assistant eval``: answer a JSONL file of questions in one process and score them.

Input lines: ``{"id", "question", "history"?, "answers"?}``; ``answers`` is a list
of groups of alternative strings, and an answer matches when every group has an
alternative inside the answer text (case- and punctuation-insensitive). An empty
``answers`` list marks a question the documents cannot answer.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, BadQuestion

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                         "\u2013": "-", "\u2014": "-", "\u2011": "-"})


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = re.sub(r"[^\w\s'-]", " ", text)
    return " ".join(text.split())


def matches(answer: str, groups: Sequence[Sequence[str]]) -> bool:
    norm = f" {normalize(answer)} "
    return all(any(f" {normalize(alt)} " in norm or normalize(alt) in norm for alt in g)
               for g in groups)


def read_questions(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise AssistantError(f"No questions file at '{path}'.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AssistantError(f"Cannot read '{path}' ({exc}).") from exc
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise AssistantError(f"{path}:{n}: not valid JSON ({exc.msg}).") from None
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise AssistantError(f"{path}:{n}: each line needs a \"question\" string.")
        item.setdefault("id", str(n))
        items.append(item)
    if not items:
        raise AssistantError(f"'{path}' holds no questions.")
    return items


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (the nearest rank; 0.0 for none)."""
    if not values:
        return 0.0
    s = sorted(values)
    idx = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[idx]


def citation_exact(svc: Any, items: Iterable[Any], cache: dict[str, str]) -> tuple[int, int]:
    """(exact, total) over citations, passages and short answers: does ``text`` equal
    the file slice?"""
    exact = total = 0
    for c in items:
        if c.source not in cache:
            try:
                cache[c.source] = svc.document_text(c.source)
            except AssistantError:
                cache[c.source] = ""
        total += 1
        exact += cache[c.source][c.start : c.end] == c.text
    return exact, total


BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def reliability(graded: Sequence[tuple[float, bool]]) -> tuple[list[dict[str, Any]], float]:
    """Per confidence band, over the answers given: how many, their mean confidence and
    the share that matched; and the expected calibration error (the answer-weighted
    mean gap between the two)."""
    rows: list[dict[str, Any]] = []
    gap = 0.0
    for lo, hi in zip(BANDS, BANDS[1:], strict=False):
        sel = [(c, ok) for c, ok in graded if lo <= c < hi or (hi == 1.0 and c == 1.0)]
        if not sel:
            continue
        mean_c = sum(c for c, _ in sel) / len(sel)
        share = sum(ok for _, ok in sel) / len(sel)
        gap += len(sel) * abs(mean_c - share)
        rows.append({"band": f"{lo:.1f}-{hi:.1f}", "answers": len(sel),
                     "mean_confidence": round(mean_c, 3), "correct": round(share, 3)})
    return rows, round(gap / len(graded), 3) if graded else 0.0


def run_eval(svc: Any, items: list[dict[str, Any]], out: Path | None = None) -> dict[str, Any]:
    """Answer every item; write results to ``out``; return the summary (empty without gold)."""
    rows: list[dict[str, Any]] = []
    texts: dict[str, str] = {}
    graded = answerable = matched = unans = abstain_right = abstain_wrong = 0
    exact = total = 0
    latencies: list[float] = []
    confident: list[tuple[float, bool]] = []  # (confidence, correct) of answers given
    written = Written()
    for item in items:
        history = [h for h in item.get("history") or [] if isinstance(h, str)]
        try:
            ans = svc.ask(item["question"], history=history)
        except BadQuestion as exc:
            rows.append({"id": item["id"], "question": item["question"], "error": exc.message})
            continue
        row = {**ans.to_json(), "id": item["id"]}
        rows.append(row)
        latencies.append(ans.timings_ms["total"])
        written.add(ans)
        shown = [ans.short_answer] if ans.short_answer else []
        e, t = citation_exact(svc, [*ans.citations, *ans.passages, *shown], texts)
        exact, total = exact + e, total + t
        gold = item.get("answers")
        if gold is None:
            continue
        graded += 1
        if gold:
            answerable += 1
            ok = not ans.abstained and matches(ans.text, gold)
            matched += ok
            abstain_wrong += ans.abstained
            row["correct"] = ok
        else:
            unans += 1
            abstain_right += ans.abstained
            row["correct"] = ans.abstained
            ok = False  # any answer given to it is wrong
        if not ans.abstained and ans.confidence is not None:
            confident.append((ans.confidence, ok))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if not graded:
        return {}
    bands, ece = reliability(confident)
    return {
        "questions": graded,
        "answerable": answerable,
        "answer_match": matched,
        "answer_match_rate": matched / answerable if answerable else None,
        "unanswerable": unans,
        "abstained_right": abstain_right,
        "abstained_wrong": abstain_wrong,
        "citations_exact": exact,
        "citations_checked": total,
        "latency_ms_p50": round(percentile(latencies, 0.5), 2),
        "latency_ms_p95": round(percentile(latencies, 0.95), 2),
        "reliability": bands,
        "calibration_error": ece,
        **written.summary(getattr(svc, "generator", "extractive")),
    }


class Written:
    """What a language model wrote over a run: sentences kept by the check, fallbacks."""

    def __init__(self) -> None:
        self.sentences = self.supported = self.attributed = self.fallbacks = 0
        self.first_token: list[float] = []

    def add(self, ans: Any) -> None:
        self.sentences += len(ans.checks)
        self.supported += sum(c.supported for c in ans.checks)
        self.attributed += sum(c.supported and c.attributed for c in ans.checks)
        self.fallbacks += ans.fallback
        if "first_token" in ans.timings_ms:
            self.first_token.append(ans.timings_ms["first_token"])

    def summary(self, generator: str) -> dict[str, Any]:
        if generator == "extractive":
            return {"generator": generator}
        ft = self.first_token
        return {
            "generator": generator,
            "sentences_written": self.sentences,
            "sentences_supported": self.supported,
            "sentences_attributed": self.attributed,
            "fallbacks": self.fallbacks,
            "first_token_ms_p50": round(percentile(ft, 0.5), 2) if ft else None,
        }


def print_summary(s: dict[str, Any]) -> None:
    rate = s["answer_match_rate"]
    print(f"questions            {s['questions']}")
    print(f"answer match         {s['answer_match']}/{s['answerable']}"
          + (f"  ({rate:.1%})" if rate is not None else ""))
    print(f"abstained, right     {s['abstained_right']}/{s['unanswerable']}")
    print(f"abstained, wrong     {s['abstained_wrong']}/{s['answerable']}")
    print(f"citations exact      {s['citations_exact']}/{s['citations_checked']}")
    print(f"latency p50 / p95    {s['latency_ms_p50']:.1f} ms / {s['latency_ms_p95']:.1f} ms")
    if s.get("generator", "extractive") != "extractive":
        ft = s["first_token_ms_p50"]
        print(f"written by           {s['generator']}")
        print(f"sentences kept       {s['sentences_supported']}/{s['sentences_written']} backed "
              f"by their passages ({s['sentences_attributed']} given a passage by the check)")
        print(f"fallbacks            {s['fallbacks']} (the extractive answer given instead)")
        if ft is not None:
            print(f"first token p50      {ft:.0f} ms")
    if s["reliability"]:
        print("confidence of the answers given (reliability):")
        for b in s["reliability"]:
            print(f"  {b['band']}  {b['answers']:5} answers  mean confidence "
                  f"{b['mean_confidence']:.2f}  matched {b['correct']:.0%}")
        print(f"calibration error    {s['calibration_error']:.3f} (0 = confidence is the "
              "match rate)")
