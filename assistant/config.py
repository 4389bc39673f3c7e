"""Where things are: corpus, index store, user data, Chroma server; from flags or environment.

Environment variables (flags win over them):
``ASSISTANT_CORPUS``, ``ASSISTANT_STORE``, ``ASSISTANT_HOME`` (user data folder:
stores and conversations), ``ASSISTANT_CHROMA_URL``, ``ASSISTANT_CHROMA_TOKEN``,
``ASSISTANT_MAX_FILE_MB``, and ``ASSISTANT_EMBED_MODEL`` + ``ASSISTANT_EMBED_TOKENIZER``
to use another BERT-style ONNX sentence encoder.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_K = 6


def default_corpus() -> Path:
    env = os.environ.get("ASSISTANT_CORPUS")
    if env:
        return Path(env).expanduser()
    bundled = PROJECT_ROOT / "seeds"
    return bundled if bundled.is_dir() else Path("seeds")


def user_home() -> Path:
    env = os.environ.get("ASSISTANT_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("research-assistant", appauthor=False))


def default_store(corpus: Path) -> Path:
    """A store per corpus folder, so two corpora never share (or clobber) an index."""
    env = os.environ.get("ASSISTANT_STORE")
    if env:
        return Path(env).expanduser()
    return user_home() / "stores" / _folder_key(corpus)


def read_only_copies(store: Path) -> Path:
    """Where this user keeps verified copies of an index it may not write (index/readonly.py)."""
    return user_home() / "read-only" / _folder_key(store)


def _folder_key(folder: Path) -> str:
    """A readable, unique folder name for another folder: its name plus a hash of its path."""
    absolute = folder.expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", absolute.name).strip("-")[:40] or "corpus"
    key = hashlib.sha256(str(absolute).encode()).hexdigest()[:10]
    return f"{slug}-{key}"


def max_file_bytes() -> int:
    try:
        return int(float(os.environ.get("ASSISTANT_MAX_FILE_MB", "20")) * 1024 * 1024)
    except ValueError:
        return 20 * 1024 * 1024


@dataclass(frozen=True)
class Config:
    corpus: Path
    store: Path
    chroma_url: str | None = None
    collection: str | None = None
    k: int = DEFAULT_K

    @classmethod
    def resolve(
        cls,
        corpus: str | Path | None = None,
        store: str | Path | None = None,
        chroma_url: str | None = None,
        collection: str | None = None,
        k: int | None = None,
    ) -> Config:
        c = Path(corpus).expanduser() if corpus else default_corpus()
        s = Path(store).expanduser() if store else default_store(c)
        url = chroma_url or os.environ.get("ASSISTANT_CHROMA_URL") or None
        return cls(corpus=c, store=s, chroma_url=url, collection=collection, k=k or DEFAULT_K)


def make_embedder():  # -> index.embed.Embedder
    """The configured embedding model (the bundled MiniLM unless overridden)."""
    from index.embed import OnnxEmbedder
    from index.load import file_sha256

    model = os.environ.get("ASSISTANT_EMBED_MODEL")
    if model:
        tok = os.environ.get("ASSISTANT_EMBED_TOKENIZER")
        if not tok:
            from assistant.errors import ModelError

            raise ModelError(
                "ASSISTANT_EMBED_MODEL is set but ASSISTANT_EMBED_TOKENIZER is not.",
                "Set it to the model's tokenizer.json.",
            )
        mp = Path(model).expanduser()
        model_id = f"{mp.name}@{file_sha256(mp)[:12]}"
        return OnnxEmbedder(mp, Path(tok).expanduser(), model_id=model_id)
    return OnnxEmbedder()
