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
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / "benchmarks" / "scratch" / "scifact"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "scifact_retrieval.json"
PUBLISHED = {"BM25 (BEIR paper)": 0.665, "all-MiniLM-L6-v2": 0.645, "bge-small-en-v1.5": 0.713}
TARGET = 0.69
PRODUCT_K = 6  # assistant.config.DEFAULT_K: the app retrieves with depth max(3k, 20) = 20
LATENCY_SAMPLE = 60  # queries timed per depth when costing the variants

Ranked = list[tuple[str, float]]  # (chunk id, raw score), best first
Qrels = dict[str, dict[str, int]]


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


# ---------------------------------------------------------------- metrics


def distinct_docs(chunk_ids: Iterable[str], doc_of: dict[str, str]) -> list[str]:
    """Documents in order of their best-ranked chunk (first occurrence)."""
    return list(dict.fromkeys(doc_of[c] for c in chunk_ids if c in doc_of))


def ndcg(ranked: Sequence[str], rels: dict[str, int], n: int = 10) -> float:
    """Linear gain rel / log2(rank + 1), as trec_eval's ndcg_cut that BEIR reports."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:n]))
    ideal = sorted(rels.values(), reverse=True)[:n]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr(ranked: Sequence[str], rels: dict[str, int], n: int = 10) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:n]) if rels.get(d, 0) > 0), 0.0)


def recall(ranked: Sequence[str], rels: dict[str, int], n: int = 100) -> float:
    return len(set(ranked[:n]) & set(rels)) / len(rels) if rels else 0.0


def per_query_ndcg(run: dict[str, list[str]], qrels: Qrels) -> dict[str, float]:
    return {q: ndcg(run.get(q, []), rels) for q, rels in qrels.items()}


def paired_gain(new: dict[str, float], old: dict[str, float], rounds: int = 2000) -> dict[str, Any]:
    """Mean per-query difference with a bootstrap 95% interval: is a gain more than noise?"""
    qids = sorted(old)
    diffs = [new[q] - old[q] for q in qids]
    rng = random.Random(0)
    means = sorted(
        statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(rounds)
    )
    return {
        "mean_diff": round(statistics.fmean(diffs), 4),
        "ci95": [round(means[int(0.025 * rounds)], 4), round(means[int(0.975 * rounds)], 4)],
        "better/same/worse": [sum(d > 1e-9 for d in diffs), sum(abs(d) <= 1e-9 for d in diffs),
                              sum(d < -1e-9 for d in diffs)],
    }


def score_run(run: dict[str, list[str]], qrels: Qrels) -> dict[str, float]:
    """Mean metrics over the judged queries (a query with no results scores 0)."""
    qids = sorted(qrels)
    return {
        "ndcg@10": statistics.fmean(ndcg(run.get(q, []), qrels[q]) for q in qids),
        "recall@100": statistics.fmean(recall(run.get(q, []), qrels[q]) for q in qids),
        "mrr@10": statistics.fmean(mrr(run.get(q, []), qrels[q]) for q in qids),
        "docs_per_query": statistics.fmean(len(run.get(q, [])[:100]) for q in qids),
    }


# ---------------------------------------------------------------- fusion variants


@dataclass(frozen=True)
class Variant:
    """One way to fuse the dense and BM25 lists of a query.

    ``method``: "rrf" (reciprocal rank, constant ``c``), "sum" (cosine + BM25 / best
    BM25, the product's score fusion) or "minmax" (each list's scores scaled to
    [0, 1]). ``level``: fuse chunks, then rank documents by their best chunk, or
    collapse each list to documents (best chunk) first and fuse documents.
    """

    method: str
    level: str
    depth: int  # how many chunks each side contributes
    w_dense: float = 1.0
    w_bm25: float = 1.0
    c: int = 60

    def name(self) -> str:
        rrf = f" c={self.c}" if self.method == "rrf" else ""
        return (f"{self.method}-{self.level}{rrf} w={self.w_dense:g}:{self.w_bm25:g}"
                f" d={self.depth}")


def _rrf(keys: Sequence[str]) -> Callable[[int], dict[str, float]]:
    """Reciprocal-rank scores of ``keys`` for a given constant."""
    return lambda c: {key: 1.0 / (c + rank) for rank, key in enumerate(keys, start=1)}


def _normalised(hits: Ranked, method: str, dense: bool) -> dict[str, float]:
    """Scores of one list as the fusion adds them; keys keep the list's order."""
    if not hits:
        return {}
    if method == "sum":
        if dense:
            return dict(hits)  # cosine as is
        top = hits[0][1] or 1.0
        return {cid: s / top for cid, s in hits}
    lo, hi = min(s for _, s in hits), max(s for _, s in hits)
    span = hi - lo or 1.0
    return {cid: (s - lo) / span for cid, s in hits}


def _by_doc(scores: dict[str, float], doc_of: dict[str, str]) -> dict[str, float]:
    """Each document's best chunk score (first occurrence wins a tie)."""
    best: dict[str, float] = {}
    for cid, s in scores.items():
        d = doc_of.get(cid)
        if d is not None and s > best.get(d, -math.inf):
            best[d] = s
    return best


def fuse(
    v: Variant,
    dense: Ranked,
    bm25: Ranked,
    doc_of: dict[str, str],
    order: dict[str, tuple[str, int]],
) -> list[str]:
    """Ranked doc ids for one query under variant ``v`` (100 at most)."""
    dense, bm25 = dense[: v.depth], bm25[: v.depth]
    sides: list[tuple[float, dict[str, float]]] = []
    for weight, hits, is_dense in ((v.w_dense, dense, True), (v.w_bm25, bm25, False)):
        if v.method == "rrf":
            keys = [c for c, _ in hits]
            scores = _rrf(keys if v.level == "chunk" else distinct_docs(keys, doc_of))(v.c)
        else:
            scores = _normalised(hits, v.method, is_dense)
            if v.level == "doc":
                scores = _by_doc(scores, doc_of)
        sides.append((weight, scores))
    fused: dict[str, float] = {}
    for weight, scores in sides:
        for key, s in scores.items():
            fused[key] = fused.get(key, 0.0) + weight * s
    if v.level == "chunk":
        # The product's tie-break: source, then offset.
        chunks = sorted(fused, key=lambda c: (-fused[c], *order.get(c, ("", 0))))
        return distinct_docs(chunks, doc_of)[:100]
    return sorted(fused, key=lambda d: (-fused[d], d))[:100]


WEIGHTS = ((1.0, 1.0), (1.5, 1.0), (1.0, 1.5), (2.0, 1.0), (1.0, 2.0))


def variant_grid(depths: Sequence[int]) -> list[Variant]:
    """Every variant scored: small enough to run all on both splits in a few minutes."""
    grid = [
        Variant("rrf", level, depth, wd, wb, c)
        for level in ("chunk", "doc")
        for depth in depths
        for c in (5, 10, 30, 60)
        for wd, wb in WEIGHTS
    ]
    grid += [
        Variant(method, level, depth, wd, wb)
        for method in ("sum", "minmax")
        for level in ("chunk", "doc")
        for depth in depths
        for wd, wb in WEIGHTS
    ]
    return grid


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


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1000


def _p50(ms: Sequence[float]) -> float:
    return statistics.median(ms) if ms else float("nan")


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
            ids, ms = _timed(lambda fn=fn, qid=qid: fn(queries[qid]))
            runs[m][qid] = distinct_docs(ids, doc_of)
            lat[m].append(ms)
        if (i + 1) % 50 == 0:
            print(f"  product modes: {i + 1}/{len(test_qids)} queries", file=sys.stderr)
    results: dict[str, Any] = {
        m: {**score_run(runs[m], test), "p50_ms": round(_p50(lat[m]), 1)} for m in modes
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
        "modes": _rounded(results),
        "published_ndcg@10": PUBLISHED,
        "target_hybrid_ndcg@10": TARGET,
        "product_replica_check": analysis["replicas"],
        "best_variant": analysis["best"],
        "best_by_depth": analysis["by_depth"],
        "variants": _as_table(analysis["variants"]),
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": {"start": load_start, "end": [round(x, 1) for x in os.getloadavg()]},
            **{p: _version(p) for p in ("chromadb", "llama-index-core", "onnxruntime")},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dump(report))
    print_tables(results, index_info, analysis)
    print(f"\nwrote {args.out}")
    return 0


def run_variants(
    args: argparse.Namespace,
    retriever: Any,
    embedder: Any,
    queries: dict[str, str],
    test: Qrels,
    tune: Qrels,
    doc_of: dict[str, str],
    order: dict[str, tuple[str, int]],
    product_runs: dict[str, tuple[Variant, dict[str, list[str]]]],
) -> dict[str, Any]:
    """Fetch deep raw lists once per query, then score every variant on tune and test."""
    wanted = (max(3 * PRODUCT_K, 20), 100, 3 * args.k, args.raw_depth)
    depths = sorted({d for d in wanted if d <= args.raw_depth})
    raw: dict[str, tuple[Ranked, Ranked]] = {}
    qids = sorted(set(test) | set(tune), key=int)
    for i, qid in enumerate(qids):
        q = queries[qid]
        hits = retriever.dense(embedder.embed_query(q), q, args.raw_depth)
        dense = [(c.chunk_id, c.dense if c.dense is not None else -1.0) for c in hits]
        raw[qid] = (dense, retriever.lexical_search(q, args.raw_depth))
        if (i + 1) % 200 == 0:
            print(f"  raw lists: {i + 1}/{len(qids)} queries", file=sys.stderr)

    # What a variant costs is the retrieval at its depth (fusion itself is sub-millisecond).
    cost: dict[int, float] = {}
    sample = sorted(test, key=int)[:LATENCY_SAMPLE]
    for depth in depths:
        ms = []
        for qid in sample:
            q = queries[qid]
            _, t = _timed(lambda q=q, depth=depth: (
                retriever.dense(embedder.embed_query(q), q, depth),
                retriever.lexical_search(q, depth),
            ))
            ms.append(t)
        cost[depth] = round(_p50(ms), 1)

    def run_of(v: Variant, qrels: Qrels) -> dict[str, list[str]]:
        return {q: fuse(v, *raw[q], doc_of, order) for q in qrels}

    # Each product fusion replayed on the raw lists: proves the variants model it.
    replicas = []
    for mode, (v, run) in product_runs.items():
        replay = run_of(v, test)
        same = sum(replay[q][:10] == run[q][:10] for q in test)
        replicas.append({
            "mode": mode,
            "variant": v.name(),
            **asdict(v),
            "test": _rounded(score_run(replay, test)),
            "same_top10_docs": f"{same}/{len(test)}",
        })

    out = []
    grid = variant_grid(depths)
    for i, v in enumerate(grid):
        out.append({
            "name": v.name(),
            **asdict(v),
            "tune_ndcg@10": round(score_run(run_of(v, tune), tune)["ndcg@10"], 4),
            "test": _rounded(score_run(run_of(v, test), test)),
            "p50_ms_retrieval_at_depth": cost[v.depth],
        })
        if (i + 1) % 40 == 0:
            print(f"  variants: {i + 1}/{len(grid)}", file=sys.stderr)
    best = max(out, key=lambda r: r["tune_ndcg@10"])
    by_depth: list[dict[str, Any]] = []
    if product_runs:
        mode, (base, run) = next(iter(product_runs.items()))
        best["test_vs_product"] = {
            "mode": mode,
            **paired_gain(per_query_ndcg(run_of(_variant(best), test), test),
                          per_query_ndcg(run, test)),
        }
        # The app asks for a few passages (depth 20): what the best setting gains at
        # each depth over the product's own fusion replayed at that depth.
        for depth in depths:
            here = max((r for r in out if r["depth"] == depth), key=lambda r: r["tune_ndcg@10"])
            ref = replace(base, depth=depth)
            by_depth.append({
                "depth": depth,
                "product": ref.name(),
                "product_test_ndcg@10": round(score_run(run_of(ref, test), test)["ndcg@10"], 4),
                "best": here["name"],
                "best_tune_ndcg@10": here["tune_ndcg@10"],
                "best_test_ndcg@10": here["test"]["ndcg@10"],
                "test_gain": paired_gain(per_query_ndcg(run_of(_variant(here), test), test),
                                         per_query_ndcg(run_of(ref, test), test)),
            })
    return {"variants": out, "best": best, "replicas": replicas, "by_depth": by_depth}


def _variant(row: dict[str, Any]) -> Variant:
    return Variant(**{f.name: row[f.name] for f in fields(Variant)})


# ---------------------------------------------------------------- output


def _rounded(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return round(obj, 4) if isinstance(obj, float) else obj


def _as_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Variants as columns + rows: the same figures at a quarter of the size."""
    columns = ["name", "tune_ndcg@10", "test_ndcg@10", "test_recall@100", "test_mrr@10",
               "p50_ms_retrieval_at_depth"]
    return {
        "columns": columns,
        "rows": [[r["name"], r["tune_ndcg@10"], r["test"]["ndcg@10"], r["test"]["recall@100"],
                  r["test"]["mrr@10"], r["p50_ms_retrieval_at_depth"]] for r in rows],
    }


def _dump(report: dict[str, Any]) -> str:
    """Indented JSON with one line per variant, so a diff of two runs stays readable."""
    rows = report["variants"]["rows"]
    text = json.dumps({**report, "variants": {**report["variants"], "rows": "@ROWS@"}}, indent=1)
    lines = ",\n  ".join(json.dumps(r) for r in rows)
    return text.replace('"@ROWS@"', f"[\n  {lines}\n  ]" if rows else "[]") + "\n"


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


def one_factor(base: Variant, depths: Iterable[int]) -> list[Variant]:
    """The product's fusion with one setting changed at a time."""
    steps = [base, *(replace(base, w_dense=wd, w_bm25=wb) for wd, wb in WEIGHTS[1:])]
    steps.append(replace(base, level="doc" if base.level == "chunk" else "chunk"))
    steps += [replace(base, method=m, c=60) for m in ("rrf", "sum", "minmax")]
    steps += [replace(base, method="rrf", c=c) for c in (5, 10, 30)]
    steps += [replace(base, depth=d) for d in depths]
    return list(dict.fromkeys(steps))


def print_tables(
    results: dict[str, Any], index_info: dict[str, Any], analysis: dict[str, Any]
) -> None:
    best, variants, replicas = analysis["best"], analysis["variants"], analysis["replicas"]
    last, now = index_info["last_build"], index_info["this_run"]
    print(f"\nindex: {now['documents']} docs, {now['chunks']} chunks; "
          f"this run {now['seconds']:.1f} s; "
          f"last build: {last.get('chunks_built', '?')} chunks in {last['seconds']:.0f} s")
    print(f"\n{'mode':<34} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'docs/q':>7} {'p50 ms':>7}")
    table = list(results.items())
    if best:
        table.append((f"best: {best['name']}", {**best["test"],
                                                "p50_ms": best["p50_ms_retrieval_at_depth"]}))
    for name, r in table:
        print(f"{name:<34} {r['ndcg@10']:>8.4f} {r['recall@100']:>7.4f} {r['mrr@10']:>7.4f} "
              f"{r['docs_per_query']:>7.1f} {r['p50_ms']:>7.1f}")
    if best and "test_vs_product" in best:
        g = best["test_vs_product"]
        print(f"best vs {g['mode']}, per-query nDCG@10: {g['mean_diff']:+.4f} "
              f"(95% CI {g['ci95'][0]:+.4f}..{g['ci95'][1]:+.4f}), "
              f"better/same/worse {'/'.join(map(str, g['better/same/worse']))}")
    print("published nDCG@10: " + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
          + f"; target hybrid >= {TARGET}")
    for rep in replicas:
        print(f"replay of {rep['mode']} as {rep['variant']}: nDCG@10 {rep['test']['ndcg@10']:.4f}, "
              f"same top-10 docs on {rep['same_top10_docs']} queries")
    if variants and replicas:
        by_name = {r["name"]: r for r in variants}
        base = Variant(**{f.name: replicas[0][f.name] for f in fields(Variant)})
        steps = one_factor(base, sorted({r["depth"] for r in variants}))
        rows = [by_name[v.name()] for v in steps if v.name() in by_name]
        _print_rows(f"one change at a time from {replicas[0]['mode']} (first row):", rows)
    if variants:
        top = sorted(variants, key=lambda r: -r["tune_ndcg@10"])[:15]
        _print_rows("best 15 by tune nDCG@10:", top)
    if analysis["by_depth"]:
        print("\nbest by tune at each depth vs the product's fusion at that depth (test nDCG@10):")
        for row in analysis["by_depth"]:
            g = row["test_gain"]
            print(f"d={row['depth']:<5} {row['product']:<27} {row['product_test_ndcg@10']:.4f}  "
                  f"{row['best']:<27} {row['best_test_ndcg@10']:.4f}  {g['mean_diff']:+.4f} "
                  f"(95% CI {g['ci95'][0]:+.4f}..{g['ci95'][1]:+.4f})")


def _print_rows(title: str, rows: Sequence[dict[str, Any]]) -> None:
    print(f"\n{title}")
    head = f"{'variant':<34} {'tune':>7} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7}"
    print(f"{head} {'p50 ms':>7}")
    for r in rows:
        t = r["test"]
        print(f"{r['name']:<34} {r['tune_ndcg@10']:>7.4f} {t['ndcg@10']:>8.4f} "
              f"{t['recall@100']:>7.4f} {t['mrr@10']:>7.4f} "
              f"{r['p50_ms_retrieval_at_depth']:>7.1f}")


if __name__ == "__main__":
    sys.exit(main())
