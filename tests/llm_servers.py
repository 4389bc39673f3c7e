"""Model servers for the language-model tests, both backed by the real bundled model.

- :class:`LlamaCppServer`: the OpenAI-compatible server llama-cpp-python itself ships
  (``python -m llama_cpp.server``), run as a subprocess on a loopback port. This is the
  real thing the ``openai:`` backend talks to, bearer-key check included.
- :class:`OllamaStandIn`: a STAND-IN for an Ollama server (no Ollama binary installs
  here). A stdlib HTTP server in a thread that speaks the part of Ollama's REST API the
  ``ollama`` Python client and LlamaIndex's ``Ollama`` class use: ``POST /api/chat``
  (NDJSON lines over chunked transfer when streaming, which is Ollama's default; one
  object otherwise), ``POST /api/show``, ``GET /api/tags``, ``/api/version`` and ``/``.
  The text comes from the real SmolLM2 model run in-process by llama_cpp with the chat
  template its GGUF carries, as Ollama would; only the HTTP layer is ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from conftest import free_port

LOOPBACK = "127.0.0.1"
SERVER_MODEL = "smollm2"  # the alias both servers answer to

closed_port = free_port  # for "unreachable endpoint" tests: nothing listens there


def local_model() -> Path:
    from assistant.llm import local_model_path

    return local_model_path()


# -- the real llama-cpp-python server ------------------------------------------------


def _server_env() -> dict[str, str]:
    """This environment minus whatever llama_cpp.server's settings would read from it
    (they are pydantic BaseSettings: MODEL, PORT, API_KEY ... would override the flags)."""
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    fields = {f.lower() for f in (*ModelSettings.model_fields, *ServerSettings.model_fields)}
    fields |= {"config_file", "host", "port"}
    return {k: v for k, v in os.environ.items() if k.lower() not in fields}


class LlamaCppServer:
    """``python -m llama_cpp.server`` with the bundled model, on a free loopback port."""

    def __init__(self, model: Path, log_path: Path, api_key: str | None = None,
                 n_ctx: int = 4096) -> None:
        self.model = model
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (``--llm-url``)."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> LlamaCppServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
               "--model_alias", SERVER_MODEL, "--host", LOOPBACK, "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--n_threads", str(os.cpu_count() or 1),
               "--verbose", "False"]
        if self.api_key:
            cmd += ["--api_key", self.api_key]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=_server_env(),
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.proc.returncode}):\n"
                                   + self.log()[-3000:])
            if self._answers():
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {timeout}s:\n"
                           + self.log()[-3000:])

    def _answers(self) -> bool:
        """Whether the server answers HTTP at all (401 counts: it is up, and keyed)."""
        try:
            with urllib.request.urlopen(f"{self.url}/models", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the Ollama stand-in -----------------------------------------------------------


class OllamaStandIn:
    """A stand-in for an Ollama server, speaking its ``/api/chat`` protocol over the
    real local model (see the module docstring). ``requests`` records every request
    body, so tests can check what the clients really sent."""

    def __init__(self, model: Path, name: str = SERVER_MODEL, n_ctx: int = 4096) -> None:
        from llama_cpp import Llama

        self.name = name
        self.n_ctx = n_ctx
        self.llama = Llama(model_path=str(model), n_ctx=n_ctx, n_threads=os.cpu_count() or 1,
                           n_batch=512, verbose=False)
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._model_lock = threading.Lock()  # one generation at a time, as one model can
        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), _handler(self))
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="ollama-stand-in")

    @property
    def url(self) -> str:
        """What ``OLLAMA_HOST`` holds."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> OllamaStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)
        self.llama.close()

    def __enter__(self) -> OllamaStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def knows(self, model: str) -> bool:
        """Ollama names carry a tag; a bare name means ``:latest``."""
        return model in (self.name, f"{self.name}:latest")

    def chat(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Ollama's chat lines for ``body``: the deltas (``done: false``), then the final
        line with the counts and ``done_reason``. Without streaming, the caller joins them."""
        options = body.get("options") or {}
        messages = [{"role": m["role"], "content": m.get("content") or ""}
                    for m in body["messages"]]
        stop = options.get("stop")
        t0 = time.perf_counter_ns()
        with self._model_lock:
            stream = self.llama.create_chat_completion(
                messages=messages, stream=True,
                temperature=float(options.get("temperature", 0.8)),
                top_p=float(options.get("top_p", 0.9)),
                max_tokens=int(options.get("num_predict", 128)) or None,
                repeat_penalty=float(options.get("repeat_penalty", 1.1)),
                seed=options.get("seed"),
                stop=[stop] if isinstance(stop, str) else stop,
            )
            count, reason = 0, "stop"
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice["delta"].get("content") or ""
                if choice.get("finish_reason"):
                    reason = choice["finish_reason"]
                if text:
                    count += 1
                    yield {"model": body["model"], "created_at": _now(),
                           "message": {"role": "assistant", "content": text}, "done": False}
            prompt_tokens = self.llama.n_tokens - count
        took = time.perf_counter_ns() - t0
        yield {"model": body["model"], "created_at": _now(),
               "message": {"role": "assistant", "content": ""}, "done": True,
               "done_reason": "length" if reason == "length" else "stop",
               "total_duration": took, "load_duration": 0,
               "prompt_eval_count": max(prompt_tokens, 0), "prompt_eval_duration": 0,
               "eval_count": count, "eval_duration": took}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _handler(server: OllamaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streaming, keep-alive: as Ollama does

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            server.requests.append(("GET", self.path, {}))
            if self.path == "/":
                self._send(200, "Ollama is running", "text/plain; charset=utf-8")
            elif self.path == "/api/version":
                self._json(200, {"version": "0.0.0-stand-in"})
            elif self.path == "/api/tags":
                self._json(200, {"models": [{
                    "name": f"{server.name}:latest", "model": f"{server.name}:latest",
                    "modified_at": _now(), "size": 0, "digest": "",
                    "details": {"format": "gguf", "family": "llama"}}]})
            else:
                self._json(404, {"error": f"404 page not found: {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as exc:
                self._json(400, {"error": f"invalid JSON: {exc}"})
                return
            server.requests.append(("POST", self.path, body))
            if self.path == "/api/show":
                if not server.knows(body.get("model", "")):
                    self._json(404, {"error": f"model '{body.get('model')}' not found"})
                    return
                self._json(200, {"modelfile": "", "parameters": "", "template": "",
                                 "details": {"format": "gguf", "family": "llama"},
                                 "modelinfo": {"general.architecture": "llama",
                                               "llama.context_length": server.n_ctx}})
            elif self.path == "/api/chat":
                self._chat(body)
            else:
                self._json(404, {"error": f"404 page not found: {self.path}"})

        def _chat(self, body: dict[str, Any]) -> None:
            model = body.get("model") or ""
            if not model:
                self._json(400, {"error": "model is required"})
                return
            if not server.knows(model):
                self._json(404, {"error": f"model \"{model}\" not found, try pulling it first"})
                return
            if not isinstance(body.get("messages"), list):
                self._json(400, {"error": "messages is required"})
                return
            if not body.get("stream", True):  # Ollama streams unless told not to
                lines = list(server.chat(body))
                final = dict(lines[-1])
                final["message"] = {"role": "assistant",
                                    "content": "".join(x["message"]["content"] for x in lines)}
                self._json(200, final)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in server.chat(body):
                data = json.dumps(line).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()  # each line leaves as it is written
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _json(self, status: int, obj: dict[str, Any]) -> None:
            self._send(status, json.dumps(obj), "application/json; charset=utf-8")

        def _send(self, status: int, text: str, content_type: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# -- what every answer must satisfy ------------------------------------------------

ANSWER_KEYS = {"question", "answer", "abstained", "confidence", "citations", "passages",
               "timings_ms", "generator", "fallback", "checks", "searched", "note",
               "short_answer"}


def assert_answer_contract(out: dict[str, Any], root: Path, generator: str) -> None:
    """The ``ask --json`` contract (README, DESIGN) for an answer ``generator`` wrote."""
    import re

    assert set(out) == ANSWER_KEYS, sorted(out)
    assert out["generator"] == generator
    assert isinstance(out["fallback"], bool) and isinstance(out["abstained"], bool)
    for c in out["citations"]:
        assert set(c) == {"n", "source", "start", "end", "text", "score"}
        with open(root / c["source"], encoding="utf-8", newline="") as fh:
            assert c["text"] == fh.read()[c["start"]:c["end"]]
    short = out["short_answer"]
    if short is not None:  # the reader's phrase: exact characters of a passage, in the answer
        with open(root / short["source"], encoding="utf-8", newline="") as fh:
            assert short["text"] == fh.read()[short["start"]:short["end"]]
        assert " ".join(short["text"].split()).lower() in " ".join(out["answer"].split()).lower()
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", out["answer"])}
    assert markers == {c["n"] for c in out["citations"]}, (out["answer"], out["citations"])
    for check in out["checks"]:
        assert set(check) >= {"text", "citations", "supported", "score", "attributed"}
        assert isinstance(check["supported"], bool) and 0.0 <= check["score"] <= 1.0
        assert all(1 <= n <= len(out["passages"]) for n in check["citations"])
    if not out["abstained"] and not out["fallback"]:
        # a model's answer: it is made of the sentences the check kept, nothing else
        kept = [c for c in out["checks"] if c["supported"]]
        assert kept and all(c["text"] in out["answer"] for c in kept)
    timings = out["timings_ms"]
    assert {"retrieve", "answer", "total"} <= set(timings)
    if generator != "extractive" and not out["abstained"]:
        assert "first_token" in timings and "generate" in timings
        assert 0 < timings["first_token"] <= timings["total"]
