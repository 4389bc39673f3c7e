"""The reader: the answer phrase marked inside the quoted sentence, at exact offsets; none
for an explanation; the model shipped with its card, checked before loading, and
trainable from a clean checkout (the training script's smoke mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, SEEDS, open_seeded, seeded_copy, subprocess_env
from training_data import alter_shipped, assert_shipped, smoke_train

from assistant import cli, reader
from assistant.asking import draft, short_answer
from assistant.errors import ModelError
from assistant.models import SentenceCheck
from index.embed import default_model_files
from index.load import file_sha256

pytestmark = pytest.mark.slow
SUPPLY_QUESTION = "Which company will supply 5G technology to Russia?"


@pytest.fixture(scope="module")
def seeded_service(tmp_path_factory: pytest.TempPathFactory, embedder: object):
    svc = open_seeded(seeded_copy(tmp_path_factory, "reader"), embedder)
    yield svc
    svc.close()


def test_best_span_keeps_to_whole_words_of_the_sentence_and_a_length_limit() -> None:
    tok = reader.tokenizer(default_model_files()[1])
    enc = reader.encode_pairs(tok, "Who builds it?", ["Huawei builds the network."])[0]
    starts, ends = reader.token_masks(enc)
    words = [enc.tokens[t] for t in range(len(enc.ids)) if starts[t]]
    assert words == ["hua", "builds", "the", "network", "."]  # no question token, no ##piece
    n = len(enc.ids)
    start, end = np.zeros(n), np.zeros(n)
    hua = enc.tokens.index("hua")
    start[hua], end[hua], end[hua + 1] = 5.0, 9.0, 4.0  # "hua" alone would split a word
    span = reader.best_span(start, end, starts, ends)
    assert (span.first, span.last) == (hua, hua + 1)
    assert span.margin == pytest.approx(5.0 + 4.0)  # over [CLS]'s 0 + 0
    text = "Huawei builds the network."
    assert text[enc.offsets[span.first][0]: enc.offsets[span.last][1]] == "Huawei"
    # One token at most: "huawei" (two pieces) cannot be marked, a one-piece word is.
    one = reader.best_span(start, end, starts, ends, max_tokens=1)
    assert one.first == one.last and one.first != hua


def test_a_phrase_never_opens_a_bracket_or_quote_it_does_not_close() -> None:
    assert reader.balanced("15 kilometres") and reader.balanced("Resolution (43/53)")
    assert reader.balanced('the "zip" reflex') and reader.balanced("“wid[en]” choices")
    for cut in ("15 kilometres (9 miles", 'through "ideological struggle', "miles)",
                "a) b (", "“short-lived era", "wid[en"):
        assert not reader.balanced(cut), cut
    tok = reader.tokenizer(default_model_files()[1])
    text = "It lies 15 kilometres (9 miles) from the city."
    enc = reader.encode_pairs(tok, "How far is it?", [text])[0]
    starts, ends = reader.token_masks(enc)
    n = len(enc.ids)
    start, end = np.zeros(n), np.zeros(n)
    at = {text[enc.offsets[t][0]:enc.offsets[t][1]]: t for t in range(n) if starts[t] or ends[t]}
    start[at["15"]], end[at["miles"]], end[at["kilometres"]] = 6.0, 5.0, 4.0

    def phrase(span: reader.Span) -> str:
        return text[enc.offsets[span.first][0]: enc.offsets[span.last][1]]
    assert phrase(reader.best_span(start, end, starts, ends)) == "15 kilometres (9 miles"
    kept = reader.best_span(start, end, starts, ends,
                            keep=lambda a, b: reader.balanced(phrase(reader.Span(a, b, 0))))
    assert phrase(kept) == "15 kilometres" and kept.margin == pytest.approx(10.0)
    # The product's reader keeps to balanced phrases.
    got = reader.load_reader().spans("How far from the city does it lie?", [text])[0]
    assert got is not None and reader.balanced(text[got[0]:got[1]])


def test_a_phrase_is_less_sure_when_it_echoes_the_question_or_has_a_rival() -> None:
    q = "Which company will supply 5G technology to Russia?"

    def p(phrase: str, runner_up: float | None = None, margin: float = 8.0) -> float:
        return reader.probability(reader.phrase_evidence(q, phrase, margin, 0.8, runner_up))

    evidence = reader.phrase_evidence(q, "Huawei", 8.0, 0.8, None)
    assert len(evidence) == len(reader.PHRASE_EVIDENCE) == len(reader.PHRASE_WEIGHTS) - 1
    assert reader.phrase_evidence(q, "5G technology", 8.0, 0.8, None)[2] == 1.0  # all echo
    assert p("5G technology") < p("Huawei")  # says back what was asked
    assert p("Huawei", runner_up=7.5) < p("Huawei")  # another sentence has a phrase too
    assert p("Huawei", runner_up=1.0) > p("Huawei", runner_up=7.5)  # ... far behind it
    assert p("Huawei", margin=2.0) < p("Huawei")
    assert p("the Chinese telecommunications company Huawei") < p("Huawei")


def test_model_is_package_data_with_card_licence_and_notice() -> None:
    assert_shipped(reader, "train_reader.py")


def test_the_phrase_is_marked_at_exact_offsets_in_the_seeds(seeded_service) -> None:
    answer = seeded_service.ask(SUPPLY_QUESTION)
    short = answer.short_answer
    assert not answer.abstained and short is not None
    assert "Huawei" in short.text and len(short.text.split()) <= 4
    text = seeded_service.document_text(short.source)
    assert text[short.start: short.end] == short.text
    # It lies inside a sentence the answer quotes, from a cited passage.
    assert any(c.source == short.source and c.start <= short.start and short.end <= c.end
               for c in answer.citations)
    assert " ".join(short.text.split()) in answer.text
    assert 0.0 < short.score <= 1.0 and short.score >= reader.SHOW_AT
    assert "read" in answer.timings_ms
    assert answer.to_json()["short_answer"] == short.to_json()


def test_an_explanation_gets_no_phrase(seeded_service) -> None:
    answer = seeded_service.ask("Why does Russia want Huawei to build its 5G network?")
    assert answer.short_answer is None
    assert answer.to_json()["short_answer"] is None


def test_a_written_answer_keeps_the_phrase_only_where_a_kept_sentence_says_it(
        seeded_service) -> None:
    parts = seeded_service.parts()
    drafted = draft(parts, parts.extractive, SUPPLY_QUESTION, 6, "")[0]
    found = short_answer(parts.reader, SUPPLY_QUESTION, drafted)
    assert found is not None
    says = SentenceCheck(f"The network will be built by {found.text}.", (1,), True, 0.9)
    other = SentenceCheck(f"The network will be built by {found.text}.", (1,), False, 0.1)
    silent = SentenceCheck("Russia wants a new network.", (1,), True, 0.9)
    written = replace(drafted, generator="local:smollm2")
    assert short_answer(parts.reader, SUPPLY_QUESTION, replace(written, checks=(says,))) == found
    assert short_answer(parts.reader, SUPPLY_QUESTION,
                        replace(written, checks=(silent, other))) is None


def test_ask_json_carries_the_short_answer(seeds_index: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["ask", SUPPLY_QUESTION, "--json", "--corpus", str(SEEDS),
                     "--store", str(seeds_index)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    short = out["short_answer"]
    assert set(short) == {"text", "source", "start", "end", "score"}
    body = (SEEDS / short["source"]).read_text(encoding="utf-8")
    assert body[short["start"]: short["end"]] == short["text"]


def test_loads_offline_without_torch() -> None:
    code = (
        "import sys\n"
        "from assistant.reader import load_reader\n"
        "r = load_reader()\n"
        "text = 'Huawei will build the 5G network, the operator said.'\n"
        "hit = r.spans('Who will build the network?', [text])[0]\n"
        "print(text[hit[0]:hit[1]], 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(HF_HUB_OFFLINE="1"),
                         capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Huawei", "False"]


def test_altered_model_is_refused_with_exit_6(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        seeds_index: Path) -> None:
    alter_shipped(reader, tmp_path / "reader")
    monkeypatch.setattr(reader, "MODEL_DIR", tmp_path / "reader")
    with pytest.raises(ModelError) as info:
        reader.load_reader()
    assert "checksum" in info.value.message and info.value.exit_code == 6
    code = cli.main(["ask", SUPPLY_QUESTION, "--corpus", str(SEEDS), "--store", str(seeds_index)])
    err = capsys.readouterr().err
    assert code == 6 and "reader" in err and "Traceback" not in err


def test_training_script_smoke_run_exports_a_model_the_product_can_load(tmp_path: Path) -> None:
    # the shipped model's way: bf16 matrix products, two passes
    rerun = smoke_train("train_reader.py", tmp_path, "--bf16", "--epochs", "2")
    out = tmp_path / "out"
    model = out / reader.MODEL_NAME
    card = (out / reader.CARD_NAME).read_text()
    assert file_sha256(model) in card and '"bf16": true' in card and '"epochs": 2' in card
    # SQuAD answers placed by the question (qencoder_prep.answer_place), and the card says so
    assert '"squad_occurrence": "question"' in card and "holds more than once" in card
    smoke = reader.Reader(model, default_model_files()[1])
    hits = smoke.spans("What about the network?", ["The new network opens in May.", "No."])
    assert len(hits) == 2 and all(h is None or 0 <= h[0] < h[1] for h in hits)
    again = rerun()
    assert again.returncode == 0 and "resumed at step 4/4" in again.stdout
    # a checkpoint made with other options is not resumed (its schedule would be wrong)
    other = rerun("--lr", "1e-3")
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert "checkpoint.pt was made by a run with other options: lr" in other.stderr
    # the decision output (benchmarks/reader_decision.py), appended to that export without
    # touching the span head; a rerun on its own output replaces what it added
    span_only = tmp_path / "span-only.onnx"
    span_only.write_bytes(model.read_bytes())
    decide = [sys.executable, "-W", "ignore", str(PROJECT_ROOT / "benchmarks" /
              "reader_decision.py"), "--train", str(tmp_path / "train"), "--smoke",
              "--model", str(model), "--out", str(out)]
    for extra in ([], ["--drop", "0.5"]):  # the second with shortened questions (an experiment)
        done = subprocess.run(decide + extra, env=subprocess_env(), capture_output=True,
                              text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    card = (out / reader.CARD_NAME).read_text()
    assert card.count("## Decision output") == 1 and file_sha256(model) in card
    assert "--drop 0.5" in card and '"auc_shortened_answer_vs_near_miss"' in card
    assert f'"span_head_export_sha256": "{file_sha256(span_only)}"' in card
    assert f'"sha256": "{file_sha256(span_only)}"' in card  # the training figures keep it
    decided = reader.Reader(model, default_model_files()[1])
    plain = reader.Reader(span_only, default_model_files()[1])
    texts = ["The new network opens in May.", "No."]
    assert decided.spans("What about the network?", texts) == plain.spans(
        "What about the network?", texts)
    assert plain.answers("What about the network?", texts) == [0.0, 0.0]
    assert all(np.isfinite(decided.answers("What about the network?", texts)))
    # a second stage from those weights, ranking each question's sentences (an experiment)
    (tmp_path / "ranked").mkdir()
    smoke_train("train_reader.py", tmp_path / "ranked", "--init",
                str(tmp_path / "work" / "final.pt"), "--rank-negatives", "2")
    card = (tmp_path / "ranked" / "out" / reader.CARD_NAME).read_text()
    assert "a second stage that teaches the reader to rank" in card
    assert '"rank_negatives": 2' in card
    assert card.count("python benchmarks/train_reader.py --train") >= 3  # both runs, and the
    assert '"first_stage"' in card  # first run's figures
    # ... with the wrong sentences the answerer itself ranks best, from an index it builds
    (tmp_path / "pools").mkdir()
    pools = smoke_train("train_reader.py", tmp_path / "pools", "--init",
                        str(tmp_path / "work" / "final.pt"), "--pools")
    card = (tmp_path / "pools" / "out" / reader.CARD_NAME).read_text()
    assert "the best 4 the answerer ranks for it" in card and '"pools": true' in card
    # its pools, built from the training questions, are not reused for other placements
    other = pools("--squad-occurrence", "first")
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert "pools.pkl was made by a run with other options: squad_occurrence" in other.stderr
    # ... or with near misses: questions altered so that their sentence no longer answers
    (tmp_path / "near").mkdir()
    smoke_train("train_reader.py", tmp_path / "near", "--init",
                str(tmp_path / "work" / "final.pt"), "--near-misses", "1")
    card = (tmp_path / "near" / "out" / reader.CARD_NAME).read_text()
    assert "asked by an\naltered question:" in card and '"near_misses": 1' in card


def test_the_reader_re_weighs_the_rankings_best_sentences(seeded_service) -> None:
    from assistant.answer import ExtractiveAnswerer, _Sentence

    svc = seeded_service
    reread = ExtractiveAnswerer(svc._lexical, reader=svc._reader, reader_weight=1.0)  # noqa: SLF001
    q = "Who will build the new network?"
    texts = ["The summit in May ended with a joint statement.",
             "Huawei will build the new network with the largest operator."]
    ranked = [_Sentence(0, 0, len(t), t, set(), score=s) for t, s in zip(texts, (1.0, 0.5),
                                                                          strict=True)]
    first = reread.reread(q, ranked)
    assert first[0].text.startswith("Huawei")  # the reader's reading outweighs the ranking's
    assert [s.score for s in first] == [0.5, 1.0]  # the ranking's own scores are kept
    # each read sentence also keeps the reader's verdict on whether it answers
    assert first[0].verdict == svc._reader.answers(q, [texts[1]])[0] > first[1].verdict  # noqa: SLF001


def test_the_decision_output_tells_the_question_a_sentence_answers_from_a_near_miss() -> None:
    # benchmarks/reader_decision.py: a name in the question swapped for another, and the
    # sentence that answered it no longer does (the margin alone tells these apart less well)
    shipped = reader.load_reader()
    sentence = ("Huawei will become the supplier of 5G technology to Russia through its "
                "partnership with Russia’s biggest mobile operator, MTS.")
    for asked, near in (("Which company will supply 5G technology to Russia?",
                         "Which company will supply 5G technology to Australia?"),
                        ("Which Russian operator is Huawei's partner for 5G?",
                         "Which Chinese operator is Huawei's partner for 5G?"),
                        ("Who is Russia's biggest mobile operator?",
                         "Who is Sweden's biggest mobile operator?")):
        yes, no = (shipped.answers(q, [sentence])[0] for q in (asked, near))
        assert yes > 1.0 and yes - no > 1.5, (asked, yes, no)


def test_training_questions_asked_without_their_sentences_words_keep_sentence_and_span() -> None:
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    import random

    from reader_card import _second_stage_text
    from reader_prep import _examples

    text = ("The harbour was dredged in 1887. Its new quay opened to steamers two years later, "
            "in 1889. Fishing boats kept the old one.")
    start = text.index("1889")
    docs = [{"text": text}]
    qs = [{"q": "When did the new quay open to steamers?", "doc": 0, "start": start,
           "end": start + 4, "set": "squad", "answers": ["1889"]}]
    assert not any(ex.get("dropped") for ex in _examples(docs, qs, random.Random(3), 1.0))
    both = _examples(docs, qs, random.Random(3), neg_rate=1.0, drop=1.0)
    asked = [ex for ex in both if not ex.get("dropped")]
    dropped = [ex for ex in both if ex.get("dropped")]
    assert len(asked) == 2 and asked[1]["a"] == -1  # the answering sentence, a wrong one
    assert [(ex["ctx"], ex["a"], ex["b"]) for ex in dropped] == [
        (ex["ctx"], ex["a"], ex["b"]) for ex in asked]  # same sentences, same targets
    assert all(ex["q"] != qs[0]["q"] and ex["q"].startswith("When did the") for ex in dropped)
    assert dropped[0]["ctx"][dropped[0]["a"]:dropped[0]["b"]] == "1889"
    card = _second_stage_text({"drop_shared": 0.5, "lr": 3e-5, "batch": 32, "steps": 1200,
                               "nq_repeat": 2, "seed": 17, "train_hours": 0.2,
                               "prep_seconds": 120})
    assert "50% of the questions also come asked without some of the words" in card


def test_a_long_run_in_bf16_is_refused_where_the_cpu_would_emulate_it(tmp_path: Path) -> None:
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    from argparse import Namespace

    from training_common import bf16_units, refuse_emulated_bf16

    avx2, amx = tmp_path / "avx2", tmp_path / "amx"
    avx2.write_text("processor : 0\nflags : fpu sse2 avx avx2 fma\n")
    amx.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16 amx_bf16\n")
    assert bf16_units(avx2) is False and bf16_units(amx) is True
    assert bf16_units(tmp_path / "absent") is None  # not Linux: cannot tell, not refused
    with pytest.raises(SystemExit, match="no bfloat16 matrix units"):
        refuse_emulated_bf16(Namespace(bf16=True, smoke=False), avx2)
    refuse_emulated_bf16(Namespace(bf16=True, smoke=True), avx2)  # a smoke run goes on
    refuse_emulated_bf16(Namespace(bf16=False, smoke=False), avx2)
    refuse_emulated_bf16(Namespace(bf16=True, smoke=False), amx)
    refuse_emulated_bf16(Namespace(bf16=True, smoke=False), tmp_path / "absent")
