"""``assistant index`` as a user runs it (a fresh process), and what the CLI imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SUMMARY_KEYS = {"added", "updated", "removed", "unchanged", "documents", "chunks", "seconds"}
HEAVY = ("chromadb", "llama_index", "textual")


def chroma_counts(store: Path) -> dict[str, int]:
    """Vectors per collection, read with chromadb itself (this process never opened the store)."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=str(store / "chroma"), settings=Settings(anonymized_telemetry=False, allow_reset=False)
    )
    return {c.name: client.get_collection(c.name).count() for c in client.list_collections()}


def parse_summary(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, f"expected one line of JSON on stdout, got {stdout!r}"
    data = json.loads(stdout)
    assert isinstance(data, dict)
    assert set(data) == SUMMARY_KEYS
    for key in SUMMARY_KEYS - {"seconds"}:
        assert type(data[key]) is int and data[key] >= 0, (key, data[key])
    assert isinstance(data["seconds"], float) and data["seconds"] >= 0
    return data


def assert_clean_error(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert len(lines) <= 2, f"expected an error line and at most a hint line: {stderr!r}"
    for needle in needles:
        assert needle in stderr, (needle, stderr)


def test_index_json_prints_exactly_the_summary_object(
    corpus: Path, assistant_home: Path, run_cli
) -> None:
    (corpus / "scan.pdf").write_bytes(b"%PDF-1.4\n")  # skipped: reported on stderr only

    first = run_cli("index", "--corpus", str(corpus), "--json")
    assert first.returncode == 0, first.stderr
    summary = parse_summary(first.stdout)
    assert (summary["added"], summary["updated"], summary["removed"], summary["unchanged"]) == (
        3, 0, 0, 0)
    assert summary["documents"] == 3
    assert "scan.pdf" in first.stderr and "Traceback" not in first.stderr

    second = run_cli("index", "--corpus", str(corpus), "--json")
    assert second.returncode == 0, second.stderr
    again = parse_summary(second.stdout)
    assert (again["added"], again["updated"], again["removed"], again["unchanged"]) == (0, 0, 0, 3)
    assert again["chunks"] == summary["chunks"]

    # Without --store the index goes to the per-user data folder, i.e. ASSISTANT_HOME.
    stores = [p.parent for p in assistant_home.glob("stores/*/manifest.json")]
    assert len(stores) == 1, list(assistant_home.rglob("*"))[:20]
    manifest = json.loads((stores[0] / "manifest.json").read_text())
    counts = chroma_counts(stores[0])
    assert counts == {manifest["collection"]: summary["chunks"]}, (
        "'chunks' must be the number of vectors Chroma holds"
    )
    assert summary["chunks"] == sum(len(d["chunks"]) for d in manifest["documents"].values())

    plain = run_cli("index", "--corpus", str(corpus))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.count("\n") == 1 and "3 unchanged" in plain.stdout


def test_missing_corpus_is_a_one_line_error(tmp_path: Path, run_cli) -> None:
    missing = tmp_path / "no such folder"
    proc = run_cli("index", "--corpus", str(missing), "--store", str(tmp_path / "s"), "--json")
    assert proc.returncode == 2
    # With --json the error is also one object on stdout, for the tool reading it.
    assert json.loads(proc.stdout) == {"error": f"No folder at '{missing}'.",
                                       "hint": "Pass an existing folder with --corpus DIR.",
                                       "exit": 2}
    assert_clean_error(proc.stderr, str(missing))
    assert proc.stderr.startswith(f"error: No folder at '{missing}'")


def test_file_as_corpus_is_a_one_line_error(tmp_path: Path, run_cli) -> None:
    f = tmp_path / "article.txt"
    f.write_text("Just one file.\n")
    proc = run_cli("index", "--corpus", str(f), "--store", str(tmp_path / "s"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_clean_error(proc.stderr, str(f), "not a folder")


def test_corrupt_manifest_exits_4_and_rebuild_recovers(
    corpus: Path, store: Path, run_cli
) -> None:
    built = run_cli("index", "--corpus", str(corpus), "--store", str(store), "--json")
    assert built.returncode == 0, built.stderr
    chunks = parse_summary(built.stdout)["chunks"]

    (store / "manifest.json").write_text('{"format": 1, "model_id": ')
    broken = run_cli("index", "--corpus", str(corpus), "--store", str(store), "--json")
    assert broken.returncode == 4
    assert json.loads(broken.stdout)["exit"] == 4
    assert_clean_error(broken.stderr, "manifest.json", "hint:", "--rebuild")

    fixed = run_cli("index", "--corpus", str(corpus), "--store", str(store), "--rebuild", "--json")
    assert fixed.returncode == 0, fixed.stderr
    summary = parse_summary(fixed.stdout)
    assert (summary["added"], summary["documents"], summary["chunks"]) == (3, 3, chunks)
    manifest = json.loads((store / "manifest.json").read_text())
    assert chroma_counts(store) == {manifest["collection"]: chunks}

    manifest["format"] = 99
    (store / "manifest.json").write_text(json.dumps(manifest))
    newer = run_cli("index", "--corpus", str(corpus), "--store", str(store))
    assert newer.returncode == 4
    assert_clean_error(newer.stderr, "newer version")


def test_index_of_an_empty_folder_is_a_clear_error(tmp_path: Path, run_cli) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    proc = run_cli("index", "--corpus", str(empty), "--store", str(tmp_path / "s"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "No readable .txt or .md files" in proc.stderr


# -- imports: a fast --help and a headless core ------------------------------------------

_HELP = """
import contextlib, io, json, sys
from assistant.cli import build_parser, main
build_parser()
codes = []
out = io.StringIO()
with contextlib.redirect_stdout(out):
    for argv in (["--help"], ["index", "--help"], ["ask", "--help"], ["eval", "--help"]):
        try:
            main(argv)
        except SystemExit as exc:
            codes.append(exc.code)
print(json.dumps({"codes": codes, "help": out.getvalue(),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}))
""".replace("HEAVY", repr(HEAVY))


def test_help_loads_neither_chromadb_llama_index_nor_textual(run_python) -> None:
    proc = run_python(_HELP)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["codes"] == [0, 0, 0, 0]
    assert "index" in got["help"] and "--corpus" in got["help"]
    assert got["modules"] == [], f"--help imported {got['modules']}"


def test_help_runs_as_a_module(run_cli) -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "usage: assistant" in proc.stdout
    for command in ("index", "ask", "eval"):
        assert command in proc.stdout


_HEADLESS = """
import json, sys
import index, index.build, index.chunk, index.load, index.embed, index.lexical
import index.manifest, index.store
import assistant, assistant.models, assistant.errors, assistant.config
after_index = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps(after_index))
""".replace("HEAVY", repr(HEAVY))


def test_index_and_models_import_headless(run_python) -> None:
    """harlequin-style: the build side and the data types never pull in Textual (nor,
    at import time, Chroma or LlamaIndex, which cost seconds)."""
    proc = run_python(_HEADLESS)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("module", ["assistant.service", "assistant.answer", "assistant.retrieve"])
def test_answering_core_does_not_import_textual(run_python, module: str) -> None:
    proc = run_python(f"import json, sys, {module}\n"
                      "print(json.dumps([m for m in sys.modules if m.split('.')[0] == 'textual']))")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_console_script_is_installed_next_to_the_interpreter() -> None:
    """pyproject declares the ``assistant`` console script the README documents."""
    import subprocess
    import sys

    import assistant

    exe = Path(sys.executable).with_name("assistant")
    if not exe.exists():
        pytest.skip(f"the project is not installed into {Path(sys.executable).parent}")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert assistant.__version__ in proc.stdout


def test_the_build_side_imports_nothing_of_the_query_side(run_python) -> None:
    """``index`` sits below ``assistant``: the errors and records both use live in
    ``index`` (re-exported by ``assistant.errors`` and ``assistant.models``)."""
    from pathlib import Path

    modules = sorted(p.stem for p in (Path(__file__).parent.parent / "index").glob("*.py")
                     if p.stem != "__init__")
    proc = run_python("import importlib, json, sys\n"
                      f"for m in {modules!r}: importlib.import_module('index.' + m)\n"
                      "print(json.dumps(sorted(m for m in sys.modules "
                      "if m.split('.')[0] == 'assistant')))")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
    from assistant.errors import StoreError as QuerySide
    from index.errors import StoreError

    assert QuerySide is StoreError  # one hierarchy, not two look-alikes
