"""A one-line progress bar on stderr, drawn only where a person is watching (a TTY)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Callable as ``bar(done, total)``; redraws at most ten times a second."""

    def __init__(self, label: str = "Indexing", stream: TextIO | None = None,
                 delay: float = 0.5) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._t0 = time.monotonic()
        self._last = 0.0
        self._delay = delay  # short runs finish before a bar would flash
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if now - self._t0 < self._delay and done < total:
            return
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        width = 30
        filled = int(width * done / total)
        rate = done / max(now - self._t0, 1e-6)
        eta = (total - done) / rate if rate > 0 else 0.0
        line = (f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{done}/{total} chunks  {rate:5.1f}/s  ETA {eta:4.0f}s")
        self.stream.write(line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
