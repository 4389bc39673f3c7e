"""Answering speed on the seeds: warm (retrieve + answer) and a cold `assistant ask`.

Warm: one process, the index loaded, every question of the file asked --rounds
times; prints p50/p95 of the total and of each stage, and beside it the same answers
without the reader (its re-weighing of sentences and the answer phrase), asked in
turn in the same run. Cold: `assistant ask`
run as a new process --cold times against an index that is already built (the
model load, imports and staleness check included), wall clock per run. The
baseline measured in the same run is `python -c "import assistant"`, the
interpreter's own start-up, so the figures can be read as a ratio too.

    python benchmarks/answer_speed.py --questions ../shared/eval/seeds-dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import Config  # noqa: E402
from assistant.service import Assistant  # noqa: E402

DEFAULT_QUESTIONS = [
    "Which company will supply 5G technology to Russia?",
    "What does China provide Russia according to the UK intelligence report?",
    "Where did Vladimir Putin and Xi Jinping meet?",
    "What is the boiling point of water on Mars?",
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=Path, help="JSONL with a 'question' per line")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--out", type=Path,
                    default=ROOT / "benchmarks" / "results" / "answer_speed.json")
    args = ap.parse_args()

    items = DEFAULT_QUESTIONS
    if args.questions:
        rows = [json.loads(x) for x in args.questions.read_text().splitlines() if x.strip()]
        items = [r["question"] for r in rows]
    home = Path(tempfile.mkdtemp(prefix="answer_speed-"))
    env = {**os.environ, "ASSISTANT_HOME": str(home)}
    os.environ["ASSISTANT_HOME"] = str(home)

    cfg = Config.resolve(corpus=ROOT / "seeds")
    svc = Assistant.open(cfg)  # builds the index into the temp home
    for q in items:
        svc.ask(q)  # warm-up: caches, lazy imports
    totals, retrieve, answer, read, unread = [], [], [], [], []
    # The same-run baseline is the answer without the reader: neither its re-weighing of
    # the best sentences nor the answer phrase.
    reader = svc._reader  # noqa: SLF001
    extractive = svc._extractive  # noqa: SLF001
    for _ in range(args.rounds):
        for q in items:
            a = svc.ask(q)
            totals.append(a.timings_ms["total"])
            retrieve.append(a.timings_ms["retrieve"])
            answer.append(a.timings_ms["answer"])
            read.append(a.timings_ms.get("read", 0.0))
            svc._reader = extractive.reader = None  # noqa: SLF001
            unread.append(svc.ask(q).timings_ms["total"])
            svc._reader = extractive.reader = reader  # noqa: SLF001
    svc.close()

    def run(cmd: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    base = [run([sys.executable, "-c", "import assistant"]) for _ in range(args.cold)]
    cold = [run([sys.executable, "-m", "assistant", "ask", items[0], "--corpus",
                 str(ROOT / "seeds")]) for _ in range(args.cold)]
    results = {
        "questions": len(items), "rounds": args.rounds,
        "warm_ms": {"p50": statistics.median(totals), "p95": pct(totals, 0.95),
                    "retrieve_p50": statistics.median(retrieve),
                    "answer_p50": statistics.median(answer),
                    "read_p50": statistics.median(read),
                    "without_reader_p50": statistics.median(unread),
                    "without_reader_p95": pct(unread, 0.95)},
        "cold_ask_s": {"median": statistics.median(cold), "max": max(cold), "runs": cold},
        "python_start_s": statistics.median(base),
    }
    w, c = results["warm_ms"], results["cold_ask_s"]
    print(f"warm answer   p50 {w['p50']:6.1f} ms  p95 {pct(totals, 0.95):6.1f} ms   "
          f"(retrieve p50 {w['retrieve_p50']:.1f} ms, answer p50 {w['answer_p50']:.1f} ms; "
          f"{len(totals)} answers)")
    print(f"  the reader: p50 {w['read_p50']:.1f} ms; the same answers without it p50 "
          f"{w['without_reader_p50']:.1f} ms (+{w['p50'] - w['without_reader_p50']:.1f} ms)")
    print(f"cold ask      median {c['median']:5.2f} s  max {c['max']:5.2f} s   "
          f"(python + import assistant alone: {results['python_start_s']:.2f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
