"""The question encoder: our own model, trained to point a question at its answering sentence.

The index stores a vector per sentence, made by the bundled MiniLM in context
(``index/sentvec.py``). The bundled model was trained to match texts that say the same
thing, not a question with its answer, and a question asked in other words than the
text's lands far from the sentence that answers it. This model is that same network
with its question side tuned on public question-answering data
(``benchmarks/train_qencoder.py``; base, data, figures and licences in the model card
beside it): a question's vector from it is compared with the stored sentence vectors
unchanged, so the index, its size and its build do not change.

It only fits the bundled model's vectors: with another embedding model configured
(``ASSISTANT_EMBED_MODEL``) there is none, and sentences are weighed with that model's
own question vector. The file is sha256-checked before it is loaded, like the embedder:
an altered or missing file is a :class:`~index.errors.ModelError` (exit 6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL_NAME = "model.onnx"
CARD_NAME = "MODEL_CARD.md"
MODEL_DIR = Path(__file__).with_name("data") / "question-encoder"
MODEL_SHA256 = "604f3ecf2f0bceb7538078d234b6d4bd0ebbadc5f1e2c51e1f3063dcadac3800"
BASE_MODEL_PREFIX = "all-MiniLM-L6-v2/onnx-int8@"  # the bundled embedder's model_id


def fits(embedder: Any) -> bool:
    """Whether the tuned model speaks the vector space ``embedder``'s index holds."""
    return str(getattr(embedder, "model_id", "")).startswith(BASE_MODEL_PREFIX)


def load_question_encoder(embedder: Any) -> Any | None:
    """The loaded question encoder for ``embedder``'s index, or None when it does not fit."""
    if not fits(embedder):
        return None
    from index.embed import OnnxEmbedder, _verified, default_model_files

    model = _verified(
        MODEL_DIR / MODEL_NAME, MODEL_SHA256, "question encoder (assistant/data/question-"
        "encoder/model.onnx)",
        "pip install --force-reinstall research-assistant, or 'git checkout -- "
        "assistant/data' in a checkout of the project",
    )
    tokenizer = default_model_files()[1]
    return OnnxEmbedder(model, tokenizer, model_id=f"qencoder@{MODEL_SHA256[:12]}").load()
