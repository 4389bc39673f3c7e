"""The conversation store: saved as they happen, survives kills and damage, exports footnotes."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from assistant.conversation import (
    ConversationError,
    ConversationStore,
    Turn,
    answer_from_json,
    default_path,
    title_from,
)
from assistant.export import export_markdown
from assistant.models import Answer, Citation, Passage, SentenceCheck


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _answer(question: str = "What binds them?") -> Answer:
    return Answer(
        question=question,
        text="Mutual antagonism toward the West [1]. It deepens [2].",
        abstained=False,
        citations=(
            Citation(1, "a.txt", 10, 40, "mutual antagonism *toward* the West", 0.5),
            Citation(2, "b.txt", 0, 12, "It deepens.\nSecond line", 0.25),
        ),
        passages=(Passage("a.txt", 10, 40, "mutual antagonism *toward* the West", 0.5),),
        timings_ms={"total": 12.5},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def test_default_path_is_in_user_home(home: Path) -> None:
    assert default_path() == home / "conversations.sqlite"


def test_round_trip_and_order(tmp_path: Path) -> None:
    store = ConversationStore.open(tmp_path / "c.sqlite", clock=Clock())
    first = store.create("first")
    second = store.create("second")
    t1 = store.add_question(first, "What binds them?")
    store.set_answer(t1, _answer())
    store.add_question(first, "And then?")
    store.close()

    store = ConversationStore.open(tmp_path / "c.sqlite")
    infos = store.conversations()
    assert [i.id for i in infos] == [first, second]  # the one changed last comes first
    assert infos[0].turns == 2 and infos[1].turns == 0
    turns = store.turns(first)
    assert turns[0].answer == answer_from_json(_answer().to_json())
    assert turns[0].answer.citations[1].text == "It deepens.\nSecond line"
    assert turns[1].answer is None
    assert store.questions(first) == ["What binds them?", "And then?"]


def test_wal_mode(tmp_path: Path) -> None:
    ConversationStore.open(tmp_path / "c.sqlite").close()
    db = sqlite3.connect(tmp_path / "c.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rename_and_delete(tmp_path: Path) -> None:
    store = ConversationStore.open(tmp_path / "c.sqlite")
    cid = store.create("old")
    store.add_question(cid, "q")
    store.rename(cid, "new")
    assert store.get(cid).title == "new"
    store.delete(cid)
    assert store.get(cid) is None
    assert store.turns(cid) == []


def _ask_then_die(path: str) -> None:
    store = ConversationStore.open(Path(path))
    cid = store.create("killed")
    store.add_question(cid, "saved before answering?")
    os._exit(9)  # no close, no commit hooks: like a kill -9 while the answer is computed


def test_kill_loses_at_most_the_answer_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    proc = ctx.Process(target=_ask_then_die, args=(str(path),))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 9
    store = ConversationStore.open(path)
    (info,) = store.conversations()
    assert [t.question for t in store.turns(info.id)] == ["saved before answering?"]
    assert store.notice is None


def test_damaged_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database at all, just garbage" * 100)
    store = ConversationStore.open(path, clock=Clock())
    assert store.notice and "moved to" in store.notice
    aside = list(tmp_path.glob("c.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    cid = store.create("fresh")  # and the fresh store works
    assert store.get(cid).title == "fresh"


def test_truncated_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    store = ConversationStore.open(path)
    for i in range(200):
        store.add_question(store.create(f"c{i}"), "x" * 500)
    store.close()
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * 4096 + data[4196:])  # clobber the first pages
    store = ConversationStore.open(path)
    assert store.notice is not None
    assert store.conversations() == []


def test_locked_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    store = ConversationStore.open(path)
    cid = store.create("x")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ConversationError) as err:
            store.add_question(cid, "blocked?")
        assert "locked" in err.value.message and err.value.hint
    finally:
        other.execute("ROLLBACK")
    store.add_question(cid, "works again")


def test_unwritable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConversationError) as err:
        ConversationStore.open(blocker / "sub" / "c.sqlite")
    assert "ASSISTANT_HOME" in (err.value.hint or "")


def test_export_markdown_footnotes_quote_passages() -> None:
    a1 = _answer()
    a2 = Answer("Next?", "Only one [1].", False,
                (Citation(1, "c.txt", 5, 9, "one", 0.1),), confidence=0.35)
    abst = Answer("Moon?", "The documents do not answer this question.", True, (),
                  (Passage("a.txt", 0, 5, "near", 0.01),))
    turns = [Turn(1, "What binds *them*?", a1, 0), Turn(2, "Next?", a2, 0),
             Turn(3, "Moon?", abst, 0), Turn(4, "Cut off?", None, 0)]
    md = export_markdown("Talk [1]", turns)
    assert md.startswith("# Talk \\[1\\]\n")
    assert "## 1. What binds \\*them\\*?" in md
    assert "Mutual antagonism toward the West [^1]. It deepens [^2]." in md
    assert "Only one [^3]." in md  # numbering continues across the conversation
    assert "_Low confidence (35%): check the cited passages before relying on it._" in md
    assert md.count("confidence") == 1  # answers saved without one say nothing
    assert "[^1]: a.txt, chars 10-40\n\n    > mutual antagonism \\*toward\\* the West" in md
    assert "[^2]: b.txt, chars 0-12\n\n    > It deepens.\n    > Second line" in md
    assert "[^3]: c.txt, chars 5-9" in md
    assert "Nearest passages (not evidence for an answer):" in md
    assert "[^4]" not in md
    assert "_No answer: it was cancelled or interrupted._" in md


def test_export_names_the_model_and_strikes_left_out_sentences(tmp_path: Path) -> None:
    written = Answer(
        "Who?", "Alpha is first. [1]", False, (Citation(1, "a.txt", 0, 5, "Alpha", 0.1),),
        confidence=0.8, generator="local", searched="Who is *first*?",
        checks=(SentenceCheck("Alpha is first.", (1,), True, 0.9),
                SentenceCheck("Beta is [second].", (2, 3), False, 0.1,
                              reason="not found in the cited passages: 'Beta'")),
        note="1 sentence the cited passages do not back left out.")
    store = ConversationStore.open(tmp_path / "c.sqlite")  # saved and read back first
    cid = store.create("Talk")
    store.set_answer(store.add_question(cid, "Who?"), written)
    md = export_markdown("Talk", store.turns(cid))
    assert "_Searched: Who is \\*first\\*?_\n\nAlpha is first. [^1]" in md
    assert "_Note: 1 sentence the cited passages do not back left out._" in md
    assert ("Left out of the answer (the model wrote these; the passages do not back "
            "them):\n\n- ~~Beta is \\[second\\].~~ (cites passages 2, 3): not found in "
            "the cited passages: 'Beta'") in md
    assert "_Confidence 80%._\n\n_Written by local; each sentence checked" in md
    assert md.index("Alpha is first.") < md.index("_Written by local") < md.index("Left out")
    assert store.turns(cid)[0].answer.checks[1].reason.startswith("not found")  # saved
    assert "[^2]" not in md  # a left-out sentence's passages are not its footnotes
    fell_back = dataclasses.replace(written, fallback=True, checks=(), note="It failed.")
    assert "_Extracted from the passages by the extractive answerer (local was asked)._" in \
        export_markdown(
        "T", [Turn(1, "Who?", fell_back, 0)])


def test_title_from_is_one_printable_line() -> None:
    assert title_from("  what\nis \x1b[31m this?  ") == "what is \\x1b[31m this?"
    assert len(title_from("word " * 40)) == 60
