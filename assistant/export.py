"""A conversation as Markdown: citations become footnotes that quote their passages.

Question, answer and passage text are escaped, so what a document says is shown
as written and cannot add headings, links or footnotes of its own. A model's
answer also names the model, and lists (struck through) the sentences it wrote
that their passages do not back; an extractive answer exports as it always did.
A short answer ("Huawei") opens its answer in bold, and is in bold in its sentence.
"""

from __future__ import annotations

from pathlib import Path

from assistant.conversation import Turn
from assistant.models import Answer
from assistant.phrase import answer_markdown_text
from assistant.textsafe import escape_markdown


def export_markdown(title: str, turns: list[Turn]) -> str:
    """The conversation as Markdown; citations become footnotes quoting their passages."""
    out = [f"# {escape_markdown(title)}", ""]
    footnote = 0
    for i, turn in enumerate(turns, 1):
        out += [f"## {i}. {escape_markdown(turn.question)}", ""]
        answer = turn.answer
        if answer is None:
            out += ["_No answer: it was cancelled or interrupted._", ""]
            continue
        labels = {c.n: footnote + k for k, c in enumerate(answer.citations, 1)}
        footnote += len(answer.citations)
        if answer.searched:
            out += [f"_Searched: {escape_markdown(answer.searched)}_", ""]
        out += [_with_footnotes(answer, labels), ""]
        if answer.note:
            out += [f"_Note: {escape_markdown(answer.note)}_", ""]
        if answer.confidence_note():
            out += [f"_{escape_markdown(answer.confidence_note())}_", ""]
        if answer.generator != "extractive":
            out += [f"_{escape_markdown(_writer(answer))}_", ""]
        left_out = answer.left_out
        if left_out:  # after the answer, never read as it
            out += ["Left out of the answer (the model wrote these; the passages do not "
                    "back them):", ""]
            out += [f"- ~~{escape_markdown(c.text.strip())}~~ "
                    f"(cites {_passages(c.citations)}): {escape_markdown(c.why())}"
                    for c in left_out]
            out.append("")
        for c in answer.citations:
            out.append(f"[^{labels[c.n]}]: {escape_markdown(c.source)}, "
                       f"chars {c.start}-{c.end}")
            out.append("")
            out += ["    > " + escape_markdown(line.strip()) if line.strip() else "    >"
                    for line in c.text.splitlines()]
            out.append("")
        if answer.abstained and answer.passages:
            out += ["Nearest passages (not evidence for an answer):", ""]
            for p in answer.passages[:3]:
                out.append(f"- {escape_markdown(p.source)}, chars {p.start}-{p.end}")
                out += ["  > " + escape_markdown(line.strip()) for line in p.text.splitlines()
                        if line.strip()]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _writer(answer: Answer) -> str:
    if answer.fallback:
        return (f"Extracted from the passages by the extractive answerer ({answer.generator} "
                "was asked).")
    return f"Written by {answer.generator}; each sentence checked against its passages."


def _passages(numbers: tuple[int, ...]) -> str:
    """A left-out sentence's citations: passages it was not backed by, so no footnotes."""
    if not numbers:
        return "no passage"
    return ("passage " if len(numbers) == 1 else "passages ") + ", ".join(map(str, numbers))


def _with_footnotes(answer: Answer, labels: dict[int, int]) -> str:
    return answer_markdown_text(answer, lambda n: f"[^{labels[n]}]" if n in labels else None)


def exports_folder() -> Path:
    """Where exports go unless the person names another file: ``exports/`` in the user
    data folder (``ASSISTANT_HOME``), not the current folder, which may be a clone."""
    from assistant.config import user_home

    return user_home() / "exports"


def export_path(folder: Path, title: str) -> Path:
    """A file in ``folder`` named after the conversation's title, numbered from 2 only
    when that name is taken ("title.md", then "title-2.md", ...)."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in title).split())[:40]
    stem = slug.rstrip("-").lower() or "conversation"
    path, n = folder / f"{stem}.md", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.md"
    return path
