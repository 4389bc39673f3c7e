"""The trained question encoder: shipped with its card, checked before loading, used only
where it fits, and trainable from a clean checkout (the training script's smoke mode)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, SEEDS, subprocess_env
from training_data import alter_shipped, assert_shipped, smoke_train

from assistant import cli, qencoder, retrieve
from assistant.errors import ModelError
from index.embed import OnnxEmbedder
from index.load import file_sha256

pytestmark = pytest.mark.slow


def test_model_is_package_data_with_card_licence_and_notice() -> None:
    assert_shipped(qencoder, "train_qencoder.py")


def test_loads_offline_without_torch_and_moves_a_question_towards_its_answer() -> None:
    code = (
        "import sys, numpy as np\n"
        "from index.embed import OnnxEmbedder\n"
        "from assistant.qencoder import load_question_encoder\n"
        "base = OnnxEmbedder().load()\n"
        "enc = load_question_encoder(base)\n"
        "q = 'Who makes the equipment for the new mobile network?'\n"
        "s = base.embed_documents(['Huawei will supply the 5G gear, the operator said.',\n"
        "                          'The summit ended with a joint statement.'])\n"
        "tuned, plain = enc.embed_query(q), base.embed_query(q)\n"
        "print(round(float(np.linalg.norm(tuned)), 4), tuned.shape[0],\n"
        "      float(s[0] @ tuned - s[1] @ tuned), float(s[0] @ plain - s[1] @ plain),\n"
        "      'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(HF_HUB_OFFLINE="1"),
                         capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr
    norm, dim, tuned_gap, plain_gap, torch_loaded = out.stdout.split()
    assert (float(norm), int(dim), torch_loaded) == (1.0, 384, "False")
    assert float(tuned_gap) > 0  # the answering sentence is the nearer one
    assert float(tuned_gap) != pytest.approx(float(plain_gap), abs=1e-4)  # not the base model


def test_the_service_weighs_sentences_with_the_tuned_vector(
        tmp_path_factory: pytest.TempPathFactory, embedder: object) -> None:
    from conftest import open_seeded, seeded_copy

    svc = open_seeded(seeded_copy(tmp_path_factory, "qe-service"), embedder)
    try:
        q = "Who makes the equipment for Russia's new mobile network?"
        retriever = svc._retriever  # noqa: SLF001 - what the answer is built from
        tuned = retriever.question_encoder.embed_query(q)
        got = retriever.retrieve(q, 6)
        assert np.allclose(got.query_vec, tuned)
        assert not np.allclose(got.query_vec, embedder.embed_query(q), atol=1e-3)
        # Each candidate's sentence similarities are the tuned vector's, and the passages are
        # re-ordered by fused score + TUNED_RERANK_WEIGHT x the best of them
        best = got.candidates[0]
        assert best.sentence_sims is not None and len(best.sentence_sims)
        for c in got.candidates:
            assert c.score == pytest.approx(
                c.fused + retrieve.TUNED_RERANK_WEIGHT * float(c.sentence_sims.max()))
        assert [c.score for c in got.candidates] == sorted(
            (c.score for c in got.candidates), reverse=True)
        answer = svc.ask(q)
        assert not answer.abstained and "Huawei" in answer.text
        # Without the question encoder (another embedding model's index), the setting tuned
        # for the index model's own vector: its weight, over fewer passages
        retriever.question_encoder = None
        plain = retriever.retrieve(q, 6)
        for c in plain.candidates:
            assert c.score == pytest.approx(
                c.fused + retrieve.RERANK_WEIGHT * float(c.sentence_sims.max()))
        assert retrieve.RERANK_WEIGHT != retrieve.TUNED_RERANK_WEIGHT
        assert retrieve.RERANK_POOL < retrieve.TUNED_RERANK_POOL
    finally:
        svc.close()


def test_another_embedding_model_gets_no_question_encoder(tmp_path: Path) -> None:
    other = OnnxEmbedder(tmp_path / "m.onnx", tmp_path / "t.json", model_id="e5-small@abc")
    assert qencoder.load_question_encoder(other) is None


def test_altered_model_is_refused_with_exit_6(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        seeds_index: Path) -> None:
    alter_shipped(qencoder, tmp_path / "qe")
    monkeypatch.setattr(qencoder, "MODEL_DIR", tmp_path / "qe")
    with pytest.raises(ModelError) as info:
        qencoder.load_question_encoder(OnnxEmbedder())
    assert "checksum" in info.value.message and info.value.exit_code == 6
    code = cli.main(["ask", "Which company will supply 5G technology to Russia?",
                     "--corpus", str(SEEDS), "--store", str(seeds_index)])
    err = capsys.readouterr().err
    assert code == 6 and "question encoder" in err and "Traceback" not in err


def test_training_script_smoke_run_exports_a_model_the_product_can_load(tmp_path: Path) -> None:
    rerun = smoke_train("train_qencoder.py", tmp_path, "--drop-shared", "0.5")
    out = tmp_path / "out"
    model = out / qencoder.MODEL_NAME
    card = (out / qencoder.CARD_NAME).read_text()
    assert file_sha256(model) in card
    assert '"drop_shared": 0.5' in card and "--drop-shared 0.5" in card
    enc = OnnxEmbedder(model, OnnxEmbedder().load()._tokenizer_path, model_id="smoke").load()
    v = enc.embed_query("What about the new network?")
    assert v.shape == (384,) and abs(float(np.linalg.norm(v)) - 1.0) < 1e-3
    # Resumable: a second run finds its checkpoint and does not start over.
    again = rerun()
    assert again.returncode == 0 and "resumed at step 4/4" in again.stdout
    # Its prepared data is not reused by a run that would prepare other data.
    other = rerun("--squad-occurrence", "first")
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert "prep.json was made by a run with other options: squad_occurrence" in other.stderr


def test_a_question_asked_without_its_sentences_words_keeps_the_rest() -> None:
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    import random

    from qencoder_prep import drop_shared

    q = "When did the Normans conquer England, and why?"
    seen = {drop_shared(q, ["normans", "england", "conquer"], random.Random(i)) for i in range(40)}
    assert q in seen and len(seen) > 3  # each word goes at even odds, all kept sometimes
    for asked in seen:
        assert asked.startswith("When did the") and asked.endswith("and why?")
    # Never a question with no content word left: then it is asked as it was.
    assert drop_shared("Who wrote Hamlet?", ["wrote", "hamlet"], random.Random(0)) in {
        "Who wrote Hamlet?", "Who Hamlet?", "Who wrote"}


def test_a_squad_answer_is_placed_in_the_sentence_that_answers_its_question() -> None:
    # The SQuAD train file puts every answer at its first occurrence; the training scripts
    # place it where the question's words are, and never inside another word.
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    from qencoder_prep import answer_place

    ctx = ("The reserve is home to around 280 giant pandas. In Mianyang, 1,700 people were "
           "buried. By May 20, 2 pandas at the reserve were found injured.")
    q = "How many pandas at the reserve were found injured?"
    first = ctx.index("2")  # inside "280"
    assert answer_place(ctx, q, "2", first) == ctx.index("2 pandas at") != first
    # One whole-word occurrence: that one, whatever the file said.
    assert answer_place(ctx, "How many were buried?", "1,700", 0) == ctx.index("1,700")
    # None stands as a whole word: the file's place is kept.
    assert answer_place("US$75 billion in damage", "How much?", "$75 billion", 2) == 2
    # A tie in shared words: the earliest occurrence.
    two = "Paris is big. Paris is old."
    assert answer_place(two, "Which city?", "Paris", 0) == 0
