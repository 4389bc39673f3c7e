"""Natural Questions (open, with gold passages): questions written without seeing the text.

The corpus is every distinct gold passage of ``nq-open-oracle.jsonl.gz``, one
file each (its title on the first line, then its text). Each question is asked
of the whole corpus; graded as in :mod:`qa_harness`: gold answer in the answer,
in its first sentence, in a cited passage *of the gold file*, retrieved,
abstained, median answer length, latency.

Samples: the questions are shuffled once (seed 0); the first ``TUNE_N`` are the
tuning sample (``--sample tune``: the answerer's and abstention's settings may
be chosen or fitted on them), the rest are held out (``--sample heldout``, the
default: report these).

    python benchmarks/nq_qa.py --nq ../shared/benchmarks/nq/nq-open-oracle.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qa_harness import (  # noqa: E402
    HEADER,
    Tally,
    add_model_options,
    line,
    open_index,
    print_reliability,
    shared_words,
    timed_answer,
    use_model_options,
    write_results,
)

HERE = Path(__file__).resolve().parent
TUNE_N = 600


def read_nq(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(x) for x in fh if x.strip()]


def passage_file(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16] + ".txt"


def write_corpus(rows: list[dict[str, Any]], out: Path) -> int:
    """One file per distinct gold passage; returns how many."""
    out.mkdir(parents=True, exist_ok=True)
    names = set()
    for r in rows:
        ctx = r["ctxs"][0]
        name = passage_file(ctx["title"], ctx["text"])
        if name in names:
            continue
        names.add(name)
        body = f"{ctx['title']}\n\n{ctx['text'].strip()}\n"
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    return len(names)


def sample_of(rows: list[Any], sample: str) -> list[Any]:
    """The rows of one sample: the tuning sample is the first ``TUNE_N`` after one shuffle
    (seed 0), the held-out sample the rest. Every script that tunes on NQ uses this."""
    order = list(rows)
    random.Random(0).shuffle(order)
    return order[:TUNE_N] if sample == "tune" else order[TUNE_N:]


def questions(rows: list[dict[str, Any]], sample: str) -> list[dict[str, Any]]:
    qs = [{"id": str(i), "question": r["question"], "answers": r["answers"],
           "source": passage_file(r["ctxs"][0]["title"], r["ctxs"][0]["text"]),
           "shared": shared_words(r["question"], r["ctxs"][0]["text"], r["answers"])}
          for i, r in enumerate(rows)]
    return sample_of(qs, sample)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nq", type=Path, required=True, help="nq-open-oracle.jsonl.gz")
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch" / "nq")
    ap.add_argument("--sample", choices=("tune", "heldout"), default="heldout")
    ap.add_argument("--n", type=int, default=0, help="only the first N of the sample")
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--out", type=Path)
    add_model_options(ap)
    args = ap.parse_args()
    use_model_options(args)

    rows = read_nq(args.nq)
    corpus = args.workdir / "corpus"
    n_docs = write_corpus(rows, corpus)
    retriever, answerer, summary = open_index(corpus, args.workdir / "store",
                                              qencoder=args.qencoder)
    print(f"index: {summary.line()} ({n_docs} passages)")
    texts = {p.name: p.read_text(encoding="utf-8") for p in corpus.glob("*.txt")}
    qs = questions(rows, args.sample)
    if args.n:
        qs = qs[: args.n]
    tally = Tally(own_words=Tally())
    for q in qs:
        res, ms = timed_answer(retriever, answerer, q["question"], args.k)
        tally.add(q["answers"], res.text, res.abstained, res.citations, res.passages, ms,
                  gold_source=q["source"], texts=texts, confidence=res.confidence,
                  shared=q["shared"])
    row = tally.row()
    print(f"\nNQ {args.sample} sample: {len(qs)} questions, k={args.k}\n")
    print(HEADER)
    print(line("hybrid", row))
    print("\nconfidence of the answers given:")
    print_reliability(row)
    out = args.out or HERE / "results" / f"nq_qa_{args.sample}.json"
    write_results(out, {"sample": args.sample, "n": len(qs), "k": args.k,
                        "chunks": summary.chunks, "hybrid": row})


if __name__ == "__main__":
    main()
