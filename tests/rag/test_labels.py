from __future__ import annotations

import pytest

from dataprune.errors import DataValidationError
from dataprune.rag.labels import build_examples, load_squad_v2, split_articles

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def squad(shared_data):
    return load_squad_v2(shared_data / "squad_v2")


def test_split_is_by_article_and_seeded(squad):
    titles = [a["title"] for a in squad]
    s = split_articles(titles, n_test=4, n_val=1, random_state=0)
    assert len(s.test) == 4 and len(s.val) == 1 and len(s.train) == len(titles) - 5
    assert not (set(s.test) & set(s.train)) and not (set(s.val) & set(s.train))
    assert s == split_articles(titles, n_test=4, n_val=1, random_state=0)
    assert s != split_articles(titles, n_test=4, n_val=1, random_state=1)
    with pytest.raises(DataValidationError, match="cannot hold out"):
        split_articles(titles, n_test=16, n_val=0)


def test_labels_follow_answer_spans(squad):
    ex = build_examples(squad, ["Normans"], negatives_per_question=2)
    kinds = {e.kind for e in ex}
    # random negatives need another article: with one article only hard negatives exist
    assert kinds == {"answerable", "unanswerable", "hard_negative"}
    for e in ex:
        assert len(e.labels) == len(e.sentences)
        if e.kind == "answerable":
            assert any(e.labels)
            gold = " ".join(s.text for s, y in zip(e.sentences, e.labels) if y)
            assert any(a in gold for a in e.answers)
        else:
            assert not any(e.labels)
        if e.kind.endswith("negative"):
            src = next(x for x in ex if x.qid == e.qid and x.kind == "answerable")
            assert e.passage != src.passage
            assert not any(a.lower() in e.passage.lower() for a in src.answers)
    first = next(e for e in ex if e.kind == "answerable")
    assert first.query == "In what country is Normandy located?"
    assert next(s.text for s, y in zip(first.sentences, first.labels) if y).startswith(
        "The Normans"
    )


def test_random_negatives_come_from_other_articles(squad):
    ex = build_examples(
        squad, ["Normans", "Warsaw"], negatives_per_question=1, negative_kinds=("random_negative",)
    )
    paras = {a["title"]: {p["context"] for p in a["paragraphs"]} for a in squad}
    for e in ex:
        if e.kind == "random_negative":
            assert e.passage not in paras[e.article]


def test_bad_squad_file(tmp_path):
    (tmp_path / "x.json").write_text('{"data": [{"title": "a"}]}')
    with pytest.raises(DataValidationError, match="paragraphs"):
        load_squad_v2(tmp_path / "x.json")
    with pytest.raises(DataValidationError, match="file not found"):
        load_squad_v2(tmp_path / "missing.json")
