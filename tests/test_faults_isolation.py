"""No surprises: the main commands work with the network denied and write only where told.

Each command runs in a fresh process with HOME, the XDG folders, TMPDIR and the
working directory pointed at empty folders, inside a network namespace of its own
(``unshare -n``) where the platform allows, and with a ``sitecustomize`` that
records and refuses any Internet socket Python code opens. Afterwards those
folders must still be empty, the corpus untouched, and ASSISTANT_HOME must hold
only the index and the chat's own files.

What the libraries tried, found with strace while writing this test: onnxruntime
1.32's telemetry wrote ``$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/``
(a device id and an event queue) and ``$TMPDIR/.ses``, and resolved
mobile.events.data.microsoft.com a few seconds in (``index/embed.py`` now sets
ORT_DISABLE_TELEMETRY). SQLite's own temporary files (``etilqs_*`` in TMPDIR) are
deleted at once. chromadb (telemetry off), LlamaIndex, tokenizers and Textual
wrote nothing outside the store; nltk and tiktoken are never imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, subprocess_env

pytestmark = pytest.mark.slow

QUESTION = "What does China provide Russia according to the UK intelligence report?"

_NET_GUARD = """
import os, socket

_LOG = os.environ["FAULT_NET_LOG"]
_INTERNET = (socket.AF_INET, socket.AF_INET6)


def _refuse(what):
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{what}\\n")
    raise OSError(101, f"network denied by the test: {what}")


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    if self.family in _INTERNET:
        _refuse(f"connect {address!r}")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in _INTERNET:
        _refuse(f"connect_ex {address!r}")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost", "127.0.0.1", "::1"):
        _refuse(f"getaddrinfo {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.getaddrinfo = getaddrinfo
"""

_CHAT = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from tui_helpers import SIZE, ask
from assistant.config import Config
from assistant.tui.app import make_app
from assistant.tui.widgets.answer_view import AnswerView


async def main():
    app = make_app(Config.resolve(corpus=sys.argv[2]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, sys.argv[3])
        (view,) = app.query(AnswerView)
        print(len(view.answer.citations))


asyncio.run(main())
"""


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def test_main_commands_offline_write_only_store_and_home(tmp_path: Path, corpus: Path) -> None:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_NET_GUARD)
    net_log = tmp_path / "network-attempts.log"
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": QUESTION}) + "\n")
    results = tmp_path / "results.jsonl"

    watched = {name: tmp_path / "sandbox" / name for name in
               ("home", "config", "cache", "data", "state", "tmp", "cwd")}
    for folder in watched.values():
        folder.mkdir(parents=True)
    assistant_home = tmp_path / "assistant-home"
    env = subprocess_env(
        HOME=str(watched["home"]), XDG_CONFIG_HOME=str(watched["config"]),
        XDG_CACHE_HOME=str(watched["cache"]), XDG_DATA_HOME=str(watched["data"]),
        XDG_STATE_HOME=str(watched["state"]), TMPDIR=str(watched["tmp"]),
        ASSISTANT_HOME=str(assistant_home), FAULT_NET_LOG=str(net_log),
    )
    env["PYTHONPATH"] = f"{guard}:{env['PYTHONPATH']}"
    env.pop("ORT_DISABLE_TELEMETRY", None)  # the product must set it itself
    prefix = ["unshare", "--net"] if _unshare_works() else []
    corpus_before = _files(corpus)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*prefix, sys.executable, *args], cwd=watched["cwd"], env=env,
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, (args[:3], proc.stderr)
        assert "Traceback" not in proc.stderr
        return proc

    summary = json.loads(run("-m", "assistant", "index", "--corpus", str(corpus),
                             "--json").stdout)
    assert summary["documents"] == 3
    answer = json.loads(run("-m", "assistant", "ask", "--json", "--corpus", str(corpus),
                            QUESTION).stdout)
    assert answer["citations"]
    run("-m", "assistant", "eval", str(questions), "--corpus", str(corpus), "--out", str(results))
    assert json.loads(results.read_text())["answer"] == answer["answer"]
    chat = run("-c", _CHAT, str(PROJECT_ROOT / "tests"), str(corpus), QUESTION)
    assert int(chat.stdout.split()[-1]) == len(answer["citations"])

    assert not net_log.exists(), net_log.read_text()
    written = {name: sorted(_files(folder)) for name, folder in watched.items()}
    assert written == {name: [] for name in watched}, f"written outside the store: {written}"
    assert _files(corpus) == corpus_before, "the corpus folder must never be written"
    assert {p.name for p in assistant_home.iterdir()} <= {
        "stores", "conversations.sqlite", "conversations.sqlite-wal",
        "conversations.sqlite-shm", "logs",
    }
    assert len(list((assistant_home / "stores").iterdir())) == 1, "one store for one corpus"
