"""The code keeps to the project's lint rules (pyproject.toml, [tool.ruff]): checked in the
same run as the tests, with the version the test extra pins, so a change that breaks them
does not land."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_code_passes_the_projects_lint_rules() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "assistant", "index", "benchmarks",
         "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
