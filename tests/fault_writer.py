"""A writer for the fault tests that can be stopped at a named point.

``Writer`` runs the real ``assistant index`` in a fresh process. The driver below wraps a
few functions *in the child* to announce each point on stderr (and the chunk ids each
write to Chroma carries) and, at the chosen one, sleep ``FAULT_PAUSE_SECONDS``, by
default until killed; so a test kills it exactly there with SIGKILL, or works beside a
writer caught in the middle. Nothing in the product knows about this.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, subprocess_env

_DRIVER = r"""
import os, sys, time
want, _, nth = os.environ.get("FAULT_PAUSE_AT", "").partition(":")
nth = int(nth or 1)
pause = float(os.environ.get("FAULT_PAUSE_SECONDS", "600"))
counts = {}

def point(stage):
    counts[stage] = counts.get(stage, 0) + 1
    print(f"@{stage} {counts[stage]}", file=sys.stderr, flush=True)
    if stage == want and counts[stage] == nth:
        print(f"@paused {stage} {nth}", file=sys.stderr, flush=True)
        time.sleep(pause)
        print(f"@resumed {stage} {nth}", file=sys.stderr, flush=True)

import index.write as write
from index.embed import OnnxEmbedder
from index.lexical import LexicalIndex
from index.store import VectorStore

write.WRITE_BATCH = int(os.environ.get("FAULT_WRITE_BATCH", write.WRITE_BATCH))
write.CHECKPOINT_SECONDS = float(os.environ.get("FAULT_CHECKPOINT", write.CHECKPOINT_SECONDS))
embed, upsert, add, replace = (OnnxEmbedder.embed_passages, VectorStore.upsert,
                               LexicalIndex.add, os.replace)
wipe = VectorStore.wipe

def embed_passages(self, texts, spans, progress=None):
    first = [True]
    def tick(n):
        if progress:
            progress(n)
        if first[0]:  # part of this batch is embedded, the rest is being worked on
            first[0] = False
            point("embed")
    return embed(self, texts, spans, progress=tick)

def upsert_then(self, ids, *a, **k):
    upsert(self, ids, *a, **k)
    print("@wrote " + ",".join(ids), file=sys.stderr, flush=True)
    point("upsert")  # in Chroma, not yet in the lexical index

def add_then(self, rows):
    add(self, rows)
    point("lexical")  # in both stores, the manifest does not list it yet

def wipe_then(self):
    wipe(self)
    point("wipe")  # --rebuild: every collection deleted, nothing written yet

def replace_at(src, dst, *a, **k):
    if str(dst).endswith("manifest.json"):
        point("manifest")  # the new manifest is written and synced, not yet renamed
    return replace(src, dst, *a, **k)

OnnxEmbedder.embed_passages = embed_passages
VectorStore.upsert = upsert_then
LexicalIndex.add = add_then
VectorStore.wipe = wipe_then
os.replace = replace_at
from assistant.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Writer:
    """``assistant ARGS`` in a child process that announces (and may pause at) points."""

    def __init__(self, args: Sequence[str], pause: str = "", cwd: Path | None = None,
                 **env: str) -> None:
        self.args = list(args)
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, *args],
            cwd=cwd or PROJECT_ROOT,
            env=subprocess_env(FAULT_PAUSE_AT=pause, **env),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 120) -> str:
        """Block until the child prints a line starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                pytest.fail(f"no {prefix!r} within {timeout}s; saw {self.seen[-5:]}")
            if line is None:
                self.proc.wait(10)
                pytest.fail(f"the writer ended (exit {self.proc.returncode}) before {prefix!r}; "
                            f"stderr: {self.seen[-8:]}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def kill(self) -> int:
        """SIGKILL: no cleanup, no atexit, no flush; as a crash or an OOM kill."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(30)

    def finish(self, timeout: float = 180) -> tuple[int, str]:
        """Wait for a normal end (``subprocess.TimeoutExpired`` if none); (exit code, stdout)."""
        code = self.proc.wait(timeout)
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        while (line := self._lines.get(timeout=30)) is not None:  # the rest of its stderr
            self.seen.append(line)
        return code, out

    def written(self) -> list[str]:
        """The chunk ids this run wrote to Chroma, as far as it got (after ``finish``/``kill``)."""
        return [i for line in self.seen if line.startswith("@wrote ")
                for i in line.removeprefix("@wrote ").split(",")]
