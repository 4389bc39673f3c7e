"""``assistant index`` killed with SIGKILL mid-build: the next run repairs by itself.

Every kill is real (a child process, SIGKILL, no cleanup). The deterministic points
are reached by pausing the child there (see ``fault_writer.Writer``); a last test
kills at random moments instead, to land inside Chroma's and SQLite's own writes.
After the repairing run, a fresh process must find Chroma, the FTS5 index and the
manifest agreeing exactly with the corpus, and the answers must be those of a
clean build of the same corpus.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import (
    answers_from,
    assert_consistent,
    comparable,
    expected_ids,
    generated_index,
    read_store,
    same_content,
)
from fault_writer import Writer

from index.build import build_index

pytestmark = pytest.mark.slow

BATCH = "12"  # chunks per write batch in the killed runs: several commit points per build


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> tuple[Path, Path]:
    return generated_index(tmp_path_factory, embedder)


@pytest.fixture(scope="module")
def big_corpus(generated: tuple[Path, Path]) -> Path:
    assert len(list(generated[0].iterdir())) == 60
    return generated[0]


@pytest.fixture(scope="module")
def clean(generated: tuple[Path, Path],
          embedder: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A build of the corpus that nothing interrupted: what every repaired store must equal."""
    corpus, store = generated
    snap = read_store(store)  # this process wrote it: its view is current
    assert_consistent(snap, corpus)
    return snap, answers_from(corpus, store, embedder)


def index_args(corpus: Path, store: Path) -> list[str]:
    return ["index", "--corpus", str(corpus), "--store", str(store), "--json"]


def assert_repaired(corpus: Path, store: Path, clean: tuple[dict[str, Any], list[Any]],
                    embedder: Any, killed: Writer) -> dict[str, Any]:
    """The next plain ``assistant index`` repairs; then everything equals the clean build."""
    repair = Writer(index_args(corpus, store))  # announces what it writes; never pauses
    code, out = repair.finish()
    assert code == 0, repair.seen[-8:]
    assert not any("Traceback" in line for line in repair.seen)
    # What the killed run put in Chroma is adopted, not written again: a second write of
    # an id can leave it unreachable by search once Chroma replays its log (index/write.py).
    assert not set(repair.written()) & set(killed.written())
    summary = json.loads(out)
    want = expected_ids(corpus)
    assert summary["documents"] == len(want)
    assert summary["chunks"] == sum(len(v) for v in want.values())
    snap = read_store(store)  # only other processes wrote it: this is a fresh view
    assert_consistent(snap, corpus)
    same_content(snap, clean[0])
    assert answers_from(corpus, store, embedder) == clean[1]
    return summary


# (pause point, its occurrence, extra settings of the killed run, what that leaves behind)
POINTS = [
    pytest.param("embed", 1, {}, id="early-while-embedding-the-first-batch"),
    pytest.param("upsert", 3, {}, id="middle-in-chroma-not-in-fts"),
    pytest.param("lexical", 2, {"FAULT_CHECKPOINT": "3600"},
                 id="middle-in-both-stores-not-in-manifest"),
    pytest.param("manifest", 3, {"FAULT_CHECKPOINT": "0"}, id="writing-a-checkpoint-manifest"),
    pytest.param("manifest", 2, {"FAULT_CHECKPOINT": "3600"}, id="writing-the-final-manifest"),
]


@pytest.mark.parametrize(("stage", "nth", "env"), POINTS)
def test_kill_at_a_point_then_the_next_run_repairs(
    stage: str, nth: int, env: dict[str, str], big_corpus: Path, tmp_path: Path,
    clean: tuple[dict[str, Any], list[Any]], embedder: Any, run_cli: Any,
) -> None:
    store = tmp_path / "store"
    writer = Writer(index_args(big_corpus, store), pause=f"{stage}:{nth}",
                    FAULT_WRITE_BATCH=BATCH, **env)
    writer.wait_for("@paused")
    assert writer.kill() == -9
    assert (store / "dirty").exists(), "killed while writing: the marker must be there"
    if stage == "manifest" and nth == 2:
        assert list(store.glob(".manifest.json.*.tmp")), "killed between write and rename"

    if stage == "upsert":  # killed after its 3rd write to Chroma, before that batch's lexical rows
        assert len(writer.written()) >= 3 * int(BATCH)  # batches hold whole documents
    summary = assert_repaired(big_corpus, store, clean, embedder, writer)
    assert summary["removed"] == 0
    if stage == "manifest":  # everything was written: the repair only adopts it
        again = run_cli(*index_args(big_corpus, store))
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["unchanged"] == 60, "a repaired index is current"


def test_kill_during_an_update_then_the_next_run_repairs(
    generated: tuple[Path, Path], tmp_path: Path, embedder: Any, run_cli: Any,
) -> None:
    """Killed after the old chunks of edited and deleted files went, before the new arrived."""
    corpus = Path(shutil.copytree(generated[0], tmp_path / "corpus"))
    store = Path(shutil.copytree(generated[1], tmp_path / "store"))  # a path never opened here
    for name in ("report_003.txt", "report_030.txt"):
        with open(corpus / name, "a", encoding="utf-8") as fh:
            fh.write("\nA line added later, about sanctions and the 2031 summit.\n")
    (corpus / "report_041.txt").unlink()
    shutil.copy(generated[0] / "report_041.txt", corpus / "report_041-copy.txt")

    writer = Writer(index_args(corpus, store), pause="upsert:1", FAULT_WRITE_BATCH="2")
    writer.wait_for("@paused")
    writer.kill()
    proc = run_cli(*index_args(corpus, store))
    assert proc.returncode == 0, proc.stderr
    assert_consistent(read_store(store), corpus)

    reference = tmp_path / "reference"
    build_index(corpus, reference, embedder)
    assert answers_from(corpus, store, embedder) == answers_from(corpus, reference, embedder)


def test_kill_during_a_rebuild_then_ask_answers_as_before(
    generated: tuple[Path, Path], tmp_path: Path, clean: tuple[dict[str, Any], list[Any]],
    run_cli: Any,
) -> None:
    """--rebuild empties the stores first; killed right then, the old manifest (which still
    matches the corpus) must not be trusted: the next command rebuilds before answering."""
    corpus = generated[0]
    store = Path(shutil.copytree(generated[1], tmp_path / "store"))
    writer = Writer([*index_args(corpus, store), "--rebuild"], pause="wipe:1")
    writer.wait_for("@paused")
    writer.kill()
    assert (store / "dirty").exists(), "the stores were emptied under a manifest still trusted"

    ask = run_cli("ask", "--json", "--corpus", str(corpus), "--store", str(store),
                  clean[1][0]["question"])
    assert ask.returncode == 0, ask.stderr
    assert comparable(json.loads(ask.stdout)) == clean[1][0]
    assert_consistent(read_store(store), corpus)


def test_killed_again_and_again_at_random_moments(
    big_corpus: Path, tmp_path: Path, clean: tuple[dict[str, Any], list[Any]], embedder: Any,
    run_cli: Any,
) -> None:
    """Kills that land wherever they land, inside Chroma's or SQLite's own writes included;
    each run picks up after the last, and the end state is a clean build's."""
    store = tmp_path / "store"
    rng = random.Random(2026)
    kills = 0
    for _ in range(4):
        writer = Writer(index_args(big_corpus, store), FAULT_WRITE_BATCH="6")
        writer.wait_for("@embed 1")  # past start-up: writing has begun
        try:
            code, _out = writer.finish(timeout=rng.uniform(0.1, 0.7))
        except subprocess.TimeoutExpired:  # still running: kill it where it is
            writer.kill()
            kills += 1
            continue
        assert code == 0, writer.seen[-5:]
        break
    assert kills >= 2, "the build finished too fast to be killed mid-way"  # 3 with this seed
    ask = run_cli("ask", "--json", "--corpus", str(big_corpus), "--store", str(store),
                  clean[1][0]["question"])
    assert ask.returncode == 0, ask.stderr
    snap = read_store(store)
    assert_consistent(snap, big_corpus)
    same_content(snap, clean[0])
    assert comparable(json.loads(ask.stdout)) == clean[1][0]
