"""The reader's answer phrases, measured: exact match, F1 and the precision of shown phrases.

Every question of a sample is answered as the product answers it (hybrid retrieval, the
extractive answerer, the question as asked); the reader then reads the sentences that
answer quotes (``Drafted.quoted``) and its best phrase per sentence is kept with its margin
over "no short answer". Those rows are cached per sample, so fitting and reporting rerun in
seconds.

``--fit`` fits the shown-phrase probability (``PHRASE_WEIGHTS``: a logistic model of the
evidence ``assistant.reader.phrase_evidence`` gathers, right meaning F1 >= 0.5 against the
gold) and the threshold ``SHOW_AT`` on the tuning samples only (SQuAD seed 2024 x 1,000, the
answerer's; NQ tune 600): the lowest probability at which the shown phrases are right at
least ``--precision`` of the time, the two samples' shares averaged. Without ``--fit``, the
values in ``assistant/reader.py`` grade the sample. SQuAD's official normalisation; a
question with no phrase shown scores 0.

``--fit-rerank`` fits ``READER_WEIGHT`` (``assistant/answer.py``), how much the reader's
margin re-weighs the ranking's best ``READER_POOL`` sentences, on the same tuning rows: the
weight that most often puts the gold answer in the best sentence.

``--cv-precision LEVEL ...`` says how each ``--precision`` level holds on tuning rows it was
not fitted on (two-fold, three random splits); the level used is the lowest at which each
sample's cross-validated shown phrases are right at least 2 points above the issue's floor
(SQuAD 85%, NQ 80%).

    python benchmarks/reader_qa.py --squad ../shared/benchmarks/squad \\
        --nq ../shared/benchmarks/nq/nq-open-oracle.jsonl.gz --sample tune --fit
    python benchmarks/reader_qa.py --squad ../shared/benchmarks/squad \\
        --nq ../shared/benchmarks/nq/nq-open-oracle.jsonl.gz --sample heldout
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nq_qa  # noqa: E402
import squad_qa  # noqa: E402
from qa_harness import contains, open_index, span_grade, squad_norm, write_results  # noqa: E402

from assistant import reader as rd  # noqa: E402
from assistant.answer import READER_POOL, READER_WEIGHT  # noqa: E402
from index.embed import default_model_files  # noqa: E402

HERE = Path(__file__).resolve().parent
SQUAD_TUNE = (2024, 1000)  # the answerer's tuning sample
_KIND = re.compile(r"\b(how many|how much|how long|how old|how|what|which|who|whom|whose|"
                   r"when|where|why)\b", re.IGNORECASE)


def kind_of(question: str) -> str:
    m = _KIND.search(question)
    return m.group(1).lower() if m else "other"


# ------------------------------------------------------------------------- collect


def collect(name: str, qs: list[dict[str, Any]], corpus: Path, store: Path,
            reader: rd.Reader, k: int = 6) -> list[dict[str, Any]]:
    """One row per question: the answer's state and the reader's best phrase per quoted
    sentence (offsets checked against the file)."""
    retriever, answerer, _summary = open_index(corpus, store, reader=reader)
    texts: dict[str, str] = {}
    rows = []
    for i, q in enumerate(qs):
        ret = retriever.retrieve(q["question"], k)
        drafted = answerer.answer(q["question"], ret, k=k)
        ranked = answerer.rank(q["question"], ret)[2][:READER_POOL]
        readings = reader.spans(q["question"], [x.text for x in ranked])
        verdicts = reader.answers(q["question"], [x.text for x in ranked])
        top = [{"score": round(x.score, 4), "margin": None if h is None else round(h[2], 4),
                "verdict": round(v, 4), "gold": contains(x.text, q["answers"]), "text": x.text}
               for x, h, v in zip(ranked, readings, verdicts, strict=True)]
        t = time.perf_counter()
        spans = reader.spans(q["question"], [s[3] for s in drafted.quoted])
        ms = (time.perf_counter() - t) * 1000
        said = reader.answers(q["question"], [s[3] for s in drafted.quoted])
        cands = []
        for (source, start, _end, text), hit, verdict in zip(drafted.quoted, spans, said,
                                                             strict=True):
            if hit is None:
                continue
            a, b, margin = hit
            if source not in texts:
                texts[source] = (corpus / source).read_text(encoding="utf-8")
            cands.append({"text": text[a:b], "margin": round(margin, 4),
                          "verdict": round(verdict, 4),
                          "exact": texts[source][start + a: start + b] == text[a:b]})
        cands.sort(key=lambda c: -c["margin"])
        rows.append({"id": q["id"], "question": q["question"], "answers": q["answers"],
                     "abstained": drafted.abstained, "ms": round(ms, 2),
                     "confidence": round(drafted.confidence, 4),
                     "gold_in_quoted": any(squad_norm(a) in squad_norm(s[3])
                                           for a in q["answers"] for s in drafted.quoted),
                     "cands": cands, "top": top})
        if (i + 1) % 500 == 0:
            print(f"  {name}: {i + 1:,}/{len(qs):,}", flush=True)
    return rows


def load_rows(args: argparse.Namespace, reader: rd.Reader) -> dict[str, list[dict]]:
    out = {}
    if args.squad:
        cache = args.workdir / f"reader-rows-squad-{args.sample}.json"
        if not cache.exists() or args.fresh:
            corpus = args.workdir / "squad" / "corpus"
            squad_qa.write_articles(args.squad / "dev-v1.1.json", corpus)
            qs = (squad_qa.load_questions(args.squad, SQUAD_TUNE[1], SQUAD_TUNE[0])
                  if args.sample == "tune" else squad_qa.heldout_questions(args.squad))
            cache.write_text(json.dumps(collect("squad", qs[: args.n or None], corpus,
                                                args.workdir / "squad" / "store", reader)))
        out["squad"] = json.loads(cache.read_text())
    if args.nq:
        cache = args.workdir / f"reader-rows-nq-{args.sample}.json"
        if not cache.exists() or args.fresh:
            rows = nq_qa.read_nq(args.nq)
            corpus = args.workdir / "nq" / "corpus"
            nq_qa.write_corpus(rows, corpus)
            qs = nq_qa.questions(rows, args.sample)
            cache.write_text(json.dumps(collect("nq", qs[: args.n or None], corpus,
                                                args.workdir / "nq" / "store", reader)))
        out["nq"] = json.loads(cache.read_text())
    return out


# ---------------------------------------------------------------------------- fit


def best_phrase(row: dict[str, Any]) -> tuple[dict[str, Any], tuple[float, ...]] | None:
    """The row's best phrase (as ``rd.Reader.read`` chooses it) with its
    ``rd.phrase_evidence``, or None: the answer abstained, the question asks for an
    explanation, or no sentence holds a phrase."""
    if row["abstained"] or rd.asks_explanation(row["question"]):
        return None
    lead = rd.leading_phrase((c["margin"], c["text"], c) for c in row["cands"])
    if lead is None:
        return None
    (margin, text, cand), runner_up = lead
    return cand, rd.phrase_evidence(row["question"], text, margin, row["confidence"], runner_up)


def shown(row: dict[str, Any], params: Sequence[float]) -> tuple[dict[str, Any], float] | None:
    """The phrase the product would show for ``row`` and its probability, or None
    (``params``: PHRASE_WEIGHTS then SHOW_AT)."""
    if (found := best_phrase(row)) is None:
        return None
    p = rd.probability(found[1], params[:-1])
    return (found[0], p) if p >= params[-1] else None


def _evidence(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Per row that could show a phrase: its evidence, and whether the phrase is right
    (F1 >= 0.5)."""
    xs, ys = [], []
    for r in rows:
        if (found := best_phrase(r)) is not None:
            xs.append(found[1])
            ys.append(float(span_grade(found[0]["text"], r["answers"])[1] >= 0.5))
    return np.array(xs).reshape(-1, len(rd.PHRASE_EVIDENCE)), np.array(ys)


def fit(sets: dict[str, list[dict]], precision: float) -> tuple[float, ...]:
    """PHRASE_WEIGHTS of a logistic model (right = F1 >= 0.5) over the tuning rows that
    could show a phrase, then the lowest SHOW_AT at which the shown phrases are right at
    least ``precision`` of the time, the tuning samples' shares averaged (each sample
    counts the same, whatever its size; one sample alone is too small for a stable
    threshold)."""
    parts = {name: _evidence(rows) for name, rows in sets.items()}
    x = np.concatenate([p[0] for p in parts.values()])
    y = np.concatenate([p[1] for p in parts.values()])
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    for _ in range(50):  # Newton steps, a little L2 for stability
        p = 1 / (1 + np.exp(-design @ w))
        grad = design.T @ (p - y) + 1e-3 * w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + 1e-3 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)

    def holds(at: float) -> bool:
        shares = []
        for xs, ys in parts.values():
            sel = 1 / (1 + np.exp(-(np.hstack([xs, np.ones((len(xs), 1))]) @ w))) >= at
            shares.append(ys[sel].mean() if sel.any() else 1.0)
        return float(np.mean(shares)) >= precision

    levels = np.round(np.arange(0.30, 0.99, 0.01), 2)
    show_at = next((float(a) for a in levels if holds(float(a))), 0.99)
    return (*(round(float(v), 4) for v in w), show_at)


def cross_validate(sets: dict[str, list[dict]], levels: Sequence[float],
                   splits: Sequence[int] = (1, 2, 3)) -> dict[float, dict[str, dict]]:
    """How each precision level for ``fit`` holds on rows it was not fitted on: each
    tuning sample halved at random (per seed in ``splits``), fitted on one half of both,
    graded on the other, and the other way round. Per level and sample: EM, shown and
    shown-right, averaged over the 2 x len(splits) folds, and the lowest shown-right."""
    import random

    out: dict[float, dict[str, dict]] = {}
    for level in levels:
        graded: dict[str, list[dict]] = {name: [] for name in sets}
        for seed in splits:
            rng = random.Random(seed)
            halves = {}
            for name, rows in sets.items():
                order = rng.sample(range(len(rows)), len(rows))
                cut = len(order) // 2
                halves[name] = ([rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]])
            for fit_half, grade_half in ((0, 1), (1, 0)):
                params = fit({n: h[fit_half] for n, h in halves.items()}, level)
                for name, h in halves.items():
                    graded[name].append(report(h[grade_half], params))
        out[level] = {name: {
            "exact_match": round(statistics.mean(r["exact_match"] for r in rs), 4),
            "shown": round(statistics.mean(r["shown"] for r in rs), 4),
            "shown_right": round(statistics.mean(r["shown_right"] for r in rs), 4),
            "shown_right_lowest": min(r["shown_right"] for r in rs),
        } for name, rs in graded.items()}
    return out


def reranked_top1(rows: list[dict[str, Any]], weight: float) -> float:
    """The share of ``rows`` whose best sentence, re-weighed by ``weight`` x the reader's
    margin, holds the gold answer (as ``ExtractiveAnswerer.reread`` orders them)."""
    hits = 0
    for r in rows:
        if r["top"]:
            best = max(r["top"], key=lambda t: t["score"] + weight * (
                t["margin"] if t["margin"] is not None else -10.0))
            hits += best["gold"]
    return hits / max(len(rows), 1)


def fit_rerank(sets: dict[str, list[dict]]) -> float:
    """The READER_WEIGHT that puts the gold in the best sentence most often, both tuning
    samples weighing the same (each set's share averaged); printed per weight."""
    best_w, best = 0.0, -1.0
    for w in np.round(np.arange(0.0, 2.01, 0.1), 2):
        shares = {name: reranked_top1(rows, float(w)) for name, rows in sets.items()}
        mean = sum(shares.values()) / len(shares)
        print(f"  READER_WEIGHT {w:.1f}: best sentence holds the gold " + ", ".join(
            f"{n} {v:.1%}" for n, v in shares.items()))
        if mean > best + 1e-9:
            best_w, best = float(w), mean
    return best_w


# ------------------------------------------------------------------------- report


def report(rows: list[dict[str, Any]], params: Sequence[float]) -> dict[str, Any]:
    em = f1s = right = n_shown = exact = 0.0
    by_kind: dict[str, list[int]] = {}
    em_given_gold = [0.0, 0]
    for r in rows:
        got = shown(r, params)
        by_kind.setdefault(kind_of(r["question"]), []).append(int(got is not None))
        if r["gold_in_quoted"] and r["cands"] and not r["abstained"]:
            em_given_gold[0] += span_grade(r["cands"][0]["text"], r["answers"])[0]
            em_given_gold[1] += 1
        if got is None:
            continue
        e, f = span_grade(got[0]["text"], r["answers"])
        em, f1s, right, n_shown = em + e, f1s + f, right + (f >= 0.5), n_shown + 1
        exact += got[0]["exact"]
    n = max(len(rows), 1)
    ms = [r["ms"] for r in rows if r["cands"]]
    return {
        "n": len(rows),
        "exact_match": round(em / n, 4), "f1": round(f1s / n, 4),
        "shown": round(n_shown / n, 4),
        "shown_right": round(right / max(n_shown, 1), 4),
        "shown_exact_match": round(em / max(n_shown, 1), 4),
        "offsets_exact": f"{int(exact)}/{int(n_shown)}",
        "abstained": round(sum(r["abstained"] for r in rows) / n, 4),
        "gold_in_quoted": round(sum(r["gold_in_quoted"] for r in rows) / n, 4),
        "best_span_em_when_gold_quoted": round(em_given_gold[0] / max(em_given_gold[1], 1), 4),
        "shown_by_kind": {k: {"n": len(v), "shown": round(sum(v) / len(v), 3)}
                          for k, v in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))},
        "reader_ms_p50": round(statistics.median(ms), 2) if ms else 0.0,
        "best_sentence_gold": round(reranked_top1(rows, 0.0), 4),
        "best_sentence_gold_reread": round(reranked_top1(rows, READER_WEIGHT), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, help="folder with dev-v1.1.json")
    ap.add_argument("--nq", type=Path, help="nq-open-oracle.jsonl.gz")
    ap.add_argument("--sample", choices=("tune", "heldout"), default="heldout")
    ap.add_argument("--n", type=int, default=0, help="only the first N questions of each set")
    ap.add_argument("--model", type=Path, default=rd.MODEL_DIR / rd.MODEL_NAME)
    ap.add_argument("--workdir", type=Path, default=HERE / "scratch")
    ap.add_argument("--fresh", action="store_true", help="re-answer instead of the cached rows")
    ap.add_argument("--fit", action="store_true",
                    help="fit PHRASE_WEIGHTS and SHOW_AT (tune only)")
    ap.add_argument("--precision", type=float, default=0.88)
    ap.add_argument("--cv-precision", type=float, nargs="+", metavar="LEVEL",
                    help="cross-validate these --precision levels inside the tuning rows "
                         "(two-fold, three random splits) and print how each holds")
    ap.add_argument("--fit-rerank", action="store_true",
                    help="fit READER_WEIGHT, the re-weighing of sentences (tune only)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if (args.fit or args.fit_rerank or args.cv_precision) and args.sample != "tune":
        raise SystemExit("--fit, --fit-rerank and --cv-precision fit on the tuning samples "
                         "only: add --sample tune")
    reader = rd.Reader(args.model, default_model_files()[1])
    sets = load_rows(args, reader)
    params = (fit(sets, args.precision) if args.fit else (*rd.PHRASE_WEIGHTS, rd.SHOW_AT))
    print(f"PHRASE_WEIGHTS ({', '.join(rd.PHRASE_EVIDENCE)}, bias) = {params[:-1]}, "
          f"SHOW_AT = {params[-1]}" + ("  (fitted here)" if args.fit else ""))
    results: dict[str, Any] = {"sample": args.sample, "phrase_evidence": rd.PHRASE_EVIDENCE,
                               "phrase_weights": params[:-1], "show_at": params[-1]}
    if args.cv_precision:
        results["cross_validated"] = cv = cross_validate(sets, args.cv_precision)
        print("cross-validated inside the tuning rows (EM / shown / right, lowest right):")
        for level, per in cv.items():
            print(f"  --precision {level:.2f}: " + " | ".join(
                f"{n} {v['exact_match']:.1%} / {v['shown']:.1%} / {v['shown_right']:.1%}, "
                f"{v['shown_right_lowest']:.1%}" for n, v in per.items()))
    if args.fit_rerank:
        results["reader_weight"] = fit_rerank(sets)
        print(f"READER_WEIGHT = {results['reader_weight']}  (fitted here)")
    print(f"\n{'':6} {'n':>6} {'EM':>6} {'F1':>6} {'shown':>6} {'right':>6} {'shownEM':>7} "
          f"{'gold q':>6} {'EM|q':>6} {'ms':>5}")
    for name, rows in sets.items():
        r = report(rows, params)
        results[name] = r
        print(f"{name:6} {r['n']:6} {r['exact_match']:6.1%} {r['f1']:6.1%} {r['shown']:6.1%} "
              f"{r['shown_right']:6.1%} {r['shown_exact_match']:7.1%} "
              f"{r['gold_in_quoted']:6.1%} {r['best_span_em_when_gold_quoted']:6.1%} "
              f"{r['reader_ms_p50']:5.1f}   offsets exact {r['offsets_exact']}")
        print("       shown by kind: " + ", ".join(
            f"{k} {v['shown']:.0%} of {v['n']}" for k, v in r["shown_by_kind"].items()))
    write_results(args.out or HERE / "results" / f"reader_qa_{args.sample}.json", results)


if __name__ == "__main__":
    main()
