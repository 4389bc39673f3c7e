"""The write journal: the chunk ids this store wrote to a Chroma collection.

On a server a collection may be shared, so a build deletes only ids it owns: those
in its manifest and those it journalled here before writing them (a killed run's
leftovers are known by the next). One id per line in ``<store>/written``.
"""

from __future__ import annotations

from pathlib import Path

from index.errors import StoreError

JOURNAL_FILE = "written"


def read_journal(store: Path) -> set[str]:
    try:
        text = (store / JOURNAL_FILE).read_text()
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise StoreError(f"Cannot read '{store / JOURNAL_FILE}' ({exc.strerror}).") from exc
    return {line for line in text.split() if line}


def append_journal(store: Path, ids: list[str]) -> None:
    """Record ids before they are written, so a killed run knows what it left behind."""
    with open(store / JOURNAL_FILE, "a") as fh:
        fh.write("".join(f"{cid}\n" for cid in ids))


def clear_journal(store: Path) -> None:
    (store / JOURNAL_FILE).unlink(missing_ok=True)
