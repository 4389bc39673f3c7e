"""`assistant ask` and `assistant eval` as a person runs them: fresh processes, real index."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import flags, read_file_text, seeded_copy


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A corpus copy and a store folder shared by this module's commands."""
    return seeded_copy(tmp_path_factory, "cli-ask")


def test_ask_json_prints_the_contract(run_cli: Any, seeded: dict[str, str]) -> None:
    proc = run_cli("ask", "Which company will supply 5G technology to Russia?", "--json",
                   *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"question", "answer", "abstained", "confidence", "citations",
                        "passages", "timings_ms", "generator", "fallback", "checks",
                        "searched", "note", "short_answer"}
    assert out["generator"] == "extractive" and out["fallback"] is False
    assert out["checks"] == [] and out["searched"] == out["question"]
    assert not out["abstained"] and "Huawei" in out["answer"]
    assert 0.5 <= out["confidence"] <= 1.0  # a plain question its text answers
    root = Path(seeded["--corpus"])
    for c in out["citations"]:
        assert set(c) == {"n", "source", "start", "end", "text", "score"}
        assert c["text"] == read_file_text(root / c["source"])[c["start"] : c["end"]]
    for p in out["passages"]:
        assert set(p) == {"source", "start", "end", "text", "score"}
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", out["answer"])}
    assert markers == {c["n"] for c in out["citations"]}
    assert len(out["passages"]) == 6  # the default k
    short = out["short_answer"]  # the answer phrase, or null when the reader is not sure
    if short is not None:
        assert set(short) == {"text", "source", "start", "end", "score"}
        assert short["text"] == read_file_text(root / short["source"])[short["start"]:short["end"]]
        assert " ".join(short["text"].split()) in out["answer"]


def test_ask_prints_answer_then_sources(run_cli: Any, seeded: dict[str, str]) -> None:
    proc = run_cli("ask", "Where did Putin and Xi meet?", "--k", "3", *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    answer, _, sources = proc.stdout.partition("Sources:")
    assert "Moscow" in answer and "[1]" in answer
    assert re.search(r"^(Low confidence \(\d+%\)|Confidence \d+%)", answer, re.MULTILINE)
    assert re.search(r"\[1\] 002_\S+\.txt  chars \d+-\d+", sources)


def test_ask_with_history_answers_the_follow_up(run_cli: Any, seeded: dict[str, str]) -> None:
    proc = run_cli("ask", "Which operator is it partnering with?", "--json",
                   "--history", "Which company will supply 5G technology to Russia?",
                   *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    assert "MTS" in json.loads(proc.stdout)["answer"]


def test_abstention_on_the_command_line(run_cli: Any, seeded: dict[str, str]) -> None:
    proc = run_cli("ask", "What is the capital of Peru?", *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    assert "do not answer" in proc.stdout
    assert "Nearest passages (not evidence for an answer):" in proc.stdout
    assert "Sources:" not in proc.stdout


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "The question is empty."), ("x" * 100_000, "characters long"),
     ("   ", "The question is empty.")],
)
def test_bad_questions_exit_2_without_traceback(
    run_cli: Any, seeded: dict[str, str], question: str, message: str
) -> None:
    proc = run_cli("ask", question, *flags(seeded))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_terminal_escapes_in_a_question_never_reach_the_terminal(
    run_cli: Any, seeded: dict[str, str]
) -> None:
    proc = run_cli("ask", "Who supplies 5G\x1b]0;pwned\x07 to Russia\x1b[2J?", *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout


def test_eval_scores_a_file_of_questions(
    run_cli: Any, seeded: dict[str, str], tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "a", "question": "Which company will supply 5G technology to Russia?",
         "answers": [["huawei"]]},
        {"id": "b", "question": "Which operator is it partnering with?",
         "history": ["Which company will supply 5G technology to Russia?"], "answers": [["mts"]]},
        {"id": "c", "question": "How do I bake sourdough bread?", "answers": []},
        {"id": "d", "question": "Where did Putin and Xi meet?"},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "results.jsonl"
    proc = run_cli("eval", str(questions), "--out", str(out), *flags(seeded))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"answer match\s+2/2", proc.stdout)
    assert re.search(r"abstained, right\s+1/1", proc.stdout)
    assert re.search(r"citations exact\s+(\d+)/\1\b", proc.stdout)
    assert "latency p50 / p95" in proc.stdout
    # The reliability table counts the answers given (a, b), by confidence band.
    bands = re.findall(r"^\s+(\d\.\d-\d\.\d)\s+(\d+) answers", proc.stdout, re.MULTILINE)
    assert sum(int(n) for _b, n in bands) == 2, proc.stdout
    assert re.search(r"calibration error\s+\d\.\d{3}", proc.stdout)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c", "d"]
    assert all({"answer", "citations", "passages", "abstained", "confidence"} <= set(x)
               for x in lines)
    assert all(0.0 <= x["confidence"] <= 1.0 for x in lines)


def test_eval_rejects_a_broken_file_by_line(
    run_cli: Any, seeded: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "ok?"}\n{not json\n')
    proc = run_cli("eval", str(bad), *flags(seeded))
    assert proc.returncode != 0
    assert "bad.jsonl:2" in proc.stderr and "Traceback" not in proc.stderr


def test_ask_on_a_missing_corpus_names_it(run_cli: Any, tmp_path: Path) -> None:
    proc = run_cli("ask", "anything?", "--corpus", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr
