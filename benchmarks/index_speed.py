"""Index speed: our pipeline (index.build) against a plain LlamaIndex + Chroma pipeline.

Both pipelines index the 48 SQuAD v1.1 dev articles (~1.6M characters) with the
same bundled ONNX model, so the difference is the pipeline: chunking, batching,
stores. Each pipeline runs in its own child process (``--run ours|plain``) so
that its peak RSS is its own and neither inherits the other's imports. The
benchmark text is written to a scratch folder outside the repo (or under the
gitignored ``benchmarks/scratch/``); only the figures are written to the results.

    python benchmarks/index_speed.py --squad ../shared/benchmarks/squad/dev-v1.1.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_speed_pipelines import WINDOW, child  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCRATCH_OK = REPO / "benchmarks" / "scratch"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "index_speed.json"
MARKER = ".index_speed-workdir"  # only folders carrying it are ever cleared
PIPELINES = ("ours", "plain")


# ---------------------------------------------------------------- parent


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "article"


def write_corpus(squad: Path, corpus: Path) -> dict[str, int]:
    """One .txt per article: its paragraphs' contexts joined by blank lines."""
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    corpus.mkdir(parents=True)
    names: set[str] = set()
    chars = size = 0
    for article in data:
        name, n = slug(article["title"]), 2
        while name in names:
            name, n = f"{slug(article['title'])}-{n}", n + 1
        names.add(name)
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        with open(corpus / f"{name}.txt", "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        chars += len(text)
        size += len(text.encode("utf-8"))
    return {"articles": len(data), "chars": chars, "bytes": size}


def prepare_workdir(arg: Path | None) -> tuple[Path, bool]:
    """A scratch folder outside the repo (or under benchmarks/scratch/), cleared if ours."""
    if arg is None:
        return Path(tempfile.mkdtemp(prefix="index_speed-")), True
    work = arg.resolve()
    if work.is_relative_to(REPO) and not work.is_relative_to(SCRATCH_OK):
        sys.exit(f"--workdir must be outside the repo or under {SCRATCH_OK}")
    if work.exists() and any(work.iterdir()):
        if not (work / MARKER).exists():
            sys.exit(f"--workdir {work} is not empty and was not made by this script")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).touch()
    return work, False


def run_child(which: str, corpus: Path, store: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run", which,
           "--corpus", str(corpus), "--store", str(store)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"the {which} pipeline failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, text=True, capture_output=True).stdout.strip()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("llama-index-core", "llama-index-vector-stores-chroma", "chromadb",
                "onnxruntime", "tokenizers", "tiktoken"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def table(results: dict[str, dict[str, Any]], chars: int) -> str:
    head = ("pipeline", "seconds", "chars/s", "chunks", "chunks/s", "avg chunk tok",
            "peak RSS MB", "text in window")
    rows = [head]
    for name, r in results.items():
        rows.append((
            name, f"{r['seconds']:.1f}", f"{chars / r['seconds']:,.0f}", str(r["chunks"]),
            f"{r['chunks'] / r['seconds']:.1f}", f"{r['chunk_tokens']['avg_tokens']:.1f}",
            f"{r['peak_rss_mb']:.0f}", f"{100 * r['window_coverage']:.1f}%",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, help="SQuAD v1.1 dev json")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the temp workdir")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per pipeline, alternating; the fastest is reported")
    ap.add_argument("--run", choices=PIPELINES, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        child(args.run, args.corpus, args.store)
        return
    if args.squad is None or not args.squad.is_file():
        ap.error("--squad PATH to dev-v1.1.json is required")

    work, temporary = prepare_workdir(args.workdir)
    try:
        corpus = work / "corpus"
        stats = write_corpus(args.squad, corpus)
        print(f"corpus: {stats['articles']} articles, {stats['chars']:,} chars in {corpus}",
              file=sys.stderr)
        runs: dict[str, list[dict[str, Any]]] = {w: [] for w in PIPELINES}
        for i in range(max(1, args.repeat)):
            for which in PIPELINES:
                print(f"running {which} ({i + 1}/{args.repeat}) …", file=sys.stderr)
                store = work / f"store-{which}"
                shutil.rmtree(store, ignore_errors=True)  # every run starts from nothing
                runs[which].append(run_child(which, corpus, store))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    results = {w: min(rs, key=lambda r: r["seconds"]) for w, rs in runs.items()}
    chars = stats["chars"]
    for w, r in results.items():
        r["all_seconds"] = [x["seconds"] for x in runs[w]]
        # Work the model really did: tokens of its inputs that fit the window.
        seen = r.get("embedded_tokens", r["chunk_tokens"])["tokens_seen"]
        r["model_tokens_per_s"] = seen / r["seconds"]
        r["chars_per_s"] = chars / r["seconds"]
        r["chunks_per_s"] = r["chunks"] / r["seconds"]
    ours, plain = results["ours"], results["plain"]
    ratio = ours["chars_per_s"] / plain["chars_per_s"]
    print(table(results, chars))
    cpu_ratio = plain["cpu_s"] / ours["cpu_s"]
    print(f"\nours/plain chars/s: {ratio:.2f}x (wall); {cpu_ratio:.2f}x per CPU-second "
          f"(ours {ours['cpu_s']:.1f} CPU-s, plain {plain['cpu_s']:.1f} CPU-s)")
    print(f"model tokens embedded per second: ours {ours['model_tokens_per_s']:,.0f}, "
          f"plain {plain['model_tokens_per_s']:,.0f}")
    print(f"ours no-op refresh: {ours['noop_seconds']:.2f}s "
          f"({ours['noop_summary']['unchanged']} unchanged)")
    o = ours["offsets"]
    print(f"ours offsets: {o['checked']} chunks checked (lexical {o['lexical_rows']} + "
          f"chroma {o['chroma_rows']}), {o['mismatches']} mismatches, "
          f"{o['uncovered_chars']} non-space chars left out, {o['overlaps']} overlaps, "
          f"ids agree across manifest/SQLite/Chroma: {o['same_ids']}")
    c = ours["checked_tokens"]
    print(f"ours largest chunk: {c['max_tokens']} model tokens ([CLS]/[SEP] included; window "
          f"{WINDOW}) of the {c['count']} chunks checked; {c['over_window']} over the window")
    print(f"ours chunking alone: {ours['chunking_seconds']:.2f}s for {chars:,} chars "
          f"({100 * ours['chunking_seconds'] / ours['seconds']:.1f}% of the build)")
    print(f"plain offsets: {plain['offsets']['checked']} nodes checked, "
          f"{plain['offsets']['mismatches']} mismatches")
    for name, key in (("ours", "chunk_tokens"), ("plain", "chunk_tokens"),
                      ("plain", "embedded_tokens")):
        t = results[name][key]
        what = "embedded inputs (with metadata)" if key == "embedded_tokens" else "chunks"
        print(f"{name} {what} over the {WINDOW}-token window (silently truncated): "
              f"{t['over_window']}/{t['count']}, max {t['max_tokens']} tokens, "
              f"{t['tokens_cut']:,} tokens never seen by the model")
    nets = sum(len(r["network_attempts"]) for r in results.values())
    print(f"network connection attempts: {nets}")
    loads = [x for r in results.values() for x in (r["load_avg_before"], r["load_avg_after"])]
    if max(loads) > (os.cpu_count() or 1):
        print(f"WARNING: load average reached {max(loads)} on {os.cpu_count()} cores: "
              "other work shared the CPU, wall times are inflated")

    out = {
        "benchmark": "index_speed",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted edits to the measured code make git_commit an approximation.
        "git_dirty_paths": _git("status", "--porcelain", "index", "assistant").splitlines(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "corpus": {"source": args.squad.name, **stats},
        "window_tokens": WINDOW,
        "ratio_chars_per_s_ours_over_plain": ratio,
        "ratio_chars_per_cpu_s_ours_over_plain": cpu_ratio,
        "pipelines": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
