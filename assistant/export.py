"""A conversation as Markdown: citations become footnotes that quote their passages.

Question, answer and passage text are escaped, so what a document says is shown
as written and cannot add headings, links or footnotes of its own.
"""

from __future__ import annotations

from assistant.conversation import Turn
from assistant.textsafe import escape_markdown, markdown_with_markers


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
        out += [_with_footnotes(answer.text.strip(), labels), ""]
        if answer.confidence_note():
            out += [f"_{escape_markdown(answer.confidence_note())}_", ""]
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


def _with_footnotes(text: str, labels: dict[int, int]) -> str:
    return markdown_with_markers(text, lambda n: f"[^{labels[n]}]" if n in labels else None)
