"""How fast the chat starts: time to first paint and time to ready, in a real terminal.

Runs ``python -m assistant`` in a pseudo-terminal (so Textual drives a real
terminal, not the headless test driver) with ``ASSISTANT_TUI_TIMINGS=FILE``:
the app appends ``{"event": "paint"|"ready", "t": epoch}`` to FILE and quits as
soon as it is ready. Times count from just before the process is started, so
they include Python's own start-up and every import, as a person would feel them.

"cold" starts with no index (it is built, with progress, while the screen is up);
"warm" starts with the index already built.

    python benchmarks/tui_startup.py [--runs 5] [--corpus seeds] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_once(corpus: Path, store: Path, home: Path, timeout: float = 180) -> dict[str, float]:
    """One start in a 120x36 pseudo-terminal; seconds from spawn to each event."""
    timings = home / "timings.jsonl"
    timings.unlink(missing_ok=True)
    env = dict(os.environ, ASSISTANT_HOME=str(home), ASSISTANT_TUI_TIMINGS=str(timings),
               TERM="xterm-256color", PYTHONPATH=str(ROOT))
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "--corpus", str(corpus), "--store", str(store)],
        stdin=child, stdout=child, stderr=child, env=env, cwd=home, close_fds=True,
    )
    os.close(child)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.05)
            if ready:
                try:
                    os.read(main, 65536)  # the screen; a terminal must be read to keep going
                except OSError:  # the app let go of the terminal: it is exiting
                    break
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError("the chat did not get ready in time") from None
    finally:
        os.close(main)
        proc.wait()
    events = {}
    for line in timings.read_text().splitlines():
        record = json.loads(line)
        events.setdefault(record["event"], record["t"] - t0)
    if "ready" not in events:
        raise RuntimeError(f"no 'ready' event (exit code {proc.returncode}): {events}")
    return events


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="warm starts to time (cold: 2)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "tui_startup.json")
    args = parser.parse_args()

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for kind, runs in (("cold", max(1, min(2, args.runs))), ("warm", args.runs)):
            paints, readies = [], []
            for i in range(runs):
                home = base / f"{kind}-{i}"
                home.mkdir()
                store = base / "store-warm" if kind == "warm" else home / "store"
                if kind == "warm" and i == 0 and not store.exists():
                    start_once(args.corpus, store, home)  # build it once, untimed
                events = start_once(args.corpus, store, home)
                paints.append(events["paint"])
                readies.append(events["ready"])
                shutil.rmtree(home / "logs", ignore_errors=True)
            rows.append({
                "start": kind, "runs": runs,
                "first_paint_s": round(statistics.median(paints), 3),
                "ready_s": round(statistics.median(readies), 3),
                "first_paint_max_s": round(max(paints), 3),
                "ready_max_s": round(max(readies), 3),
            })

    print(f"{'start':<6} {'runs':>4} {'first paint (median)':>21} {'ready (median)':>15} "
          f"{'paint max':>10} {'ready max':>10}")
    for r in rows:
        print(f"{r['start']:<6} {r['runs']:>4} {r['first_paint_s']:>20.3f}s "
              f"{r['ready_s']:>14.3f}s {r['first_paint_max_s']:>9.3f}s {r['ready_max_s']:>9.3f}s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "corpus": _shown(args.corpus), "python": sys.version.split()[0],
        "cpus": os.cpu_count(), "results": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
