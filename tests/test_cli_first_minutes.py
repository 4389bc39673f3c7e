"""What a newcomer met at the command line (issue 19): errors a tool can read with
``--json``, a folder of files none of which can be read, and a follow-up that says "it".
Each command runs in a fresh process, as a person (or a script) runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import flags, seeded_copy
from tests.llm_servers import closed_port

pytestmark = pytest.mark.slow

FIVE_G = "Which company will build Russia's 5G network?"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return seeded_copy(tmp_path_factory, "cli-first-minutes")


@pytest.fixture
def unreadable(tmp_path: Path) -> Path:
    """A folder whose every file the index must skip, each for its own reason."""
    folder = tmp_path / "unreadable"
    folder.mkdir()
    (folder / "scan.txt").write_bytes(b"\x00\x01binary\x00")
    (folder / "latin1.md").write_bytes("café au lait".encode("latin-1"))
    return folder


def json_error(proc: Any, code: int) -> dict[str, Any]:
    """The one JSON object a failing ``--json`` command prints on stdout."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")  # people still read stderr
    out = json.loads(proc.stdout)
    assert list(out) == ["error", "hint", "exit"] and out["exit"] == code
    assert out["error"] and out["error"] in proc.stderr
    return out


def test_json_errors_are_json_on_stdout(run_cli: Any, seeded: dict[str, str],
                                        tmp_path: Path) -> None:
    out = json_error(run_cli("ask", "   ", "--json", *flags(seeded)), 2)
    assert out["error"] == "The question is empty." and out["hint"]
    out = json_error(run_cli("index", "--json", "--corpus", str(tmp_path / "nowhere")), 2)
    assert str(tmp_path / "nowhere") in out["error"]
    out = json_error(run_cli("eval", str(tmp_path / "none.jsonl"), "--json",
                             *flags(seeded)), 1)
    assert "none.jsonl" in out["error"] and out["hint"] == ""
    out = json_error(run_cli("ask", FIVE_G, "--json", "--llm", "nonsense:x",
                             *flags(seeded)), 2)
    assert "nonsense" in out["error"]
    # Without --json nothing is printed on stdout, as before.
    proc = run_cli("ask", "   ", *flags(seeded))
    assert proc.returncode == 2 and proc.stdout == ""


def test_a_json_error_never_carries_the_key(run_cli: Any, seeded: dict[str, str]) -> None:
    secret = "sk-issue19-do-not-print-0123456789"
    url = f"http://127.0.0.1:{closed_port()}/v1"
    proc = run_cli("ask", FIVE_G, "--json", "--llm", "openai:some-model", "--llm-url", url,
                   *flags(seeded), ASSISTANT_LLM_KEY=secret)
    out = json_error(proc, 7)
    assert url in out["error"] and "openai:some-model" in out["error"]
    assert secret not in proc.stdout + proc.stderr


def test_a_folder_of_unreadable_files_says_why_each_was_skipped(
        run_cli: Any, unreadable: Path, tmp_path: Path) -> None:
    store = ("--store", str(tmp_path / "store"))
    for command in (("ask", FIVE_G), ("index",)):
        proc = run_cli(*command, "--corpus", str(unreadable), *store)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "No readable .txt or .md files" in proc.stderr
        assert "scan.txt: binary file" in proc.stderr
        assert "latin1.md: not valid UTF-8" in proc.stderr
    out = json_error(run_cli("ask", FIVE_G, "--json", "--corpus", str(unreadable), *store), 2)
    assert "scan.txt: binary file" in out["error"] and "latin1.md" in out["error"]


def test_a_follow_up_that_says_it_finds_the_answer(run_cli: Any,
                                                   seeded: dict[str, str]) -> None:
    proc = run_cli("ask", "Which operator is it working with?", "--history", FIVE_G,
                   "--json", *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert not out["abstained"]
    assert "MTS" in out["answer"].split("[1]")[0]  # in the first sentence
    assert out["searched"].startswith("Which operator is it working with? (")
    assert "Russia" in out["searched"] and "5G" in out["searched"]
    # A follow-up about something the documents never say is still refused.
    proc = run_cli("ask", "Who is its chief executive?", "--history",
                   "Which Russian telecoms company has been working with Ericsson?",
                   "--json", *flags(seeded))
    assert json.loads(proc.stdout)["abstained"], proc.stdout
