"""Index speed: our pipeline (index.build) against a plain LlamaIndex + Chroma pipeline.

Both pipelines index the 48 SQuAD v1.1 dev articles (~1.6M characters) with the
same bundled ONNX model, so the difference is the pipeline: chunking, batching,
stores. Each pipeline runs in its own child process (``--run ours|plain``) so
that its peak RSS is its own and neither inherits the other's imports. The
benchmark text is written to a scratch folder outside the repo (or under the
gitignored ``benchmarks/scratch/``); only the figures are written to the results.

    python benchmarks/index_speed.py --squad ../shared/benchmarks/squad/dev-v1.1.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRATCH_OK = REPO / "benchmarks" / "scratch"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "index_speed.json"
MARKER = ".index_speed-workdir"  # only folders carrying it are ever cleared
PIPELINES = ("ours", "plain")
WINDOW = 256  # the model's window in WordPiece tokens, [CLS] and [SEP] included


# ---------------------------------------------------------------- helpers


def _rss_peak_mb() -> float:
    """High-water RSS of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (onnxruntime's too)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _load() -> float:
    """1-minute load average: above the core count, other work skews wall times."""
    return round(os.getloadavg()[0], 2)


def _forbid_network() -> list[str]:
    """Make any IP connection fail and log it: proves the run downloads nothing."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(repr(address))
            raise OSError(f"network disabled by the benchmark (tried {address!r})")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    return attempts


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Keep the child's stdout for its one JSON line; library chatter goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


@functools.cache
def _tokenizer() -> Any:
    """The embedder's own WordPiece tokenizer, untruncated, to see what the model drops."""
    from tokenizers import Tokenizer

    from index.embed import default_model_files

    tok = Tokenizer.from_file(str(default_model_files()[1]))
    tok.no_truncation()
    tok.no_padding()
    return tok


def _token_stats(texts: Sequence[str]) -> dict[str, Any]:
    """Model-token counts ([CLS]/[SEP] included) and how many exceed the window."""
    counts = [len(e.ids) for e in _tokenizer().encode_batch(list(texts))] if texts else []
    over = [c for c in counts if c > WINDOW]
    return {
        "count": len(counts),
        "avg_tokens": round(sum(counts) / len(counts), 1) if counts else 0.0,
        "max_tokens": max(counts, default=0),
        "over_window": len(over),
        "tokens_cut": sum(c - WINDOW for c in over),
        "tokens_seen": sum(min(c, WINDOW) for c in counts),
    }


def _window_coverage(texts: dict[str, str], spans: Sequence[tuple[str, int, str, str]]) -> float:
    """Share of the corpus's non-space characters inside some vector's 256-token window.

    Why: chars/s means little if the model only sees the head of each chunk. A span is
    (file, chunk start, chunk text, model input); the chunk is the tail of the model
    input (LlamaIndex prepends metadata to it), and the model keeps WINDOW tokens.
    """
    import numpy as np

    covered = {f: np.zeros(len(t), dtype=bool) for f, t in texts.items()}
    encodings = _tokenizer().encode_batch([s[3] for s in spans])
    for (f, start, chunk, model_input), enc in zip(spans, encodings, strict=True):
        seen = len(model_input)
        if len(enc.ids) > WINDOW:
            seen = enc.offsets[WINDOW - 2][1]  # last token kept before the final [SEP]
        n = max(0, seen - (len(model_input) - len(chunk)))
        covered[f][start : start + n] = True
    hit = total = 0
    for f, text in texts.items():
        solid = np.fromiter((not c.isspace() for c in text), dtype=bool, count=len(text))
        hit += int((covered[f] & solid).sum())
        total += int(solid.sum())
    return hit / total if total else 0.0


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


# ---------------------------------------------------------------- children


def run_ours(corpus: Path, store: Path) -> dict[str, Any]:
    """index.build.build_index from an empty store, then a no-op refresh, then checks."""
    t = time.perf_counter()
    import chromadb  # noqa: F401  (index.store imports it lazily; keep it out of the timing)

    from index.build import LEXICAL_FILE, build_index
    from index.chunk import ChunkParams, chunk_text
    from index.embed import OnnxEmbedder
    from index.lexical import LexicalIndex
    from index.manifest import load_manifest
    from index.store import VectorStore

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    embedder = OnnxEmbedder().load()
    load_s = time.perf_counter() - t
    rss_before = _rss_now_mb()

    load_avg, cpu, t = _load(), _cpu_s(), time.perf_counter()
    first = build_index(corpus, store, embedder)
    seconds, cpu = time.perf_counter() - t, _cpu_s() - cpu
    peak, load_after = _rss_peak_mb(), _load()

    t = time.perf_counter()
    again = build_index(corpus, store, embedder)
    noop_s = time.perf_counter() - t

    # Chunking alone (it is part of the build above): rough sizes, then the window check.
    corpus_texts = [_read(p) for p in sorted(corpus.glob("*.txt"))]
    t = time.perf_counter()
    for text in corpus_texts:
        chunk_text(text, ChunkParams(), embedder)
    chunking_s = time.perf_counter() - t

    # Every chunk, as stored, must be the exact slice of its file it claims to be.
    manifest = load_manifest(store)
    assert manifest is not None
    lexical = LexicalIndex(store / LEXICAL_FILE, readonly=True)
    rows = lexical.get(sorted(lexical.ids()))
    lexical.close()
    hits = VectorStore(store, manifest.collection).get(sorted(rows))
    texts = {src: _read(corpus / src) for src in manifest.documents}
    mismatches = sum(texts[r.source][r.start : r.end] != r.text for r in rows.values())
    mismatches += sum(texts[h.source][h.start : h.end] != h.text for h in hits)
    # Between consecutive chunks only whitespace (or a BOM) may be left out.
    uncovered = overlaps = 0
    for src, text in texts.items():
        pos = 0
        for r in sorted((r for r in rows.values() if r.source == src), key=lambda r: r.start):
            overlaps += r.start < pos
            uncovered += len(text[pos : r.start].replace("\ufeff", "").strip())
            pos = max(pos, r.end)
        uncovered += len(text[pos:].strip())

    return {
        "pipeline": "ours",
        "import_s": import_s,
        "model_load_s": load_s,
        "seconds": seconds,
        "cpu_s": cpu,
        "load_avg_before": load_avg,
        "load_avg_after": load_after,
        "chunks": first.chunks,
        "documents": first.documents,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "noop_seconds": noop_s,
        "noop_summary": again.to_json(),
        "chunking_seconds": chunking_s,
        "offsets": {
            "checked": len(rows) + len(hits),
            "lexical_rows": len(rows),
            "chroma_rows": len(hits),
            "mismatches": mismatches,
            "same_ids": set(rows) == manifest.chunk_ids() == {h.chunk_id for h in hits},
            "uncovered_chars": uncovered,
            "overlaps": overlaps,
        },
        "chunk_tokens": _token_stats([r.text for r in rows.values()]),
        # Every chunk checked above, as SQLite and as Chroma hold it, in model tokens.
        "checked_tokens": _token_stats([r.text for r in rows.values()] + [h.text for h in hits]),
        "window_coverage": _window_coverage(
            texts, [(r.source, r.start, r.text, r.text) for r in rows.values()]
        ),
    }


def run_plain(corpus: Path, store: Path) -> dict[str, Any]:
    """The LlamaIndex quick-start pipeline with defaults, on Chroma, with our model."""
    t = time.perf_counter()
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.core.vector_stores.utils import metadata_dict_to_node
    from llama_index.vector_stores.chroma import ChromaVectorStore
    from onnx_llama_embedding import OnnxLlamaEmbedding

    from index.embed import OnnxEmbedder

    import_s = time.perf_counter() - t
    Settings.llm = None  # never resolve the default (OpenAI) LLM
    t = time.perf_counter()
    embed_model = OnnxLlamaEmbedding(OnnxEmbedder().load(), record_inputs=True)
    load_s = time.perf_counter() - t
    splitter = SentenceSplitter()  # what from_documents uses when nothing is set
    rss_before = _rss_now_mb()

    load_avg, cpu, t = _load(), _cpu_s(), time.perf_counter()
    docs = SimpleDirectoryReader(str(corpus), required_exts=[".txt"]).load_data()
    client = chromadb.PersistentClient(
        path=str(store / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.create_collection("plain", embedding_function=None)
    VectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(
            vector_store=ChromaVectorStore(chroma_collection=collection)
        ),
        embed_model=embed_model,
    )
    seconds, cpu = time.perf_counter() - t, _cpu_s() - cpu
    peak, load_after = _rss_peak_mb(), _load()

    # Read the nodes back from Chroma: does LlamaIndex's offset metadata hold, and
    # which part of the corpus do the vectors stand for?
    got = collection.get(include=["documents", "metadatas"])
    texts: dict[str, str] = {}
    spans: list[tuple[str, int, str, str]] = []
    mismatches = 0
    for doc, meta in zip(got["documents"], got["metadatas"], strict=True):
        node = metadata_dict_to_node(meta, text=doc)
        path = str(meta["file_path"])
        text = texts.setdefault(path, _read(Path(path)))
        start, end = node.start_char_idx, node.end_char_idx
        mismatches += start is None or end is None or text[start:end] != doc
        spans.append((path, start or 0, doc, node.get_content(metadata_mode=MetadataMode.EMBED)))

    return {
        "pipeline": "plain",
        "import_s": import_s,
        "model_load_s": load_s,
        "seconds": seconds,
        "cpu_s": cpu,
        "load_avg_before": load_avg,
        "load_avg_after": load_after,
        "chunks": collection.count(),
        "documents": len(docs),
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "noop_seconds": None,  # no incremental mode without an IngestionPipeline + docstore
        "splitter": {
            "chunk_size": splitter.chunk_size,
            "chunk_overlap": splitter.chunk_overlap,
            "unit": "tiktoken cl100k_base tokens",
        },
        "embed_batch_size": embed_model.embed_batch_size,
        "offsets": {"checked": len(got["ids"]), "mismatches": mismatches},
        "chunk_tokens": _token_stats(got["documents"]),
        # What the model was actually given: the chunk with file_path metadata prepended.
        "embedded_tokens": _token_stats(embed_model.inputs),
        "inputs_reconstructed": sorted(s[3] for s in spans) == sorted(embed_model.inputs),
        "window_coverage": _window_coverage(texts, spans),
    }


def child(which: str, corpus: Path, store: Path) -> None:
    """Run one pipeline and print its figures as one JSON line on stdout."""
    out = sys.stdout
    attempts = _forbid_network()
    with _stdout_to_stderr():
        result = (run_ours if which == "ours" else run_plain)(corpus, store)
    result["network_attempts"] = attempts
    out.write(json.dumps(result) + "\n")
    out.flush()


# ---------------------------------------------------------------- parent


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "article"


def write_corpus(squad: Path, corpus: Path) -> dict[str, int]:
    """One .txt per article: its paragraphs' contexts joined by blank lines."""
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    corpus.mkdir(parents=True)
    names: set[str] = set()
    chars = size = 0
    for article in data:
        name, n = slug(article["title"]), 2
        while name in names:
            name, n = f"{slug(article['title'])}-{n}", n + 1
        names.add(name)
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        with open(corpus / f"{name}.txt", "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        chars += len(text)
        size += len(text.encode("utf-8"))
    return {"articles": len(data), "chars": chars, "bytes": size}


def prepare_workdir(arg: Path | None) -> tuple[Path, bool]:
    """A scratch folder outside the repo (or under benchmarks/scratch/), cleared if ours."""
    if arg is None:
        return Path(tempfile.mkdtemp(prefix="index_speed-")), True
    work = arg.resolve()
    if work.is_relative_to(REPO) and not work.is_relative_to(SCRATCH_OK):
        sys.exit(f"--workdir must be outside the repo or under {SCRATCH_OK}")
    if work.exists() and any(work.iterdir()):
        if not (work / MARKER).exists():
            sys.exit(f"--workdir {work} is not empty and was not made by this script")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).touch()
    return work, False


def run_child(which: str, corpus: Path, store: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run", which,
           "--corpus", str(corpus), "--store", str(store)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"the {which} pipeline failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, text=True, capture_output=True).stdout.strip()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("llama-index-core", "llama-index-vector-stores-chroma", "chromadb",
                "onnxruntime", "tokenizers", "tiktoken"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def table(results: dict[str, dict[str, Any]], chars: int) -> str:
    head = ("pipeline", "seconds", "chars/s", "chunks", "chunks/s", "avg chunk tok",
            "peak RSS MB", "text in window")
    rows = [head]
    for name, r in results.items():
        rows.append((
            name, f"{r['seconds']:.1f}", f"{chars / r['seconds']:,.0f}", str(r["chunks"]),
            f"{r['chunks'] / r['seconds']:.1f}", f"{r['chunk_tokens']['avg_tokens']:.1f}",
            f"{r['peak_rss_mb']:.0f}", f"{100 * r['window_coverage']:.1f}%",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, help="SQuAD v1.1 dev json")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the temp workdir")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per pipeline, alternating; the fastest is reported")
    ap.add_argument("--run", choices=PIPELINES, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        child(args.run, args.corpus, args.store)
        return
    if args.squad is None or not args.squad.is_file():
        ap.error("--squad PATH to dev-v1.1.json is required")

    work, temporary = prepare_workdir(args.workdir)
    try:
        corpus = work / "corpus"
        stats = write_corpus(args.squad, corpus)
        print(f"corpus: {stats['articles']} articles, {stats['chars']:,} chars in {corpus}",
              file=sys.stderr)
        runs: dict[str, list[dict[str, Any]]] = {w: [] for w in PIPELINES}
        for i in range(max(1, args.repeat)):
            for which in PIPELINES:
                print(f"running {which} ({i + 1}/{args.repeat}) …", file=sys.stderr)
                store = work / f"store-{which}"
                shutil.rmtree(store, ignore_errors=True)  # every run starts from nothing
                runs[which].append(run_child(which, corpus, store))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    results = {w: min(rs, key=lambda r: r["seconds"]) for w, rs in runs.items()}
    chars = stats["chars"]
    for w, r in results.items():
        r["all_seconds"] = [x["seconds"] for x in runs[w]]
        # Work the model really did: tokens of its inputs that fit the window.
        seen = r.get("embedded_tokens", r["chunk_tokens"])["tokens_seen"]
        r["model_tokens_per_s"] = seen / r["seconds"]
        r["chars_per_s"] = chars / r["seconds"]
        r["chunks_per_s"] = r["chunks"] / r["seconds"]
    ours, plain = results["ours"], results["plain"]
    ratio = ours["chars_per_s"] / plain["chars_per_s"]
    print(table(results, chars))
    cpu_ratio = plain["cpu_s"] / ours["cpu_s"]
    print(f"\nours/plain chars/s: {ratio:.2f}x (wall); {cpu_ratio:.2f}x per CPU-second "
          f"(ours {ours['cpu_s']:.1f} CPU-s, plain {plain['cpu_s']:.1f} CPU-s)")
    print(f"model tokens embedded per second: ours {ours['model_tokens_per_s']:,.0f}, "
          f"plain {plain['model_tokens_per_s']:,.0f}")
    print(f"ours no-op refresh: {ours['noop_seconds']:.2f}s "
          f"({ours['noop_summary']['unchanged']} unchanged)")
    o = ours["offsets"]
    print(f"ours offsets: {o['checked']} chunks checked (lexical {o['lexical_rows']} + "
          f"chroma {o['chroma_rows']}), {o['mismatches']} mismatches, "
          f"{o['uncovered_chars']} non-space chars left out, {o['overlaps']} overlaps, "
          f"ids agree across manifest/SQLite/Chroma: {o['same_ids']}")
    c = ours["checked_tokens"]
    print(f"ours largest chunk: {c['max_tokens']} model tokens ([CLS]/[SEP] included; window "
          f"{WINDOW}) of the {c['count']} chunks checked; {c['over_window']} over the window")
    print(f"ours chunking alone: {ours['chunking_seconds']:.2f}s for {chars:,} chars "
          f"({100 * ours['chunking_seconds'] / ours['seconds']:.1f}% of the build)")
    print(f"plain offsets: {plain['offsets']['checked']} nodes checked, "
          f"{plain['offsets']['mismatches']} mismatches")
    for name, key in (("ours", "chunk_tokens"), ("plain", "chunk_tokens"),
                      ("plain", "embedded_tokens")):
        t = results[name][key]
        what = "embedded inputs (with metadata)" if key == "embedded_tokens" else "chunks"
        print(f"{name} {what} over the {WINDOW}-token window (silently truncated): "
              f"{t['over_window']}/{t['count']}, max {t['max_tokens']} tokens, "
              f"{t['tokens_cut']:,} tokens never seen by the model")
    nets = sum(len(r["network_attempts"]) for r in results.values())
    print(f"network connection attempts: {nets}")
    loads = [x for r in results.values() for x in (r["load_avg_before"], r["load_avg_after"])]
    if max(loads) > (os.cpu_count() or 1):
        print(f"WARNING: load average reached {max(loads)} on {os.cpu_count()} cores: "
              "other work shared the CPU, wall times are inflated")

    out = {
        "benchmark": "index_speed",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted edits to the measured code make git_commit an approximation.
        "git_dirty_paths": _git("status", "--porcelain", "index", "assistant").splitlines(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "corpus": {"source": args.squad.name, **stats},
        "window_tokens": WINDOW,
        "ratio_chars_per_s_ours_over_plain": ratio,
        "ratio_chars_per_cpu_s_ours_over_plain": cpu_ratio,
        "pipelines": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
