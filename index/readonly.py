"""Answering from an index one may not write: a verified copy in the user's own folder.

An index built by one account and shared read-only with others (or kept on a
read-only mount) cannot be opened where it is: Chroma's core opens
``chroma.sqlite3`` read-write ("attempt to write a readonly database", whatever the
settings), and SQLite will not read a WAL-mode database (the lexical index) in a
folder where it may not create the ``-shm`` file beside it. So such a reader copies
the store's files into its own data folder, checks that both copied stores hold
exactly the chunks the copied manifest lists, and opens the copy. A copy is named
after its manifest's content: it is made once per version of the index and reused
until the owner changes the index. Nothing is ever written to the store itself.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import shutil
import stat
from pathlib import Path

from index.errors import StoreError, StoreLocked
from index.manifest import DIRTY, MANIFEST, load_manifest

log = logging.getLogger(__name__)
LEXICAL = "lexical.sqlite"
CHROMA = "chroma"
VERIFIED = "verified"  # written into a copy once it has been checked against its manifest
KEEP_COPIES = 2  # the newest copies kept: another process of this user may still read the older


def writable(store: Path) -> bool:
    """Whether this process may write the store (a store not made yet: whether it may try)."""
    paths = (store, store / CHROMA, store / CHROMA / "chroma.sqlite3", store / LEXICAL,
             store / MANIFEST)
    return all(os.access(p, os.W_OK) for p in paths if p.exists())


def why_not_writable(store: Path) -> str:
    """The reason, in the user's words: a read-only mount, or someone else's folder."""
    try:
        if os.statvfs(store).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
        owner = store.owner()
    except (OSError, KeyError):
        owner = "another account"
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid {os.getuid()}"
    return f"{user} may not write to it (it belongs to {owner})"


def read_only_error(store: Path) -> StoreError:
    return StoreError(
        f"The index at '{store}' cannot be written here: {why_not_writable(store)}.",
        "Its owner can run 'assistant index' on it; or pass --store DIR to keep an index "
        "of your own.",
    )


def local_copy(store: Path, cache: Path, embedded: bool) -> tuple[Path, bool]:
    """A verified copy of ``store`` under ``cache``, and whether it is of the current version.

    ``embedded``: copy the Chroma folder too (with a server, the vectors stay there).
    While the owner writes the index (its ``dirty`` marker), the newest earlier copy
    serves, if there is one.
    """
    try:
        raw = (store / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise StoreError(f"No index at '{store}'.", "Its owner has to run 'assistant index' "
                         "first; or pass --store DIR to keep an index of your own.") from None
    except OSError as exc:
        raise StoreError(f"Cannot read the index manifest '{store / MANIFEST}' "
                         f"({exc.strerror}).") from exc
    target = cache / hashlib.sha256(raw).hexdigest()[:16]
    if (target / VERIFIED).exists():
        return target, True
    if not (store / DIRTY).exists():
        try:
            made = _copy(store, cache, target, raw, embedded)
        except _Moved:
            made = None
        if made is not None:
            _prune(cache, keep=made)
            return made, True
    older = _newest(cache)
    if older is None:
        raise StoreLocked(
            f"The index at '{store}' is being written (or a run writing it stopped half-way), "
            f"and {why_not_writable(store)}.",
            "Try again once its owner's 'assistant index' has finished.",
        )
    return older, False


class _Moved(Exception):
    """The store changed while it was being copied."""


def _copy(store: Path, cache: Path, target: Path, raw: bytes, embedded: bool) -> Path:
    tmp = cache / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for suffix in ("", "-wal"):  # the WAL holds commits not yet in the main file
            src = store / (LEXICAL + suffix)
            if src.exists():
                shutil.copyfile(src, tmp / (LEXICAL + suffix))
        if embedded and (store / CHROMA).is_dir():
            shutil.copytree(store / CHROMA, tmp / CHROMA, copy_function=shutil.copyfile)
            for p in (tmp / CHROMA).rglob("*"):  # copytree keeps the folders' read-only modes
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
            (tmp / CHROMA).chmod(0o755)
        (tmp / MANIFEST).write_bytes(raw)
        if (store / DIRTY).exists() or (store / MANIFEST).read_bytes() != raw:
            raise _Moved
        try:
            os.replace(tmp, target)
        except OSError:  # another process of this user made it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    except _Moved:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(
            f"Cannot copy the read-only index at '{store}' to '{cache}' ({exc.strerror or exc}).",
            "Check that the user data folder (ASSISTANT_HOME) is writable and has room.",
        ) from exc
    _verify(target, embedded)
    return target


def _verify(copy: Path, embedded: bool) -> None:
    """Both copied stores hold exactly the chunks the copied manifest lists, or the copy goes."""
    from index.lexical import LexicalIndex
    from index.store import VectorStore, _forget_failed_client

    manifest = load_manifest(copy)
    assert manifest is not None
    expected = manifest.chunk_ids()
    lexical = LexicalIndex(copy / LEXICAL)
    try:
        ok = lexical.ids() == expected
    finally:
        lexical.close()
    if ok and embedded:
        ok = VectorStore(copy, manifest.collection).ids() == expected
    if not ok:
        _forget_failed_client(str(copy / CHROMA))
        shutil.rmtree(copy, ignore_errors=True)
        raise _Moved
    (copy / VERIFIED).touch()


def _newest(cache: Path) -> Path | None:
    copies = sorted((p for p in cache.glob("*") if (p / VERIFIED).exists()),
                    key=lambda p: (p / VERIFIED).stat().st_mtime_ns)
    return copies[-1] if copies else None


def _prune(cache: Path, keep: Path) -> None:
    copies = sorted((p for p in cache.glob("*") if (p / VERIFIED).exists() and p != keep),
                    key=lambda p: (p / VERIFIED).stat().st_mtime_ns)
    for old in copies[: max(0, len(copies) - (KEEP_COPIES - 1))]:
        log.info("removing an old copy of a read-only index: %s", old)
        shutil.rmtree(old, ignore_errors=True)
