"""A full disk under the index: a message that says so (not "damaged, --rebuild", never a
traceback), and once there is room again the next run completes the index.

The disk is a real one: a small tmpfs mounted for the test, which needs root (or
CAP_SYS_ADMIN); elsewhere the test is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import assert_consistent, read_store

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Any]:
    """``mount(size)`` mounts a fresh tmpfs of that size at the returned folder."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    point = tmp_path / "disk"
    point.mkdir()
    mounted: list[bool] = []

    def mount(size: str, remount: bool = False) -> Path:
        if mounted and not remount:
            subprocess.run(["umount", str(point)], check=True)
            mounted.clear()
        args = ["-o", f"remount,size={size}"] if remount else ["-t", "tmpfs", "-o", f"size={size}",
                                                                "tmpfs"]
        proc = subprocess.run(["mount", *args, str(point)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(True)
        return point

    yield mount
    if mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_full_disk_is_named_and_the_next_run_completes(small_disk: Any, corpus: Path,
                                                       run_cli: Any) -> None:
    failed = 0
    # Sizes where, with today's libraries, Chroma's SQLite, then the FTS5 index, fills it.
    for size in ("300k", "700k"):
        store = small_disk(size) / "store"
        proc = run_cli("index", "--corpus", str(corpus), "--store", str(store), "--json")
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, 4), proc.stderr
        if proc.returncode == 4:
            failed += 1
            assert json.loads(proc.stdout)["exit"] == 4  # --json: the error as an object
            assert f"The disk holding the index at '{store}' is full." in proc.stderr
            assert "hint: Free some space" in proc.stderr
            assert "--rebuild would need more space" in proc.stderr

    assert failed, "no size filled the disk: pick smaller ones"
    small_disk("20m", remount=True)  # room again
    proc = run_cli("index", "--corpus", str(corpus), "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    assert_consistent(read_store(store), corpus)
