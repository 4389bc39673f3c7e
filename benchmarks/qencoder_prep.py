"""Stage 1 of ``train_qencoder.py``: the training questions, their documents chunked and
embedded as the index does, and each question's pool (no torch; see that script's docstring).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant.answer import SENTENCE_POOL  # the answerer's pool: passages per question
from assistant.words import content_words, stem, stems_of
from index import sentvec
from index.chunk import ChunkParams, chunk_text, sentences
from index.embed import OnnxEmbedder

SQUAD_FILE, NQ_FILE = "squad-v1.1-train.json.gz", "nq-qed-train.jsonl.gz"
VALID_SHARE = 0.02
_WORD_CHAR = re.compile(r"\w")


def valid_documents(docs: list[int], seed: int) -> set[int]:
    """The documents (of ``docs``, in a fixed order) kept apart for validation: a seeded
    VALID_SHARE of them, at least one."""
    order = list(docs)
    random.Random(seed + 1).shuffle(order)
    return set(order[: max(1, int(len(order) * VALID_SHARE))])


def answer_place(context: str, question: str, answer: str, given: int) -> int:
    """Where in ``context`` the ``answer`` to ``question`` is: of the answer's occurrences
    that stand as whole words, the one whose sentence shares the most of the question's
    words (the earliest of a tie); ``given`` when none stands as whole words.

    The SQuAD train file places every answer at its first occurrence (its README: the
    explorer pages carry no offsets), which for 3% of the questions is the wrong
    sentence, or part of another word ("2" inside "280")."""
    found = [m.start() for m in re.finditer(re.escape(answer), context)
             if not _WORD_CHAR.match(context[m.start() - 1: m.start()] or " ")
             and not _WORD_CHAR.match(context[m.end(): m.end() + 1] or " ")]
    if len(found) < 2:
        return found[0] if found else given
    asked = stems_of(question)
    spans = [(a, b) for a, b, _p in sentences(context)]

    def shared(at: int) -> int:
        return next((len(asked & stems_of(context[a:b])) for a, b in spans if a <= at < b), -1)

    return max(found, key=lambda at: (shared(at), -at))


def _squad_docs(path: Path, n: int, rng: random.Random,
                occurrence: str = "question") -> tuple[list[dict], list[dict]]:
    """Whole articles, in a seeded random order, until ``n`` questions: (docs, questions).
    Each answer is placed by ``answer_place`` (``occurrence="question"``) or where the
    file puts it (``"first"``: how the question encoder shipped now was trained)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        arts = json.load(fh)["data"]
    rng.shuffle(arts)
    docs, qs = [], []
    for art in arts:
        if len(qs) >= n:
            break
        parts, offset = [], 0
        doc = len(docs)
        for p in art["paragraphs"]:
            ctx = p["context"]
            lead = len(ctx) - len(ctx.lstrip())
            body = ctx.strip()
            for qa in p["qas"]:
                a = qa["answers"][0]
                at = a["answer_start"]
                if occurrence == "question":
                    at = answer_place(ctx, qa["question"], a["text"], at)
                s = offset + at - lead
                if body[s - offset: s - offset + len(a["text"])] != a["text"]:
                    continue
                qs.append({"q": qa["question"], "doc": doc, "start": s,
                           "end": s + len(a["text"]), "answers": [a["text"]], "set": "squad"})
            parts.append(body)
            offset += len(body) + 2
        docs.append({"text": "\n\n".join(parts) + "\n", "set": "squad"})
    return docs, qs


def _nq_docs(path: Path) -> tuple[list[dict], list[dict]]:
    """One document per QED paragraph, written as benchmarks/nq_qa.py writes NQ passages."""
    docs, qs, seen = [], [], {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(x) for x in fh if x.strip()]
    for r in rows:
        para = r["paragraph_text"]
        head = f"{r['title_text']}\n\n"
        lead = len(para) - len(para.lstrip())
        key = head + para
        if key not in seen:
            seen[key] = len(docs)
            docs.append({"text": f"{head}{para.strip()}\n", "set": "nq"})
        doc = seen[key]
        for s, e in r["answer_spans"]:
            s2 = len(head) + s - lead
            if docs[doc]["text"][s2: s2 + (e - s)] != para[s:e]:
                continue
            qs.append({"q": r["question_text"], "doc": doc, "start": s2, "end": s2 + e - s,
                       "answers": list(r["answer_text"]), "set": "nq"})
            break  # one gold span per question
    return docs, qs


def placement_plan(args: argparse.Namespace) -> dict[str, Any]:
    """The SQuAD answer placement as run plans and caches record it: nothing for ``first``,
    as runs and caches made before the option recorded nothing."""
    return {} if args.squad_occurrence == "first" else {"squad_occurrence": args.squad_occurrence}


def data_plan(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``training_documents``' questions depend on, for the caches built on them
    (each adds its own)."""
    return {"squad_n": args.squad_n, "seed": args.seed, "smoke": args.smoke,
            **placement_plan(args)}


def training_documents(args: argparse.Namespace, rng: random.Random,
                       smoke_n: int) -> tuple[list[dict], list[dict]]:
    """SQuAD's documents (whole articles until ``args.squad_n`` questions) then NQ's, and
    their questions, each pointing at its document; ``smoke_n`` questions a set with
    ``--smoke``."""
    sq_docs, sq_qs = _squad_docs(args.train / SQUAD_FILE, args.squad_n, rng,
                                 args.squad_occurrence)
    nq_docs, nq_qs = _nq_docs(args.train / NQ_FILE)
    if args.smoke:
        sq_docs, nq_docs = sq_docs[:2], nq_docs[:60]
        sq_qs = [q for q in sq_qs if q["doc"] < 2][:smoke_n]
        nq_qs = [q for q in nq_qs if q["doc"] < 60][:smoke_n]
    for q in nq_qs:
        q["doc"] += len(sq_docs)
    return sq_docs + nq_docs, sq_qs + nq_qs


def prep(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Chunks, their stored-form sentence vectors, question pools; cached in ``work`` with
    the options they depend on (a run with others is refused, as a checkpoint is)."""
    from training_common import refuse_other_plan  # (it imports this module)

    meta_path = work / "prep.json"
    plan = data_plan(args)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        # A cache made before plans were recorded: only the placement is known (the first).
        made = meta.get("plan", {k: v for k, v in plan.items() if k != "squad_occurrence"})
        refuse_other_plan(meta_path, made, plan)
        return meta
    t0 = time.time()
    docs, qs = training_documents(args, random.Random(args.seed), 60)
    embedder = OnnxEmbedder().load()
    params = ChunkParams()
    chunks: list[dict[str, Any]] = []
    for d, doc in enumerate(docs):
        for c in chunk_text(doc["text"], params, embedder):
            chunks.append({"doc": d, "start": c.start, "end": c.end, "text": c.text,
                           "set": doc["set"]})
    print(f"prep: {len(docs):,} documents, {len(chunks):,} passages, {len(qs):,} questions",
          flush=True)
    texts = [c["text"] for c in chunks]
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % 2000 < n:
            print(f"  embedded {done[0]:,}/{len(texts):,} passages", flush=True)

    vecs, packed = sentvec.embed_chunks(embedder, texts, progress)
    sent_vecs, sent_offsets, sent_spans = [], [0], []
    for c, blob in zip(chunks, packed, strict=True):
        v = sentvec.unpack(blob or b"", embedder.dim)  # as the index stores and reads them
        spans = [(c["start"] + s, c["start"] + e) for s, e, _p in sentences(c["text"])]
        if v is None or len(v) != len(spans):
            v, spans = np.zeros((0, embedder.dim), np.float32), []
        sent_vecs.append(v)
        sent_spans.extend(spans)
        sent_offsets.append(sent_offsets[-1] + len(spans))
    sents = np.concatenate(sent_vecs).astype(np.float32)
    by_doc: dict[int, list[int]] = {}
    for i, c in enumerate(chunks):
        by_doc.setdefault(c["doc"], []).append(i)
    # The bundled model's question vectors retrieve each pool (dense, within its dataset).
    qvecs = embedder.embed_documents([q["q"] for q in qs])
    sets = np.array([c["set"] for c in chunks])
    rows = []
    for name in ("squad", "nq"):
        idx = np.nonzero(sets == name)[0]
        qi = [i for i, q in enumerate(qs) if q["set"] == name]
        for lo in range(0, len(qi), 2048):
            part = qi[lo: lo + 2048]
            sims = qvecs[part] @ vecs[idx].T
            top = np.argsort(-sims, axis=1)[:, : SENTENCE_POOL + 1]
            for row, i in enumerate(part):
                q = qs[i]
                gold = [j for j in by_doc[q["doc"]]
                        if chunks[j]["start"] <= q["start"] < chunks[j]["end"]]
                if not gold:
                    continue
                pool = [gold[0]] + [int(idx[t]) for t in top[row] if idx[t] != gold[0]]
                pool = pool[:SENTENCE_POOL]
                pos, skip, gold_text = [], [], []
                for j in pool:
                    for s in range(sent_offsets[j], sent_offsets[j + 1]):
                        a, b = sent_spans[s]
                        if chunks[j]["doc"] == q["doc"] and a < q["end"] and q["start"] < b:
                            pos.append(s)
                            gold_text.append(chunks[j]["text"][a - chunks[j]["start"]:
                                                              b - chunks[j]["start"]])
                        elif any(ans.lower() in chunks[j]["text"][a - chunks[j]["start"]:
                                                               b - chunks[j]["start"]].lower()
                                 for ans in q["answers"]):
                            skip.append(s)
                if pos:
                    rows.append({"q": q["q"], "set": name, "doc": q["doc"], "pool": pool,
                                 "pos": pos, "skip": skip,
                                 "shared": sorted(set(shared_with(q["q"],
                                                                  " ".join(gold_text))))})
    # Validation: whole SQuAD articles and NQ paragraphs kept apart from training.
    valid_docs = valid_documents(sorted({r["doc"] for r in rows}), args.seed)
    for r in rows:
        r["valid"] = r["doc"] in valid_docs
    np.save(work / "sentences.npy", sents)
    np.save(work / "passages.npy", vecs.astype(np.float32))
    meta = {"plan": plan, "rows": rows, "sent_offsets": sent_offsets,
            "seconds": round(time.time() - t0, 1),
            "documents": len(docs), "passages": len(chunks), "sentences": int(len(sents))}
    meta_path.write_text(json.dumps(meta))
    print(f"prep: {len(rows):,} questions with an answering sentence in their pool "
          f"({sum(r['valid'] for r in rows):,} kept for validation), "
          f"{meta['seconds']:.0f} s", flush=True)
    return meta


def shared_with(question: str, sentence: str) -> list[str]:
    """The question's content words whose stems ``sentence`` also holds, in the question's
    order."""
    gold = stems_of(sentence)
    return [w for w in content_words(question) if stem(w) in gold]


def drop_shared(question: str, shared: list[str], rng: random.Random) -> str:
    """The question with each of its words that the answering sentence also holds left out
    at even odds (at least one content word is kept): asked this way, a question must be
    matched to its sentence by meaning, as when people ask in their own words."""
    gone = {w for w in shared if rng.random() < 0.5}
    if not gone or not set(content_words(question)) - gone:
        return question
    kept = [t for t in question.split() if t.strip("?.,;:!\"'()").lower() not in gone]
    return " ".join(kept)


def validation_rows(rows: list[dict], n: int) -> list[dict]:
    """Up to ``n`` of the rows kept apart, half of them NQ's where there are enough."""
    kept = {name: [r for r in rows if r["valid"] and r["set"] == name] for name in ("nq", "squad")}
    nq = kept["nq"][: n // 2]
    return nq + kept["squad"][: n - len(nq)]
