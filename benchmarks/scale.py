"""Scale: index build, store size, memory and query latency at ~1k, 10k and 100k chunks.

Corpora are prefixes of one ordered list of real documents nobody here wrote, so the
smaller corpus is inside the larger one: the 48 SQuAD v1.1 dev articles (~2.6k
chunks), then SciFact's 5,183 abstracts (~13k chunks), then the Python 3.11
documentation sources (``apt-get install python3.11-doc``: ``_sources/*.rst.txt``,
~28k chunks), then any ``--extra DIR`` (text, reST, Markdown, POD or HTML). For 100k
chunks: ``apt-get install python3.11-doc linux-doc-6.1`` and the Linux kernel's
documentation sources as ``--extra`` (1,958 of its files complete the 100k corpus:
7,686 documents, 34.9M characters). Documents are added until the real chunker
reaches the target.

Each measurement runs in its own child process (``--child``), so each peak RSS is
that phase's own: the build (embedded store), a refresh of the unchanged corpus, warm
query latency (retrieval alone, and a full answer) and cold start to a first answer
(``python -m assistant ask`` from spawn). At one size (``--plain-at``) the plain
LlamaIndex pipeline (``VectorStoreIndex`` over ``ChromaVectorStore``, default
settings, the same ONNX model through ``benchmarks/onnx_llama_embedding.py``) is
measured too, and our figures are printed as ratios to it.

    python benchmarks/scale.py --sizes 1k,10k          # ~10 min on 2 quiet cores
    python benchmarks/scale.py --sizes 100k --no-plain \
        --extra /usr/share/doc/linux-doc-6.1/html/_sources   # ~25 min
    python benchmarks/scale.py --sizes 100k --synthetic --extra ...   # all but the model
    python benchmarks/scale.py --sizes 1k --chroma-url http://127.0.0.1:8000  # via a server

``--synthetic`` swaps the model for hash-seeded random vectors: it measures refresh,
store size, memory and query latency without the embedding's cost.

Corpora and stores go to ``benchmarks/scratch/scale/`` (gitignored); figures to
``benchmarks/results/scale.json`` (merged by size) and ``scale.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / "benchmarks" / "scratch" / "scale"
RESULTS = REPO / "benchmarks" / "results"
SHARED = REPO.parent / "shared" / "benchmarks"
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
TARGETS = {  # issue 5, at 100k chunks
    "answer_p50_ms": 150, "answer_p95_ms": 300, "peak_mib": 2048, "chunks_per_s": 50,
    "refresh_s": 10,
}
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from scale_corpus import make_corpus, questions  # noqa: E402


def du(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- children


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


class RandomEmbedder:
    """Unit vectors from a hash of the text: every cost of the pipeline but the model's.

    For ``--synthetic``: what refresh, store size, memory and latency do at a size
    whose real embedding would take an hour. Answers are meaningless; timings are not.
    """

    model_id = "synthetic-random-384"
    dim = 384

    def load(self) -> RandomEmbedder:
        return self

    def _vec(self, text: str) -> Any:
        import hashlib

        import numpy as np

        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_documents(self, texts: Any, progress: Any = None) -> Any:
        import numpy as np

        out = np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim))
        if progress:
            progress(len(texts))
        return out

    def embed_passages(self, texts: Any, spans: Any, progress: Any = None) -> Any:
        """Random sentence vectors too, so the store holds (and queries read) as much."""
        import numpy as np

        parts = [np.stack([self._vec(t[a:b]) for a, b in sp]) if sp else
                 np.zeros((0, self.dim), np.float32) for t, sp in zip(texts, spans, strict=True)]
        return self.embed_documents(texts, progress), parts

    def embed_query(self, text: str) -> Any:
        return self._vec(text)


def _embedder(a: dict[str, Any]) -> Any:
    from assistant.config import make_embedder

    return RandomEmbedder() if a.get("synthetic") else make_embedder().load()


def child_build(a: dict[str, Any]) -> dict[str, Any]:
    from index.build import build_index

    emb = _embedder(a)
    t = time.perf_counter()
    s = build_index(Path(a["corpus"]), Path(a["store"]), emb, chroma_url=a.get("url"))
    return {"seconds": time.perf_counter() - t, "chunks": s.chunks, "documents": s.documents,
            "added": s.added, "unchanged": s.unchanged, "peak_mib": _peak_mib()}


def child_query(a: dict[str, Any]) -> dict[str, Any]:
    from assistant.config import Config
    from assistant.service import Assistant

    svc = Assistant.open(Config.resolve(corpus=a["corpus"], store=a["store"],
                                        chroma_url=a.get("url")), embedder=_embedder(a))
    qs = a["questions"]
    for q in qs[:5]:  # warm-up: caches, lazy imports, the ONNX session
        svc.ask(q)
    retrieve, answer = [], []
    for q in qs:
        t = time.perf_counter()
        svc._retriever.retrieve(q, svc.config.k)  # noqa: SLF001 - retrieval alone
        retrieve.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        svc.ask(q)
        answer.append((time.perf_counter() - t) * 1000)
    return {"retrieve_ms": retrieve, "answer_ms": answer, "peak_mib": _peak_mib()}


def child_plain(a: dict[str, Any]) -> dict[str, Any]:
    """The LlamaIndex quick-start pipeline with defaults, on Chroma, with our model."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore
    from onnx_llama_embedding import OnnxLlamaEmbedding

    from index.embed import OnnxEmbedder

    Settings.llm = None  # never resolve the default (OpenAI) LLM
    embed = OnnxLlamaEmbedding(OnnxEmbedder().load())
    store = Path(a["store"])
    t = time.perf_counter()
    docs = SimpleDirectoryReader(a["corpus"], recursive=True, required_exts=[".txt"]).load_data()
    client = chromadb.PersistentClient(path=str(store / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_or_create_collection("plain", embedding_function=None)
    index = VectorStoreIndex.from_documents(
        docs, embed_model=embed,
        storage_context=StorageContext.from_defaults(vector_store=ChromaVectorStore(
            chroma_collection=col)),
    )
    build_s = time.perf_counter() - t
    build_peak = _peak_mib()
    retriever = index.as_retriever(similarity_top_k=6)
    # No LLM can run here; "no_text" keeps the query engine's path minus the LLM call.
    engine = index.as_query_engine(similarity_top_k=6, response_mode="no_text")
    qs = a["questions"]
    for q in qs[:5]:
        engine.query(q)
    retrieve, answer = [], []
    for q in qs:
        t = time.perf_counter()
        retriever.retrieve(q)
        retrieve.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        engine.query(q)
        answer.append((time.perf_counter() - t) * 1000)
    return {"seconds": build_s, "chunks": col.count(), "build_peak_mib": build_peak,
            "retrieve_ms": retrieve, "answer_ms": answer, "peak_mib": _peak_mib()}


CHILDREN = {"build": child_build, "query": child_query, "plain": child_plain}


def run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(args)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if proc.returncode:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - t
    return out


def cold_answer(corpus: str, store: str, question: str, url: str | None) -> float:
    """Spawn to a printed answer, as a person at a shell sees it (index current)."""
    cmd = [sys.executable, "-m", "assistant", "ask", question, "--json",
           "--corpus", corpus, "--store", store] + (["--chroma-url", url] if url else [])
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - t


# ---------------------------------------------------------------- driver


def measure(label: str, target: int, opts: argparse.Namespace) -> dict[str, Any]:
    info = make_corpus(target, opts.shared, opts.extra, SCRATCH)
    corpus = info["root"]
    store = SCRATCH / f"store-{target}{'-synthetic' if opts.synthetic else ''}"
    shutil.rmtree(store, ignore_errors=True)
    qs = questions(opts.shared, Path(corpus), opts.questions)
    url, fake = opts.chroma_url, opts.synthetic
    load = os.getloadavg()[0]
    common = {"corpus": corpus, "store": str(store), "url": url, "synthetic": fake}
    build = run_child("build", common)
    refresh = run_child("build", common)
    assert refresh["unchanged"] == info["documents"], refresh
    query = run_child("query", {**common, "questions": qs})
    # The CLI always loads the real model: cold start is measured on real indexes only.
    cold = [] if fake else [cold_answer(corpus, str(store), q, url) for q in qs[:3]]
    row: dict[str, Any] = {
        "size": label, "documents": info["documents"], "chunks": build["chunks"],
        "chars": info["chars"], "sources": info["sources"],
        "build_s": build["seconds"], "chunks_per_s": build["chunks"] / build["seconds"],
        "chars_per_s": info["chars"] / build["seconds"], "build_peak_mib": build["peak_mib"],
        "store_mib": du(store) / 2**20,
        "refresh_s": refresh["seconds"], "refresh_process_s": refresh["process_s"],
        "retrieve_p50_ms": _pct(query["retrieve_ms"], 50),
        "retrieve_p95_ms": _pct(query["retrieve_ms"], 95),
        "answer_p50_ms": _pct(query["answer_ms"], 50),
        "answer_p95_ms": _pct(query["answer_ms"], 95),
        "query_peak_mib": query["peak_mib"],
        "cold_answer_s": statistics.median(cold) if cold else None,
        "questions": len(qs), "load_avg_before": round(load, 2), "chroma_url": url,
        "synthetic_vectors": fake,
    }
    print_row(row)
    if label == opts.plain_at and not (opts.no_plain or fake or url):
        if not (REPO / "benchmarks" / "onnx_llama_embedding.py").exists():
            print("  plain LlamaIndex skipped: benchmarks/onnx_llama_embedding.py is missing")
            return row
        row["plain"] = measure_plain(corpus, qs)
        print_plain(row)
    return row


def measure_plain(corpus: str, qs: list[str]) -> dict[str, Any]:
    store = SCRATCH / "store-plain"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    got = run_child("plain", {"corpus": corpus, "store": str(store), "questions": qs})
    return {
        "build_s": got["seconds"], "chunks": got["chunks"], "build_peak_mib": got["build_peak_mib"],
        "store_mib": du(store) / 2**20,
        "retrieve_p50_ms": _pct(got["retrieve_ms"], 50),
        "retrieve_p95_ms": _pct(got["retrieve_ms"], 95),
        "answer_p50_ms": _pct(got["answer_ms"], 50), "answer_p95_ms": _pct(got["answer_ms"], 95),
        "query_peak_mib": got["peak_mib"],
        "note": "VectorStoreIndex.from_documents over ChromaVectorStore, SimpleDirectoryReader, "
                "default SentenceSplitter; 'answer' is as_query_engine(response_mode='no_text'): "
                "its query path without an LLM call (none can run here); its query peak "
                "memory is of the process that also built the index",
    }


def print_row(r: dict[str, Any]) -> None:
    print(f"\n{r['size']}: {r['documents']} documents, {r['chunks']} chunks, "
          f"{r['chars'] / 1e6:.1f}M chars ({r['sources']})")
    print(f"  build      {r['build_s']:8.1f} s   {r['chunks_per_s']:6.1f} chunks/s   "
          f"{r['chars_per_s'] / 1000:6.1f}k chars/s   peak {r['build_peak_mib']:.0f} MiB")
    print(f"  store      {r['store_mib']:8.1f} MiB")
    print(f"  refresh    {r['refresh_s']:8.2f} s unchanged ({r['refresh_process_s']:.1f} s "
          "whole process)")
    print(f"  retrieve   p50 {r['retrieve_p50_ms']:6.1f} ms   p95 {r['retrieve_p95_ms']:6.1f} ms")
    print(f"  answer     p50 {r['answer_p50_ms']:6.1f} ms   p95 {r['answer_p95_ms']:6.1f} ms   "
          f"peak {r['query_peak_mib']:.0f} MiB (warm, {r['questions']} questions)")
    if r["cold_answer_s"] is not None:
        print(f"  cold start to first answer {r['cold_answer_s']:.2f} s")
    if r["synthetic_vectors"]:
        print("  (synthetic vectors: build time excludes the model; answers are meaningless)")


def print_plain(r: dict[str, Any]) -> None:
    p = r["plain"]
    print(f"  plain LlamaIndex on the same corpus: {p['chunks']} chunks (ours {r['chunks']})")
    for key, label in [("build_s", "build time"), ("build_peak_mib", "build peak memory"),
                       ("store_mib", "store size"), ("retrieve_p50_ms", "retrieve p50"),
                       ("retrieve_p95_ms", "retrieve p95"), ("answer_p50_ms", "answer p50"),
                       ("answer_p95_ms", "answer p95"), ("query_peak_mib", "query peak memory")]:
        print(f"    {label:18s} ours {r[key]:9.1f}  plain {p[key]:9.1f}  "
              f"ratio {r[key] / p[key]:5.2f}")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install -e '.[bench]'): no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for synthetic in (False, True):
        series = sorted((r for r in rows if bool(r.get("synthetic_vectors")) == synthetic),
                        key=lambda r: r["chunks"])
        if not series:
            continue
        x = [r["chunks"] for r in series]
        for key, style in [("retrieve_p50_ms", "o-"), ("retrieve_p95_ms", "o--"),
                           ("answer_p50_ms", "s-"), ("answer_p95_ms", "s--")]:
            name = key.replace("_ms", "").replace("_", " ")
            ax.plot(x, [r[key] for r in series], style, alpha=0.5 if synthetic else 1.0,
                    label=f"{name} (synthetic vectors)" if synthetic else name)
    ax.axhline(TARGETS["answer_p50_ms"], color="grey", lw=0.8, ls=":")
    ax.axhline(TARGETS["answer_p95_ms"], color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the index")
    ax.set_ylabel("latency, warm (ms)")
    ax.set_title("Query latency vs corpus size (dotted: 100k targets)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1k,10k", help="comma-separated of 1k,10k,100k")
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared benchmarks folder")
    ap.add_argument("--extra", type=Path, action="append", default=[],
                    help="more documents after SQuAD, SciFact and the Python docs")
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--plain-at", default="10k", help="size at which to run plain LlamaIndex")
    ap.add_argument("--no-plain", action="store_true")
    ap.add_argument("--chroma-url", help="measure against a Chroma server instead")
    ap.add_argument("--synthetic", action="store_true",
                    help="hash-seeded random vectors instead of the model (no embedding cost)")
    ap.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("child_args", nargs="?", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    opts.out = opts.out.resolve()
    if opts.child:
        print(json.dumps(CHILDREN[opts.child](json.loads(opts.child_args))))
        return
    SCRATCH.mkdir(parents=True, exist_ok=True)
    results = json.loads(opts.out.read_text()) if opts.out.exists() else {"sizes": {}}
    for label in opts.sizes.split(","):
        row = measure(label, SIZES[label], opts)
        key = label + ("-server" if opts.chroma_url else "") + ("-synthetic" if opts.synthetic
                                                                 else "")
        results["sizes"][key] = row
        results.update(
            machine=f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
            targets_at_100k=TARGETS, date=time.strftime("%Y-%m-%d"),
        )
        tmp = opts.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        os.replace(tmp, opts.out)
    plot([r for r in results["sizes"].values() if not r.get("chroma_url")],
         opts.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
