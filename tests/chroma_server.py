"""A real ``chroma run`` for the server-mode tests, and how they look at what it holds.

``ChromaServer`` starts one on a free loopback port with its own data folder and waits
for its heartbeat; it can be killed (an outage) and started again in place. The
fixtures that hand one out (``chroma_exe``, ``server``, ``own_server``) are in conftest.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import SEEDS, free_port, subprocess_env

from index.manifest import load_manifest

QUESTION = "Which company will supply 5G technology to Russia?"


def chroma_executable() -> str | None:
    """``chroma`` beside the running interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("chroma")


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
