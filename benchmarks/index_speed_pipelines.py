"""The two pipelines ``index_speed.py`` compares, each run in a child process of its own:
ours (``index.build``) and a plain LlamaIndex + Chroma one, with the same bundled
ONNX model; each prints its figures (time, CPU, peak RSS, what the model saw of
each passage) as one JSON line. Network use is refused and counted.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
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
