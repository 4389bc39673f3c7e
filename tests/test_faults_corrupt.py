"""A damaged, missing or foreign store: a clear message naming the fix, or a repair; never a
traceback and never an answer from half an index.

Damage that cannot be repaired from the documents without discarding the store
(unreadable SQLite files, a manifest that cannot be trusted) stops ``index`` and
``ask`` with exit code 4 and the hint ``assistant index --rebuild``, which then
recovers. A store file that is simply gone, or a manifest from another embedding
model (the user switched models), is repaired or rebuilt by itself.
(A truncated or foreign manifest stopping ``index`` is in test_cli_index.py.)
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import subprocess_env
from fault_helpers import answers_from, assert_consistent, comparable, garble, read_store

from index.build import build_index

pytestmark = pytest.mark.slow

QUESTION = "What does China provide Russia according to the UK intelligence report?"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, seed_files: list[Path],
          embedder: Any) -> tuple[Path, Path, dict[str, Any]]:
    """A copy of the seeds, its index, and the answer a sound index gives."""
    root = tmp_path_factory.mktemp("corrupt")
    corpus = root / "corpus"
    corpus.mkdir()
    for f in seed_files:
        shutil.copy(f, corpus / f.name)
    build_index(corpus, root / "store", embedder)
    (answer,) = answers_from(corpus, root / "store", embedder, [QUESTION])
    assert answer["citations"]
    return corpus, root / "store", answer


def fresh_copy(built: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, Path]:
    return built[0], Path(shutil.copytree(built[1], tmp_path / "store"))


def garble_page(path: Path, page: int, size: int = 4096) -> None:
    """Noise over one page: SQLite notices only when it reads that page (a traceback, once)."""
    data = path.read_bytes()
    noise = random.Random(page).randbytes(size)
    path.write_bytes(data[: page * size] + noise + data[(page + 1) * size :])


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def newer_manifest(path: Path) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format": data["format"] + 1}))


# (file, damage, what the message names, whether 'index' meets it too)
DAMAGE = [
    pytest.param("chroma/chroma.sqlite3", garble, "vector store", True,
                 id="garbage-chroma-sqlite"),
    pytest.param("chroma/chroma.sqlite3", truncate, "vector store", True,
                 id="truncated-chroma-sqlite"),
    pytest.param("lexical.sqlite", lambda p: garble(p, 100), "lexical index", True,
                 id="garbage-in-lexical-sqlite"),
    # 'index' reads no passage text, so it never meets a bad page of the FTS tables
    pytest.param("lexical.sqlite", lambda p: garble_page(p, 2), "lexical index", False,
                 id="lexical-sqlite-damaged-in-a-middle-page"),
    pytest.param("manifest.json", truncate, "manifest", False, id="truncated-manifest"),
    pytest.param("manifest.json", newer_manifest, "newer version", False,
                 id="manifest-of-newer-format"),
]


def assert_stops_with_rebuild_hint(proc: Any, what: str) -> None:
    assert proc.returncode == 4, proc.stderr
    # With --json the error is also one object on stdout; without it stdout stays empty.
    assert proc.stdout == "" or json.loads(proc.stdout)["exit"] == 4
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and what in lines[0], proc.stderr
    assert lines[-1].startswith("hint: ") and "assistant index --rebuild" in lines[-1]


@pytest.mark.parametrize(("name", "damage", "what", "index_meets_it"), DAMAGE)
def test_damaged_store_stops_ask_and_index_until_rebuild(
    name: str, damage: Any, what: str, index_meets_it: bool,
    built: tuple[Path, Path, dict[str, Any]],
    tmp_path: Path, run_cli: Any, embedder: Any,
) -> None:
    corpus, store = fresh_copy(built, tmp_path)
    damage(store / name)
    where = ["--corpus", str(corpus), "--store", str(store)]

    assert_stops_with_rebuild_hint(run_cli("ask", "--json", QUESTION, *where), what)
    if name == "manifest.json":
        return  # 'index' on a bad manifest, and --rebuild after it: test_cli_index.py
    if index_meets_it:
        assert_stops_with_rebuild_hint(run_cli("index", *where), what)

    fixed = run_cli("index", "--rebuild", "--json", *where)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["added"] == 3
    assert_consistent(read_store(store), corpus)
    assert answers_from(corpus, store, embedder, [QUESTION]) == [built[2]]


@pytest.mark.parametrize("gone", ["chroma", "lexical.sqlite"])
def test_a_store_part_that_is_gone_is_rebuilt_before_answering(
    gone: str, built: tuple[Path, Path, dict[str, Any]], tmp_path: Path, run_cli: Any,
) -> None:
    """Not an empty store answering in silence (it used to: an abstention, or a worse answer)."""
    corpus, store = fresh_copy(built, tmp_path)
    target = store / gone
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    proc = run_cli("ask", "--json", QUESTION, "--corpus", str(corpus), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert comparable(json.loads(proc.stdout)) == built[2]
    assert_consistent(read_store(store), corpus)


def test_manifest_of_another_model_rebuilds_by_itself(
    built: tuple[Path, Path, dict[str, Any]], tmp_path: Path, run_cli: Any,
) -> None:
    """The user switched models: the old vectors are useless, so a rebuild is what they expect.

    (Refusing would only make them type --rebuild; using the old vectors would be wrong.)
    """
    corpus, store = fresh_copy(built, tmp_path)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["model_id"] = "some-other-model@0123456789ab"
    (store / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("ask", "--json", QUESTION, "--corpus", str(corpus), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert comparable(json.loads(proc.stdout)) == built[2]
    snap = read_store(store)
    assert snap["manifest"]["model_id"] != "some-other-model@0123456789ab"
    assert_consistent(snap, corpus)


_HASH_BUILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from fault_helpers import HashEmbedder
from index.build import build_index
build_index(Path(sys.argv[2]), Path(sys.argv[3]), HashEmbedder(sys.argv[4]),
            rebuild=sys.argv[5] == "rebuild")
"""


def test_garbage_in_the_hnsw_files_is_a_store_error_and_rebuild_recovers(
    tmp_path: Path, embedder: Any, run_cli: Any,
) -> None:
    """Chroma keeps a collection's vectors in HNSW files once it holds over 1,000 of them."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(1200):
        (corpus / f"n{i:04d}.txt").write_text(f"Note {i}: the summit moved to day {i}.\n")
    store = tmp_path / "store"

    def hash_build(mode: str) -> None:  # in a fresh process, as a new run would
        proc = subprocess.run(
            [sys.executable, "-c", _HASH_BUILD, str(Path(__file__).parent), str(corpus),
             str(store), embedder.model_id, mode],
            env=subprocess_env(), capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr

    hash_build("build")
    (segment,) = [p for p in (store / "chroma").iterdir() if p.is_dir()]
    hnsw = sorted(segment.glob("*.bin"))
    assert hnsw, "expected HNSW files for a collection of 1,200 vectors"
    for f in hnsw:
        garble(f)

    proc = run_cli("ask", "--json", "Where did the summit move?",
                   "--corpus", str(corpus), "--store", str(store))
    assert_stops_with_rebuild_hint(proc, "vector store")
    hash_build("rebuild")
    assert_consistent(read_store(store), corpus)
