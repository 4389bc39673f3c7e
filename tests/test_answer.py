"""The answering core over the real seeds index: cited answers, abstention, follow-ups, bad input.

These questions are our own (not the eval file's), asked of a private copy of
the seeds with the real model, real Chroma and the real FTS5 index.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import BadQuestion
from assistant.models import Answer
from assistant.service import Assistant
from tests.conftest import SEEDS, open_seeded, read_file_text, seeded_copy

MARKER = re.compile(r"\[(\d+)\]")
SUPPLIER = "Which company will supply 5G technology to Russia?"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Assistant]:
    svc = open_seeded(seeded_copy(tmp_path_factory, "answer"), embedder)
    yield svc
    svc.close()


def check_contract(svc: Assistant, a: Answer) -> None:
    """The invariants of the `ask --json` contract, for any answer."""
    root = svc.config.corpus
    for item in (*a.citations, *a.passages):
        assert item.text == read_file_text(root / item.source)[item.start : item.end]
    numbers = [c.n for c in a.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert {int(m) for m in MARKER.findall(a.text)} == set(numbers)
    if a.abstained:
        assert a.citations == ()
        assert "do not answer" in a.text
    else:
        assert a.citations
    assert set(a.timings_ms) == {"retrieve", "answer", "read", "total"}
    assert a.passages == tuple(sorted(a.passages, key=lambda p: -p.score))


def test_answer_is_a_cited_sentence_of_the_right_article(service: Assistant) -> None:
    a = service.ask(SUPPLIER)
    check_contract(service, a)
    assert not a.abstained
    assert "Huawei" in a.text
    first = a.citations[0]
    assert first.source.startswith("002_")
    assert "Huawei will become the supplier of 5G technology to Russia" in first.text
    # Extractive: the first answer sentence is a verbatim sentence of the cited passage.
    sentence = MARKER.split(a.text)[0].strip()
    assert sentence in " ".join(first.text.split())


def test_answers_are_short(service: Assistant) -> None:
    for q in (SUPPLIER, "Where did Putin and Xi meet?", "What did Russia give China?"):
        a = service.ask(q)
        check_contract(service, a)
        assert 1 <= len(MARKER.findall(a.text)) <= 3, a.text


def sentences_of(a: Answer) -> list[tuple[str, int]]:
    """The answer's sentences, each with the number of the citation it carries."""
    parts = MARKER.split(a.text)
    return [(parts[i].strip(), int(parts[i + 1])) for i in range(0, len(parts) - 1, 2)]


@pytest.mark.parametrize("question", [
    "Which Chinese company will build Russia's 5G network?",  # few of the text's words
    "Which tech giant will provide Russia's next-generation mobile network?",
])
def test_the_first_sentence_is_the_answer(service: Assistant, question: str) -> None:
    a = service.ask(question)
    check_contract(service, a)
    assert not a.abstained
    first, n = sentences_of(a)[0]
    assert first.startswith("Huawei will become the supplier of 5G technology"), a.text
    assert first in " ".join(a.citations[n - 1].text.split())


def test_a_further_sentence_must_add_to_the_answer(service: Assistant) -> None:
    """Once the first sentence answers, sentences that merely share a word with the
    question ("Chinese", "Russian", "5G") do not pad the answer: before, this answer
    led with why Putin chose Huawei, then Tele2 and Ericsson, and only third the
    sentence that answers."""
    a = service.ask("Which Chinese company will build Russia's 5G network?")
    assert sentences_of(a)[0][0].startswith("Huawei will become the supplier"), a.text
    assert "put real meat on the bones" not in a.text
    assert "Tele2" not in a.text


def test_what_the_articles_say_is_ordered_by_the_ranking_not_the_phrase_reader(
        service: Assistant) -> None:
    """The reader looks for one phrase answering the question whole; led by it, this
    answer began with a sentence naming neither word and was refused."""
    a = service.ask("What do the articles say about semiconductors and microchips?")
    assert not a.abstained, a.text
    first = sentences_of(a)[0][0].lower()
    assert "semiconductor" in first or "microchip" in first, a.text
    assert len({c.source for c in a.citations}) >= 2, a.text


def test_a_question_about_what_the_articles_say_quotes_each(service: Assistant) -> None:
    a = service.ask("How do the articles describe the effect of Western sanctions?")
    check_contract(service, a)
    assert not a.abstained
    parts = sentences_of(a)
    assert len({a.citations[n - 1].source for _s, n in parts}) >= 2, a.text
    for i, (sentence, n) in enumerate(parts):  # each sentence cites its own article's passage
        passage = " ".join(a.citations[n - 1].text.split())
        assert sentence in passage
        # on the point: it names sanctions, or it is the very next sentence after one
        # that does and carries that point on (the answerer's join rule)
        before = parts[i - 1][0] if i else ""
        follows = bool(before) and passage.find(before) + len(before) + 1 == passage.find(sentence)
        assert "sanction" in sentence.lower() or ("sanction" in before.lower() and follows), a.text


def test_confidence_says_how_sure(service: Assistant) -> None:
    sure = service.ask("Where did Vladimir Putin and Xi Jinping meet?")
    unsure = service.ask("How tall is Mount Everest?")
    assert sure.confidence is not None and unsure.confidence is not None
    assert 0.0 <= unsure.confidence < sure.confidence <= 1.0
    assert sure.confidence >= 0.5 and not sure.low_confidence
    assert sure.to_json()["confidence"] == round(sure.confidence, 3)
    assert unsure.abstained and not unsure.low_confidence  # a refusal is not "low"


def test_question_spanning_two_articles_cites_both(service: Assistant) -> None:
    a = service.ask("Which articles discuss semiconductors and microchips?")
    check_contract(service, a)
    assert not a.abstained
    assert len({c.source for c in a.citations}) >= 2


@pytest.mark.parametrize(
    "question",
    [
        "What is the recipe for a chocolate cake?",
        "Who won the football world cup in 1998?",
        "How tall is Mount Everest?",
    ],
)
def test_abstains_when_the_documents_do_not_answer(service: Assistant, question: str) -> None:
    a = service.ask(question)
    check_contract(service, a)
    assert a.abstained
    assert a.passages, "the nearest passages are still shown, as such"


def test_follow_up_carries_the_subject_of_the_earlier_turn(service: Assistant) -> None:
    follow = "Which operator is it partnering with?"
    a = service.ask(follow, history=[SUPPLIER])
    check_contract(service, a)
    assert not a.abstained
    assert "MTS" in a.text
    # The earlier turn's subject steers retrieval: the supplier passage leads.
    assert "Huawei will become the supplier" in a.passages[0].text


def test_history_from_another_topic_does_not_hijack_the_question(service: Assistant) -> None:
    a = service.ask("Where did Vladimir Putin and Xi Jinping meet?", history=[SUPPLIER])
    assert not a.abstained
    assert "Moscow" in a.text


@pytest.mark.parametrize("question", ["", "   ", "\n\t ", "?!?", "\x00\x07"])
def test_empty_questions_are_refused_clearly(service: Assistant, question: str) -> None:
    with pytest.raises(BadQuestion) as err:
        service.ask(question)
    assert err.value.message


def test_huge_question_is_refused_with_its_size(service: Assistant) -> None:
    with pytest.raises(BadQuestion, match="100,000 characters"):
        service.ask("why " * 25_000)


def test_control_characters_and_escapes_are_cleaned(service: Assistant) -> None:
    a = service.ask("Which company\x1b[31m will supply\x07 5G\x00 technology to Russia?")
    check_contract(service, a)
    assert "\x1b" not in a.question and "\x07" not in a.question
    assert "Huawei" in a.text


@pytest.mark.parametrize("question", ["俄罗斯和中国是什么关系？", "Что Китай поставляет России?",
                                      "🙂 5G 🙂"])
def test_other_scripts_get_an_answer_or_an_abstention(service: Assistant, question: str) -> None:
    check_contract(service, service.ask(question))


def test_bm25_and_dense_alone_also_retrieve(service: Assistant) -> None:
    r = service._retriever
    assert r is not None
    both = r.retrieve(SUPPLIER, 6)
    lexical = r.retrieve(SUPPLIER, 6, use=("bm25",))
    dense = r.retrieve(SUPPLIER, 6, use=("dense",))
    assert all(c.bm25 is not None for c in lexical.candidates)
    assert all(c.dense is not None for c in dense.candidates)
    assert any(c.bm25 is not None and c.dense is not None for c in both.candidates)
    assert both.top_dense == pytest.approx(dense.top_dense)


def test_k_sets_how_many_passages_come_back(service: Assistant) -> None:
    assert len(service.ask(SUPPLIER, k=2).passages) == 2
    assert len(service.ask(SUPPLIER, k=10).passages) == 10


def test_source_text_is_served_only_from_the_corpus(service: Assistant, tmp_path: Path) -> None:
    name = sorted(p.name for p in SEEDS.glob("*.txt"))[0]
    assert service.document_text(name) == read_file_text(SEEDS / name)
    with pytest.raises(Exception, match="not a document"):
        service.document_text("../../etc/passwd")
