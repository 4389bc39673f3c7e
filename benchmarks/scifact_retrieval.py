"""SciFact retrieval quality: nDCG@10 of hybrid, BM25-only and dense-only retrieval.

Every SciFact abstract becomes one ``<doc id>.txt`` file (title, blank line, text)
in a scratch folder, indexed by the product's own ``build_index`` with the bundled
ONNX model, so the figures are the product's and not a reimplementation's. The
store is reused on a re-run (the build is incremental, so that costs one hashing
pass). Retrieval returns chunks; a document ranks where its best chunk ranks, as
BEIR scores documents, and metrics use the qrels' graded relevance with linear
gain (trec_eval / pytrec_eval ``ndcg_cut_10``). Recall@100 counts the distinct
documents a mode returned: with ``--k 100`` chunks that is about 75, not 100
(``docs_per_query`` says how many).

Besides the three product modes, the script fuses the raw dense and BM25 lists
itself (RRF constant, weights, depth, chunk vs document level, score fusion), so
the owner of ``assistant/retrieve.py`` can choose a variant from numbers. Variants
are selected on the *train* queries and reported on the test queries, so the
chosen setting is not fitted to the figures it is judged by.

    python benchmarks/scifact_retrieval.py --data ../shared/benchmarks/scifact
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from beir_metrics import (  # noqa: E402
    Qrels,
    distinct_docs,
    score_run,
)
from fusion_variants import (  # noqa: E402
    Variant,
)
from scifact_report import PUBLISHED, TARGET, as_table, dump, print_tables, rounded  # noqa: E402
from scifact_variants import p50, run_variants, timed  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / "benchmarks" / "scratch" / "scifact"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "scifact_retrieval.json"


# ---------------------------------------------------------------- data


def load_beir(data: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The corpus (id -> title, text) and every query (id -> text)."""
    corpus: dict[str, dict[str, str]] = {}
    with open(data / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            corpus[str(row["_id"])] = {"title": row.get("title", ""), "text": row["text"]}
    queries: dict[str, str] = {}
    with open(data / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    return corpus, queries


def load_qrels(path: Path) -> Qrels:
    """query id -> {doc id: relevance}, relevance > 0 only (as trec_eval counts them)."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as fh:
        next(fh)  # header: query-id corpus-id score
        for line in fh:
            qid, did, rel = line.rstrip("\n").split("\t")
            if int(rel) > 0:
                qrels.setdefault(qid, {})[did] = int(rel)
    return qrels


def write_corpus(corpus: dict[str, dict[str, str]], folder: Path) -> int:
    """One file per abstract; unchanged files are left alone so the build can skip them."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for did, doc in corpus.items():
        path = folder / f"{did}.txt"
        body = f"{doc['title']}\n\n{doc['text']}".encode()
        if not path.exists() or path.read_bytes() != body:
            path.write_bytes(body)
            written += 1
    for stale in folder.glob("*.txt"):
        if stale.stem not in corpus:
            stale.unlink()
    return written


# ---------------------------------------------------------------- running


class _Progress:
    """Prints build progress every 10% and remembers how many chunks the build had to do."""

    def __init__(self, label: str) -> None:
        self.label, self.total, self._next = label, 0, 0.0

    def __call__(self, done: int, total: int) -> None:
        self.total = max(self.total, total)
        frac = done / total if total else 1.0
        if frac >= self._next or done == total:
            print(f"  {self.label}: {done}/{total}", file=sys.stderr, flush=True)
            self._next = frac + 0.1


def build(corpus_dir: Path, store: Path, embedder: Any) -> dict[str, Any]:
    """Bring the store up to date; remember the cost of the last run that embedded chunks."""
    from index.build import build_index

    progress = _Progress("embedding chunks")
    summary = build_index(corpus_dir, store, embedder, progress=progress)
    info = {
        "documents": summary.documents,
        "chunks": summary.chunks,
        "added": summary.added,
        "updated": summary.updated,
        "chunks_built": progress.total,  # chunks of new documents (a resumed build adopts some)
        "seconds": round(summary.seconds, 2),
    }
    record = store.parent / "build.json"
    if progress.total or not record.exists():
        record.write_text(json.dumps(info))
    return {"this_run": info, "last_build": json.loads(record.read_text())}


def main(argv: Sequence[str] | None = None) -> int:
    """Index, run the product's modes and the variants, print and write the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="BEIR SciFact folder")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="scratch: corpus + store")
    ap.add_argument("--k", type=int, default=100, help="chunks retrieved per query and mode")
    ap.add_argument("--raw-depth", type=int, default=1000, help="deepest list the variants see")
    ap.add_argument("--no-variants", action="store_true", help="only the product's own modes")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    load_start = [round(x, 1) for x in os.getloadavg()]  # the machine may be shared: say so

    import assistant.retrieve as product
    from assistant.qencoder import load_question_encoder
    from index.build import LEXICAL_FILE
    from index.embed import OnnxEmbedder
    from index.lexical import LexicalIndex
    from index.manifest import load_manifest
    from index.store import VectorStore

    corpus, queries = load_beir(args.data)
    test = load_qrels(args.data / "qrels" / "test.tsv")
    train_path = args.data / "qrels" / "train.tsv"
    tune = load_qrels(train_path) if train_path.exists() else test
    tune_split = "train" if tune is not test else "test (no train qrels: optimistic)"

    corpus_dir, store = args.workdir / "corpus", args.workdir / "store"
    written = write_corpus(corpus, corpus_dir)
    print(f"corpus: {len(corpus)} abstracts ({written} written) in {corpus_dir}", file=sys.stderr)
    embedder = OnnxEmbedder()
    index_info = build(corpus_dir, store, embedder)
    print(f"index: {index_info}", file=sys.stderr)

    manifest = load_manifest(store)
    assert manifest is not None
    vectors = VectorStore(store, manifest.collection)
    lexical = LexicalIndex(store / LEXICAL_FILE)
    rows = lexical.get(sorted(lexical.ids()))
    doc_of = {cid: Path(r.source).stem for cid, r in rows.items()}
    order = {cid: (r.source, r.start) for cid, r in rows.items()}

    # Every fusion the product offers, its default first; each maps to the variant
    # that replays it, so the variants can be checked against the product.
    default = getattr(product, "DEFAULT_FUSION", "rrf")
    fusions = sorted(getattr(product, "FUSIONS", ("rrf",)), key=lambda f: f != default)
    as_variant = {
        "rrf": Variant("rrf", "chunk", 3 * args.k, c=product.RRF_K),
        "scores": Variant("sum", "chunk", 3 * args.k),
    }
    retrievers = {
        f: product.HybridRetriever(embedder, vectors, lexical, **(
            {"fusion": f} if hasattr(product, "FUSIONS") else {}))
        for f in fusions
    }
    retriever = retrievers[default]

    def hybrid(r: Any) -> Callable[[str], list[str]]:
        return lambda q: [c.chunk_id for c in r.retrieve(q, args.k).candidates]

    mode_of = {f: "hybrid" if f == default else f"hybrid-{f}" for f in fusions}
    modes: dict[str, Callable[[str], list[str]]] = {
        mode_of[f]: hybrid(r) for f, r in retrievers.items()
    }
    # The product weighs sentences, and so re-orders the fused passages, with the trained
    # question encoder's vector (assistant/qencoder.py); "hybrid" above is the same fusion
    # with the bundled model's vector, which the fusion variants replay.
    encoder = load_question_encoder(embedder.load())
    if encoder is not None:
        modes["hybrid+qencoder"] = hybrid(product.HybridRetriever(
            embedder, vectors, lexical, question_encoder=encoder))
    modes["bm25"] = lambda q: [cid for cid, _ in retriever.lexical_search(q, args.k)]
    modes["dense"] = lambda q: [
        c.chunk_id for c in retriever.dense(embedder.embed_query(q), q, args.k)
    ]
    test_qids = sorted(test, key=int)
    for q in test_qids[:3]:  # warm-up: model session, SQLite pages, HNSW index load
        for fn in modes.values():
            fn(queries[q])

    runs: dict[str, dict[str, list[str]]] = {m: {} for m in modes}
    lat: dict[str, list[float]] = {m: [] for m in modes}
    for i, qid in enumerate(test_qids):
        for m, fn in modes.items():
            ids, ms = timed(lambda fn=fn, qid=qid: fn(queries[qid]))
            runs[m][qid] = distinct_docs(ids, doc_of)
            lat[m].append(ms)
        if (i + 1) % 50 == 0:
            print(f"  product modes: {i + 1}/{len(test_qids)} queries", file=sys.stderr)
    results: dict[str, Any] = {
        m: {**score_run(runs[m], test), "p50_ms": round(p50(lat[m]), 1)} for m in modes
    }

    analysis: dict[str, Any] = {"variants": [], "best": None, "replicas": [], "by_depth": []}
    if not args.no_variants:
        product_runs = {
            mode_of[f]: (as_variant[f], runs[mode_of[f]]) for f in fusions if f in as_variant
        }
        analysis = run_variants(
            args, retriever, embedder, queries, test, tune, doc_of, order, product_runs
        )
    lexical.close()

    report = {
        "benchmark": "SciFact (BEIR) test, 300 queries; docs ranked by their best chunk",
        "data": str(args.data),
        "k_chunks": args.k,
        "raw_depth": args.raw_depth,
        "tune_split": tune_split,
        "index": index_info,
        "product_code": _code_version(),
        "model": embedder.model_id,
        "chunking": manifest.chunking,
        "product_default_fusion": default,
        "modes": rounded(results),
        "published_ndcg@10": PUBLISHED,
        "target_hybrid_ndcg@10": TARGET,
        "product_replica_check": analysis["replicas"],
        "best_variant": analysis["best"],
        "best_by_depth": analysis["by_depth"],
        "variants": as_table(analysis["variants"]),
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": {"start": load_start, "end": [round(x, 1) for x in os.getloadavg()]},
            **{p: _version(p) for p in ("chromadb", "llama-index-core", "onnxruntime")},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(report))
    print_tables(results, index_info, analysis)
    print(f"\nwrote {args.out}")
    return 0


# ---------------------------------------------------------------- output


def _code_version() -> dict[str, Any]:
    """The commit measured, and which product files differed from it (others edit them)."""
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "assistant", "index").splitlines()
    return {"commit": git("rev-parse", "HEAD")[:12], "uncommitted": [c[3:] for c in changed]}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


if __name__ == "__main__":
    sys.exit(main())
