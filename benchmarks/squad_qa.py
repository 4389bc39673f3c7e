"""SQuAD v1.1 dev: do cited passages and extractive answers contain the gold answer?

Indexes the 48 dev articles as 48 documents (paragraphs separated by blank
lines), samples questions with a fixed seed, answers each with hybrid, BM25-only
and dense-only retrieval in one run, and prints, per mode: gold answer inside a
cited passage, inside the answer text, inside any retrieved passage, abstention
rate, median answer length and latency (graded as in :mod:`qa_harness`: gold in
the answer, in its first sentence, in a cited passage). With ``--features FILE``
it also writes the abstention evidence of every question (plus unanswerable
questions: SQuAD 2.0's impossible ones, asked of the same articles, and HotpotQA
questions, about other topics) for ``calibrate_abstention.py``.

    python benchmarks/squad_qa.py --squad ../shared/benchmarks/squad
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
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
MODES = {  # name: (retrievers, fusion)
    "hybrid": (("dense", "bm25"), "scores"),
    "hybrid-rrf": (("dense", "bm25"), "rrf"),
    "bm25": (("bm25",), "scores"),
    "dense": (("dense",), "scores"),
}


def write_articles(squad_json: Path, out: Path) -> int:
    """One file per article; returns the number of characters written."""
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for i, art in enumerate(json.loads(squad_json.read_text())["data"]):
        slug = re.sub(r"[^A-Za-z0-9]+", "_", art["title"]).strip("_")[:60]
        text = "\n\n".join(p["context"].strip() for p in art["paragraphs"]) + "\n"
        path = out / f"{i:02d}_{slug}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        total += len(text)
    return total


# The samples settings were tuned on: the answerer's (exp. harness, seed 2024) and
# calibrate_abstention.py's (seed 7, two halves of 600). --heldout leaves them out.
TUNED_ON = ((2024, 1000), (7, 1200))


def _all_questions(squad_dir: Path) -> list[dict[str, Any]]:
    data = json.loads((squad_dir / "dev-v1.1.json").read_text())["data"]
    return [
        {"id": q["id"], "question": q["question"], "answers": [a["text"] for a in q["answers"]],
         "shared": shared_words(q["question"], p["context"], [],
                                start=q["answers"][0]["answer_start"])}
        for art in data for p in art["paragraphs"] for q in p["qas"]
    ]


def _sample(qs: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    return random.Random(seed).sample(qs, min(n, len(qs)))


def load_questions(squad_dir: Path, n: int, seed: int) -> list[dict[str, Any]]:
    return _sample(_all_questions(squad_dir), n, seed)


def heldout_questions(squad_dir: Path) -> list[dict[str, Any]]:
    """Every dev question outside the samples any setting was tuned or fitted on."""
    qs = _all_questions(squad_dir)
    used = {q["id"] for seed, n in TUNED_ON for q in _sample(qs, n, seed)}
    return [q for q in qs if q["id"] not in used]


def unanswerable(squad_dir: Path, hotpot: Path | None, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed + 1)
    data = json.loads((squad_dir / "cs224n-dev-v2.0-half.json").read_text())["data"]
    imp = [
        {"id": q["id"], "question": q["question"], "kind": "squad2-impossible"}
        for art in data for p in art["paragraphs"] for q in p["qas"] if q.get("is_impossible")
    ]
    out = rng.sample(imp, min(n, len(imp)))
    if hotpot and hotpot.exists():
        hp = [{"id": str(i), "question": q["question"], "kind": "hotpot-offtopic"}
              for i, q in enumerate(json.loads(hotpot.read_text()))]
        out += rng.sample(hp, min(n, len(hp)))
        rgb = hotpot.parent.parent / "rgb" / "en_fact.json"
        if rgb.exists():
            rq = [json.loads(line) for line in rgb.read_text().splitlines() if line.strip()]
            rq = [{"id": str(r["id"]), "question": r["query"], "kind": "rgb-offtopic"} for r in rq]
            out += rng.sample(rq, min(n, len(rq)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True, help="folder with dev-v1.1.json")
    ap.add_argument("--hotpot", type=Path, help="hotpot_dev_distractor_subset.json (off-topic)")
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch" / "squad")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--heldout", action="store_true",
                    help="all dev questions but those tuned on (instead of --n/--seed)")
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--modes", default="hybrid,hybrid-rrf,bm25,dense")
    ap.add_argument("--features", type=Path, help="write abstention evidence (JSONL) here")
    ap.add_argument("--unanswerable", action="store_true",
                    help="also ask unanswerable questions (SQuAD 2.0, HotpotQA, RGB) of the "
                    "articles and report how many are refused")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "squad_qa.json")
    add_model_options(ap)
    args = ap.parse_args()
    use_model_options(args)

    corpus, store = args.workdir / "corpus", args.workdir / "store"
    chars = write_articles(args.squad / "dev-v1.1.json", corpus)
    t0 = time.perf_counter()
    retriever, answerer, summary = open_index(corpus, store, qencoder=args.qencoder)
    print(f"index: {summary.line()} ({chars:,} characters; built in {time.perf_counter()-t0:.1f}s)")
    texts = {p.name: p.read_text(encoding="utf-8") for p in corpus.glob("*.txt")}

    questions = (heldout_questions(args.squad) if args.heldout
                 else load_questions(args.squad, args.n, args.seed))
    feats: list[dict[str, Any]] = []
    results: dict[str, Any] = {"n": len(questions), "k": args.k,
                               "sample": "heldout" if args.heldout else f"seed {args.seed}",
                               "chunks": summary.chunks, "modes": {}}
    print(f"\n{len(questions)} questions, k={args.k}\n")
    print(HEADER)
    for mode in args.modes.split(","):
        use, retriever.fusion = MODES[mode]
        tally = Tally(own_words=Tally())
        for q in questions:
            res, ms = timed_answer(retriever, answerer, q["question"], args.k, use=use)
            ok = tally.add(q["answers"], res.text, res.abstained, res.citations, res.passages,
                           ms, texts=texts, confidence=res.confidence, shared=q["shared"])
            if mode == "hybrid" and args.features:
                # Label: answerable; "good" when the answer holds the gold answer.
                feats.append({"kind": "squad1", "answerable": True, "correct": ok,
                              **res.evidence.to_json()})
        results["modes"][mode] = row = tally.row()
        print(line(mode, row))
    if "hybrid" in results["modes"]:
        print("\nconfidence of the answers given (hybrid):")
        print_reliability(results["modes"]["hybrid"])

    if args.features or args.unanswerable:
        neg = unanswerable(args.squad, args.hotpot, 500, args.seed)
        abst_by_kind: dict[str, list[int]] = {}
        retriever.fusion = MODES["hybrid"][1]
        for q in neg:
            r = retriever.retrieve(q["question"], args.k)
            d = answerer.answer(q["question"], r, k=args.k)
            abst_by_kind.setdefault(q["kind"], []).append(int(d.abstained))
            feats.append({"kind": q["kind"], "answerable": False, "correct": d.abstained,
                          **d.evidence.to_json()})
        if args.features:
            args.features.parent.mkdir(parents=True, exist_ok=True)
            with open(args.features, "w") as fh:
                for f in feats:
                    fh.write(json.dumps(f) + "\n")
        for kind, v in abst_by_kind.items():
            results[f"abstained_{kind}"] = sum(v) / len(v)
            print(f"unanswerable {kind:20} abstained {sum(v)}/{len(v)} ({sum(v)/len(v):.1%})")
    write_results(args.out, results)


if __name__ == "__main__":
    main()
