"""index.load: which files of a corpus folder are read, how, and why others are skipped."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from assistant.errors import CorpusError
from index.chunk import chunk_text
from index.load import Candidate, Document, Skipped, read_document, read_text, walk


def load(root: Path, max_bytes: int | None = None) -> tuple[dict[str, Document], dict[str, str]]:
    """Walk and read a corpus as the index build does: documents and skip reasons by source."""
    candidates, skipped = walk(root)
    docs: dict[str, Document] = {}
    reasons = {s.source: s.reason for s in skipped}
    for cand in candidates:
        got = read_document(cand) if max_bytes is None else read_document(cand, max_bytes)
        if isinstance(got, Document):
            docs[got.source] = got
        else:
            assert isinstance(got, Skipped)
            reasons[got.source] = got.reason
    assert not set(docs) & set(reasons), "a file is both read and skipped"
    return docs, reasons


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


GOOD = "A short article. It has two sentences.\n"


# -- discovery -----------------------------------------------------------------


def test_finds_txt_and_md_recursively_with_posix_sources(tmp_path: Path, file_text) -> None:
    root = tmp_path / "corpus"
    write(root / "a.txt", GOOD)
    write(root / "sub" / "b.md", "# Heading\n\nSome *markdown* text.\n")
    write(root / "sub" / "deeper" / "still" / "c.txt", "Deep down. Still found.\n")
    write(root / "sub" / "UPPER.TXT", "Upper-case suffix from another system.\n")
    write(root / "sub" / "notes.rst", "Not a supported format.\n")

    candidates, _ = walk(root)
    sources = [c.source for c in candidates]
    assert sources == sorted(sources), "walk must be deterministic (sorted)"
    assert set(sources) == {"a.txt", "sub/b.md", "sub/deeper/still/c.txt", "sub/UPPER.TXT"}
    assert all(isinstance(c, Candidate) for c in candidates)

    docs, reasons = load(root)
    assert set(docs) == set(sources)
    assert "not a .txt or .md" in reasons["sub/notes.rst"]
    for source, doc in docs.items():
        path = root / source
        raw = path.read_bytes()
        assert doc.path.resolve() == path.resolve()
        assert doc.text == file_text(path)
        assert doc.sha256 == hashlib.sha256(raw).hexdigest()
        assert doc.size == len(raw)


def test_seed_files_load_exactly(corpus: Path, file_text) -> None:
    docs, reasons = load(corpus)
    assert reasons == {}
    assert len(docs) == 3
    for source, doc in docs.items():
        assert doc.text == file_text(corpus / source)
        assert read_text(corpus / source) == doc.text


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "visible.txt", GOOD)
    write(root / ".hidden.txt", GOOD)
    write(root / ".git" / "notes.txt", GOOD)
    write(root / "sub" / ".cache" / "x.md", GOOD)
    write(root / "sub" / "kept.md", GOOD)

    docs, reasons = load(root)
    assert set(docs) == {"visible.txt", "sub/kept.md"}
    assert not any(part.startswith(".") for s in [*docs, *reasons] for part in s.split("/"))


# -- exact text: BOM and CRLF ------------------------------------------------------


def _assert_offsets_exact(text: str) -> None:
    chunks = chunk_text(text)
    assert chunks
    for c in chunks:
        assert text[c.start : c.end] == c.text


def test_bom_is_kept_so_offsets_index_the_file_as_read(tmp_path: Path, file_text) -> None:
    root = tmp_path / "corpus"
    body = "Title of the piece\n\nThe first sentence is here. The second one follows.\n"
    path = write(root / "bom.txt", b"\xef\xbb\xbf" + body.encode())

    docs, _ = load(root)
    doc = docs["bom.txt"]
    assert doc.text == file_text(path)
    assert doc.text.startswith("\ufeff") and doc.text[1:] == body
    assert read_text(path) == doc.text
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    _assert_offsets_exact(doc.text)
    assert chunk_text(doc.text)[0].start == 1, "the BOM is not part of any passage"


def test_crlf_newlines_are_kept(tmp_path: Path, file_text) -> None:
    root = tmp_path / "corpus"
    lines = ["A heading", "", "First paragraph, first sentence. Second sentence.", "",
             "Second paragraph here.", "wrapped onto a second line.", ""]
    path = write(root / "dos.txt", "\r\n".join(lines).encode())

    docs, _ = load(root)
    doc = docs["dos.txt"]
    assert doc.text == file_text(path)
    assert doc.text.count("\r\n") == len(lines) - 1
    assert "\n" not in doc.text.replace("\r\n", "")
    assert read_text(path) == doc.text
    _assert_offsets_exact(doc.text)
    with_breaks = [c.text for c in chunk_text(doc.text) if "\n" in c.text]
    assert with_breaks, "some passage spans a line break"
    assert all("\n" not in t.replace("\r\n", "") for t in with_breaks)


# -- files that cannot be indexed --------------------------------------------------

UNINDEXABLE = [
    ("latin1.txt", "caf\xe9 au lait, cr\xe8me br\xfbl\xe9e".encode("latin-1"), "utf-8"),
    ("late-bad-byte.md", b"x" * 10_000 + b"\xff tail", "utf-8"),
    ("image-renamed.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
    ("late-nul.txt", b"y" * 9_000 + b"\x00" + b"z" * 10, "binary"),
    ("empty.txt", b"", "empty"),
    ("blank.md", b"  \n\t\r\n   \n", "empty"),
    ("bom-only.txt", b"\xef\xbb\xbf\r\n ", "empty"),
    ("paper.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "not a .txt or .md"),
    ("letter.docx", b"PK\x03\x04\x14\x00\x06\x00", "not a .txt or .md"),
    ("data.json", b'{"text": "valid utf-8 but not an article"}', "not a .txt or .md"),
    ("README", b"No suffix at all.\n", "not a .txt or .md"),
]


@pytest.mark.parametrize(("name", "data", "reason"), UNINDEXABLE, ids=[u[0] for u in UNINDEXABLE])
def test_unindexable_file_is_skipped_with_a_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    root = tmp_path / "corpus"
    write(root / "good.txt", GOOD)
    write(root / "sub" / name, data)

    docs, reasons = load(root)
    assert set(docs) == {"good.txt"}, "the readable file is still indexed"
    source = f"sub/{name}"
    assert source in reasons
    assert reason.lower() in reasons[source].lower()
    assert "\n" not in reasons[source]
    assert Skipped(source, reasons[source]).line() == f"skipped {source}: {reasons[source]}"


def test_file_over_the_size_limit_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "small.txt", GOOD)
    write(root / "big.txt", "Word after word. " * 200)
    docs, reasons = load(root, max_bytes=1000)
    assert set(docs) == {"small.txt"}
    assert "limit" in reasons["big.txt"]


def test_unreadable_file(tmp_path: Path, file_text) -> None:
    """chmod 000: skipped as 'permission denied' where that blocks reads (not for root)."""
    root = tmp_path / "corpus"
    write(root / "good.txt", GOOD)
    locked = write(root / "locked.txt", "Secret but well-formed text.\n")
    locked.chmod(0)
    try:
        readable = os.access(locked, os.R_OK)
        docs, reasons = load(root)
        assert "good.txt" in docs
        if readable:  # e.g. running as root: permissions do not stop the read
            assert docs["locked.txt"].text == file_text(locked)
        else:
            assert "locked.txt" not in docs
            assert "permission denied" in reasons["locked.txt"]
    finally:
        locked.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_unreadable_folder(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "good.txt", GOOD)
    write(root / "closed" / "inside.txt", GOOD)
    (root / "closed").chmod(0)
    try:
        readable = os.access(root / "closed", os.R_OK | os.X_OK)
        docs, reasons = load(root)
        assert "good.txt" in docs
        if readable:
            assert "closed/inside.txt" in docs
        else:
            assert "closed/inside.txt" not in docs
            assert "cannot read folder" in reasons["closed"]
    finally:
        (root / "closed").chmod(stat.S_IRWXU)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_named_pipe_is_skipped_without_blocking(tmp_path: Path, no_hang) -> None:
    """A FIFO called *.txt must not be opened for reading: that blocks until a writer comes."""
    root = tmp_path / "corpus"
    write(root / "good.txt", GOOD)
    fifo = root / "pipe.txt"
    os.mkfifo(fifo)

    def unblock() -> None:  # let a reader stuck in open() finish, so the thread ends
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass

    docs, reasons = no_hang(lambda: load(root), 5, on_timeout=unblock)
    assert set(docs) == {"good.txt"}
    assert "pipe.txt" in reasons


def test_file_name_that_is_not_utf8_is_skipped(tmp_path: Path) -> None:
    """Sources go into JSON, Chroma metadata and chunk ids, so they must be valid UTF-8."""
    root = tmp_path / "corpus"
    write(root / "good.txt", GOOD)
    try:
        with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as fh:
            fh.write(GOOD.encode())
    except OSError:
        pytest.skip("this filesystem refuses file names that are not UTF-8")

    candidates, skipped = walk(root)
    assert [c.source for c in candidates] == ["good.txt"]
    assert len(skipped) == 1
    for s in [*candidates, *skipped]:
        s.source.encode("utf-8")  # raises on lone surrogates


# -- links --------------------------------------------------------------------------


def test_links_pointing_outside_the_corpus_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    outside = tmp_path / "elsewhere"
    write(root / "good.txt", GOOD)
    write(outside / "secret.txt", "Private notes that must not be indexed.\n")
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "folder-link").symlink_to(outside, target_is_directory=True)
    (root / "dangling.txt").symlink_to(tmp_path / "does-not-exist.txt")

    docs, reasons = load(root)
    assert set(docs) == {"good.txt"}
    assert "outside" in reasons["secret-link.txt"]
    assert "outside" in reasons["folder-link"]
    assert "dangling.txt" in reasons


def test_links_inside_the_corpus_add_no_second_document(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root / "a.txt", GOOD)
    write(root / "docs" / "b.md", "# B\n\nAbout b.\n")
    write(root / "docs" / "deep" / "c.txt", "About c. Deep down.\n")
    before, _ = load(root)
    # Links that sort before their targets, so a walk meets the link first.
    (root / "0-alias.txt").symlink_to("a.txt")  # relative, to a file
    (root / "0-b.md").symlink_to(root / "docs" / "b.md")  # absolute, into a folder
    (root / "0-docs").symlink_to("docs", target_is_directory=True)  # to a folder
    (root / "docs" / "deep" / "up").symlink_to("../b.md")  # a folder's file from below
    (root / "zz").symlink_to(root / "docs" / "deep", target_is_directory=True)

    candidates, _ = walk(root)
    docs, reasons = load(root)
    assert [c.source for c in candidates] == ["a.txt", "docs/b.md", "docs/deep/c.txt"]
    assert len({c.path for c in candidates}) == 3
    for cand in candidates:  # named by the real path, which is also where it is read
        assert cand.path == (root / cand.source).resolve() and not cand.path.is_symlink()
    assert {s: d.text for s, d in docs.items()} == {s: d.text for s, d in before.items()}
    for link, target in [("0-alias.txt", "a.txt"), ("0-b.md", "docs/b.md"),
                         ("0-docs", "docs"), ("docs/deep/up", "docs/b.md"),
                         ("zz", "docs/deep")]:
        assert f"link to '{target}' in the corpus" in reasons[link], link


def test_link_loops_do_not_hang_and_each_file_is_read_once(tmp_path: Path, no_hang) -> None:
    root = tmp_path / "corpus"
    write(root / "a" / "x.txt", GOOD)
    write(root / "p" / "p.txt", GOOD)
    write(root / "q" / "q.txt", GOOD)
    (root / "a" / "back-to-root").symlink_to(root, target_is_directory=True)
    (root / "a" / "self").symlink_to(root / "a", target_is_directory=True)
    (root / "p" / "to-q").symlink_to(Path("..") / "q", target_is_directory=True)
    (root / "q" / "to-p").symlink_to(Path("..") / "p", target_is_directory=True)
    (root / "l1").symlink_to(root / "l2")
    (root / "l2").symlink_to(root / "l1")

    candidates, skipped = no_hang(lambda: walk(root), 10)
    real = [c.path.resolve() for c in candidates]
    assert len(real) == len(set(real)), "a file reached through a link loop is read twice"
    assert set(real) == {(root / "a" / "x.txt").resolve(), (root / "p" / "p.txt").resolve(),
                         (root / "q" / "q.txt").resolve()}
    reasons = {s.source: s.reason for s in skipped}
    assert "a/back-to-root" in reasons and "a/self" in reasons
    assert "l1" in reasons and "l2" in reasons


# -- the corpus folder itself ---------------------------------------------------------


def test_missing_corpus_raises_corpus_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(CorpusError) as info:
        walk(missing)
    assert str(missing) in info.value.message
    assert info.value.exit_code != 0
    assert "--corpus" in (info.value.hint or "")


def test_file_as_corpus_raises_corpus_error_naming_it(tmp_path: Path) -> None:
    f = write(tmp_path / "article.txt", GOOD)
    with pytest.raises(CorpusError) as info:
        walk(f)
    assert str(f) in info.value.message
    assert "not a folder" in info.value.message
