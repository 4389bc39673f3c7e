"""The reader's ranking stage, its examples (``train_reader.py --pools``; no torch): each
training question asked of an index of the training documents, as the product asks it.

The documents are those ``reader_prep`` draws (same ``--squad-n`` and seed), written to a
folder and indexed as the assistant indexes a corpus (``work/pool-corpus``,
``work/pool-store``). For each question the answerer ranks the sentences of what the
retriever finds, and its best ``READER_POOL`` sentences -- the ones the reader re-weighs at
query time -- become a group: a sentence holding the gold answer gets its span, the others
"no short answer", and each keeps the ranking's score, so the training can teach the reader
what the score gets wrong. Groups where no sentence, or every one, holds the answer teach no
ranking and are left out.
"""

from __future__ import annotations

import argparse
import pickle
import random
import re
import time
from pathlib import Path
from typing import Any

from qa_harness import contains, open_index
from qencoder_prep import data_plan, training_documents, valid_documents
from reader_prep import span_labels
from training_common import refuse_other_plan

from assistant import reader as rd
from assistant.answer import READER_POOL
from index.embed import default_model_files


def _span_in(text: str, answers: list[str]) -> tuple[int, int] | None:
    """The first place in ``text`` where one of ``answers`` stands (case aside)."""
    for a in answers:
        if a.strip():
            m = re.search(re.escape(a.strip()), text, re.IGNORECASE)
            if m:
                return m.start(), m.end()
    return None


def _write_corpus(docs: list[dict], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, d in enumerate(docs):
        path = folder / f"{d['set']}-{i:05d}.txt"
        if not path.exists():
            path.write_text(d["text"], encoding="utf-8")


def pools_prep(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    path = work / "pools.pkl"
    plan = {"pools": True, **data_plan(args)}
    if path.exists():
        data = pickle.loads(path.read_bytes())
        refuse_other_plan(path, data.get("plan", plan), plan)
        return data
    t0 = time.time()
    docs, qs = training_documents(args, random.Random(args.seed), 80)
    valid_docs = valid_documents(list(range(len(docs))), args.seed)
    _write_corpus(docs, work / "pool-corpus")
    print(f"pools: indexing {len(docs):,} documents", flush=True)
    retriever, answerer, _summary = open_index(work / "pool-corpus", work / "pool-store",
                                               reader=None)
    tok = rd.tokenizer(default_model_files()[1])
    kept: list[dict] = []
    groups = 0
    for g, q in enumerate(qs):
        ranked = answerer.rank(q["q"], retriever.retrieve(q["q"], 6))[2][:READER_POOL]
        gold = [contains(x.text, q["answers"]) for x in ranked]
        if (g + 1) % 2000 == 0:
            print(f"  asked {g + 1:,}/{len(qs):,} ({groups:,} groups)", flush=True)
        if not any(gold) or all(gold):
            continue
        rows = []
        encs = rd.encode_pairs(tok, q["q"], [x.text for x in ranked])
        for x, holds, enc in zip(ranked, gold, encs, strict=True):
            span = _span_in(x.text, q["answers"]) if holds else (-1, -1)
            lab = None if span is None else span_labels(enc, *span)
            if lab is None:  # the answer's words not found as written, or cut off
                break
            rows.append({"q": q["q"], "ctx": x.text, "a": span[0], "b": span[1],
                         "set": q["set"], "doc": q["doc"], "answers": q["answers"],
                         "group": g, "score": x.score, "ids": enc.ids,
                         "types": enc.type_ids, "start": lab[0], "end": lab[1],
                         "valid": q["doc"] in valid_docs})
        else:
            kept += rows
            groups += 1
    data = {"examples": kept, "plan": plan, "seconds": round(time.time() - t0, 1),
            "documents": len(docs),
            "questions": {s: sum(q["set"] == s for q in qs) for s in ("squad", "nq")},
            "groups": groups}
    path.write_bytes(pickle.dumps(data))
    print(f"pools: {groups:,} groups, {len(kept):,} sentences "
          f"({sum(ex['valid'] for ex in kept):,} kept for validation), "
          f"{data['seconds']:.0f} s", flush=True)
    return data
