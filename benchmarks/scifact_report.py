"""What ``scifact_retrieval.py`` prints and writes: the table of modes beside the published
figures, the product's fusion with one setting changed at a time, the best variants, and
the results file (variants as one line each, so two runs diff readably).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fusion_variants import one_factor, variant_of

PUBLISHED = {"BM25 (BEIR paper)": 0.665, "all-MiniLM-L6-v2": 0.645, "bge-small-en-v1.5": 0.713}
TARGET = 0.69


def rounded(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    return round(obj, 4) if isinstance(obj, float) else obj


def as_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Variants as columns + rows: the same figures at a quarter of the size."""
    columns = ["name", "tune_ndcg@10", "test_ndcg@10", "test_recall@100", "test_mrr@10",
               "p50_ms_retrieval_at_depth"]
    return {
        "columns": columns,
        "rows": [[r["name"], r["tune_ndcg@10"], r["test"]["ndcg@10"], r["test"]["recall@100"],
                  r["test"]["mrr@10"], r["p50_ms_retrieval_at_depth"]] for r in rows],
    }


def dump(report: dict[str, Any]) -> str:
    """Indented JSON with one line per variant, so a diff of two runs stays readable."""
    rows = report["variants"]["rows"]
    text = json.dumps({**report, "variants": {**report["variants"], "rows": "@ROWS@"}}, indent=1)
    lines = ",\n  ".join(json.dumps(r) for r in rows)
    return text.replace('"@ROWS@"', f"[\n  {lines}\n  ]" if rows else "[]") + "\n"


def print_tables(
    results: dict[str, Any], index_info: dict[str, Any], analysis: dict[str, Any]
) -> None:
    best, variants, replicas = analysis["best"], analysis["variants"], analysis["replicas"]
    last, now = index_info["last_build"], index_info["this_run"]
    print(f"\nindex: {now['documents']} docs, {now['chunks']} chunks; "
          f"this run {now['seconds']:.1f} s; "
          f"last build: {last.get('chunks_built', '?')} chunks in {last['seconds']:.0f} s")
    print(f"\n{'mode':<34} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'docs/q':>7} {'p50 ms':>7}")
    table = list(results.items())
    if best:
        table.append((f"best: {best['name']}", {**best["test"],
                                                "p50_ms": best["p50_ms_retrieval_at_depth"]}))
    for name, r in table:
        print(f"{name:<34} {r['ndcg@10']:>8.4f} {r['recall@100']:>7.4f} {r['mrr@10']:>7.4f} "
              f"{r['docs_per_query']:>7.1f} {r['p50_ms']:>7.1f}")
    if best and "test_vs_product" in best:
        g = best["test_vs_product"]
        print(f"best vs {g['mode']}, per-query nDCG@10: {g['mean_diff']:+.4f} "
              f"(95% CI {g['ci95'][0]:+.4f}..{g['ci95'][1]:+.4f}), "
              f"better/same/worse {'/'.join(map(str, g['better/same/worse']))}")
    print("published nDCG@10: " + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
          + f"; target hybrid >= {TARGET}")
    for rep in replicas:
        print(f"replay of {rep['mode']} as {rep['variant']}: nDCG@10 {rep['test']['ndcg@10']:.4f}, "
              f"same top-10 docs on {rep['same_top10_docs']} queries")
    if variants and replicas:
        by_name = {r["name"]: r for r in variants}
        base = variant_of(replicas[0])
        steps = one_factor(base, sorted({r["depth"] for r in variants}))
        rows = [by_name[v.name()] for v in steps if v.name() in by_name]
        _print_rows(f"one change at a time from {replicas[0]['mode']} (first row):", rows)
    if variants:
        top = sorted(variants, key=lambda r: -r["tune_ndcg@10"])[:15]
        _print_rows("best 15 by tune nDCG@10:", top)
    if analysis["by_depth"]:
        print("\nbest by tune at each depth vs the product's fusion at that depth (test nDCG@10):")
        for row in analysis["by_depth"]:
            g = row["test_gain"]
            print(f"d={row['depth']:<5} {row['product']:<27} {row['product_test_ndcg@10']:.4f}  "
                  f"{row['best']:<27} {row['best_test_ndcg@10']:.4f}  {g['mean_diff']:+.4f} "
                  f"(95% CI {g['ci95'][0]:+.4f}..{g['ci95'][1]:+.4f})")


def _print_rows(title: str, rows: Sequence[dict[str, Any]]) -> None:
    print(f"\n{title}")
    head = f"{'variant':<34} {'tune':>7} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7}"
    print(f"{head} {'p50 ms':>7}")
    for r in rows:
        t = r["test"]
        print(f"{r['name']:<34} {r['tune_ndcg@10']:>7.4f} {t['ndcg@10']:>8.4f} "
              f"{t['recall@100']:>7.4f} {t['mrr@10']:>7.4f} "
              f"{r['p50_ms_retrieval_at_depth']:>7.1f}")
