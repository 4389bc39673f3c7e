"""Hostile documents through a whole build: each is indexed sensibly or skipped with a reason,
and the run completes (and a second run finds nothing to do).

test_load.py already checks the loader file by file (binary, NUL bytes, bad UTF-8,
empty, size limit, links, FIFOs, names that are not UTF-8) and test_chunk.py the
chunker on a 1 MB line; this file puts such inputs through ``assistant index`` and
the build together, and adds what those do not cover: a 50 MB file, 50 levels of
folders, 3,000 files, a file growing while it is indexed, and read permissions
that really deny (as another user when the tests run as root).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, subprocess_env
from fault_helpers import HashEmbedder, answers_from, assert_consistent, read_store

from index.build import build_index
from index.load import DEFAULT_MAX_BYTES

pytestmark = pytest.mark.slow

DEEP_FACT = "The archive at the bottom of the folders records the 1911 treaty of Kestrel Bay."


def test_hostile_corpus_through_the_cli(tmp_path: Path, seed_files: list[Path],
                                        run_cli: Any, embedder: Any) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    shutil.copy(seed_files[0], root / "good.txt")
    (root / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(4000))
    (root / "nul.txt").write_bytes(b"Looks like text. " * 50 + b"\x00" + b"More text. " * 50)
    (root / "latin1.md").write_bytes("Caf\xe9 cr\xe8me, an old export.\n".encode("latin-1"))
    with open(root / "huge.txt", "w", encoding="utf-8") as fh:  # 50 MB of real text
        line = "The committee met again and the minutes ran long into the night. " * 16 + "\n"
        fh.write(line * (50 * 1024 * 1024 // len(line) + 1))
    deep = root.joinpath(*(f"level{i:02d}" for i in range(50)))
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text(f"Deep archive\n\n{DEEP_FACT}\n")
    (root / "level00" / "back-to-top").symlink_to(root, target_is_directory=True)
    outside = tmp_path / "private.txt"
    outside.write_text("Private notes that must never be indexed.\n")
    (root / "escape.txt").symlink_to(outside)
    (root / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    store = tmp_path / "store"

    proc = run_cli("index", "--corpus", str(root), "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["documents"], summary["added"]) == (2, 2)
    reasons = dict(line.removeprefix("skipped ").split(": ", 1)
                   for line in proc.stderr.splitlines() if line.startswith("skipped "))
    assert "binary" in reasons["image.txt"] and "binary" in reasons["nul.txt"]
    assert "not valid UTF-8" in reasons["latin1.md"]
    mb = DEFAULT_MAX_BYTES // (1024 * 1024)
    assert f"over the {mb} MB limit" in reasons["huge.txt"]
    assert "ASSISTANT_MAX_FILE_MB" in reasons["huge.txt"]
    assert "outside the corpus" in reasons["escape.txt"]
    assert "broken" in reasons["dangling.txt"]
    assert "loops back" in reasons["level00/back-to-top"]

    snap = read_store(store)
    assert_consistent(snap, root)
    deep_source = (deep / "bottom.txt").relative_to(root).as_posix()
    assert deep_source in snap["manifest"]["documents"]
    (answer,) = answers_from(root, store, embedder, ["What does the archive record?"])
    assert answer["citations"][0]["source"] == deep_source
    assert DEEP_FACT in answer["citations"][0]["text"]

    again = run_cli("index", "--corpus", str(root), "--store", str(store), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["unchanged"] == 2


def test_a_one_megabyte_line_and_three_thousand_files(tmp_path: Path, embedder: Any,
                                                     no_hang: Any) -> None:
    """Many chunks from one line, many files from one folder tree: the build's bookkeeping
    (manifest, FTS5, Chroma batches, adoption) at a size the seeds never reach. The vectors
    are stand-ins: this is about the store, the model is tested elsewhere."""
    root = tmp_path / "corpus"
    words = [w for w in (PROJECT_ROOT / "seeds").joinpath(
        sorted(os.listdir(PROJECT_ROOT / "seeds"))[0]).read_text().split() if w.isalpha()]
    one_line = " ".join(words[i % len(words)] for i in range(200_000))[: 1024 * 1024]
    (root / "one-line").mkdir(parents=True)
    (root / "one-line" / "line.txt").write_text(one_line)
    for i in range(3000):
        folder = root / "notes" / f"box{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note{i:04d}.md").write_text(f"# Note {i}\n\nCrane {i} lifts {i * 7} tonnes.\n")
    store = tmp_path / "store"
    fake = HashEmbedder(embedder.model_id)

    first = no_hang(lambda: build_index(root, store, fake), 300)
    assert first.documents == 3001 and first.skipped == ()
    line_chunks = first.chunks - 3000
    assert line_chunks >= 1024 * 1024 // (200 * 12), "the line is cut into passage-sized chunks"
    assert_consistent(read_store(store), root)

    fake.embedded = 0
    second = no_hang(lambda: build_index(root, store, fake), 300)
    assert (second.unchanged, second.added, fake.embedded) == (3001, 0, 0)


def test_a_file_that_grows_while_it_is_indexed(corpus: Path, tmp_path: Path,
                                               embedder: Any) -> None:
    growing = corpus / "growing.txt"
    growing.write_text("A log of the negotiations.\n")
    store = tmp_path / "store"
    done = threading.Event()

    def append() -> None:  # a log being written: a line every 20 ms
        n = 0
        while not done.wait(0.02):
            with open(growing, "a", encoding="utf-8") as fh:
                fh.write(f"Entry {n}: the delegates adjourned at hour {n % 24}.\n")
            n += 1

    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    try:
        first = build_index(corpus, store, embedder)
    finally:
        done.set()
        writer.join(10)
    assert first.documents == 4
    with open(growing, "a", encoding="utf-8") as fh:
        fh.write("A last entry, after the run.\n")

    second = build_index(corpus, store, embedder)  # sees the file as it is now
    assert (second.updated, second.unchanged) == (1, 3)
    assert_consistent(read_store(store), corpus)
    third = build_index(corpus, store, embedder)
    assert third.unchanged == 4


def _nobody() -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def test_unreadable_file_and_folder_are_skipped(tmp_path: Path) -> None:
    """chmod 000 stops a reader, but not root: as root, the index runs as 'nobody'."""
    as_root = os.geteuid() == 0
    nobody = _nobody()
    if as_root and (nobody is None or shutil.which("setpriv") is None):
        pytest.skip("running as root without 'setpriv' or a 'nobody' user to drop to")
    # pytest's tmp folders are private to root: work in a folder 'nobody' can reach.
    base = Path(tempfile.mkdtemp(prefix="assistant-perms-")) if as_root else tmp_path
    try:
        base.chmod(0o755)
        corpus = base / "corpus"
        (corpus / "closed").mkdir(parents=True)
        (corpus / "good.txt").write_text("A readable note about the harbour cranes.\n")
        (corpus / "closed" / "inside.txt").write_text("Behind a closed door.\n")
        (corpus / "locked.txt").write_text("Secret but well-formed text.\n")
        (corpus / "locked.txt").chmod(0)
        (corpus / "closed").chmod(0)
        work = base / "work"
        work.mkdir()
        prefix: list[str] = []
        if as_root:
            assert nobody is not None
            os.chown(work, *nobody)
            prefix = ["setpriv", f"--reuid={nobody[0]}", f"--regid={nobody[1]}",
                      "--clear-groups"]
        env = subprocess_env(HOME=str(work), ASSISTANT_HOME=str(work / "home"))
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "assistant", "index", "--corpus", str(corpus),
             "--store", str(work / "store"), "--json"],
            cwd=work, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert json.loads(proc.stdout)["documents"] == 1
        assert "skipped locked.txt: permission denied" in proc.stderr
        assert "skipped closed: cannot read folder (Permission denied)" in proc.stderr
    finally:
        (corpus / "closed").chmod(stat.S_IRWXU)
        (corpus / "locked.txt").chmod(stat.S_IRUSR | stat.S_IWUSR)
        if as_root:
            shutil.rmtree(base, ignore_errors=True)
