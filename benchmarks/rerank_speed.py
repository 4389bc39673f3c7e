"""What the rerank's pool costs: warm retrieval and answers at 10k chunks, two pools in turn.

The retriever re-orders the best TUNED_RERANK_POOL fused passages by their best sentence's
cosine with the question encoder's vector (``assistant/retrieve.py``). A larger pool reads
more sentence vectors. Separate ``scale.py`` runs differ by more than that between processes
on a shared machine, so this script asks the same questions in one process, the pools
alternating by round, and prints each pool's p50 / p95 and their ratio.

    python benchmarks/scale.py --sizes 10k --no-plain    # builds the 10k index first
    python benchmarks/rerank_speed.py --pools 20 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from scale_corpus import questions  # noqa: E402

from assistant import retrieve  # noqa: E402
from assistant.config import Config  # noqa: E402
from assistant.evaluate import percentile  # noqa: E402
from assistant.service import Assistant  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=Path, default=HERE / "scratch" / "scale",
                    help="scale.py's scratch folder (corpus-10000, store-10000)")
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "benchmarks")
    ap.add_argument("--pools", type=int, nargs=2, default=[20, retrieve.TUNED_RERANK_POOL])
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "rerank_speed.json")
    args = ap.parse_args()

    corpus, store = args.scale / "corpus-10000", args.scale / "store-10000"
    if not store.is_dir():
        sys.exit(f"rerank_speed: no index at {store}; run benchmarks/scale.py --sizes 10k first")
    qs = questions(args.shared, corpus, args.questions)
    svc = Assistant.open(Config.resolve(corpus=str(corpus), store=str(store)))
    if svc._retriever.question_encoder is None:  # noqa: SLF001 - the setting measured
        sys.exit("rerank_speed: the index has no question encoder; the tuned pool is not used")
    kept = retrieve.TUNED_RERANK_POOL
    times: dict[int, dict[str, list[float]]] = {p: {"retrieve": [], "answer": []}
                                                for p in args.pools}
    try:
        for q in qs[:5]:  # warm-up
            svc.ask(q)
        for r in range(args.rounds):
            for pool in args.pools if r % 2 == 0 else reversed(args.pools):
                retrieve.TUNED_RERANK_POOL = pool
                for q in qs:
                    t = time.perf_counter()
                    svc._retriever.retrieve(q, svc.config.k)  # noqa: SLF001
                    times[pool]["retrieve"].append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    svc.ask(q)
                    times[pool]["answer"].append((time.perf_counter() - t) * 1000)
    finally:
        retrieve.TUNED_RERANK_POOL = kept
        svc.close()
    base, other = args.pools
    out: dict[str, object] = {"chunks_index": str(store), "questions": len(qs),
                              "rounds": args.rounds, "pools": {}}
    for pool in args.pools:
        row = {f"{stage}_{name}_ms": round(f(times[pool][stage]), 1)
               for stage in ("retrieve", "answer")
               for name, f in (("p50", statistics.median), ("p95", lambda v: percentile(v, 0.95)))}
        out["pools"][str(pool)] = row  # type: ignore[index]
        print(f"pool {pool:3}: retrieve p50 {row['retrieve_p50_ms']:5.1f} ms  p95 "
              f"{row['retrieve_p95_ms']:5.1f}  |  answer p50 {row['answer_p50_ms']:5.1f} ms  "
              f"p95 {row['answer_p95_ms']:5.1f}")
    for stage in ("retrieve", "answer"):
        ratio = (statistics.median(times[other][stage])
                 / statistics.median(times[base][stage]))
        out[f"{stage}_p50_ratio_{other}_over_{base}"] = round(ratio, 3)
        print(f"{stage} p50, pool {other} / pool {base}: {ratio:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
