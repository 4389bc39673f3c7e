"""Chroma's HNSW search width (``ef_search``): recall against exact search, agreement
between runs, and time.

Chroma saves its HNSW graph only once ``sync_threshold`` (1,000) new vectors have
gathered; the rest of its log is inserted again, in parallel, by every process that opens
the store, so each run searches a slightly different graph and an approximate search can
miss a different neighbour each time. This benchmark uses the index of the 48 SQuAD v1.1
dev articles (the one ``squad_qa.py`` builds), and for each ``ef_search`` copies its
Chroma folder and searches, in ``--runs`` fresh processes, the vectors of the first
``--n`` dev questions at the depth the retriever asks of Chroma (``MIN_DEPTH``). Printed
per ``ef_search``: recall of the exact nearest ``MIN_DEPTH`` (brute force over the
stored vectors), the share of questions missing one of them, how many questions get
other results in another run, and the median search time against ``ef_search`` 100's,
measured in the same run.

    python benchmarks/hnsw_search.py --squad ../shared/benchmarks/squad
    python benchmarks/hnsw_search.py --squad ../shared/benchmarks/squad \
        --store benchmarks/scratch/scale/store-10000 --out ...   # scale.py's 10k index
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent
WIDTHS = (100, 200, 400)


def _client(chroma_dir: Path | str) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(str(chroma_dir),
                                     settings=Settings(anonymized_telemetry=False))


def child(chroma_dir: str, name: str, ef: int, vectors: str, depth: int) -> None:
    """One run: set ``ef`` before anything is read (Chroma keeps a loaded graph's
    settings for the life of the process), then search every vector; prints JSON."""
    client = _client(chroma_dir)
    col = client.get_collection(name)
    col.modify(configuration={"hnsw": {"ef_search": ef}})
    col = client.get_collection(name)
    ids, ms = [], []
    for v in np.load(vectors):
        t0 = time.perf_counter()
        got = col.query(query_embeddings=[v], n_results=depth, include=[])
        ms.append((time.perf_counter() - t0) * 1000)
        ids.append(got["ids"][0])
    print(json.dumps({"ids": ids, "ms": ms[1:]}))  # the first search loads the graph


def exact_neighbours(chroma_dir: Path, name: str, queries: np.ndarray, depth: int
                     ) -> list[set[str]]:
    got = _client(chroma_dir).get_collection(name).get(include=["embeddings"])
    keys = np.array(got["ids"])
    stored = np.asarray(got["embeddings"], dtype=np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return [set(keys[np.argsort(-(stored @ v))[:depth]]) for v in q]


def measure(chroma_dir: Path, name: str, vectors: Path, exact: list[set[str]], ef: int,
            runs: int, depth: int) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "chroma"
            shutil.copytree(chroma_dir, copy)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(copy), name, str(ef), str(vectors),
                 str(depth)], capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout))
    first = results[0]["ids"]
    recall = [len(set(got) & want) / depth for got, want in zip(first, exact, strict=True)]
    differ = max(sum(a != b for a, b in zip(first, r["ids"], strict=True))
                 for r in results[1:]) if runs > 1 else 0
    return {
        "ef_search": ef,
        "recall_vs_exact": round(float(np.mean(recall)), 5),
        "questions_missing_one": round(sum(r < 1 for r in recall) / len(recall), 4),
        "questions_differing_between_runs": differ,
        "search_ms_p50": round(statistics.median(m for r in results for m in r["ms"]), 3),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True, help="folder with dev-v1.1.json")
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch" / "squad")
    ap.add_argument("--n", type=int, default=1200, help="questions (the first N of dev)")
    ap.add_argument("--runs", type=int, default=2, help="fresh processes per width")
    ap.add_argument("--store", type=Path,
                    help="an index already built (scale.py's); default: the SQuAD articles'")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "hnsw_search.json")
    args = ap.parse_args()

    from qa_harness import write_results
    from squad_qa import write_articles

    from assistant.retrieve import MIN_DEPTH
    from index.build import build_index
    from index.embed import OnnxEmbedder
    from index.manifest import load_manifest

    embedder = OnnxEmbedder().load()
    if args.store:
        store = args.store
    else:
        corpus, store = args.workdir / "corpus", args.workdir / "store"
        write_articles(args.squad / "dev-v1.1.json", corpus)
        build_index(corpus, store, embedder)
    manifest = load_manifest(store)
    assert manifest is not None
    chunks = manifest.chunk_count()
    data = json.loads((args.squad / "dev-v1.1.json").read_text())["data"]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]][: args.n]
    queries = np.stack([embedder.embed_query(q) for q in questions]).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        vectors = Path(tmp) / "queries.npy"
        np.save(vectors, queries)
        exact = exact_neighbours(store / "chroma", manifest.collection, queries, MIN_DEPTH)
        rows = [measure(store / "chroma", manifest.collection, vectors, exact, ef, args.runs,
                        MIN_DEPTH) for ef in WIDTHS]
    base = rows[0]["search_ms_p50"]
    print(f"{chunks:,} chunks, {len(questions):,} questions, depth {MIN_DEPTH}, "
          f"{args.runs} runs per width")
    print("ef_search  recall  missing one  differ between runs  search p50 (x ef 100)")
    for r in rows:
        r["search_ms_ratio_to_ef100"] = round(r["search_ms_p50"] / base, 2)
        print(f"{r['ef_search']:9d}  {r['recall_vs_exact']:.4f}  "
              f"{r['questions_missing_one']:10.2%}  {r['questions_differing_between_runs']:19d}"
              f"  {r['search_ms_p50']:.2f} ms ({r['search_ms_ratio_to_ef100']:.2f})")
    write_results(args.out, {"benchmark": "hnsw_search", "chunks": chunks,
                             "questions": len(questions), "depth": MIN_DEPTH,
                             "runs": args.runs, "widths": rows})


if __name__ == "__main__":
    main()
