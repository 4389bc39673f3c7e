"""Shared fixtures: an isolated user data folder, the seed corpus, the real embedder.

The suite never needs anything outside the repository: the corpus is the
project's ``seeds/`` (copied into a temporary folder) or text generated here,
and the model is the one bundled in the installed wheels.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest_plugins = ["tui_fixtures"]

if TYPE_CHECKING:
    from chroma_server import ChromaServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEEDS = PROJECT_ROOT / "seeds"

# Everything the assistant reads from the environment; the tests set what they need.
_ASSISTANT_ENV = (
    "ASSISTANT_CORPUS",
    "ASSISTANT_STORE",
    "ASSISTANT_CHROMA_URL",
    "ASSISTANT_CHROMA_TOKEN",
    "ASSISTANT_MAX_FILE_MB",
    "ASSISTANT_EMBED_MODEL",
    "ASSISTANT_EMBED_TOKENIZER",
    "ASSISTANT_LOG",
    "ASSISTANT_LLM",
    "ASSISTANT_LLM_URL",
    "ASSISTANT_LLM_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OLLAMA_HOST",
    "OLLAMA_API_KEY",
)


@pytest.fixture(autouse=True)
def assistant_home(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the per-user data folder at a temporary one, so no test writes the real one."""
    home = tmp_path_factory.mktemp("assistant-home")
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    for name in _ASSISTANT_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


def read_file_text(path: Path) -> str:
    """The text of a file exactly as citation offsets index it (see the DESIGN contract)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return fh.read()


@pytest.fixture(scope="session")
def file_text() -> Callable[[Path], str]:
    return read_file_text


@pytest.fixture(scope="session")
def seed_files() -> list[Path]:
    files = sorted(SEEDS.glob("*.txt"))
    assert len(files) == 3, f"expected the three seed articles in {SEEDS}"
    return files


@pytest.fixture
def corpus(tmp_path: Path, seed_files: list[Path]) -> Path:
    """A private copy of the seed articles that a test may edit."""
    root = tmp_path / "corpus"
    root.mkdir()
    for f in seed_files:
        shutil.copy2(f, root / f.name)
    return root


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


# -- the embedding model -------------------------------------------------------


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real bundled model, loaded once for the whole session."""
    from index.embed import OnnxEmbedder

    return OnnxEmbedder().load()


class CountingEmbedder:
    """Delegates to the real embedder and records every text it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.calls: list[list[str]] = []

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def reset(self) -> None:
        self.calls.clear()

    def load(self) -> CountingEmbedder:
        self.inner.load()
        return self

    def embed_documents(self, texts: Sequence[str], progress: Callable[[int], None] | None = None):
        self.calls.append(list(texts))
        return self.inner.embed_documents(texts, progress=progress)

    def embed_passages(self, texts: Sequence[str], spans: Any, progress: Any = None):
        self.calls.append(list(texts))
        return self.inner.embed_passages(texts, spans, progress=progress)

    def embed_query(self, text: str):
        self.calls.append([text])
        return self.inner.embed_query(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


@pytest.fixture
def counting_embedder(embedder: Any) -> CountingEmbedder:
    return CountingEmbedder(embedder)


# -- running the CLI -------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on right now (bound, then released): for the
    servers the tests start, and for endpoints that must be unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment (with the test's ASSISTANT_HOME) plus the project on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env.setdefault("PYTHONIOENCODING", "utf-8")
    env.update(extra)
    return env


def seeded_copy(tmp_path_factory: pytest.TempPathFactory, name: str) -> dict[str, str]:
    """A fresh copy of the seed corpus and a store folder, as ``--corpus``/``--store``
    (a module-scoped ``seeded`` fixture shares one between a module's commands)."""
    root = tmp_path_factory.mktemp(name)
    shutil.copytree(SEEDS, root / "corpus")
    return {"--corpus": str(root / "corpus"), "--store": str(root / "store")}


def open_seeded(seeded: dict[str, str], embedder: Any) -> Any:
    """An :class:`~assistant.service.Assistant` over ``seeded`` (see :func:`seeded_copy`),
    with the session's model; the caller closes it."""
    from assistant.config import Config
    from assistant.service import Assistant

    config = Config.resolve(corpus=seeded["--corpus"], store=seeded["--store"])
    return Assistant.open(config, embedder=embedder)


def flags(seeded: dict[str, str]) -> list[str]:
    """``seeded`` as command-line arguments."""
    return [x for kv in seeded.items() for x in kv]


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m assistant ARGS`` in a fresh process, as a user would."""

    def run(*args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "assistant", *args],
            cwd=tmp_path,
            env=subprocess_env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def run_python(tmp_path: Path) -> Callable[[str], subprocess.CompletedProcess[str]]:
    """Run a Python snippet in a fresh interpreter (for import checks and independent reads)."""

    def run(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def read_chroma(path: Path) -> dict[str, dict[str, Any]]:
    """Every collection of the Chroma store at ``path``: {name: ids, documents, metadatas, count}.

    A Chroma client caches its view per process: call this in a process that has not
    opened ``path`` before, or that wrote it itself (else see ``chroma_on_disk``).
    """
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(path),
                                       settings=Settings(anonymized_telemetry=False))
    out = {}
    for col in client.list_collections():
        c = client.get_collection(col.name)
        got = c.get(include=["documents", "metadatas"])
        out[col.name] = {"ids": got["ids"], "documents": got["documents"],
                         "metadatas": got["metadatas"], "count": c.count()}
    return out


_READ_CHROMA = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from conftest import read_chroma
print(json.dumps(read_chroma(Path(sys.argv[2]))))
"""


@pytest.fixture
def chroma_on_disk() -> Callable[[Path], dict[str, dict[str, Any]]]:
    """What a brand-new process finds in ``<store>/chroma``: {collection: ids, docs, metas}.

    A Chroma client caches its view per process, so only a fresh process shows what
    really is on disk.
    """

    def read(store: Path) -> dict[str, dict[str, Any]]:
        proc = subprocess.run(
            [sys.executable, "-c", _READ_CHROMA, str(Path(__file__).parent), str(store / "chroma")],
            env=subprocess_env(), capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return read


# -- guarding against hangs --------------------------------------------------------


def call_with_timeout(fn: Callable[[], Any], seconds: float,
                      on_timeout: Callable[[], None] | None = None) -> Any:
    """Run ``fn`` in a daemon thread; fail the test (not hang it) if it takes too long."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        if on_timeout is not None:
            on_timeout()
            t.join(5)
        pytest.fail(f"{getattr(fn, '__name__', fn)!s} did not finish within {seconds}s (hang)")
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture
def no_hang() -> Iterator[Callable[..., Any]]:
    yield call_with_timeout


# -- language-model servers (see tests/llm_servers.py) -------------------------------


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real ``python -m llama_cpp.server`` with the bundled model, started once."""
    from tests.llm_servers import LlamaCppServer, local_model

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaCppServer(local_model(), log) as server:
        yield server


@pytest.fixture(scope="session")
def ollama_stand_in() -> Iterator[Any]:
    """A stand-in Ollama server (no Ollama binary installs here) over the real model."""
    from tests.llm_servers import OllamaStandIn, local_model

    with OllamaStandIn(local_model()) as server:
        yield server


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory: pytest.TempPathFactory, seed_files, embedder) -> Path:
    """One index of the bundled seeds (read in place), for tests that start from a built index."""
    from index.build import build_index

    seeds = seed_files[0].parent
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in seeds.iterdir())
    store = tmp_path_factory.mktemp("seeds-index") / "store"
    summary = build_index(seeds, store, embedder)
    assert summary.added == 3
    after = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in seeds.iterdir())
    assert after == before, "indexing must never write into the corpus folder"
    return store


@pytest.fixture
def built_store(seeds_index: Path, tmp_path: Path) -> Path:
    """A private copy of the seeds index (its corpus is the seeds folder)."""
    return Path(shutil.copytree(seeds_index, tmp_path / "store-copy"))


# -- a real chroma run (tests/chroma_server.py) ------------------------------------------


@pytest.fixture(scope="session")
def chroma_exe() -> str:
    from chroma_server import chroma_executable

    exe = chroma_executable()
    if exe is None:
        pytest.skip(f"no 'chroma' executable next to {sys.executable} or on PATH "
                    "(it comes with the chromadb package)")
    return exe


@pytest.fixture(scope="session")
def server(chroma_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    from chroma_server import ChromaServer

    srv = ChromaServer(chroma_exe, tmp_path_factory.mktemp("chroma-server") / "db").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def own_server(chroma_exe: str, tmp_path: Path) -> Iterator[ChromaServer]:
    """A server this test may kill and restart."""
    from chroma_server import ChromaServer

    srv = ChromaServer(chroma_exe, tmp_path / "chroma-db")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The chat tests (Textual, Pilot) run on asyncio."""
    return "asyncio"
