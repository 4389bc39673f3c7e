"""Find and read the documents of a corpus folder.

Every ``.txt`` and ``.md`` file below the root is read as UTF-8. The text is
kept exactly as decoded (a leading BOM stays as U+FEFF and newlines are not
translated), because citation offsets index into this very string: a reader
gets the same text with ``open(path, encoding="utf-8", newline="").read()``.
Everything that cannot be indexed is reported as a :class:`Skipped` with a
one-line reason instead of raising.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from index.errors import CorpusError

SUFFIXES = frozenset({".txt", ".md"})
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Document:
    """One readable file: ``source`` is its POSIX path relative to the corpus root."""

    source: str
    path: Path
    text: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Skipped:
    source: str
    reason: str

    def line(self) -> str:
        return f"skipped {self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that looks indexable by name; read it with :func:`read_document`."""

    source: str
    path: Path


def check_corpus(root: Path) -> Path:
    """Return the resolved corpus root or raise a :class:`CorpusError` that names it."""
    if not root.exists():
        raise CorpusError(f"No folder at '{root}'.", "Pass an existing folder with --corpus DIR.")
    if not root.is_dir():
        raise CorpusError(f"'{root}' is a file, not a folder.", "Pass its folder with --corpus.")
    if not os.access(root, os.R_OK | os.X_OK):
        raise CorpusError(f"Cannot read the folder '{root}' (permission denied).")
    return root.resolve()


def walk(root: Path) -> tuple[list[Candidate], list[Skipped]]:
    """List candidate files below ``root`` (sorted), never leaving it and never looping.

    Links are followed while they stay inside the corpus, but each real file is
    listed once, named by its real path (links resolved) relative to the root:
    a link to a file or folder of the corpus adds no second document, so a
    passage is never cited under two names, and a document keeps its name when
    links to it come and go. The link itself is reported as skipped.
    """
    root = check_corpus(root)
    found: list[Candidate] = []
    skipped: list[Skipped] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[Path] = set()

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    def as_link(link: Path, target: Path) -> Path | None:
        """The link's target if it may be followed; otherwise record why not."""
        if not target.is_relative_to(root):
            skipped.append(Skipped(rel(link), "link points outside the corpus folder"))
            return None
        if target.is_dir() and link.parent.is_relative_to(target):
            skipped.append(Skipped(rel(link), "link loops back to a folder it is in"))
            return None
        skipped.append(Skipped(rel(link), f"link to '{rel(target)}' in the corpus, which is "
                                          "read under its own name"))
        return target

    def visit(folder: Path) -> Iterator[Path]:
        """Real paths below the real folder ``folder``, each folder entered once."""
        try:
            st = folder.stat()
        except OSError as exc:
            skipped.append(Skipped(rel(folder) or ".", f"cannot read folder ({exc.strerror})"))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return  # already listed, under its real names
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(rel(folder) or ".", f"cannot read folder ({exc.strerror})"))
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                continue  # hidden files and folders (.git, .DS_Store, editor swap files)
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(Skipped(rel(path), "broken or looping link"))
                    continue
                followed = as_link(path, target)
                if followed is None:
                    continue
                path, is_dir, is_file = followed, followed.is_dir(), followed.is_file()
            else:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                is_file = not is_dir and entry.is_file()  # False for pipes, sockets, devices
            if is_dir:
                yield from visit(path)
            elif is_file:
                if path not in seen_files:
                    seen_files.add(path)
                    yield path
            else:
                skipped.append(Skipped(rel(path), "not a regular file"))

    for path in visit(root):
        source = rel(path)
        try:
            source.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes in the name (os.fsdecode surrogates)
            shown = os.fsencode(source).decode("utf-8", "backslashreplace")
            skipped.append(Skipped(shown, "file name is not valid UTF-8; rename the file"))
            continue
        if path.suffix.lower() not in SUFFIXES:
            skipped.append(Skipped(source, "not a .txt or .md file"))
            continue
        found.append(Candidate(source, path))
    found.sort(key=lambda c: c.source)
    return found, skipped


def read_document(
    cand: Candidate, max_bytes: int = DEFAULT_MAX_BYTES
) -> Document | Skipped:
    """Read one file, or say in a few words why it cannot be indexed."""
    try:
        with open(cand.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                mb = max_bytes / (1024 * 1024)
                return Skipped(
                    cand.source,
                    f"{size / (1024 * 1024):.1f} MB is over the {mb:.0f} MB limit "
                    "(raise it with ASSISTANT_MAX_FILE_MB)",
                )
            data = fh.read(max_bytes + 1)
    except PermissionError:
        return Skipped(cand.source, "permission denied")
    except OSError as exc:
        return Skipped(cand.source, f"cannot read ({exc.strerror or exc})")
    if len(data) > max_bytes:
        return Skipped(cand.source, "grew past the size limit while being read")
    if b"\x00" in data[:_SNIFF_BYTES]:
        return Skipped(cand.source, "binary file (NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Skipped(cand.source, f"not valid UTF-8 (bad byte at offset {exc.start})")
    if "\x00" in text:
        return Skipped(cand.source, "binary file (NUL bytes)")
    if not text.lstrip("\ufeff").strip():
        return Skipped(cand.source, "empty file")
    return Document(
        source=cand.source,
        path=cand.path,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_text(path: Path) -> str:
    """The text of a corpus file exactly as citations index it."""
    return path.read_bytes().decode("utf-8")
