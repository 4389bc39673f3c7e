"""Every ``--llm`` backend end to end, against real servers and the real bundled model.

- ``openai:`` talks to ``python -m llama_cpp.server`` (the OpenAI-compatible server
  llama-cpp-python ships), started once for the session on a loopback port;
- ``ollama:`` talks to a STAND-IN Ollama server (no Ollama binary installs here) that
  speaks ``/api/chat`` over the same model (tests/llm_servers.py);
- ``llamacpp:PATH.gguf`` and ``local`` run the model in-process.

Model calls are few (each answer takes seconds here): one CLI answer per backend, and
one streamed answer through the service API for each server backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import flags, open_seeded, seeded_copy
from tests.llm_servers import SERVER_MODEL, assert_answer_contract, closed_port, local_model

pytestmark = pytest.mark.slow

# Three passages, not six: the prompt and the time to first token halve (answers take
# 10-70 s here on a loaded machine with six), and the contract is the same.
FEW = ("--k", "3")

QUESTION = "Which company will supply 5G technology to Russia?"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A corpus copy and a store folder shared by this module's commands."""
    return seeded_copy(tmp_path_factory, "llm-backends")


@pytest.fixture(scope="module")
def service(seeded: dict[str, str], embedder: Any) -> Iterator[Any]:
    """One in-process service over the module's corpus, for the streaming checks."""
    svc = open_seeded(seeded, embedder)
    yield svc
    svc.close()


def streamed(service: Any, spec: Any) -> tuple[Any, list[str]]:
    """Answer QUESTION with ``spec``, recording every delta the model streamed."""
    deltas: list[str] = []
    service.use_llm(spec)
    try:
        answer = service.ask(QUESTION, k=3, on_delta=deltas.append)
    finally:
        service.use_llm(None)
    return answer, deltas


def assert_streamed(answer: Any, deltas: list[str], spec: Any) -> None:
    assert answer.generator == spec.name and not answer.abstained
    assert len(deltas) > 1, deltas  # many pieces as they came, not one reply at the end
    draft = "".join(deltas)
    assert draft.strip()
    # every sentence checked (kept or dropped) is one the model streamed, markers aside
    bare = " ".join(re.sub(r"[^\S\r\n]*\[\d+\]", "", draft).split())
    for check in answer.checks:
        assert check.text in bare, (check.text, draft)
    assert 0 < answer.timings_ms["first_token"] < answer.timings_ms["total"]


# -- openai: against the real llama_cpp.server ---------------------------------------


def test_openai_ask_json_against_llama_cpp_server(
    run_cli: Any, seeded: dict[str, str], llama_server: Any,
) -> None:
    spec = f"openai:{SERVER_MODEL}"
    proc = run_cli("ask", QUESTION, "--json", "--llm", spec, "--llm-url", llama_server.url,
                   *FEW, *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert_answer_contract(out, Path(seeded["--corpus"]), spec)
    assert out["citations"], out  # an answer (the model's or the fallback) cites passages
    assert "POST /v1/chat/completions HTTP/1.1\" 200" in llama_server.log()


def test_openai_streams_through_the_service(service: Any, llama_server: Any) -> None:
    from assistant.llm import LlmSpec

    spec = LlmSpec.parse(f"openai:{SERVER_MODEL}", llama_server.url)
    answer, deltas = streamed(service, spec)
    assert_streamed(answer, deltas, spec)


# -- ollama: against the stand-in ------------------------------------------------------


def test_ollama_ask_json_with_ollama_host(
    run_cli: Any, seeded: dict[str, str], ollama_stand_in: Any,
) -> None:
    spec = f"ollama:{SERVER_MODEL}"
    before = len(ollama_stand_in.requests)
    proc = run_cli("ask", QUESTION, "--json", "--llm", spec, *FEW, *flags(seeded),
                   OLLAMA_HOST=ollama_stand_in.url)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert_answer_contract(out, Path(seeded["--corpus"]), spec)
    assert out["citations"], out
    chats = [b for m, p, b in ollama_stand_in.requests[before:] if p == "/api/chat"]
    assert len(chats) == 1
    body = chats[0]
    assert body["model"] == SERVER_MODEL and body["stream"] is True
    assert body["options"]["num_predict"] == 320 and body["options"]["num_ctx"] == 4096
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "<passage n=\"1\"" in body["messages"][1]["content"]


def test_ollama_streams_through_the_service(service: Any, ollama_stand_in: Any) -> None:
    from assistant.llm import LlmSpec

    spec = LlmSpec.parse(f"ollama:{SERVER_MODEL}", ollama_stand_in.url)
    answer, deltas = streamed(service, spec)
    assert_streamed(answer, deltas, spec)


def test_the_stand_in_answers_the_ollama_client_without_streaming(
    ollama_stand_in: Any,
) -> None:
    """The ``ollama`` client's other mode (one object), and its error for an unknown model."""
    import ollama

    client = ollama.Client(host=ollama_stand_in.url)
    reply = client.chat(model=f"{SERVER_MODEL}:latest", stream=False,
                        messages=[{"role": "user", "content": "Name one colour."}],
                        options={"temperature": 0, "num_predict": 12})
    assert reply.done and reply.message.role == "assistant"
    assert reply.message.content.strip() and 0 < reply.eval_count <= 12
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404


# -- in-process: llamacpp:PATH and local -------------------------------------------------


@pytest.mark.parametrize("kind", ["llamacpp", "local"])
def test_in_process_models_answer(run_cli: Any, seeded: dict[str, str], kind: str) -> None:
    spec = f"llamacpp:{local_model()}" if kind == "llamacpp" else "local"
    proc = run_cli("ask", QUESTION, "--json", "--llm", spec, *FEW, *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert_answer_contract(out, Path(seeded["--corpus"]), spec)
    assert out["citations"], out


# -- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_unreachable_endpoint_is_exit_7_naming_url_and_model(
    run_cli: Any, seeded: dict[str, str], kind: str,
) -> None:
    port = closed_port()
    if kind == "openai":
        url = f"http://127.0.0.1:{port}/v1"
        where: dict[str, Any] = {"args": ("--llm-url", url), "env": {}}
    else:  # Ollama's own variable
        url = f"http://127.0.0.1:{port}"
        where = {"args": (), "env": {"OLLAMA_HOST": f"127.0.0.1:{port}"}}
    proc = run_cli("ask", QUESTION, "--llm", f"{kind}:{SERVER_MODEL}", *where["args"],
                   *FEW, *flags(seeded), **where["env"])
    assert proc.returncode == 7, (proc.stdout, proc.stderr)
    assert url in proc.stderr and f"{kind}:{SERVER_MODEL}" in proc.stderr
    assert proc.stderr.startswith("error: ") and "hint: " in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_chat_mode_answers_extractively_when_the_model_is_unreachable(
    service: Any,
) -> None:
    """What the chat asks for (``fallback_on_failure``): the extractive answer, saying why."""
    from assistant.errors import LlmUnavailable
    from assistant.llm import LlmSpec

    url = f"http://127.0.0.1:{closed_port()}/v1"
    service.use_llm(LlmSpec.parse(f"openai:{SERVER_MODEL}", url))
    try:
        with pytest.raises(LlmUnavailable):
            service.ask(QUESTION, k=3)
        answer = service.ask(QUESTION, k=3, fallback_on_failure=True)
    finally:
        service.use_llm(None)
    assert answer.fallback and answer.generator == f"openai:{SERVER_MODEL}"
    assert url in answer.note and "Answered extractively." in answer.note
    assert "Huawei" in answer.text and answer.citations


@pytest.mark.parametrize(
    ("spec", "message"),
    [("gpt4", "Unknown language model 'gpt4'."),
     ("openai:", "'openai:' names no model."),
     ("llamacpp:/no/such/model.gguf", "No model file at '/no/such/model.gguf'."),
     ("local:big", "'local:big': 'local' takes no model name.")],
)
def test_bad_spec_is_exit_2(run_cli: Any, seeded: dict[str, str], spec: str,
                            message: str) -> None:
    proc = run_cli("ask", QUESTION, "--llm", spec, *FEW, *flags(seeded))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.splitlines()[0] == f"error: {message}"
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_help_loads_no_model_code(run_python: Any) -> None:
    """``assistant --help`` (and ``ask --help``) import none of the model side."""
    code = (
        "import sys\n"
        "from assistant.cli import main\n"
        "for argv in (['--help'], ['ask', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('llama_cpp', 'llama_index', 'openai', 'ollama', 'httpx', 'chromadb',\n"
        "         'assistant.llm', 'assistant.generate', 'assistant.citecheck')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "--llm SPEC" in proc.stdout  # the help really printed
    assert proc.stdout.strip().splitlines()[-1] == "[]"
