"""Conversations that outlive the app: a small SQLite store, headless (no Textual).

Each question is committed before it is answered and each answer as soon as it
arrives, so killing the app loses at most the answer in flight. The file lives
in the user's data folder (WAL mode, one transaction per change). A file that
SQLite cannot read is moved aside with a timestamp and a fresh one is started;
``ConversationStore.notice`` then says so, for the interface to show.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.models import Answer, Citation, Passage, SentenceCheck, ShortAnswer
from assistant.textsafe import printable

log = logging.getLogger(__name__)

FILENAME = "conversations.sqlite"
SCHEMA_VERSION = 1
_DAMAGED = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    answer TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation_id, id);
"""


class ConversationError(AssistantError):
    """The conversation history cannot be opened or written."""


class _Damaged(Exception):
    """The file is not a usable conversation store."""


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: int
    title: str
    created: float
    updated: float
    turns: int


@dataclass(frozen=True, slots=True)
class Turn:
    """One question and, once it arrived, its answer (``None`` if cut off)."""

    id: int
    question: str
    answer: Answer | None
    created: float


def default_path() -> Path:
    from assistant.config import user_home

    return user_home() / FILENAME


def title_from(question: str, limit: int = 60) -> str:
    """A one-line title for a conversation, from its first question."""
    line = " ".join(printable(question).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class ConversationStore:
    """Reads and writes conversations; every write is its own transaction."""

    def __init__(self, db: sqlite3.Connection, path: Path | None,
                 clock: Callable[[], float] = time.time, notice: str | None = None) -> None:
        self._db = db
        self.path = path
        self.notice = notice
        self._clock = clock

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None, clock: Callable[[], float] = time.time
             ) -> ConversationStore:
        """Open (or create) the store; move a damaged file aside and start afresh."""
        path = path or default_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConversationError(
                f"Cannot create the folder '{path.parent}' ({exc.strerror}).",
                "Set ASSISTANT_HOME to a writable folder.",
            ) from exc
        notice = None
        try:
            db = _connect(path)
        except _Damaged as exc:
            aside = _move_aside(path, clock)
            notice = (f"The conversation history was damaged ({exc}); it was moved to "
                      f"'{aside}' and a new one was started.")
            log.warning(notice)
            db = _connect(path)
        return cls(db, path, clock, notice)

    @classmethod
    def in_memory(cls, clock: Callable[[], float] = time.time) -> ConversationStore:
        """A store that forgets on exit: the fallback when the file cannot be used."""
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        _init_schema(db)
        return cls(db, None, clock)

    def close(self) -> None:
        self._db.close()

    # -- conversations -----------------------------------------------------

    def create(self, title: str) -> int:
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO conversations(title, created, updated) VALUES (?, ?, ?)",
                (title, now, now),
            )
        return int(cur.lastrowid or 0)

    def conversations(self) -> list[ConversationInfo]:
        """Every conversation, most recently changed first."""
        rows = self._query(
            "SELECT c.id, c.title, c.created, c.updated, COUNT(t.id) FROM conversations c "
            "LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id "
            "ORDER BY c.updated DESC, c.id DESC"
        )
        return [ConversationInfo(*row) for row in rows]

    def get(self, conversation_id: int) -> ConversationInfo | None:
        for info in self.conversations():
            if info.id == conversation_id:
                return info
        return None

    def rename(self, conversation_id: int, title: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete(self, conversation_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- turns -------------------------------------------------------------

    def add_question(self, conversation_id: int, question: str) -> int:
        """Save a question before it is answered; returns the turn id."""
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO turns(conversation_id, question, created) VALUES (?, ?, ?)",
                (conversation_id, question, now),
            )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        return int(cur.lastrowid or 0)

    def set_answer(self, turn_id: int, answer: Answer) -> None:
        data = json.dumps(answer.to_json(), ensure_ascii=False)
        with self._tx() as db:
            db.execute("UPDATE turns SET answer = ? WHERE id = ?", (data, turn_id))

    def turns(self, conversation_id: int) -> list[Turn]:
        rows = self._query(
            "SELECT id, question, answer, created FROM turns WHERE conversation_id = ? "
            "ORDER BY id", (conversation_id,),
        )
        return [Turn(tid, q, _load_answer(a), created) for tid, q, a, created in rows]

    def questions(self, conversation_id: int) -> list[str]:
        """The conversation's questions, oldest first (the ``history`` of a follow-up)."""
        return [t.question for t in self.turns(conversation_id)]

    # -- plumbing ----------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self.path)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise _error(exc, self.path) from exc


class _Transaction:
    """``with``: one committed transaction, sqlite errors turned into ConversationError."""

    def __init__(self, db: sqlite3.Connection, path: Path | None) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _error(exc, self._path) from exc
        return self._db

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as err:
                exc = err
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise _error(exc, self._path) from exc


def _error(exc: sqlite3.Error, path: Path | None) -> ConversationError:
    name = getattr(exc, "sqlite_errorname", "")
    where = f"'{path}'" if path else "memory"
    if name.startswith("SQLITE_BUSY") or "locked" in str(exc):
        return ConversationError(
            f"The conversation history {where} is locked by another program.",
            "Close the other assistant window, or wait a moment and try again.",
        )
    return ConversationError(f"Cannot save to the conversation history {where} ({exc}).",
                             "Check the disk has space and the file is writable.")


def _connect(path: Path) -> sqlite3.Connection:
    db: sqlite3.Connection | None = None
    try:
        db = sqlite3.connect(path, timeout=2.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA foreign_keys = ON")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise _Damaged(" ".join(str(check).split())[:80])  # quick_check: many lines
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConversationError(
                f"The conversation history '{path}' was written by a newer version "
                f"(schema {version}).", "Upgrade the assistant to read it.")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        _init_schema(db)
        db.execute("SELECT id, title, created, updated FROM conversations LIMIT 0")
        db.execute("SELECT id, conversation_id, question, answer, created FROM turns LIMIT 0")
        return db
    except sqlite3.Error as exc:
        if db is not None:
            db.close()
        if getattr(exc, "sqlite_errorname", "") in _DAMAGED or "no such column" in str(exc):
            raise _Damaged(str(exc)) from exc
        raise _error(exc, path) from exc
    except BaseException:
        if db is not None:
            db.close()
        raise


def _init_schema(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _move_aside(path: Path, clock: Callable[[], float]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(clock()))
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    try:
        path.rename(aside)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.rename(aside.with_name(aside.name + suffix))
    except OSError as exc:
        raise ConversationError(
            f"The conversation history '{path}' is damaged and cannot be moved aside "
            f"({exc.strerror}).", "Move or delete the file yourself.") from exc
    return aside


# -- answers as JSON ---------------------------------------------------------


def answer_from_json(data: dict[str, Any]) -> Answer:
    """Rebuild an :class:`Answer` from its ``ask --json`` form."""
    return Answer(
        question=str(data["question"]),
        text=str(data["answer"]),
        abstained=bool(data["abstained"]),
        citations=tuple(
            Citation(int(c["n"]), str(c["source"]), int(c["start"]), int(c["end"]),
                     str(c["text"]), float(c.get("score", 0.0)))
            for c in data.get("citations", ())
        ),
        passages=tuple(
            Passage(str(p["source"]), int(p["start"]), int(p["end"]), str(p["text"]),
                    float(p.get("score", 0.0)))
            for p in data.get("passages", ())
        ),
        timings_ms={str(k): float(v) for k, v in data.get("timings_ms", {}).items()},
        confidence=(float(data["confidence"]) if isinstance(data.get("confidence"), int | float)
                    else None),
        generator=str(data.get("generator") or "extractive"),
        fallback=bool(data.get("fallback", False)),
        checks=tuple(SentenceCheck.from_json(c) for c in data.get("checks", ())),
        searched="" if data.get("searched") in (None, data["question"]) else str(data["searched"]),
        note=str(data.get("note") or ""),
        short_answer=ShortAnswer.from_json(data.get("short_answer")),
    )


def _load_answer(raw: str | None) -> Answer | None:
    if raw is None:
        return None
    try:
        return answer_from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable saved answer (%s); showing the question alone", exc)
        return None
