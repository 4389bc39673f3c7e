"""What the training scripts share (``train_qencoder.py``, ``train_reader.py``): their
common options and smoke settings, the check of the data folder, the learning-rate
schedule, checkpoints that let a stopped run resume, and the model card's data table.
Training only: never imported at run time."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from qencoder_prep import NQ_FILE, SQUAD_FILE, placement_plan

from index.load import file_sha256


def add_common_args(ap: argparse.ArgumentParser, *, workdir: Path, out: Path, squad_n: int,
                    lr: float, every: int, valid_n: int, seed: int) -> None:
    ap.add_argument("--train", type=Path, required=True, help="the folder of training data")
    ap.add_argument("--workdir", type=Path, default=workdir)
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--squad-n", type=int, default=squad_n)
    ap.add_argument("--nq-repeat", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--every", type=int, default=every, help="steps between checkpoints")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--valid-n", type=int, default=valid_n)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--squad-occurrence", choices=("question", "first"), default="question",
                    help="where a SQuAD answer that occurs more than once is: in the sentence "
                         "sharing most words with the question (default), or at its first "
                         "occurrence, as the file places it")
    ap.add_argument("--smoke", action="store_true",
                    help="a few steps on a tiny sample, export included (for CI)")


def settle(args: argparse.Namespace, shipped: Path, smoke_valid_n: int) -> None:
    """Smoke settings (a smoke run never replaces the shipped model), the data folder
    checked, the work folder made."""
    refuse_emulated_bf16(args)
    if args.smoke:
        args.max_steps, args.every, args.valid_n, args.batch = 4, 2, smoke_valid_n, 8
        if args.out == shipped:
            args.out = args.workdir / "smoke-out"
    for name in (SQUAD_FILE, NQ_FILE):
        if not (args.train / name).is_file():
            raise SystemExit(f"No {name} in {args.train}: pass --train DIR (../shared/train)")
    args.workdir.mkdir(parents=True, exist_ok=True)


def bf16_units(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX);
    None when its flags cannot be read (not Linux)."""
    try:
        flags = set(cpuinfo.read_text(errors="replace").split())
    except OSError:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def refuse_emulated_bf16(args: argparse.Namespace, cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    """Stop a run asked for in bfloat16 on a CPU that would emulate it: on an AVX2-only
    machine each step took 10x as long as in fp32 (train_speed.py measures both), so
    the shipped model's two-hour command would run for days. A smoke run goes on."""
    if getattr(args, "bf16", False) and not args.smoke and bf16_units(cpuinfo) is False:
        raise SystemExit(
            "--bf16: this CPU has no bfloat16 matrix units (AVX512-BF16 or AMX), so bfloat16 "
            "would be emulated, about 10x slower than fp32. Leave out --bf16 (fp32 gives a "
            "slightly different model; python benchmarks/train_speed.py measures both here).")


def linear_schedule(opt: Any, steps: int) -> Any:
    """Linear warm-up over the first tenth of ``steps``, then linear decay to 0."""
    import torch

    warm = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))


def pass_order(rows: list[dict], nq_repeat: int) -> list[int]:
    """One pass over ``rows`` as indices, unshuffled: each NQ row ``nq_repeat`` times (NQ
    is the smaller set and the one most like real questions)."""
    return [i for i, r in enumerate(rows) for _ in range(nq_repeat if r["set"] == "nq" else 1)]


def run_plan(args: argparse.Namespace, steps: int) -> dict[str, Any]:
    """The options a checkpoint's schedule and optimiser state depend on."""
    return {"steps": steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
            "nq_repeat": args.nq_repeat, "squad_n": args.squad_n,
            "epochs": args.epochs,
            **placement_plan(args),
            **({"drop_shared": args.drop_shared} if getattr(args, "drop_shared", 0) else {})}


def refuse_other_plan(path: Path, made: dict[str, Any], plan: dict[str, Any]) -> None:
    """Stop (SystemExit, saying which options differ) when the cached ``path`` was made
    with options other than this run's ``plan``."""
    if made == plan:
        return
    differ = ", ".join(f"{k} {made.get(k)} (now {plan.get(k)})"
                       for k in dict.fromkeys([*plan, *made]) if made.get(k) != plan.get(k))
    raise SystemExit(f"{path} was made by a run with other options: {differ}. "
                     "Run with those options to resume it, or delete it (or pass "
                     "another --workdir) to start again.")


class Checkpoint:
    """Model, optimiser and schedule state with the step, seconds and log, written
    atomically (a run stopped mid-write keeps the previous checkpoint). ``plan`` (from
    ``run_plan``) is kept with it: a run with other options does not resume it."""

    def __init__(self, path: Path, plan: dict[str, Any]) -> None:
        self.path = path
        self.plan = plan

    def resume(self, model: Any, opt: Any, sched: Any) -> tuple[int, float, dict] | None:
        import torch

        if not self.path.exists():
            return None
        state = torch.load(self.path, weights_only=False)
        refuse_other_plan(self.path, state.get("plan", self.plan), self.plan)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        return state["step"], state["seconds"], state["log"]

    def save(self, model: Any, opt: Any, sched: Any, step: int, seconds: float,
             log: dict) -> None:
        import torch

        tmp = self.path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "step": step, "seconds": seconds,
                    "log": log, "plan": self.plan}, tmp)
        tmp.replace(self.path)


def data_table(train: Path) -> str:
    """The model card's rows for the training files: what, licence, sha256."""
    return "\n".join(
        f"| `{name}` | {what} | {licence} | `{file_sha256(train / name)}` |"
        for name, what, licence in (
            (SQUAD_FILE, "SQuAD v1.1 train (Rajpurkar et al. 2016), from "
             "rajpurkar/SQuAD-explorer@0b3c8e8", "CC BY-SA 4.0"),
            (NQ_FILE, "Natural Questions train questions (Kwiatkowski et al. 2019) with QED "
             "annotations (Lamm et al. 2020), google-research-datasets/QED@71e19e0",
             "CC BY-SA 3.0 (Wikipedia text)"),
        ))
