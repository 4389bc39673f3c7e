"""Follow-ups without a model (assistant/followup.py): which ones point back, what is
carried from the earlier questions, and when an answer found with it speaks to the
follow-up itself. The answers through the real service are in test_cli_first_minutes
and test_tui_first_minutes."""

from __future__ import annotations

import pytest

from assistant.followup import carried_words, points_back, speaks_to, standalone

FIVE_G = "Which company will build Russia's 5G network?"
HUAWEI = ("Huawei will become the supplier of 5G technology to Russia through its "
          "partnership with Russia’s biggest mobile operator, MTS. [1]")


@pytest.mark.parametrize("question", [
    "Which operator is it working with?", "When did they meet?", "Why did he choose that?",
    "And Alibaba?", "What about Megafon?", "Why?", "Where was this announced?",
])
def test_a_question_that_leans_on_an_earlier_one_points_back(question: str) -> None:
    assert points_back(question)


@pytest.mark.parametrize("question", [
    "Which operator is Huawei working with?", "When did Xi and Putin meet in Moscow?",
])
def test_a_question_that_names_its_subject_does_not(question: str) -> None:
    assert not points_back(question)
    assert standalone(question, [FIVE_G]) == question


def test_the_earlier_questions_content_is_carried_after_the_follow_up() -> None:
    assert carried_words("Which operator is it working with?", [FIVE_G]) == [
        "company", "build", "Russia", "5G", "network"]
    assert standalone("Which operator is it working with?", [FIVE_G]) == (
        "Which operator is it working with? (company build Russia 5G network)")
    # Newest question first, each word once, none the follow-up already has.
    assert carried_words("What network is it?", ["Who leads Russia?", FIVE_G]) == [
        "company", "build", "Russia", "5G", "leads"]
    assert standalone("Which operator is it working with?", []) == (
        "Which operator is it working with?")


def test_an_answer_must_speak_to_the_follow_up_itself() -> None:
    assert speaks_to("Which operator is it working with?", HUAWEI)  # "operator"
    assert speaks_to("When did it split from its Swedish parent?",
                     "Tele2, which split from its Swedish parent in 2013, ... [1]")
    assert speaks_to("How many sites will it use?", "It will use 40 sites. [1]")
    # Carried words alone found it: nothing of what is asked is in it.
    assert not speaks_to("How much will it be paid for the contract?", HUAWEI)
    assert not speaks_to("Who is its chief executive?", HUAWEI)
    # The marker's number is not the number asked for.
    assert not speaks_to("How much will it be paid?", "Huawei will supply it. [1]")
