"""The citation check with the real model, the seed articles' own passages and an
IDF table from a real lexical index of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.citecheck import (
    CheckedAnswer,
    CitationChecker,
    facts,
    holds,
    missing_facts,
    split_sentences,
)
from assistant.models import Citation
from assistant.words import IdfTable
from index.chunk import chunk_text
from index.lexical import ChunkRow, LexicalIndex

HUAWEI = ("Huawei will become the supplier of 5G technology to Russia through its partnership "
          "with Russia’s biggest mobile operator, MTS.")
# What a model writes: HUAWEI's claim in other words.
PARAPHRASE = "Russia's largest mobile operator MTS is teaming up with Huawei for its 5G network."
VOSTOK = ("Their cooperation builds on military exercises like last September’s Vostok 2018 "
          "that involved Russian and Chinese troops")


@pytest.fixture(scope="module")
def chunks(seed_files: list[Path], embedder: Any) -> dict[str, list[str]]:
    """Each seed article's passages, cut as the index cuts them."""
    out = {}
    for f in seed_files:
        text = f.read_text(encoding="utf-8")
        out[f.name[:3]] = [c.text for c in chunk_text(text, tokens=embedder)]
    return out


@pytest.fixture(scope="module")
def checker(chunks: dict[str, list[str]], embedder: Any,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[CitationChecker]:
    lexical = LexicalIndex(tmp_path_factory.mktemp("lexical") / "lexical.sqlite3")
    lexical.add([ChunkRow(f"{name}:{i}", name, 0, len(t), "", t)
                 for name, texts in chunks.items() for i, t in enumerate(texts)])
    yield CitationChecker(embedder, IdfTable(lexical))
    lexical.close()


def passage_with(chunks: dict[str, list[str]], phrase: str) -> str:
    return next(t for texts in chunks.values() for t in texts if phrase in t)


def cite(*texts: str) -> list[Citation]:
    return [Citation(n, "seed.txt", 0, len(t), t, 1.0) for n, t in enumerate(texts, 1)]


def test_a_sentence_quoted_from_its_passage_is_supported(checker: CitationChecker,
                                                         chunks: dict[str, list[str]]) -> None:
    for sentence in (HUAWEI, VOSTOK + "."):
        result = checker.check(f"{sentence[:-1]} [1].", cite(passage_with(chunks, sentence[:40])))
        [check] = result.checks
        assert check.supported, check
        assert check.citations == (1,)
        assert check.text == sentence
        assert check.score >= checker.threshold


@pytest.mark.parametrize("changed", [
    HUAWEI.replace("MTS", "Beeline"),  # a name
    HUAWEI.replace("5G", "4G"),  # a code of digits and letters
    VOSTOK.replace("2018", "2016") + ".",  # a date
    VOSTOK.replace("September", "October") + ".",  # a month
])
def test_the_same_sentence_with_a_fact_changed_is_not(checker: CitationChecker,
                                                      chunks: dict[str, list[str]],
                                                      changed: str) -> None:
    passage = passage_with(chunks, changed[:30])
    [check] = checker.check(f"{changed} [1]", cite(passage)).checks
    assert not check.supported, check


def test_a_sentence_citing_an_unrelated_seed_passage_is_not(
    checker: CitationChecker, chunks: dict[str, list[str]]
) -> None:
    # Same subject (Russia and China) in all three seeds, but not this claim, quoted
    # or in other words.
    for sentence in (HUAWEI, PARAPHRASE):
        for other in chunks["000"] + chunks["001"]:
            [check] = checker.check(f"{sentence} [1]", cite(other)).checks
            assert not check.supported, other
    plain = "They have also pointed to the very different Russian and Chinese civilisations."
    unrelated = chunks["000"][-1]
    [check] = checker.check(f"{plain} [1]", cite(unrelated)).checks
    assert not check.supported, (check, unrelated)
    [check] = checker.check(f"{plain} [1]", cite(passage_with(chunks, plain[:40]))).checks
    assert check.supported, check


def test_markers_pointing_at_no_passage_are_removed(checker: CitationChecker,
                                                    chunks: dict[str, list[str]]) -> None:
    text = f"{HUAWEI[:-1]} [1][7]. Putin chose it [3]."
    result = checker.check(text, cite(passage_with(chunks, HUAWEI[:40])))
    assert result.text == f"{HUAWEI[:-1]} [1]. Putin chose it."
    first, second = result.checks
    assert first.citations == (1,) and first.supported
    assert second.citations == () and not second.supported and second.score == 0.0


def test_a_sentence_without_a_marker_is_unsupported(checker: CitationChecker,
                                                    chunks: dict[str, list[str]]) -> None:
    passage = passage_with(chunks, HUAWEI[:40])
    result = checker.check(f"{HUAWEI} {VOSTOK} [1].", cite(passage))
    first, second = result.checks
    assert (first.text, first.citations, first.supported, first.score) == (HUAWEI, (), False, 0.0)
    assert second.citations == (1,)
    assert not result.checks[0].to_json()["supported"]


def test_empty_text_has_no_sentences(checker: CitationChecker) -> None:
    assert checker.check("", cite("Some passage.")) == CheckedAnswer("", ())
    assert checker.check("  [1] ", []) == CheckedAnswer("", ())
    assert not checker.check("", []).any_supported


def test_a_marker_after_the_full_stop_belongs_to_the_sentence_before_it() -> None:
    assert split_sentences("One claim.[1] Another [2]. [3] Last.") == [
        ("One claim.", (1,)), ("Another.", (2, 3)), ("Last.", ())]


def test_names_numbers_and_dates_are_the_facts_of_a_sentence() -> None:
    found = facts("In 1990 the firm of O'Brien sold two F-16s for 1,200 pounds on the 5th.")
    assert found == {"o'brien", "1990", "2", "f-16s", "16s", "1200", "5th"}
    # The opening word, a lower-case month and "one" (mostly a pronoun) are not demanded.
    assert facts("Huawei may sell one of them.") == set()


def test_a_check_has_the_shape_of_ask_json_checks(checker: CitationChecker,
                                                  chunks: dict[str, list[str]]) -> None:
    [check] = checker.check(f"{HUAWEI} [1]", cite(passage_with(chunks, HUAWEI[:40]))).checks
    out = check.to_json()
    assert list(out) == ["text", "citations", "supported", "score", "attributed", "reason"]
    assert out["reason"] == ""  # kept: nothing to explain
    assert out["attributed"] is False
    assert out["citations"] == [1] and isinstance(out["score"], float)


def test_a_loose_paraphrase_is_not_enough(
    checker: CitationChecker, chunks: dict[str, list[str]]
) -> None:
    # The strict fit (see citecheck.WEIGHTS for why): a sentence most of whose words its
    # passage does not hold is not backed by it, however alike in meaning.
    passage = passage_with(chunks, HUAWEI[:40])
    [check] = checker.check(f"{PARAPHRASE} [1]", cite(passage)).checks
    assert not check.supported and check.score < 0.48, check


def test_an_unmarked_restatement_is_attributed_to_the_passage_that_backs_it(
    checker: CitationChecker, chunks: dict[str, list[str]]
) -> None:
    close = "Huawei will supply 5G technology to Russia through its partnership with MTS."
    passages = [chunks["000"][0], passage_with(chunks, HUAWEI[:40]), chunks["001"][0]]
    [check] = checker.check(close, cite(*passages), attribute=True).checks
    assert (check.supported, check.attributed, check.citations) == (True, True, (2,)), check


@pytest.mark.parametrize(("name", "form"), [
    ("China", "Chinese"), ("Russia", "Russian"), ("Russia", "Russians"), ("Japan", "Japanese"),
    ("Israel", "Israeli"), ("Italy", "Italian"), ("Germany", "German"), ("Iran", "Iranian"),
    ("Ukraine", "Ukrainian"), ("Sweden", "Swedish"), ("Huawei", "Huawei's"),
])
def test_a_name_is_held_by_its_demonym_plural_or_possessive(name: str, form: str) -> None:
    # Both ways: "China" backed by a passage saying "Chinese", and the other way round.
    assert holds([f"It was a {form} decision."], name)
    assert holds([f"It was {name}'s decision."], form)
    assert not missing_facts(f"The firm is {name}’s own.", [f"A {form} firm."])


@pytest.mark.parametrize(("name", "other"), [
    ("China", "Chile"), ("Russia", "Prussia"), ("Huawei", "Ericsson"), ("Rome", "Roman"),
    ("Iran", "Iraq"), ("Austria", "Australia"), ("MTS", "Megafon"), ("2018", "2016"),
])
def test_a_different_name_is_not(name: str, other: str) -> None:
    # Short roots ("rom") join nothing: Rome/Roman stays apart, as do unrelated names.
    assert not holds([f"It was the {other} decision, not another."], name)


def test_the_issues_sentence_is_not_left_out_for_china(
    checker: CitationChecker, chunks: dict[str, list[str]]
) -> None:
    # A model's answer to "Which company will build Russia's 5G network?" (issue 19):
    # the passage says "Chinese" and "Russia's", never "China"; that is no missing fact.
    passage = passage_with(chunks, HUAWEI[:40])
    assert "China" not in passage.replace("Chinese", "")
    sentence = "The company that will build Russia's 5G network is China’s Huawei."
    assert not missing_facts(sentence, [passage])
    [check] = checker.check(f"{sentence} [1]", cite(passage)).checks
    # Still left out, by the word share: "build" and "network" are the question's
    # words, not the passage's; and it says so instead of blaming "China".
    assert not check.supported
    assert "China" not in check.reason and "does not hold enough of its words" in check.reason


def test_a_left_out_sentence_says_why_in_a_readers_words(
    checker: CitationChecker, chunks: dict[str, list[str]]
) -> None:
    passage = passage_with(chunks, HUAWEI[:40])
    swapped = HUAWEI.replace("MTS", "Beeline")
    [check] = checker.check(f"{swapped} [1]", cite(passage)).checks
    assert check.reason == "not found in the cited passage: 'Beeline'"
    [check] = checker.check(f"{swapped} [1][2]", cite(passage, chunks["000"][0])).checks
    assert check.reason == "not found in the cited passages: 'Beeline'"
    [check] = checker.check(swapped, cite(passage, chunks["000"][0]), attribute=True).checks
    assert check.reason == ("cites no passage, and no passage backs it: not found in the "
                            "nearest passage ([1]): 'Beeline'")
    [check] = checker.check(swapped, cite(passage)).checks
    assert check.reason == "cites no passage"
