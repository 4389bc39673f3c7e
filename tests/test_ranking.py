"""The question analysis the sentence ranking relies on: plain functions, no index."""

from __future__ import annotations

import pytest

from assistant.ranking import expected_type, has_type, missing_names
from assistant.words import asks_each_document, coverage, question_words


@pytest.mark.parametrize(("question", "kind"), [
    ("How many troops took part?", "number"),
    ("In what year was it signed?", "date"),
    ("When did they meet?", "date"),
    ("Who chose Huawei?", "name"),
    ("On which river did it begin?", "name"),
    # The first wh-word decides; a later one opens a clause.
    ("What should governments do when they plan networks?", None),
    ("Who loses out when a country leans on it?", "name"),
    ("the south west wind blows across nigeria between", None),
])
def test_the_kind_of_answer_comes_from_the_first_wh_word(question: str, kind: str | None) -> None:
    assert expected_type(question) == kind


def test_a_number_the_question_already_holds_is_not_an_answer() -> None:
    q = "How many 5G stations were built in 2019?"
    assert not has_type("In 2019 the 5G rollout began.", "number", q)
    assert has_type("In 2019 they built 400 of them.", "number", q)


def test_a_name_the_question_already_holds_is_not_an_answer() -> None:
    q = "Who met Putin in Moscow?"
    assert not has_type("They met in Moscow, and Putin spoke.", "name", q)
    assert has_type("Putin met Xi Jinping in Moscow.", "name", q)


def test_words_that_point_at_the_documents_are_not_question_content() -> None:
    assert question_words(
        "What is the key theme of the UK report, according to the first article?"
    ) == ["key", "theme", "uk", "report"]
    assert question_words("What do the articles say about microchips?") == ["microchips"]
    assert question_words("What is happening to China's population?") == [
        "happening", "china", "population"]


@pytest.mark.parametrize(("question", "each"), [
    ("How do the articles describe the effect of sanctions?", True),
    ("What do these documents say about 5G?", True),
    ("What does the article say about 5G?", False),
    ("Which company supplies 5G?", False),
    ("Who wrote the Articles of Confederation?", False),
    ("Which articles of the treaty were changed?", False),
])
def test_a_question_about_the_documents_plural_asks_for_each(question: str, each: bool) -> None:
    assert asks_each_document(question) is each


def test_names_the_retrieved_passages_never_hold_are_counted() -> None:
    passages = ["And Alibaba completed its joint venture with Russia's Megafon in 2019."]
    assert missing_names("Which bank financed the Alibaba and Megafon venture?", passages) == 0
    assert missing_names("Did Sberbank finance Alibaba's venture with Megafon?",
                         passages) == pytest.approx(1 / 3)
    assert missing_names("What happened in 2021 to Megafon?", passages) == pytest.approx(1 / 2)
    assert missing_names("what happened to the venture", passages) == 0  # no names asked


def test_coverage_does_not_depend_on_the_order_the_words_come_in() -> None:
    # The question's weights are built from sets, whose order changes between processes;
    # the same question must give the same answer in every run.
    forward = {"suppli": 0.1, "network": 0.2, "russia": 0.3}
    backward = dict(reversed(forward.items()))
    assert sum(forward.values()) != sum(backward.values())  # what a plain sum does
    stems = {"suppli", "russia", "huawei"}
    assert coverage(stems, forward) == coverage(stems, backward)
    assert coverage({"suppli", "network", "russia"}, backward) == 1.0
