"""Follow-up questions with no model to rewrite them (issue 19 item 3).

Two small sets of conversations written for this benchmark (``benchmarks/followups/``,
never the seed question files, which are for checking only): ``seeds.jsonl`` about the
three seed articles, and ``squad.jsonl`` about two SQuAD v1.1 dev articles
(Super_Bowl_50 and Black_Death, indexed with six other dev articles beside them). Each
line is an ``eval`` line: one earlier question (``history``) and a follow-up that points
back at it with a pronoun or "that" ("Which operator is it working with?"); ``answers``
as ``eval`` grades them, ``[]`` for follow-ups the documents do not answer.

Each follow-up is answered three ways by the product's extractive answerer
(``Assistant.ask``), on one index:

- **alone**: the follow-up with no history (what it can find by itself);
- **context only**: with its history, earlier turns given only as context (the
  behaviour before issue 19: half-weight retrieval lists and the ranker's context
  feature; ``Assistant.carry_followups = False``);
- **carried**: with its history, the earlier question's content words carried into
  the searched question (``assistant/followup.py``; the behaviour now).

    python benchmarks/followup_qa.py [--squad ../shared/benchmarks/squad/dev-v1.1.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from qa_harness import write_results  # noqa: E402

from assistant.config import Config  # noqa: E402
from assistant.evaluate import matches, read_questions  # noqa: E402
from assistant.service import Assistant  # noqa: E402
from assistant.textsafe import MARKER  # noqa: E402
from index.embed import OnnxEmbedder  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SQUAD_ARTICLES = ("Super_Bowl_50", "Black_Death")
# Other dev articles indexed beside them, so that retrieval has something to miss.
SQUAD_OTHERS = ("Apollo_program", "Oxygen", "Rhine", "Genghis_Khan", "Kenya", "Doctor_Who")
MODES = ("alone", "context only", "carried")


def squad_corpus(path: Path, into: Path) -> Path:
    """The chosen dev articles as .txt files (paragraphs joined by blank lines)."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    into.mkdir(parents=True)
    for article in data:
        if article["title"] in SQUAD_ARTICLES + SQUAD_OTHERS:
            text = "\n\n".join(p["context"] for p in article["paragraphs"])
            (into / f"{article['title']}.txt").write_text(text + "\n", encoding="utf-8")
    return into


def run_set(svc: Assistant, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Each follow-up answered in each mode, graded as ``eval`` grades."""
    rows = []
    for item in items:
        row: dict[str, Any] = {"id": item["id"], "question": item["question"],
                               "history": item["history"], "answerable": bool(item["answers"])}
        for mode in MODES:
            svc.carry_followups = mode == "carried"
            history = [] if mode == "alone" else item["history"]
            answer = svc.ask(item["question"], history=history)
            first = MARKER.split(answer.text)[0] if not answer.abstained else ""
            row[mode] = {
                "abstained": answer.abstained,
                "match": not answer.abstained and bool(item["answers"])
                and matches(answer.text, item["answers"]),
                "first": bool(item["answers"]) and bool(first)
                and matches(first, item["answers"]),
                "searched": answer.searched or answer.question,
                "confidence": answer.confidence,
            }
        rows.append(row)
    return {"rows": rows, "summary": summarize(rows)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    out: dict[str, Any] = {"answerable": len(answerable), "unanswerable": len(unanswerable)}
    for mode in MODES:
        out[mode] = {
            "match": sum(r[mode]["match"] for r in answerable),
            "first_sentence": sum(r[mode]["first"] for r in answerable),
            "refused_answerable": sum(r[mode]["abstained"] for r in answerable),
            "refused_unanswerable": sum(r[mode]["abstained"] for r in unanswerable),
        }
    return out


def table(name: str, s: dict[str, Any]) -> list[str]:
    n, u = s["answerable"], s["unanswerable"]
    lines = []
    for mode in MODES:
        m = s[mode]
        lines.append(f"| {name} | {mode} | {m['match']}/{n} | {m['first_sentence']}/{n} "
                     f"| {m['refused_answerable']}/{n} | {m['refused_unanswerable']}/{u} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, help="dev-v1.1.json (for the squad set)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "followups.json")
    args = ap.parse_args()
    embedder = OnnxEmbedder().load()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {"seeds": shutil.copytree(ROOT / "seeds", Path(tmp) / "seeds")}
        if args.squad:
            corpora["squad"] = squad_corpus(args.squad, Path(tmp) / "squad")
        for name, corpus in corpora.items():
            items = read_questions(HERE / "followups" / f"{name}.jsonl")
            cfg = Config.resolve(corpus=corpus, store=Path(tmp) / f"store-{name}")
            svc = Assistant.open(cfg, embedder=embedder)
            try:
                results[name] = run_set(svc, items)
            finally:
                svc.close()
    print("| set | follow-up asked | gold in the answer | gold in 1st sentence "
          "| answerable refused | unanswerable refused |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print("\n".join(table(name, r["summary"])))
    for name, r in results.items():
        for row in r["rows"]:
            if row["answerable"] and not row["carried"]["match"]:
                print(f"{name} {row['id']} still missed: {row['carried']['searched']}")
    write_results(args.out, {
        "command": " ".join(["python benchmarks/followup_qa.py", *sys.argv[1:]]),
        "squad_articles": list(SQUAD_ARTICLES), "squad_others": list(SQUAD_OTHERS),
        **results,
    })


if __name__ == "__main__":
    main()
