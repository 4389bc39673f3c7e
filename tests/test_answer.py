"""The answering core over the real seeds index: cited answers, abstention, follow-ups, bad input.

These questions are our own (not the eval file's), asked of a private copy of
the seeds with the real model, real Chroma and the real FTS5 index.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config
from assistant.errors import BadQuestion
from assistant.models import Answer
from assistant.service import Assistant
from tests.conftest import SEEDS, read_file_text

MARKER = re.compile(r"\[(\d+)\]")
SUPPLIER = "Which company will supply 5G technology to Russia?"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Assistant]:
    root = tmp_path_factory.mktemp("answer")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    svc = Assistant.open(Config.resolve(corpus=corpus, store=root / "store"), embedder=embedder)
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
    assert set(a.timings_ms) == {"retrieve", "answer", "total"}
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
