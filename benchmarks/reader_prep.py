"""Stage 1 of ``train_reader.py`` (no torch): each training question's answering sentence
with its span and, now and then, a hard wrong sentence; encoded as the runtime encodes
them (see that script's docstring)."""

from __future__ import annotations

import argparse
import pickle
import random
import re
import time
from pathlib import Path
from typing import Any

from qencoder_prep import (
    data_plan,
    drop_shared,
    shared_with,
    training_documents,
    valid_documents,
)
from training_common import refuse_other_plan

from assistant import reader as rd
from assistant.words import stems_of
from index.chunk import sentences
from index.embed import default_model_files

CONTEXT_CHARS = 200
# A name (a run of capitalised words) or a number, as a question and a document write them.
_NAME = re.compile(r"\b(?:[A-Z][\w'’.-]*\b(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'’.-]*\b)*"
                   r"|\d[\d,.]*\d|\d)")


def doc_names(doc: str) -> set[str]:
    """The names and numbers ``doc`` writes inside its sentences (a sentence's first word
    is capitalised anyway)."""
    return {m.group() for m in _NAME.finditer(doc)
            if m.start() > 1 and doc[m.start() - 2] not in ".!?\n" and doc[m.start() - 1] == " "}


def near_miss(question: str, sentence: str, names: set[str], rng: random.Random) -> str | None:
    """``question`` turned into one ``sentence`` no longer answers: a name or number it
    shares with the sentence swapped for another of the same kind (a number for a number,
    as many words for a name) from ``names`` (its document's ``doc_names``) that the
    sentence does not hold -- the kind of near miss SQuAD 2.0's writers made by hand. None
    when nothing can be swapped.
    """
    found = [m for m in _NAME.finditer(question) if m.start() > 0 and m.group() in sentence]
    if not found:
        return None
    m = rng.choice(found)
    old = m.group()
    digit = old[0].isdigit()
    pool = sorted(x for x in names
                  if x[0].isdigit() == digit and x not in sentence and x not in question
                  and (digit or len(x.split()) == len(old.split())))
    if not pool:
        return None
    return question[: m.start()] + rng.choice(pool) + question[m.end():]


def _examples(docs: list[dict], qs: list[dict], rng: random.Random,
              neg_rate: float, before: int = 0, rank_negatives: int = 0,
              near_misses: float = 0.0, drop: float = 0.0) -> list[dict]:
    """Each question's answering sentence with its span, and maybe a hard wrong one.
    With ``drop``, that share of questions also comes asked without some of the words its
    answering sentence holds (``qencoder_prep.drop_shared``), with the same sentences and
    targets (an experiment).
    With ``near_misses``, that share of questions also brings its answering sentence asked
    by a ``near_miss`` of the question, whose target is "no short answer" (an experiment).
    With ``rank_negatives``, every question instead brings that many wrong sentences (those
    sharing the most words with it), all tagged with the question's ``group``: the
    sentences the answerer has to rank against each other.
    With ``before``, the sentences before the one read go with the question (``q``:
    question ``[SEP]`` those sentences): the model sees what "he" or "it" stands for while
    marking a span only in the sentence itself (an experiment; the product reads the
    sentence alone)."""

    def asked(q: dict, text: str, sp: list[tuple[int, int]], i: int) -> str:
        if before <= 0 or i == 0:
            return q["q"]
        # the last CONTEXT_CHARS of them: the nearest words, and the question stays whole
        return f"{q['q']} [SEP] {text[sp[max(0, i - before)][0]:sp[i - 1][1]][-CONTEXT_CHARS:]}"

    spans: dict[int, list[tuple[int, int]]] = {}
    stems: dict[int, list[set[str]]] = {}
    names: dict[int, set[str]] = {}  # (--near-misses) each document's, found once
    out = []
    for g, q in enumerate(qs):
        d = q["doc"]
        text = docs[d]["text"]
        if d not in spans:
            spans[d] = [(s, e) for s, e, _p in sentences(text)]
            stems[d] = [stems_of(text[s:e]) for s, e in spans[d]]
        sp = spans[d]
        first = next((i for i, (s, e) in enumerate(sp) if s <= q["start"] < e), None)
        last = next((i for i, (s, e) in enumerate(sp) if s < q["end"] <= e), None)
        if first is None or last is None or last - first > 1:
            continue
        lo, hi = sp[first][0], sp[last][1]
        base = {"q": q["q"], "set": q["set"], "doc": d, "answers": q["answers"]}
        if rank_negatives:
            base["group"] = g
        out.append({**base, "q": asked(q, text, sp, first), "ctx": text[lo:hi],
                    "a": q["start"] - lo, "b": q["end"] - lo})
        dropped = None
        if drop and rng.random() < drop:
            if (dq := drop_shared(q["q"], shared_with(q["q"], text[lo:hi]), rng)) != q["q"]:
                dropped = {"q": dq}
                out.append({**base, "q": asked(dropped, text, sp, first), "ctx": text[lo:hi],
                            "a": q["start"] - lo, "b": q["end"] - lo, "dropped": True})
        if near_misses and rng.random() < near_misses:
            if d not in names:
                names[d] = doc_names(text)
            if (altered := near_miss(q["q"], text[lo:hi], names[d], rng)) is not None:
                out.append({**base, "q": asked({"q": altered}, text, sp, first),
                            "ctx": text[lo:hi], "a": -1, "b": -1, "near_miss": True})
        if not rank_negatives and rng.random() >= neg_rate:
            continue
        q_stems = stems_of(q["q"])
        answers = [a.lower() for a in q["answers"] if a.strip()]
        wrong = []
        for i, (s, e) in enumerate(sp):
            if first <= i <= last or any(a in text[s:e].lower() for a in answers):
                continue
            n = len(q_stems & stems[d][i]) + rng.random() * 0.5  # ties broken at random
            if n > 0:
                wrong.append((n, i))
        wrong.sort(reverse=True)
        for _n, i in wrong[: rank_negatives or 1]:
            s, e = sp[i]
            out.append({**base, "q": asked(q, text, sp, i), "ctx": text[s:e],
                        "a": -1, "b": -1})
            if dropped is not None:  # the shortened question meets the same wrong sentence
                out.append({**base, "q": asked(dropped, text, sp, i), "ctx": text[s:e],
                            "a": -1, "b": -1, "dropped": True})
    return out


def span_labels(enc: Any, a: int, b: int) -> tuple[int, int] | None:
    """The tokens where the span ``[a, b)`` of the sentence starts and ends (0, 0 for no
    span); None when truncation cut it off."""
    if a < 0:
        return 0, 0
    toks = [t for t, s in enumerate(enc.sequence_ids) if s == 1]
    first = next((t for t in toks if enc.offsets[t][1] > a), None)
    last = next((t for t in reversed(toks) if enc.offsets[t][0] < b), None)
    if first is None or last is None or last < first:
        return None
    return first, last


def prep(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    path = work / "examples.pkl"
    # What the examples depend on beyond the data (squad_n and seed the run plan checks too).
    plan = {"neg_rate": args.neg_rate, "context_before": args.context_before, **data_plan(args)}
    if args.rank_negatives:  # (absent from the plans of caches made before the option)
        plan["rank_negatives"] = args.rank_negatives
    if args.near_misses:  # (likewise)
        plan["near_misses"] = args.near_misses
    if args.drop_shared:  # (likewise)
        plan["drop_shared"] = args.drop_shared
    if path.exists():
        data = pickle.loads(path.read_bytes())
        refuse_other_plan(path, data.get("plan", plan), plan)
        return data
    t0 = time.time()
    rng = random.Random(args.seed)
    docs, qs = training_documents(args, rng, 80)
    valid_docs = valid_documents(list(range(len(docs))), args.seed)
    examples = _examples(docs, qs, rng, args.neg_rate, args.context_before,
                         args.rank_negatives, args.near_misses, args.drop_shared)
    tok = rd.tokenizer(default_model_files()[1])
    kept = []
    for ex in examples:
        enc = rd.encode_pairs(tok, ex["q"], [ex["ctx"]])[0]
        lab = span_labels(enc, ex["a"], ex["b"])
        if lab is None or (ex.get("dropped") and ex["doc"] in valid_docs):
            continue  # (validation asks its questions as they were written)
        ex.update(ids=enc.ids, types=enc.type_ids, start=lab[0], end=lab[1],
                  valid=ex["doc"] in valid_docs)
        kept.append(ex)
    data = {"examples": kept, "plan": plan, "seconds": round(time.time() - t0, 1),
            "documents": len(docs),
            "questions": {s: sum(q["set"] == s for q in qs) for s in ("squad", "nq")}}
    path.write_bytes(pickle.dumps(data))
    pos = sum(ex["a"] >= 0 for ex in kept)
    print(f"prep: {len(kept):,} examples ({pos:,} with a span, {len(kept) - pos:,} without; "
          f"{sum(ex['valid'] for ex in kept):,} kept for validation), "
          f"{data['seconds']:.0f} s", flush=True)
    return data

