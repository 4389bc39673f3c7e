"""Two processes at once: a reader while ``assistant index`` writes, two writers, a fresh store.

The reader is the answering service (what the chat holds) open in this process;
the writers are real ``assistant index`` processes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_file_text, subprocess_env
from fault_helpers import QUESTIONS, assert_consistent, generated_index, read_store
from fault_writer import Writer

from assistant.config import Config
from assistant.service import Assistant
from index.manifest import WriterLock

pytestmark = pytest.mark.slow

NEW_FACT = "The delegation travelled on the icebreaker Bluefinch to reach Murmansk."
NEW_QUESTION = "Which icebreaker did the delegation travel on?"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> tuple[Path, Path]:
    """A 60-file corpus and its index, built once; tests work on copies."""
    return generated_index(tmp_path_factory, embedder)


def copies(generated: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    corpus, store = generated
    return (Path(shutil.copytree(corpus, tmp_path / "corpus")),
            Path(shutil.copytree(store, tmp_path / "store")))


def index_args(corpus: Path, store: Path, *more: str) -> list[str]:
    return ["index", "--corpus", str(corpus), "--store", str(store), "--json", *more]


def test_reader_answers_during_a_write_and_reloads_after(
    generated: tuple[Path, Path], tmp_path: Path, embedder: Any,
) -> None:
    corpus, store = copies(generated, tmp_path)
    svc = Assistant.open(Config.resolve(corpus=corpus, store=store), embedder=embedder)
    try:
        before = [svc.ask(q) for q in QUESTIONS]
        assert all(a.citations for a in before)
        old_sources = {c.source for a in before for c in a.citations}

        # The edit: every file cited so far loses its text, and a new file says something new.
        for source in old_sources:
            (corpus / source).write_text("Report withdrawn.\n\nThis report was withdrawn by "
                                         "its authors and replaced by a short notice.\n")
        (corpus / "report_999.txt").write_text(f"Report 999\n\n{NEW_FACT}\n")

        # Caught in the middle: the edited files' chunks are gone from both stores and
        # some new chunks are in; the writer holds still for a few seconds, then goes on.
        writer = Writer(index_args(corpus, store), pause="lexical:2",
                        FAULT_WRITE_BATCH="2", FAULT_PAUSE_SECONDS="4")
        writer.wait_for("@paused")
        assert (store / "dirty").exists()
        assert f"pid {writer.proc.pid} " in WriterLock(store).holder(), "the writer holds the lock"
        during, reloaded = [], False
        while writer.proc.poll() is None:
            if svc.reload_if_changed():  # only once the writer is done, as it exits
                assert not (store / "dirty").exists(), "a half-written index was loaded"
                reloaded = True
            during += [svc.ask(q) for q in QUESTIONS]
        code, out = writer.finish()
        assert code == 0, writer.seen[-5:]
        assert json.loads(out)["updated"] == len(old_sources)
        assert len(during) >= 2 * len(QUESTIONS), "the reader asked while the writer worked"
        for answer in during:  # answered from what is there, never from a record that is gone
            for c in answer.citations:
                assert c.text and c.end > c.start

        assert svc.reload_if_changed() is not reloaded
        assert svc.status().documents == 61
        new = svc.ask(NEW_QUESTION)
        assert not new.abstained and new.citations[0].source == "report_999.txt"
        for answer in (svc.ask(q) for q in QUESTIONS):
            assert not {c.source for c in answer.citations} & old_sources, "withdrawn text cited"
        assert svc.reload_if_changed() is False
    finally:
        svc.close()
    assert_consistent(read_store(store), corpus)


def test_reader_never_mixes_two_builds(
    generated: tuple[Path, Path], tmp_path: Path, embedder: Any,
) -> None:
    """While a build edits and deletes files, each answer comes from the index as it was
    (whatever rows the writer has committed), and after the reload from the new one."""
    corpus, store = copies(generated, tmp_path)
    svc = Assistant.open(Config.resolve(corpus=corpus, store=store), embedder=embedder)
    old = {p.name: read_file_text(p) for p in corpus.glob("*.txt")}
    hit = sorted({c.source for q in QUESTIONS for c in svc.ask(q).citations})
    assert len(hit) >= 2
    edited, deleted = hit[::2], hit[1::2]
    for source in edited:  # new words up front: every chunk of the file moves, so new ids
        (corpus / source).write_text(f"Revised. {NEW_FACT}\n\n{old[source]}")
    for source in deleted:
        (corpus / source).unlink()
    new = {p.name: read_file_text(p) for p in corpus.glob("*.txt")}
    questions = (*QUESTIONS, NEW_QUESTION)

    # Caught after the first new rows reached both stores; it then goes on two chunks a batch.
    writer = Writer(index_args(corpus, store), pause="lexical:1",
                    FAULT_WRITE_BATCH="2", FAULT_PAUSE_SECONDS="3")
    writer.wait_for("@paused")
    answers: list[tuple[dict[str, str], Any]] = []
    state = old
    while True:
        running = writer.proc.poll() is None
        if svc.reload_if_changed():
            assert state is old and svc.status().documents == len(new), \
                "reloaded before the build was complete"
            state = new
        answers += [(state, svc.ask(q)) for q in questions]
        if not running:
            break
    code, _ = writer.finish()
    assert code == 0, writer.seen[-5:]
    assert state is new, "never reloaded"
    during = [a for s, a in answers if s is old]
    assert len(during) >= 2 * len(questions), "the reader asked while the writer worked"

    for texts, answer in answers:
        for c in (*answer.citations, *answer.passages):
            assert c.source in texts, f"cited {c.source}, not in the state answered from"
            assert texts[c.source][c.start:c.end] == c.text, (
                f"{c.source} [{c.start}:{c.end}] is not from the "
                f"{'old' if texts is old else 'new'} index")
    assert not any(NEW_FACT in c.text for a in during for c in a.citations)
    final = svc.ask(NEW_QUESTION)
    assert not final.abstained and {c.source for c in final.citations} <= set(edited)
    svc.close()
    assert_consistent(read_store(store), corpus)


def test_second_writer_is_refused_then_waits_for_the_lock(
    generated: tuple[Path, Path], tmp_path: Path, run_cli: Any,
) -> None:
    corpus, store = copies(generated, tmp_path)
    (corpus / "report_999.txt").write_text(f"Report 999\n\n{NEW_FACT}\n")
    first = Writer(index_args(corpus, store), pause="embed:1", FAULT_PAUSE_SECONDS="3")
    first.wait_for("@paused")

    refused = run_cli(*index_args(corpus, store))
    assert refused.returncode == 3
    assert f"pid {first.proc.pid}" in refused.stderr and "'assistant index'" in refused.stderr
    assert "--wait" in refused.stderr and "Traceback" not in refused.stderr
    error = json.loads(refused.stdout)  # --json: the error as one object for the tool
    assert error["exit"] == 3 and "--wait" in error["hint"]

    waiting = subprocess.Popen(
        [sys.executable, "-m", "assistant", *index_args(corpus, store, "--wait", "60")],
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code, out = first.finish()
    assert code == 0 and json.loads(out)["added"] == 1
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert json.loads(out)["unchanged"] == 61, "the waiting run found the index current"


def test_waiting_writer_takes_over_from_a_killed_one(
    generated: tuple[Path, Path], tmp_path: Path,
) -> None:
    corpus, store = copies(generated, tmp_path)
    for i in range(5):
        (corpus / f"extra_{i}.txt").write_text(f"Extra {i}\n\n{NEW_FACT} It was number {i}.\n")
    first = Writer(index_args(corpus, store), pause="upsert:1", FAULT_WRITE_BATCH="2")
    first.wait_for("@paused")
    waiting = subprocess.Popen(
        [sys.executable, "-m", "assistant", *index_args(corpus, store, "--wait", "60")],
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # it is waiting for the lock by now (or still starting: either way)
    first.kill()  # the kernel releases a dead process's flock
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert json.loads(out)["documents"] == 65
    assert_consistent(read_store(store), corpus)


def test_two_processes_create_a_new_store_at_the_same_instant(
    corpus: Path, tmp_path: Path,
) -> None:
    """``index`` and ``ask`` on a store that does not exist yet, started together."""
    store = tmp_path / "fresh" / "store"
    common = ["--corpus", str(corpus), "--store", str(store), "--wait", "60"]
    commands = [["index", "--json", *common],
                ["ask", "--json", "What does China provide Russia?", *common]]
    procs = [subprocess.Popen([sys.executable, "-m", "assistant", *cmd], env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in commands]
    results = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    summary, answer = (json.loads(out) for out, _ in results)
    assert summary["documents"] == 3
    assert answer["citations"], answer
    assert_consistent(read_store(store), corpus)
