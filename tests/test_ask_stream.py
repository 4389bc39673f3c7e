"""`assistant ask --llm local` on a terminal: the draft streams as it is written, then the
checked answer follows; piped, only the checked answer is printed.

The terminal is a real pseudo-terminal and the model the real bundled one.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEEDS, subprocess_env

pytestmark = pytest.mark.slow
QUESTION = "Which company will supply 5G technology to Russia?"


def run_on_terminal(args: list[str], env: dict[str, str], timeout: float = 240) -> tuple[
        int, list[tuple[float, bytes]]]:
    """Run with stdout on a pty; the exit code and each read with the time it arrived."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdout=follower, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    reads: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    data = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                reads.append((time.monotonic(), data))
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), reads
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()


def test_a_terminal_sees_the_draft_stream_then_the_checked_answer(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "corpus")
    args = [sys.executable, "-m", "assistant", "ask", "--llm", "local", QUESTION,
            "--corpus", str(tmp_path / "corpus"), "--store", str(tmp_path / "store")]
    code, reads = run_on_terminal(args, subprocess_env())
    text = b"".join(d for _t, d in reads).decode("utf-8", "replace").replace("\r\n", "\n")
    assert code == 0, text
    draft, sep, checked = text.partition("Checked answer:")
    assert "Draft (checking follows):" in draft and sep, text
    # The draft came in pieces over time, not in one write at the end.
    started = next(i for i, (_t, d) in enumerate(reads) if b"Draft (checking" in d)
    pieces = [t for t, d in reads[started:] if b"Checked answer:" not in d]
    assert len(pieces) >= 3 and pieces[-1] - pieces[0] > 0.05
    assert "Huawei" in checked
    assert re.search(r"^\s+\[\d+\] 002_\S+\.txt  chars \d+-\d+", checked, re.MULTILINE)


def test_piped_output_is_the_checked_answer_alone(tmp_path: Path, run_cli: Any) -> None:
    shutil.copytree(SEEDS, tmp_path / "corpus")
    proc = run_cli("ask", "--llm", "local", QUESTION, "--corpus", str(tmp_path / "corpus"),
                   "--store", str(tmp_path / "store"), timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "Draft" not in proc.stdout and "Checked answer" not in proc.stdout
    assert "Huawei" in proc.stdout and "Sources:" in proc.stdout
