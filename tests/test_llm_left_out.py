"""Issue 19 item 2 with the real bundled model (SmolLM2, in-process: ``ask --llm local``):
the question the issue was found with, what the check says about each sentence it
leaves out, and where a left-out sentence is shown (after the answer, never as it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from assistant.citecheck import holds
from assistant.cli import format_answer
from assistant.conversation import answer_from_json
from tests.conftest import flags, seeded_copy
from tests.llm_servers import assert_answer_contract

pytestmark = pytest.mark.slow

FIVE_G = "Which company will build Russia's 5G network?"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return seeded_copy(tmp_path_factory, "llm-left-out")


def test_the_local_models_left_out_sentences_say_why(run_cli: Any,
                                                      seeded: dict[str, str]) -> None:
    proc = run_cli("ask", FIVE_G, "--json", "--llm", "local", *flags(seeded), timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert_answer_contract(out, Path(seeded["--corpus"]), "local")
    assert out["checks"], "the model wrote something"
    passages = [p["text"] for p in out["passages"]]
    for check in out["checks"]:
        if check["supported"]:
            assert check["reason"] == ""
            continue
        assert check["reason"], check
        named = re.search(r"not found in [^:]*: (.*)$", check["reason"])
        if named:  # every name said to be missing is missing, in every form
            cited = [passages[n - 1] for n in check["citations"]] or passages[:3]
            for name in re.findall(r"'([^']+)'", named.group(1)):
                assert not holds(cited, name), (name, check)
    # The passages say "Chinese" and "Russia's": a sentence is never left out for "China".
    assert not any("'China'" in c["reason"] for c in out["checks"]), out["checks"]
    shown = format_answer(answer_from_json(out))
    if out["fallback"]:
        assert "extractive answerer" in out["note"]
    if any(not c["supported"] for c in out["checks"]):
        # Left-out sentences come last, after the answer and its sources, with why.
        assert shown.index(out["answer"][:40]) < shown.index("Left out of the answer")
        assert shown.index("Sources:") < shown.index("Left out of the answer")
        assert "why: " in shown
