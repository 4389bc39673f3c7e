"""The manifest: what the index holds and how it was made, plus the writer lock.

``manifest.json`` records the format version, the embedding model id (which
includes the model file's hash), the chunking parameters, the collection name
and, per document, its sha256 and chunk ids. It is replaced atomically
(write, fsync, rename), so a reader sees either the old or the new one.
A ``dirty`` marker is present while a writer changes the stores; a run that
finds it left behind (a killed writer) reconciles the stores with the manifest.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import StoreError, StoreLocked

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DIRTY = "dirty"
LOCK = "lock"


@dataclass
class DocEntry:
    sha256: str
    size: int
    chunks: list[str]


@dataclass
class Manifest:
    model_id: str
    chunking: dict[str, int]
    collection: str
    documents: dict[str, DocEntry] = field(default_factory=dict)
    generation: int = 0
    format: int = FORMAT_VERSION

    def compatible(self, model_id: str, chunking: dict[str, int], collection: str) -> bool:
        return (
            self.model_id == model_id
            and self.chunking == chunking
            and self.collection == collection
        )

    def chunk_ids(self) -> set[str]:
        return {cid for d in self.documents.values() for cid in d.chunks}

    def chunk_count(self) -> int:
        return sum(len(d.chunks) for d in self.documents.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "generation": self.generation,
            "model_id": self.model_id,
            "chunking": self.chunking,
            "collection": self.collection,
            "documents": {
                src: {"sha256": d.sha256, "size": d.size, "chunks": d.chunks}
                for src, d in sorted(self.documents.items())
            },
        }


def load_manifest(store: Path) -> Manifest | None:
    """The manifest in ``store``, ``None`` if there is none; raises if unusable."""
    path = store / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"Cannot read the index manifest '{path}' ({exc.strerror}).") from exc
    try:
        data = json.loads(raw)
        fmt = int(data["format"])
        if fmt > FORMAT_VERSION:
            raise StoreError(
                f"The index at '{store}' was written by a newer version of the assistant "
                f"(format {fmt}; this version reads {FORMAT_VERSION}).",
                "Upgrade the assistant, or run 'assistant index --rebuild' to replace it.",
            )
        return Manifest(
            model_id=str(data["model_id"]),
            chunking={str(k): int(v) for k, v in data["chunking"].items()},
            collection=str(data["collection"]),
            generation=int(data.get("generation", 0)),
            format=fmt,
            documents={
                str(src): DocEntry(str(d["sha256"]), int(d["size"]), [str(c) for c in d["chunks"]])
                for src, d in data["documents"].items()
            },
        )
    except StoreError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(
            f"The index manifest '{path}' is damaged ({type(exc).__name__}).",
            "Run 'assistant index --rebuild' to rebuild the index.",
        ) from exc


def save_manifest(store: Path, manifest: Manifest) -> None:
    manifest.generation += 1
    path = store / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    data = json.dumps(manifest.to_json(), separators=(",", ":")).encode()
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(store)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(store, exc) from exc


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_LOW_SPACE = 1 << 20  # bytes: what counts as "no space left" when a library does not say why


def disk_full(path: Path, exc: BaseException) -> bool:
    """Whether writing under ``path`` failed because its disk (or quota) is full.

    SQLite and the OS say so; Chroma's Rust core often reports only the step that
    failed ("Failed to apply logs to the metadata segment"), so the free space is
    looked at too.
    """
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    text = str(exc).lower()
    if "disk is full" in text or "no space left" in text or "quota exceeded" in text:
        return True
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < _LOW_SPACE
    except OSError:
        return False


def disk_full_error(path: Path) -> StoreError:
    return StoreError(
        f"The disk holding the index at '{path}' is full.",
        "Free some space, then run the command again (an index build resumes where it "
        "stopped; --rebuild would need more space, not less).",
    )


def write_error(store: Path, exc: OSError) -> StoreError:
    """An index file could not be written: a full disk, or a folder we may not write."""
    if disk_full(store, exc):
        return disk_full_error(store)
    return StoreError(
        f"Cannot write to the index folder '{store}' ({exc.strerror or exc}).",
        "Check that it is writable, or pass another --store DIR.",
    )


def remove_stale_temps(store: Path) -> None:
    """Delete new manifests a killed writer wrote but never renamed into place.

    Call with the writer lock held: then no other process is writing one.
    """
    for tmp in store.glob(f".{MANIFEST}.*.tmp"):
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def manifest_stamp(store: Path) -> tuple[int, int] | None:
    """Cheap change detector for readers: (mtime_ns, size) of the manifest."""
    try:
        st = (store / MANIFEST).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def mark_dirty(store: Path) -> None:
    try:
        (store / DIRTY).write_text(str(os.getpid()))
    except OSError as exc:
        raise write_error(store, exc) from exc


def clear_dirty(store: Path) -> None:
    (store / DIRTY).unlink(missing_ok=True)


def is_dirty(store: Path) -> bool:
    return (store / DIRTY).exists()


class WriterLock:
    """An exclusive ``flock`` on ``<store>/lock``; the holder writes who it is.

    The kernel releases the lock when the process dies, so a killed writer never
    leaves a stale lock behind.
    """

    def __init__(self, store: Path) -> None:
        self.path = store / LOCK
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return "another process"
        since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
        who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}"
        return f"{who} ('{info.get('cmd', '?')}', since {since})"

    def acquire(self, wait: float = 0.0) -> WriterLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise write_error(self.path.parent, exc) from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreLocked(
                        f"The index at '{self.path.parent}' is being written by {self.holder()}.",
                        "Wait for it to finish, or pass --wait SECONDS.",
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "cmd": " ".join(["assistant", *sys.argv[1:2]]),
            "since": time.time(),
        }
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
