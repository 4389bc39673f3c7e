"""The corpora ``scale.py`` measures: prefixes of one ordered list of real documents (SQuAD
v1.1 dev articles, SciFact abstracts, the Python 3.11 documentation sources, then any
extra folders), cut where the real chunker reaches the target; and questions about them.
"""

from __future__ import annotations

import html.parser
import json
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PYDOC = Path("/usr/share/doc/python3.11/html/_sources")


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag in ("p", "div", "li", "h1", "h2", "h3", "pre", "tr"):
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(raw: str) -> str:
    p = _Text()
    p.feed(raw)
    return "\n\n".join(x.strip() for x in "".join(p.parts).split("\n\n") if x.strip())


def documents(shared: Path, extra: list[Path]) -> Iterator[tuple[str, str, str]]:
    """(source kind, file name, text) in corpus order."""
    squad = json.loads((shared / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))
    for i, art in enumerate(squad["data"]):
        body = "\n\n".join(p["context"].strip() for p in art["paragraphs"])
        slug = re.sub(r"[^A-Za-z0-9_]+", "_", art["title"])[:40]
        yield "squad", f"squad/{i:02d}-{slug}.txt", art["title"].replace("_", " ") + "\n\n" + body
    with open(shared / "scifact" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            yield "scifact", f"scifact/{d['_id']}.txt", f"{d['title']}\n\n{d['text']}\n"
    folders = ([("pydoc", PYDOC)] if PYDOC.is_dir() else []) + [("extra", e) for e in extra]
    for kind, folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix not in (".txt", ".rst", ".md", ".pod", ".html"):
                continue
            raw = path.read_text(encoding="utf-8", errors="replace")
            text = _html_text(raw) if path.suffix == ".html" else raw
            if text.strip():
                rel = path.relative_to(folder).as_posix().replace("/", "__")
                yield kind, f"{kind}/{rel}".removesuffix(".html") + ".txt", text


def make_corpus(target: int, shared: Path, extra: list[Path], scratch: Path) -> dict[str, Any]:
    """Write the first documents reaching ``target`` chunks to a folder in ``scratch``
    (reused when it is there)."""
    from index.chunk import ChunkParams, chunk_text

    root = scratch / f"corpus-{target}"
    info_path = scratch / f"corpus-{target}.json"
    if info_path.exists() and root.is_dir():
        return json.loads(info_path.read_text())
    shutil.rmtree(root, ignore_errors=True)
    params = ChunkParams()
    chunks = chars = docs = 0
    kinds: dict[str, int] = {}
    for kind, name, text in documents(shared, extra):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        chunks += len(chunk_text(text, params))
        chars += len(text)
        docs += 1
        kinds[kind] = kinds.get(kind, 0) + 1
        if chunks >= target:
            break
    else:
        raise SystemExit(f"only {chunks} chunks of text for {target}: add --extra DIR")
    info = {"root": str(root), "documents": docs, "chunks": chunks, "chars": chars,
            "sources": kinds}
    info_path.write_text(json.dumps(info))
    return info


def questions(shared: Path, corpus: Path, n: int) -> list[str]:
    """SQuAD questions about the corpus's articles and SciFact claims, sampled."""
    squad = json.loads((shared / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))
    present = {p.name.split("-", 1)[0] for p in (corpus / "squad").glob("*.txt")}
    pool = [qa["question"] for i, art in enumerate(squad["data"]) if f"{i:02d}" in present
            for par in art["paragraphs"] for qa in par["qas"]]
    if (corpus / "scifact").is_dir():
        with open(shared / "scifact" / "queries.jsonl", encoding="utf-8") as fh:
            pool += [json.loads(line)["text"] for line in fh]
    random.Random(5).shuffle(pool)
    return pool[:n]
