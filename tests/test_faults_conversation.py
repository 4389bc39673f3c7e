"""The chat history under real kills and real damage (test_conversation.py has the basics).

A process saving turns as fast as it can is killed with SIGKILL at random moments:
everything it reported committed must be there after each kill, at most the turn
in flight is lost, and the file opens without a notice. A file damaged in its
middle pages is moved aside with a one-line notice.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import subprocess_env

from assistant.conversation import ConversationStore

_SAVER = """
import sys
from pathlib import Path
from assistant.conversation import ConversationStore
from assistant.models import Answer, Citation

store = ConversationStore.open(Path(sys.argv[1]))
cid = store.create("saving in a loop")
print(f"conversation {cid}", flush=True)
i = 0
while True:
    tid = store.add_question(cid, f"question {i}")
    print(f"question {i}", flush=True)
    cite = Citation(1, "a.txt", 0, 2000, "passage " * 250, 0.5)
    store.set_answer(tid, Answer(f"question {i}", f"answer {i} [1]", False, (cite,), (), {}))
    print(f"answer {i}", flush=True)
    i += 1
"""


def _run_and_kill(path: Path, seconds: float) -> tuple[int, list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    started = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            started.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    assert started.wait(60), proc.stderr.read() if proc.stderr else ""
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    reader.join(10)
    return int(lines[0].split()[1]), lines[1:]


def test_killed_while_saving_loses_at_most_the_turn_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite"
    rng = random.Random(6)
    for _ in range(5):
        cid, acked = _run_and_kill(path, rng.uniform(0.2, 0.8))
        questions = sum(1 for line in acked if line.startswith("question"))
        answers = sum(1 for line in acked if line.startswith("answer"))
        assert answers >= 3, "killed before it saved anything: no test"

        store = ConversationStore.open(path)
        try:
            assert store.notice is None
            turns = store.turns(cid)
            assert [t.question for t in turns[:questions]] == [
                f"question {i}" for i in range(questions)
            ], "a question reported saved is missing"
            assert len(turns) - questions in (0, 1), "only the question in flight may be extra"
            saved = [t for t in turns if t.answer is not None]
            assert len(saved) >= answers, "an answer reported saved is missing"
            assert all(t.answer is not None for t in turns[:-1]), "only the last may lack one"
            assert all(t.answer.text == f"answer {i} [1]" for i, t in enumerate(saved))
        finally:
            store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 5
    db.close()


@pytest.mark.parametrize("where", ["middle", "end"])
def test_history_damaged_inside_is_set_aside_with_a_one_line_notice(
    tmp_path: Path, where: str
) -> None:
    path = tmp_path / "conversations.sqlite"
    store = ConversationStore.open(path)
    for i in range(300):
        store.add_question(store.create(f"talk {i}"), "a long question " * 40)
    store.close()
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = path.read_bytes()
    at = len(data) // 2 if where == "middle" else len(data) - 8192
    path.write_bytes(data[:at] + random.Random(3).randbytes(4096) + data[at + 4096:])

    store = ConversationStore.open(path)
    assert store.notice is not None
    assert "\n" not in store.notice, store.notice
    assert "moved to" in store.notice
    (aside,) = [p for p in tmp_path.glob("conversations.sqlite.damaged-*")
                if not p.name.endswith(("-wal", "-shm"))]
    assert aside.stat().st_size == len(data), "the damaged file is kept as it was"
    assert store.conversations() == []
    store.add_question(store.create("fresh"), "works")
