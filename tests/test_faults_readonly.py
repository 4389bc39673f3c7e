"""An index built by one account, read by another that may not write it.

The reader is a real other user: as root, the commands run as ``nobody`` (``setpriv``;
with CAP_DAC_READ_SEARCH only, which lets it read and list everything, as a
world-readable share would, and write nothing it does not own: the interpreter here
lives under root's 0700 home); as any other user, the store is made read-only with
``chmod`` (which binds a non-root owner). Either way every write to the store fails
with EACCES, as it would for a colleague reading a shared index.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, read_file_text, subprocess_env

from index.build import build_index

pytestmark = pytest.mark.slow
QUESTION = "Which company will supply 5G technology to Russia?"
AS_ROOT = os.geteuid() == 0
NOBODY = 65534

_CHAT = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from tui_helpers import SIZE, ask
from assistant.config import Config
from assistant.tui.app import make_app
from assistant.tui.widgets.answer_view import AnswerView


async def main():
    app = make_app(Config.resolve(corpus=sys.argv[2], store=sys.argv[3]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, sys.argv[4])
        (view,) = app.query(AnswerView)
        print(json.dumps({"citations": [c.source for c in view.answer.citations],
                          "notes": [n.message for n in app._notifications]}))


import json
asyncio.run(main())
"""


class Reader:
    """Runs commands as a user who may read the store but not write it."""

    def __init__(self, root: Path) -> None:
        self.home = root / "reader-home"
        self.home.mkdir()
        self.work = root / "reader-work"
        self.work.mkdir()
        if AS_ROOT:
            for folder in (self.home, self.work):
                os.chown(folder, NOBODY, NOBODY)

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                  "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"] \
            if AS_ROOT else []
        env = subprocess_env(ASSISTANT_HOME=str(self.home), HOME=str(self.home))
        return subprocess.run([*prefix, sys.executable, *args], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=timeout)

    def assistant(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "assistant", *args)


def _files(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns,
                                               p.stat().st_mode)
            for p in sorted([folder, *folder.rglob("*")])}


def _set_writable(folder: Path, on: bool) -> None:
    for p in [folder, *folder.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | stat.S_IWUSR if on else mode & ~0o222)


@pytest.fixture
def shared(embedder: Any) -> Iterator[tuple[Path, Path, Reader]]:
    """A corpus and its index, owned by this account; a reader who may not write them.

    They live in a world-readable folder, as a share would (pytest's own is 0700).
    """
    root = Path(tempfile.mkdtemp(prefix="shared-index-"))
    try:
        root.chmod(0o755)
        corpus = root / "corpus"
        shutil.copytree(PROJECT_ROOT / "seeds", corpus)
        store = root / "store"
        build_index(corpus, store, embedder)
        if not AS_ROOT:
            _set_writable(store, False)
        yield corpus, store, Reader(root)
    finally:
        if not AS_ROOT:
            _set_writable(root, True)  # so it can be removed
        shutil.rmtree(root, ignore_errors=True)


def test_chroma_cannot_open_a_store_it_may_not_write(shared: tuple[Path, Path, Reader]) -> None:
    """Why a reader copies the store: Chroma opens its SQLite file read-write, whatever the
    settings (when this starts passing, the copy may be dropped)."""
    _, store, reader = shared
    proc = reader.run("-c", (
        "import sys, chromadb\n"
        "from chromadb.config import Settings\n"
        "try:\n"
        "    chromadb.PersistentClient(path=sys.argv[1], settings=Settings(\n"
        "        anonymized_telemetry=False, migrations='validate'))\n"
        "except Exception as exc:\n"
        "    print('refused:', exc)\n"
        "else:\n"
        "    print('opened')\n"), str(store / "chroma"))
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "readonly database" in proc.stdout, proc.stdout


def test_up_to_date_read_only_store_answers_without_writing(
        shared: tuple[Path, Path, Reader]) -> None:
    corpus, store, reader = shared
    before = _files(store)
    common = ("--corpus", str(corpus), "--store", str(store))

    proc = reader.assistant("ask", QUESTION, "--json", *common)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # nothing to say: the index is current
    answer = json.loads(proc.stdout)
    assert not answer["abstained"] and "Huawei" in answer["answer"]
    for c in answer["citations"] + answer["passages"]:
        assert read_file_text(corpus / c["source"])[c["start"]:c["end"]] == c["text"]

    questions = reader.work / "questions.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": QUESTION}) + "\n")
    if AS_ROOT:
        os.chown(questions, NOBODY, NOBODY)
    proc = reader.assistant("eval", str(questions), "--out", str(reader.work / "out.jsonl"),
                            *common)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert json.loads((reader.work / "out.jsonl").read_text())["answer"] == answer["answer"]

    proc = reader.run("-c", _CHAT, str(PROJECT_ROOT / "tests"), str(corpus), str(store),
                      QUESTION)
    assert proc.returncode == 0, proc.stderr
    chat = json.loads(proc.stdout.strip().splitlines()[-1])
    assert chat == {"citations": [c["source"] for c in answer["citations"]], "notes": []}

    assert _files(store) == before, "the store was written"


def test_stale_read_only_store_answers_from_what_it_has_and_says_why_once(
        shared: tuple[Path, Path, Reader]) -> None:
    corpus, store, reader = shared
    before = _files(store)
    edited = "002_5cf907d0daebd109.txt"  # the one that answers the question
    (corpus / edited).write_text("Huawei will supply 5G technology to Russia, says a new "
                                 "report that replaced this article.\n", encoding="utf-8")
    common = ("--corpus", str(corpus), "--store", str(store))

    proc = reader.assistant("ask", QUESTION, "--json", *common)
    assert proc.returncode == 0, proc.stderr
    notes = proc.stderr.splitlines()
    assert len(notes) == 1 and notes[0].startswith("note: "), proc.stderr
    assert f"The index at '{store}' is out of date with the documents (1 changed)" in notes[0]
    assert "could not be refreshed" in notes[0] and "may not write to it" in notes[0]
    assert "--rebuild" not in proc.stderr and "Traceback" not in proc.stderr
    answer = json.loads(proc.stdout)
    cited = answer["citations"] + answer["passages"]
    assert cited and edited not in {c["source"] for c in cited}, "stale offsets cited"
    for c in cited:
        assert read_file_text(corpus / c["source"])[c["start"]:c["end"]] == c["text"]

    proc = reader.run("-c", _CHAT, str(PROJECT_ROOT / "tests"), str(corpus), str(store),
                      QUESTION)
    assert proc.returncode == 0, proc.stderr
    chat = json.loads(proc.stdout.strip().splitlines()[-1])
    assert edited not in chat["citations"]
    assert len(chat["notes"]) == 1 and "could not be refreshed" in chat["notes"][0]

    for args in (("index",), ("index", "--rebuild")):
        proc = reader.assistant(*args, *common)
        assert proc.returncode == 4, proc.stderr
        assert f"The index at '{store}' cannot be written here" in proc.stderr
        assert "--rebuild" not in proc.stderr and "Traceback" not in proc.stderr

    assert _files(store) == before, "the store was written"
