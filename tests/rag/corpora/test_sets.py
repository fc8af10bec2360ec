from __future__ import annotations

import json

import pytest

from dataprune.errors import DataValidationError
from dataprune.rag.corpora import (
    EVIDENCE_SETS,
    example_from_sentences,
    join_sentences,
    load_evidence_set,
)


def test_join_sentences_spans_point_at_the_sentences():
    text, spans = join_sentences(["  First one.", "Second one. ", "Third."], title="Title")
    assert text == "Title\nFirst one. Second one. Third."
    assert [text[b:e] for b, e in spans] == ["First one.", "Second one.", "Third."]


def test_example_labels_follow_the_evidence_indices_and_the_title_is_never_evidence():
    ex = example_from_sentences(
        "q?", ["Alpha is here.", "Beta is there.", "Gamma too."], [1], title="T", qid="x"
    )
    assert [s.text for s in ex.sentences] == ["T", "Alpha is here.", "Beta is there.", "Gamma too."]
    assert ex.labels == [0, 0, 1, 0] and ex.kind == "answerable" and ex.qid == "x"
    neg = example_from_sentences("q?", ["Alpha is here."], [])
    assert neg.labels == [0] and neg.kind == "hard_negative"


def test_registry_licences_decide_what_may_train():
    trainable = {n for n in EVIDENCE_SETS.names() if EVIDENCE_SETS.get(n).trainable}
    assert trainable == {"hotpotqa", "musique", "selqa"}
    multi = {n for n in EVIDENCE_SETS.names() if EVIDENCE_SETS.get(n).multi_hop}
    assert multi == {"hotpotqa", "musique"}
    with pytest.raises(ValueError, match="valid: climate_fever, hotpotqa"):
        EVIDENCE_SETS.get("nq")


def _write(tmp_path, folder, name, content):
    d = tmp_path / folder
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(content, encoding="utf-8")


def test_hotpotqa_and_musique_group_passages_by_question(tmp_path):
    hp = [
        {
            "_id": "h1",
            "question": "Who founded X?",
            "answer": "Ann",
            "context": [["X", ["X is a firm.", "It was founded by Ann."]], ["Y", ["Y is a town."]]],
            "supporting_facts": [["X", 1]],
        }
    ]
    _write(tmp_path, "hotpotqa_train", "qa_train.json", json.dumps(hp))
    ex = load_evidence_set("hotpotqa", "train", tmp_path)
    assert [e.qid for e in ex] == ["h1", "h1"] and [e.kind for e in ex] == [
        "answerable",
        "hard_negative",
    ]
    assert [s.text for s, y in zip(ex[0].sentences, ex[0].labels) if y] == [
        "It was founded by Ann."
    ]
    mq = [
        {
            "id": "m1",
            "question": "Q?",
            "answer": "Bob",
            "answer_aliases": ["Robert"],
            "question_decomposition": [
                {"question": "a", "answer": "Acme", "paragraph_support_idx": 0},
                {"question": "b #1", "answer": "Bob", "paragraph_support_idx": 1},
            ],
            "paragraphs": [
                {
                    "idx": 0,
                    "title": "P",
                    "paragraph_text": "It is big. Acme made it.",
                    "is_supporting": True,
                },
                {
                    "idx": 1,
                    "title": "Acme",
                    "paragraph_text": "Its boss is Sam. Sam left.",
                    "is_supporting": True,
                },
                {"idx": 2, "title": "Z", "paragraph_text": "Acme is old.", "is_supporting": False},
            ],
        }
    ]
    _write(tmp_path, "musique", "qa_train.json", json.dumps(mq))
    ex = load_evidence_set("musique", "train", tmp_path)
    assert [e.labels for e in ex] == [[0, 0, 1], [0, 1, 1], [0, 0]]  # no "Bob": whole paragraph


def test_bad_records_name_the_record_and_field(tmp_path):
    _write(tmp_path, "selqa", "selqa-ass-dev.json", json.dumps([{"question": "q", "answers": [0]}]))
    with pytest.raises(DataValidationError, match="record 0: missing field 'candidates'"):
        load_evidence_set("selqa", "train", tmp_path)
    _write(
        tmp_path,
        "wikiqa",
        "WikiQA-test.tsv",
        "QuestionID\tQuestion\tD\tT\tS\tSentence\tLabel\nQ0\tq\n",
    )
    with pytest.raises(DataValidationError, match="line 2: expected 7"):
        load_evidence_set("wikiqa", "heldout", tmp_path)
    with pytest.raises(DataValidationError, match="no split 'test'; splits: train, heldout"):
        load_evidence_set("selqa", "test", tmp_path)
    with pytest.raises(DataValidationError, match="file not found"):
        load_evidence_set("climate_fever", "heldout", tmp_path)


@pytest.mark.parametrize(
    "name, split, n_questions",
    [
        ("hotpotqa", "train", 100),
        ("musique", "train", 100),
        ("musique", "heldout", 100),
        ("selqa", "train", 785),
        ("wikiqa", "heldout", 633),
        ("climate_fever", "heldout", 1535),
    ],
)
def test_shared_sets_load_with_evidence(shared_data, name, split, n_questions):
    ex = load_evidence_set(name, split, shared_data)
    assert len({e.qid for e in ex}) == n_questions
    assert all(len(e.labels) == len(e.sentences) > 0 for e in ex)
    assert sum(e.kind == "answerable" for e in ex) > 0.2 * n_questions
    if EVIDENCE_SETS.get(name).multi_hop:  # every question has evidence in >= 2 passages
        per_q: dict[str, int] = {}
        for e in ex:
            per_q[e.qid] = per_q.get(e.qid, 0) + (e.kind == "answerable")
        assert min(per_q.values()) >= 2
