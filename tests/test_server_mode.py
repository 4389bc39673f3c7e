"""Server mode against a real ``chroma run``: index, ask, chat, outages, shared collections.

A session fixture starts one server on a free loopback port (its own data folder)
and waits for its heartbeat; tests that stop a server start their own. Every
client here keeps its own ``--store`` folder, as two machines would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SEEDS, CountingEmbedder, subprocess_env

from assistant.config import Config
from assistant.errors import ChromaUnavailable
from assistant.service import Assistant
from index.build import build_index
from index.manifest import load_manifest

pytestmark = [pytest.mark.server, pytest.mark.slow]
QUESTION = "Which company will supply 5G technology to Russia?"


def chroma_executable() -> str | None:
    """``chroma`` beside the running interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("chroma")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """One ``chroma run`` process on loopback; can be stopped and restarted in place."""

    def __init__(self, exe: str, path: Path, port: int | None = None) -> None:
        self.exe = exe
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = path.parent / f"{path.name}-server.log"

    def start(self, timeout: float = 60) -> ChromaServer:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, "run", "--path", str(self.path), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"chroma run exited ({self.proc.returncode}): {self.log.read_text()}")
            if self.alive():
                return self
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"chroma run gave no heartbeat within {timeout}s: {self.log.read_text()}")

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server outright (SIGKILL: an outage, not a shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


@pytest.fixture(scope="session")
def chroma_exe() -> str:
    exe = chroma_executable()
    if exe is None:
        pytest.skip(f"no 'chroma' executable next to {sys.executable} or on PATH "
                    "(it comes with the chromadb package)")
    return exe


@pytest.fixture(scope="session")
def server(chroma_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    srv = ChromaServer(chroma_exe, tmp_path_factory.mktemp("chroma-server") / "db").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def own_server(chroma_exe: str, tmp_path: Path) -> Iterator[ChromaServer]:
    """A server this test may kill and restart."""
    srv = ChromaServer(chroma_exe, tmp_path / "chroma-db")
    try:
        yield srv
    finally:
        srv.stop()


def server_client(url: str) -> Any:
    import chromadb
    from chromadb.config import Settings

    port = int(url.rsplit(":", 1)[1])
    return chromadb.HttpClient(host="127.0.0.1", port=port,
                               settings=Settings(anonymized_telemetry=False))


def server_collection(url: str, name: str) -> Any:
    return server_client(url).get_collection(name)


def collection_ids(url: str, name: str) -> list[str]:
    return list(server_collection(url, name).get(include=[])["ids"])


def copy_corpus(target: Path) -> Path:
    shutil.copytree(SEEDS, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def manifest_ids(store: Path) -> set[str]:
    manifest = load_manifest(store)
    assert manifest is not None
    return manifest.chunk_ids()


def sentence_vectors(store: Path) -> dict[str, bytes]:
    db = sqlite3.connect(f"file:{store / 'lexical.sqlite'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT c.chunk_id, v.vecs FROM chunks c "
                               "JOIN sentvecs v ON v.rowid = c.rowid").fetchall())
    finally:
        db.close()


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], cwd=cwd, env=subprocess_env(),
        capture_output=True, text=True, timeout=timeout,
    )


# -- the basics: index, ask, chat -------------------------------------------------------


def test_index_and_ask_through_the_server(server: ChromaServer, tmp_path: Path,
                                          file_text: Callable[[Path], str]) -> None:
    corpus = copy_corpus(tmp_path / "seeds")
    store = tmp_path / "store"
    common = ("--corpus", str(corpus), "--store", str(store), "--chroma-url", server.url)
    proc = run_cli("index", *common, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["added"] == 3 and summary["chunks"] == 32
    assert not (store / "chroma").exists()  # no embedded store beside the server

    collection = load_manifest(store).collection  # type: ignore[union-attr]
    assert set(collection_ids(server.url, collection)) == manifest_ids(store)

    proc = run_cli("ask", QUESTION, *common, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert not answer["abstained"] and "Huawei" in answer["answer"]
    for c in answer["citations"] + answer["passages"]:
        assert file_text(corpus / c["source"])[c["start"]:c["end"]] == c["text"]

    again = json.loads(run_cli("index", *common, "--json", cwd=tmp_path).stdout)
    assert again["unchanged"] == 3 and again["added"] == 0 and again["chunks"] == 32


@pytest.mark.anyio
async def test_chat_answers_from_the_server(server: ChromaServer, tmp_path: Path,
                                            embedder: Any) -> None:
    from tui_helpers import SIZE, ask, screen_text, settle

    from assistant.tui.app import make_app
    from assistant.tui.widgets.answer_view import AnswerView

    config = Config.resolve(corpus=copy_corpus(tmp_path / "seeds"), store=tmp_path / "store",
                            chroma_url=server.url, collection="chat-test")
    app = make_app(config, service_factory=lambda cfg, progress=None, rebuild=False:
                   Assistant.open(cfg, progress=progress, embedder=embedder, rebuild=rebuild))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, rounds=8)
        assert app.service_state.phase == "ready", app.service_state
        assert "ready · 3 documents, 32 passages" in screen_text(app)
        await ask(pilot, QUESTION)
        (view,) = app.query(AnswerView)
        assert "Huawei" in screen_text(app)
    assert len(collection_ids(server.url, "chat-test")) == 32


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- outages ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["index", "ask"])
def test_server_not_running_is_exit_5_naming_the_url(command: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = [QUESTION] if command == "ask" else []
    proc = run_cli(command, *args, "--corpus", str(SEEDS), "--store", str(tmp_path / "store"),
                   "--chroma-url", url, cwd=tmp_path, timeout=120)
    assert proc.returncode == 5, proc.stderr
    assert url in proc.stderr and "chroma run" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_server_stopped_mid_index_then_rerun_finishes_without_duplicates(
        own_server: ChromaServer, tmp_path: Path) -> None:
    corpus = tmp_path / "big"
    corpus.mkdir()
    seeds = sorted(SEEDS.glob("*.txt"))
    for i in range(16):  # ~510 chunks: two write batches
        for f in seeds:
            (corpus / f"{i:02d}-{f.name}").write_text(
                f"Copy {i}.\n\n" + f.read_text(encoding="utf-8"), encoding="utf-8")
    store = tmp_path / "store"
    own_server.start()
    common = ("--corpus", str(corpus), "--store", str(store), "--chroma-url", own_server.url,
              "--collection", "big")
    run = subprocess.Popen(
        [sys.executable, "-m", "assistant", "index", *common, "--json"], cwd=tmp_path,
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        client = server_client(own_server.url)
        deadline = time.monotonic() + 240
        written = 0
        while time.monotonic() < deadline and run.poll() is None:
            try:  # the first batch is in: the build is now embedding and writing the rest
                written = client.get_collection("big").count()
            except Exception:  # not created yet
                written = 0
            if written:
                break
            time.sleep(0.05)
        assert written and run.poll() is None, "the build ended before it could be cut"
        own_server.stop()
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 5, err
    assert own_server.url in err and "Traceback" not in err

    own_server.start()  # same --path, same port
    proc = run_cli("index", *common, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    ids = collection_ids(own_server.url, "big")
    assert len(ids) == len(set(ids)) == summary["chunks"]
    assert set(ids) == manifest_ids(store)
    assert summary["documents"] == 48
    assert not (store / "written").exists()

    again = json.loads(run_cli("index", *common, "--json", cwd=tmp_path).stdout)
    assert again["unchanged"] == 48 and again["chunks"] == len(ids)


def test_outage_while_answering_is_chroma_unavailable(own_server: ChromaServer,
                                                     tmp_path: Path, embedder: Any) -> None:
    own_server.start()
    config = Config.resolve(corpus=copy_corpus(tmp_path / "seeds"), store=tmp_path / "store",
                            chroma_url=own_server.url)
    svc = Assistant.open(config, embedder=embedder)
    assert not svc.ask(QUESTION).abstained
    own_server.stop()
    with pytest.raises(ChromaUnavailable) as exc:
        svc.ask(QUESTION)
    assert own_server.url in str(exc.value)


# -- two clients of one server --------------------------------------------------------------


def test_second_client_adopts_vectors_then_sees_new_documents(
        server: ChromaServer, tmp_path: Path, embedder: Any) -> None:
    corpus_a = copy_corpus(tmp_path / "machine-a" / "adopt-seeds")
    corpus_b = copy_corpus(tmp_path / "machine-b" / "adopt-seeds")  # a copy, same name
    store_a, store_b = tmp_path / "machine-a" / "store", tmp_path / "machine-b" / "store"
    emb_a, emb_b = CountingEmbedder(embedder), CountingEmbedder(embedder)

    a = build_index(corpus_a, store_a, emb_a, chroma_url=server.url)
    assert a.added == 3 and len(emb_a.texts) == 32
    b = build_index(corpus_b, store_b, emb_b, chroma_url=server.url)
    assert b.added == 3 and b.chunks == 32
    assert emb_b.texts == []  # adopted A's vectors: nothing embedded
    assert manifest_ids(store_a) == manifest_ids(store_b)
    # ... and their sentence vectors, kept in the chunks' metadata on the server.
    assert len(sentence_vectors(store_a)) == 32
    assert sentence_vectors(store_b) == sentence_vectors(store_a)
    assert load_manifest(store_b).collection == load_manifest(store_a).collection  # type: ignore[union-attr]

    # B's lexical index was filled from the chunk texts: BM25 answers on B.
    svc_b = Assistant.open(Config.resolve(corpus=corpus_b, store=store_b,
                                          chroma_url=server.url), embedder=embedder)
    assert "Huawei" in svc_b.ask(QUESTION).text

    new = ("Aurora Lumen Labs opened a quantum sensor foundry in Tromsø in 2024. "
           "The foundry makes diamond magnetometers for submarine cable inspection, "
           "and its director is Ingrid Halvorsen.\n")
    for root in (corpus_a, corpus_b):  # a shared folder, or a synced copy
        (root / "foundry.txt").write_text(new, encoding="utf-8")
    emb_a.reset()
    a2 = build_index(corpus_a, store_a, emb_a, chroma_url=server.url)
    assert a2.added == 1 and a2.unchanged == 3 and len(emb_a.texts) == 1

    emb_b.reset()
    svc_b.embedder = emb_b
    b2 = svc_b.refresh(only_if_stale=True)
    assert b2 is not None and b2.added == 1 and b2.chunks == 33
    assert emb_b.texts == []  # the new document's vector came from A
    assert sentence_vectors(store_b) == sentence_vectors(store_a)
    answer = svc_b.ask("Where did Aurora Lumen Labs open its quantum sensor foundry?")
    assert not answer.abstained and "Tromsø" in answer.text
    assert {c.source for c in answer.citations} == {"foundry.txt"}
    svc_b.close()
    ids = collection_ids(server.url, load_manifest(store_a).collection)  # type: ignore[union-attr]
    assert len(ids) == len(set(ids)) == 33


def _other_corpus(root: Path) -> Path:
    root.mkdir(parents=True)
    topics = ["glaciers", "lighthouses", "beekeeping", "tidal power"]
    for i, topic in enumerate(topics):
        body = " ".join(
            f"Paragraph {j} about {topic}: observers in station {i}-{j} recorded how {topic} "
            f"changed over season {j}, and the notes were archived in ledger {i * 10 + j}."
            for j in range(12)
        )
        (root / f"{topic.replace(' ', '-')}.txt").write_text(body + "\n", encoding="utf-8")
    # The same file name as one of the seeds, different text.
    (root / "001_6d44a654a7eeca9a.txt").write_text(
        "A different article under a seed's file name, about salt marsh restoration.\n",
        encoding="utf-8")
    return root


def test_clients_with_different_corpora_never_delete_each_others_chunks(
        server: ChromaServer, tmp_path: Path, embedder: Any) -> None:
    corpus_a = copy_corpus(tmp_path / "a" / "docs")
    corpus_b = _other_corpus(tmp_path / "b" / "docs")
    store_a, store_b = tmp_path / "a" / "store", tmp_path / "b" / "store"
    shared = "team-shared"

    build_index(corpus_a, store_a, embedder, chroma_url=server.url, collection=shared)
    build_index(corpus_b, store_b, embedder, chroma_url=server.url, collection=shared)
    ids_a, ids_b = manifest_ids(store_a), manifest_ids(store_b)
    assert ids_a and ids_b and not ids_a & ids_b
    assert set(collection_ids(server.url, shared)) == ids_a | ids_b

    # A refreshes (a full reconcile, as after a killed run): B's chunks stay.
    (store_a / "dirty").write_text("1")
    again = build_index(corpus_a, store_a, embedder, chroma_url=server.url, collection=shared)
    assert again.unchanged == 3 and set(collection_ids(server.url, shared)) == ids_a | ids_b

    # B removes a document and rebuilds from scratch: only B's own chunks change.
    removed = corpus_b / "glaciers.txt"
    gone = {c for c in ids_b if c in load_manifest(store_b).documents["glaciers.txt"].chunks}  # type: ignore[union-attr]
    removed.unlink()
    build_index(corpus_b, store_b, embedder, chroma_url=server.url, collection=shared)
    assert set(collection_ids(server.url, shared)) == ids_a | (ids_b - gone)
    build_index(corpus_b, store_b, embedder, chroma_url=server.url, collection=shared,
                rebuild=True)
    assert set(collection_ids(server.url, shared)) == ids_a | (ids_b - gone)

    # A still answers from its own documents.
    svc = Assistant.open(Config.resolve(corpus=corpus_a, store=store_a, chroma_url=server.url,
                                        collection=shared), embedder=embedder)
    answer = svc.ask(QUESTION)
    assert "Huawei" in answer.text
    assert {p.source for p in answer.passages} <= set(load_manifest(store_a).documents)  # type: ignore[union-attr]
    foreign = svc.ask("What did observers in station 1 record about lighthouses?")
    assert {p.source for p in foreign.passages} <= set(load_manifest(store_a).documents)  # type: ignore[union-attr]
    svc.close()


def test_rebuild_and_new_settings_leave_none_of_this_clients_vectors_behind(
        server: ChromaServer, tmp_path: Path, embedder: Any) -> None:
    from index.chunk import ChunkParams

    mine = copy_corpus(tmp_path / "a" / "leftovers")  # one folder name: one default collection
    theirs = _other_corpus(tmp_path / "b" / "leftovers")
    store_a, store_b = tmp_path / "a" / "store", tmp_path / "b" / "store"
    build_index(mine, store_a, embedder, chroma_url=server.url)
    build_index(theirs, store_b, embedder, chroma_url=server.url)
    old = load_manifest(store_a).collection  # type: ignore[union-attr]
    assert load_manifest(store_b).collection == old  # type: ignore[union-attr]
    ids_b = manifest_ids(store_b)

    # A deletes a document, then rebuilds from scratch: that document's vectors go too.
    (mine / "000_00f3cd67555e5323.txt").unlink()
    build_index(mine, store_a, embedder, chroma_url=server.url, rebuild=True)
    assert set(collection_ids(server.url, old)) == manifest_ids(store_a) | ids_b
    assert not (store_a / "written").exists()

    # New chunking settings: a new collection; of the old one only B's vectors stay.
    params = ChunkParams(target_tokens=90)
    build_index(mine, store_a, embedder, chroma_url=server.url, params=params)
    new = load_manifest(store_a).collection  # type: ignore[union-attr]
    assert new != old
    assert set(collection_ids(server.url, new)) == manifest_ids(store_a)
    assert set(collection_ids(server.url, old)) == ids_b

    # B follows: the old collection, empty now, goes.
    build_index(theirs, store_b, embedder, chroma_url=server.url, params=params)
    names = {c.name for c in server_client(server.url).list_collections()}
    assert old not in names and new in names
    assert set(collection_ids(server.url, new)) == manifest_ids(store_a) | manifest_ids(store_b)


def test_default_collection_names_differ_by_corpus_folder(server: ChromaServer,
                                                          tmp_path: Path, embedder: Any) -> None:
    a = copy_corpus(tmp_path / "news")
    b = _other_corpus(tmp_path / "nature")
    build_index(a, tmp_path / "sa", embedder, chroma_url=server.url)
    build_index(b, tmp_path / "sb", embedder, chroma_url=server.url)
    name_a = load_manifest(tmp_path / "sa").collection  # type: ignore[union-attr]
    name_b = load_manifest(tmp_path / "sb").collection  # type: ignore[union-attr]
    assert name_a != name_b and name_a.startswith("news-") and name_b.startswith("nature-")
    assert set(collection_ids(server.url, name_a)) == manifest_ids(tmp_path / "sa")


# -- the token -------------------------------------------------------------------------------


@pytest.fixture
def refusing_server() -> Iterator[tuple[str, list[str | None]]]:
    """An HTTP server that answers every request 401, recording the Authorization header."""
    import http.server
    import threading

    seen: list[str | None] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"error": "AuthorizationError", "message": "Unauthorized"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_token_is_sent_and_a_refusal_names_the_url_and_the_variable(
        refusing_server: tuple[str, list[str | None]], tmp_path: Path) -> None:
    url, seen = refusing_server
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "index", "--corpus", str(SEEDS),
         "--store", str(tmp_path / "store"), "--chroma-url", url],
        cwd=tmp_path, env=subprocess_env(ASSISTANT_CHROMA_TOKEN="s3cret"),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 5, proc.stderr
    assert f"The Chroma server at {url} refused" in proc.stderr
    assert "ASSISTANT_CHROMA_TOKEN" in proc.stderr and "Traceback" not in proc.stderr
    assert "s3cret" not in proc.stderr  # never echo the secret
    assert seen and all(h == "Bearer s3cret" for h in seen)


def test_url_from_the_environment_and_a_token_work_with_a_real_server(
        server: ChromaServer, tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path / "env-seeds")
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "index", "--corpus", str(corpus),
         "--store", str(tmp_path / "store"), "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=subprocess_env(ASSISTANT_CHROMA_URL=server.url, ASSISTANT_CHROMA_TOKEN="t"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["chunks"] == 32
    assert not (tmp_path / "store" / "chroma").exists()


def test_a_collection_made_with_another_model_is_refused(server: ChromaServer, tmp_path: Path,
                                                         embedder: Any) -> None:
    from assistant.errors import StoreError

    corpus = copy_corpus(tmp_path / "tagged")
    build_index(corpus, tmp_path / "a", embedder, chroma_url=server.url, collection="tagged")
    other = CountingEmbedder(embedder)
    other.model_id = "another-model@123"  # same chunk ids, different vectors
    with pytest.raises(StoreError) as exc:
        build_index(corpus, tmp_path / "b", other, chroma_url=server.url, collection="tagged")
    assert "'tagged'" in str(exc.value) and "another --collection" in str(exc.value)
    assert other.texts == []
    # Without --collection it gets a collection of its own.
    summary = build_index(corpus, tmp_path / "b", other, chroma_url=server.url)
    assert summary.chunks == 32 and load_manifest(tmp_path / "b").collection != "tagged"  # type: ignore[union-attr]


def test_own_view_looks_deeper_past_other_clients_chunks() -> None:
    from index.views import OwnView

    order = [f"theirs-{i}" for i in range(50)] + [f"mine-{i}" for i in range(10)]
    asked: list[int] = []

    class Collection:
        name = "shared"

        def query(self, query_embeddings: Any, n_results: int, **kwargs: Any) -> dict[str, Any]:
            asked.append(n_results)
            ids = order[:n_results]
            return {"ids": [ids], "documents": [[f"text of {i}" for i in ids]],
                    "distances": [[float(k) for k in range(len(ids))]], "embeddings": None}

    view = OwnView(Collection(), lambda ids: {i for i in ids if i.startswith("mine")})
    res = view.query(query_embeddings=[[0.0]], n_results=6, include=["documents"])
    assert res["ids"] == [[f"mine-{i}" for i in range(6)]]
    assert res["documents"] == [[f"text of mine-{i}" for i in range(6)]]
    assert res["distances"] == [[float(k) for k in range(50, 56)]]
    assert asked == [6, 24, 96] and view.name == "shared"  # deeper until enough, then stop

    order[:] = order[:53]  # fewer of mine than asked for: stops when the collection runs out
    asked.clear()
    res = view.query(query_embeddings=[[0.0]], n_results=6)
    assert res["ids"] == [["mine-0", "mine-1", "mine-2"]] and asked == [6, 24, 96]
