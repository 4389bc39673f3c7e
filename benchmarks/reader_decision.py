"""Give the reader a second output: whether the sentence it reads answers the question.

The reader's span head says where the answer phrase is and how much better that phrase
is than "no short answer here" (its margin). SQuAD 2.0's near misses, questions written
to look answered by a sentence that does not answer them, are the refusals the answerer
misses most, and the margin tells them apart from answerable questions only a little.
This script fits a logistic model over the reader's own last hidden layer (the ``[CLS]``
vector and the mean of the sentence's token vectors) on pairs made from the training
data: each question with its answering sentence (answers), with the same sentence asked
by a near miss of the question (``reader_prep.near_miss``: a name or number swapped for
another of its document's), and with its document's sentence sharing most words with it
that does not hold the answer (neither answers). It then appends that model to the ONNX
graph as a second output, ``answers_logit``, so the product gets it from the run it
already makes, at no cost; the span head and its logits are left exactly as they were.

No torch: the reader runs in onnxruntime and the fit is numpy (Newton's method on a
class-balanced, L2-regularised log loss). A fifth of the training documents are kept
apart to report how well the output separates those pairs, against the margin.

    python benchmarks/reader_decision.py --train ../shared/train

reads and rewrites assistant/data/reader/model.onnx (any earlier decision output is taken
off first, so a rerun replaces it) and adds a section to its card; then update
``MODEL_SHA256`` in assistant/reader.py. After a reader retrain, run it on that
export (``--model OUT/model.onnx --out OUT``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from qencoder_prep import data_plan, training_documents  # noqa: E402
from reader_prep import _examples  # noqa: E402

from assistant import reader as rd  # noqa: E402
from index.embed import default_model_files  # noqa: E402

HERE = Path(__file__).resolve().parent
PREFIX = "decision/"  # the names of every node and weight this script adds
SECTION = "## Decision output"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strip_decision(model: Any) -> Any:
    """``model`` without an earlier decision output (nodes, weights and output)."""
    g = model.graph
    keep = [n for n in g.node if not n.name.startswith(PREFIX)]
    del g.node[:]
    g.node.extend(keep)
    inits = [t for t in g.initializer if not t.name.startswith(PREFIX)]
    del g.initializer[:]
    g.initializer.extend(inits)
    outs = [o for o in g.output if o.name != rd.DECISION_OUTPUT]
    del g.output[:]
    g.output.extend(outs)
    return model


def hidden_name(model: Any) -> str:
    """The last hidden layer: the output of the encoder's last LayerNormalization."""
    norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    if not norms:
        raise SystemExit("reader_decision: the model has no LayerNormalization node")
    return norms[-1].output[0]


def pooled(hidden: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What the decision reads, as the graph computes it: the ``[CLS]`` vector and the mean
    of the vectors of the sentence's tokens (token type 1: the sentence and its [SEP])."""
    m = (types * mask).astype(np.float32)[:, :, None]
    mean = (hidden * m).sum(1) / np.maximum(m.sum(1), 1.0)
    return np.concatenate([hidden[:, 0], mean], axis=1)


def hidden_session(model: Any) -> Any:
    """An onnxruntime session of ``model`` that also outputs its last hidden layer."""
    import onnx
    import onnxruntime as ort

    model.graph.output.append(
        onnx.helper.make_tensor_value_info(hidden_name(model), onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def read_pairs(model_path: Path, examples: list[dict], batch: int = 32,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Each example's pooled hidden vector, and the span head's margin (as the product
    computes it) for comparison."""
    import onnx

    sess = hidden_session(strip_decision(onnx.load(str(model_path))))
    tok = rd.tokenizer(default_model_files()[1])
    feats, margins = [], []
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["ctx"]))
    got: dict[int, tuple[np.ndarray, float]] = {}
    for lo in range(0, len(order), batch):
        idx = order[lo: lo + batch]
        encs = [rd.encode_pairs(tok, examples[i]["q"], [examples[i]["ctx"]])[0] for i in idx]
        inputs = rd.padded(encs)
        logits, hidden = sess.run(None, inputs)
        vecs = pooled(hidden, inputs["token_type_ids"], inputs["attention_mask"])
        for k, (i, enc) in enumerate(zip(idx, encs, strict=True)):
            n = len(enc.ids)
            allowed, word_end = rd.token_masks(enc)
            span = rd.best_span(logits[k, :n, 0], logits[k, :n, 1], allowed, word_end)
            got[i] = (vecs[k], span.margin if span is not None else -20.0)
    for i in range(len(examples)):
        feats.append(got[i][0])
        margins.append(got[i][1])
    return np.array(feats, np.float32), np.array(margins)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 30,
                 ) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression by Newton's method on standardised features;
    returned as weights and bias on the raw features."""
    mu = x.mean(0)
    sd = x.std(0) + 1e-6
    xb = np.hstack([np.ones((len(x), 1)), (x - mu) / sd]).astype(np.float64)
    pos = y.mean()
    sw = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)) / len(y)
    reg = l2 * np.eye(xb.shape[1])
    reg[0, 0] = 0.0
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (sw * (p - y)) + reg @ w
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    raw = w[1:] / sd
    return raw, float(w[0] - raw @ mu)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """The chance that a random positive scores above a random negative (ties count half)."""
    s = np.concatenate([pos, neg])
    order = s.argsort(kind="stable")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):  # ties: their mean rank
        tie = s == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2)
                 / (len(pos) * len(neg)))


def add_decision(model: Any, weights: np.ndarray, bias: float) -> Any:
    """``model`` with the output ``answers_logit`` (one per pair): ``bias + weights .
    pooled(hidden)``, computed in the graph from the last hidden layer."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    hid = hidden_name(model)

    def const(name: str, value: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(value, PREFIX + name))
        return PREFIX + name

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        g.node.append(helper.make_node(op, inputs, [PREFIX + name], name=PREFIX + name,
                                       **attrs))
        return PREFIX + name

    zero = const("zero", np.array(0, np.int64))
    axis1 = const("axis1", np.array([1], np.int64))
    axis2 = const("axis2", np.array([2], np.int64))
    one = const("one", np.array(1.0, np.float32))
    cls = node("Gather", [hid, zero], "cls", axis=1)
    types = node("Mul", ["token_type_ids", "attention_mask"], "sentence")
    m = node("Cast", [types], "sentence_f", to=TensorProto.FLOAT)
    m3 = node("Unsqueeze", [m, axis2], "sentence_3d")
    total = node("ReduceSum", [node("Mul", [hid, m3], "masked"), axis1], "sum", keepdims=0)
    count = node("Max", [node("ReduceSum", [m, axis1], "count0", keepdims=1), one], "count")
    mean = node("Div", [total, count], "mean")
    both = node("Concat", [cls, mean], "pooled", axis=1)
    w = const("weights", weights.astype(np.float32).reshape(-1, 1))
    b = const("bias", np.array([bias], np.float32))
    z = node("Add", [node("MatMul", [both, w], "dot"), b], "logit")
    g.node.append(helper.make_node("Squeeze", [z, axis1], [rd.DECISION_OUTPUT],
                                   name=PREFIX + "out"))
    g.output.append(helper.make_tensor_value_info(rd.DECISION_OUTPUT, TensorProto.FLOAT,
                                                  ["batch"]))
    return model


def graph_gap(path: Path, examples: list[dict], rows: np.ndarray, weights: np.ndarray,
              bias: float) -> float:
    """The largest difference between the graph's decision output and the fit applied to
    the hidden layer of the same run, over ``rows`` read as one batch. (Not against the
    features the fit read: the int8 graph quantises each batch's activations with one
    scale, so what a pair reads depends a little on the pairs read with it.)"""
    import onnx

    sess = hidden_session(onnx.load(str(path)))
    tok = rd.tokenizer(default_model_files()[1])
    encs = [rd.encode_pairs(tok, examples[i]["q"], [examples[i]["ctx"]])[0] for i in rows]
    inputs = rd.padded(encs)
    _span, decided, hidden = sess.run(None, inputs)
    fitted = pooled(hidden, inputs["token_type_ids"], inputs["attention_mask"]) @ weights + bias
    return float(np.abs(decided - fitted).max()) if len(rows) else 0.0


def write_card(card: Path, before: str, after: str, figures: dict[str, Any]) -> None:
    """The model card with this section (replacing an earlier one) and the file's sha256."""
    text = card.read_text(encoding="utf-8") if card.exists() else "# Reader\n"
    text = re.sub(rf"\n{re.escape(SECTION)}\n.*?(?=\n## |\Z)", "", text, flags=re.S)
    # the file's digest at the head of the card (the training run's figures keep the export's)
    text = text.replace(before, after, 1).rstrip("\n") + "\n"
    held = figures["held_apart"]
    near, m_near = held["auc_answer_vs_near_miss"], held["margin_auc_answer_vs_near_miss"]
    wrong, m_wrong = held["auc_answer_vs_wrong"], held["margin_auc_answer_vs_wrong"]
    text += f"""
{SECTION}
A second output, `{rd.DECISION_OUTPUT}`: whether the sentence read answers the question,
a logistic model over the last hidden layer (the `[CLS]` vector and the mean of the
sentence's token vectors), appended to the graph by `benchmarks/reader_decision.py`; the
span head is unchanged (its readings identical to those of the export, sha256
`{figures['span_head_export_sha256']}`).
Fitted without torch on {figures['pairs']['fit']:,} pairs from the training data above:
each question with its answering sentence (answers), with that sentence asked by a near
miss of the question (a name or number swapped for another its document names: does not
answer), and with its document's sentence sharing most words with it that does not hold
the answer (does not answer); class-balanced, L2 {figures['l2']}, seed {figures['seed']},
{figures['seconds'] / 60:.0f} min. On the pairs of a fifth of the documents kept apart
({held['pairs']:,}), how often an answering sentence scores above a near miss (AUC)
{near:.3f} (the span head's margin: {m_near:.3f}), above a wrong sentence {wrong:.3f}
(margin {m_wrong:.3f}).
The answerer reads it as evidence for answering or refusing (`assistant/abstain.py`).
Remade by the command below (it replaces an earlier decision output); after a retrain of
the reader, run it on the new export (`--model OUT/model.onnx --out OUT`).

    {figures['command']}

```json
{json.dumps(figures, indent=2)}
```
"""
    card.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, required=True, help="../shared/train")
    ap.add_argument("--model", type=Path, default=rd.MODEL_DIR / rd.MODEL_NAME,
                    help="the reader to extend (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=rd.MODEL_DIR,
                    help="folder for model.onnx and the card (default: the shipped one's)")
    ap.add_argument("--squad-n", type=int, default=8000,
                    help="SQuAD train questions (whole articles until this many)")
    ap.add_argument("--nq-n", type=int, default=2500, help="NQ train questions")
    ap.add_argument("--l2", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--drop", type=float, default=0.0,
                    help="that share of questions also asked without some of the words their "
                         "answering sentence holds (an experiment)")
    ap.add_argument("--smoke", action="store_true", help="a tiny sample (for the tests)")
    args = ap.parse_args()
    args.squad_occurrence = "question"
    import onnx

    t0 = time.time()
    rng = random.Random(args.seed)
    docs, qs = training_documents(args, rng, 80)
    nq = [q for q in qs if q["set"] == "nq"]
    rng.shuffle(nq)
    qs = [q for q in qs if q["set"] == "squad"] + nq[: args.nq_n]
    examples = _examples(docs, qs, rng, 0.6, near_misses=1.0, drop=args.drop)
    kind = np.array(["near" if ex.get("near_miss") else "answers" if ex["a"] >= 0 else "wrong"
                     for ex in examples])
    dropped = np.array([bool(ex.get("dropped")) for ex in examples])
    held = np.array([random.Random(args.seed * 1_000_003 + ex["doc"]).random() < 0.2
                     for ex in examples])
    if args.smoke:  # a tiny sample may keep nothing apart
        held[: len(held) // 5] = True
    print(f"{len(examples):,} pairs ({(kind == 'answers').sum():,} answering, "
          f"{(kind == 'near').sum():,} near misses, {(kind == 'wrong').sum():,} wrong), "
          f"{held.sum():,} kept apart", flush=True)
    x, margin = read_pairs(args.model, examples)
    y = (kind == "answers").astype(float)
    w, b = fit_logistic(x[~held], y[~held], args.l2)
    score = x @ w + b

    def sep(s: np.ndarray, other: str, answering: np.ndarray | None = None) -> float:
        """Held-apart AUC of answering pairs (``answering``: those of the full questions, by
        default) against ``other`` pairs of the full questions."""
        sel = (kind == "answers") & ~dropped if answering is None else answering
        pos, neg = s[held & sel], s[held & (kind == other) & ~dropped]
        return round(auc(pos, neg), 4) if len(pos) and len(neg) else float("nan")

    before = file_sha256(args.model)
    card = args.out / rd.CARD_NAME
    # the span head's export: the input itself, or (a rerun) the one its card names
    export = re.search(r'"span_head_export_sha256": "(\w+)"',
                       card.read_text(encoding="utf-8") if card.exists() else "")
    span_sha = export.group(1) if export and before != export.group(1) else before
    model = add_decision(strip_decision(onnx.load(str(args.model))), w, b)
    old = rd.Reader(args.model, default_model_files()[1])  # loaded before it is replaced
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / rd.MODEL_NAME
    onnx.save(model, str(path))
    gap = graph_gap(path, examples, np.flatnonzero(held)[:64], w, b)
    if gap > 1e-3:
        raise SystemExit(f"reader_decision: the graph's output differs from the fit's by {gap}")
    new = rd.Reader(path, default_model_files()[1])
    for i in np.flatnonzero(held)[:64]:
        q, ctx = examples[i]["q"], [examples[i]["ctx"]]
        if new.spans(q, ctx) != old.spans(q, ctx):
            raise SystemExit("reader_decision: the span head reads differently")
    figures = {
        "command": "python benchmarks/reader_decision.py --train ../shared/train"
                   + ("" if args.model == rd.MODEL_DIR / rd.MODEL_NAME
                      else f" --model {args.model} --out {args.out}")
                   + (f" --drop {args.drop:g}" if args.drop else "")
                   + (" --smoke" if args.smoke else ""),
        **data_plan(args), "nq_n": args.nq_n, "l2": args.l2,
        **({"drop": args.drop} if args.drop else {}),
        "pairs": {"fit": int((~held).sum()), "answering": int((kind == "answers").sum()),
                  "near_misses": int((kind == "near").sum()),
                  "wrong": int((kind == "wrong").sum())},
        "held_apart": {"pairs": int(held.sum()),
                       "auc_answer_vs_near_miss": sep(score, "near"),
                       "margin_auc_answer_vs_near_miss": sep(margin, "near"),
                       "auc_answer_vs_wrong": sep(score, "wrong"),
                       "margin_auc_answer_vs_wrong": sep(margin, "wrong"),
                       **({"auc_shortened_answer_vs_near_miss": sep(
                           score, "near", dropped & (kind == "answers"))} if args.drop else {})},
        "graph_vs_fit_max_abs": round(gap, 6),
        "seconds": round(time.time() - t0, 1),
        "span_head_export_sha256": span_sha,
    }
    after = file_sha256(path)
    figures["sha256"] = after
    write_card(card, before, after, figures)
    print(json.dumps(figures["held_apart"]))
    print(f"wrote {path} (sha256 {after}); set MODEL_SHA256 in assistant/reader.py to it")


if __name__ == "__main__":
    main()
