"""Server mode against a real ``chroma run``: index, ask, chat, outages, the token (two clients
of one server: test_server_clients.py).

A session fixture starts one server on a free loopback port (its own data folder)
and waits for its heartbeat; tests that stop a server start their own. Every
client here keeps its own ``--store`` folder, as two machines would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chroma_server import (
    QUESTION,
    ChromaServer,
    collection_ids,
    copy_corpus,
    free_port,
    manifest_ids,
    run_cli,
    server_client,
)
from conftest import SEEDS, CountingEmbedder, subprocess_env

from assistant.config import Config
from assistant.errors import ChromaUnavailable
from assistant.service import Assistant
from index.build import build_index
from index.manifest import load_manifest

pytestmark = [pytest.mark.server, pytest.mark.slow]


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
