"""A terminal research assistant: cited answers about a folder of documents.

Names are handed out lazily (PEP 562) so that ``import assistant`` and
``assistant --help`` load neither LlamaIndex, Chroma nor Textual.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Answer": "assistant.models",
    "Citation": "assistant.models",
    "Passage": "assistant.models",
    "Config": "assistant.config",
    "AssistantError": "assistant.errors",
    "Assistant": "assistant.service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
