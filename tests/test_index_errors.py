"""What index.build.build_index refuses, and how: a held writer lock, a damaged or foreign
manifest, a corpus with nothing to index. Each is an error with an exit code and a hint,
never a traceback, and leaves what is on disk as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from assistant.errors import CorpusError, StoreError
from index.build import build_index
from index.manifest import MANIFEST, WriterLock

pytestmark = pytest.mark.slow


# -- the writer lock ----------------------------------------------------------------------


def test_second_writer_while_locked_exits_3_naming_the_holder(
    corpus: Path, store: Path, run_cli
) -> None:
    store.mkdir(parents=True)
    lock = WriterLock(store).acquire()
    try:
        proc = run_cli("index", "--corpus", str(corpus), "--store", str(store))
    finally:
        lock.release()
    assert proc.returncode == 3, proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (store / MANIFEST).exists(), "the locked-out run must not write anything"
    WriterLock(store).acquire().release()  # released, and not left stale by the failed run


def test_lock_is_exclusive_within_a_process_too(corpus: Path, store: Path, embedder) -> None:
    from assistant.errors import StoreLocked

    store.mkdir(parents=True)
    with WriterLock(store).acquire():
        with pytest.raises(StoreLocked) as info:
            build_index(corpus, store, embedder)
    assert f"pid {os.getpid()}" in info.value.message
    assert info.value.exit_code == 3


# -- a damaged or foreign manifest ----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", b'{"format": 1}', b"\xff\xfe\x00garbage", b"null",
     b'{"format": "one", "model_id": "m", "chunking": {}, "collection": "c", "documents": {}}'],
    ids=["truncated", "empty", "list", "missing-keys", "binary", "null", "bad-format"],
)
def test_corrupt_manifest_is_a_store_error_with_a_rebuild_hint(
    built_store: Path, seed_files, embedder, content: bytes
) -> None:
    store = built_store
    (store / MANIFEST).write_bytes(content)
    with pytest.raises(StoreError) as info:
        build_index(seed_files[0].parent, store, embedder)
    assert "--rebuild" in (info.value.hint or "")
    assert MANIFEST in info.value.message
    assert info.value.exit_code == 4


def test_manifest_from_a_newer_version_is_refused(
    built_store: Path, seed_files, embedder
) -> None:
    store = built_store
    data = json.loads((store / MANIFEST).read_text())
    data["format"] = 99
    (store / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(StoreError) as info:
        build_index(seed_files[0].parent, store, embedder)
    assert "newer version" in info.value.message
    assert "99" in info.value.message
    assert (store / MANIFEST).read_text() == json.dumps(data), "left untouched"


# -- the corpus ---------------------------------------------------------------------------------


def test_corpus_without_readable_files_is_a_corpus_error(tmp_path: Path, store: Path,
                                                         embedder) -> None:
    root = tmp_path / "junk"
    root.mkdir()
    (root / "a.pdf").write_bytes(b"%PDF")
    (root / "b.txt").write_bytes(b"")
    with pytest.raises(CorpusError) as info:
        build_index(root, store, embedder)
    assert str(root.resolve()) in info.value.message


def test_missing_corpus_is_a_corpus_error(tmp_path: Path, store: Path, embedder) -> None:
    with pytest.raises(CorpusError) as info:
        build_index(tmp_path / "absent", store, embedder)
    assert str(tmp_path / "absent") in info.value.message
    assert not store.exists()


def test_file_with_non_utf8_name_does_not_break_the_build(
    corpus: Path, store: Path, embedder, file_text
) -> None:
    try:
        with open(os.path.join(os.fsencode(corpus), b"caf\xe9.txt"), "wb") as fh:
            fh.write(b"A note saved by an old Latin-1 system. Its name is not UTF-8.\n")
    except OSError:
        pytest.skip("this filesystem refuses file names that are not UTF-8")
    summary = build_index(corpus, store, embedder)
    assert summary.added == 3
    assert len(summary.skipped) == 1
    json.dumps([list(s) for s in summary.skipped])  # printable and JSON-safe
