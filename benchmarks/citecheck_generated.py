"""Generated-like cases for the citation check: sentences the local model wrote.

``citecheck_bench.py``'s own cases are quotes (a SQuAD sentence against the passage
it comes from), which word overlap separates alone; a model paraphrases, merges and
reorders, and the checker fitted on quotes dropped those. So the bench also reads
the answers ``llm_qa.py --log`` saved (the model's sentences with the passages it
was given) and labels them without a person:

- **generated**: a sentence holding the question's gold answer, against the given
  passage that holds the gold answer and shares the most of the sentence's content
  words = supported (the passage SQuAD marks as answering the question);
- **generated_swapped**: the same sentence with one name, number or date swapped for
  another of its kind from the passage's article = unsupported;
- **generated_other**: the same sentence against a passage of another article =
  unsupported.

Sentences without the gold answer are left out: nothing says whether they are
backed. A log of the tune sample is fitted on; one of the report sample reported on.

The model rarely writes a gold answer in a sentence of five words or more, so
restatements of Natural Questions add paraphrases in bulk (real search queries,
written without seeing the text: they share about 35% of their content words with
the passage): "{question}: {answer}." against

- **restated**: the question's gold passage, when it holds the answer = supported;
- **restated_swapped**: the question with another question's answer, one its
  passage does not hold = unsupported;
- **restated_other**: a passage of another article (title) = unsupported.

NQ's tuning questions (``nq_qa.sample_of``) are fitted on; its held-out ones reported on.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import nq_qa
from citecheck_bench import Article, Case, fact_pool, swapped
from qa_harness import contains

from assistant.words import content_words, stem

MIN_WORDS = 5
KINDS = ("generated", "generated_swapped", "generated_other",
         "restated", "restated_swapped", "restated_other")
SUPPORTED = ("generated", "restated")


def article_of(source: str) -> int:
    """The article index of a corpus file ``squad_qa.write_articles`` named ``NN_title.txt``."""
    return int(Path(source).name.split("_", 1)[0])


def read_log(path: Path) -> list[dict[str, Any]]:
    """The local model's answers to SQuAD questions in an ``llm_qa.py --log`` file."""
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r["set"] == "squad" and r["generator"] != "extractive"]


def _shared(sentence: str, passage: str) -> int:
    words = {stem(w) for w in content_words(sentence)}
    return len(words & {stem(w) for w in content_words(passage)})


def generated_cases(log: list[dict[str, Any]], articles: list[Article],
                    rng: random.Random) -> list[Case]:
    """Labelled cases from the model's sentences (module docstring)."""
    pools: dict[int, dict[str, list[str]]] = {}
    cases: list[Case] = []
    for row in log:
        gold = row["gold"]
        holding = [p for p in row["passages"] if contains(p["text"], gold)]
        for check in row["checks"]:
            sentence = check["text"]
            if len(sentence.split()) < MIN_WORDS or not holding or not contains(sentence, gold):
                continue
            best = max(holding, key=lambda p: _shared(sentence, p["text"]))
            index = article_of(best["source"])
            cases.append(Case("generated", sentence, best["text"]))
            pool = pools.setdefault(index, fact_pool(articles[index]))
            swap = swapped(sentence, pool, rng)
            if swap is not None:
                cases.append(Case("generated_swapped", swap[0], best["text"], swap[1]))
            other = rng.choice([a for a in articles if a.index != index])
            os_, oe = rng.choice(other.chunks)
            cases.append(Case("generated_other", sentence, other.text[os_:oe]))
    return cases


def nq_rows(path: Path, sample: str) -> list[dict[str, Any]]:
    """NQ-open oracle rows of ``nq_qa.py``'s tune sample or of its held-out rest."""
    return nq_qa.sample_of(nq_qa.read_nq(path), sample)


def restated_cases(rows: list[dict[str, Any]], n: int, rng: random.Random) -> list[Case]:
    """Question-and-answer restatements against their passage and others (docstring)."""
    cases: list[Case] = []
    for row in rows[:n]:
        ctx, answers = row["ctxs"][0], row["answers"]
        if not contains(ctx["text"], answers):
            continue
        q = row["question"].strip().rstrip("?")
        q = q[:1].upper() + q[1:]
        sentence = f"{q}: {answers[0]}."
        if len(sentence.split()) < MIN_WORDS:
            continue
        cases.append(Case("restated", sentence, ctx["text"]))
        wrong = rng.choice(rows)["answers"][0]
        if not contains(ctx["text"], [wrong]):
            cases.append(Case("restated_swapped", f"{q}: {wrong}.", ctx["text"]))
        other = rng.choice([r for r in rows if r["ctxs"][0]["title"] != ctx["title"]])
        cases.append(Case("restated_other", sentence, other["ctxs"][0]["text"]))
    return cases


def generated_rates(cases: list[Case], kept: list[bool]) -> dict[str, Any]:
    """Share kept of the supported kinds, share caught of the others."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        ks = [k for c, k in zip(cases, kept, strict=True) if c.kind == kind]
        if not ks:
            continue
        share = sum(ks) / len(ks)
        out[kind] = {"n": len(ks), "rate": share if kind in SUPPORTED else 1 - share}
    return out


def kept_share(cases: list[Case], kept: list[bool]) -> float:
    """The share of the supported generated-like sentences kept (what the threshold seeks)."""
    ks = [k for c, k in zip(cases, kept, strict=True) if c.kind in SUPPORTED]
    return sum(ks) / len(ks) if ks else 0.0


def collect(fit_logs: list[Path], report_log: Path | None, nq: Path | None,
            articles: list[Article], rng: random.Random, nq_n: tuple[int, int]
            ) -> tuple[list[Case], list[Case]]:
    """The generated-like cases to fit on and to report on; the fit ones first, so
    what is reported on cannot change what is fitted (one random stream)."""
    fit = generated_cases([r for f in fit_logs for r in read_log(f)], articles, rng)
    if nq is not None:
        fit += restated_cases(nq_rows(nq, "tune"), nq_n[0], rng)
    report = generated_cases(read_log(report_log), articles, rng) if report_log else []
    if nq is not None:
        report += restated_cases(nq_rows(nq, "heldout"), nq_n[1], rng)
    return fit, report


def describe(half: str, r: dict[str, Any]) -> str:
    return f"generated-like ({half}): " + ", ".join(
        f"{k} {'kept' if k in SUPPORTED else 'caught'} {v['rate']:.1%} of {v['n']}"
        for k, v in r.items())
