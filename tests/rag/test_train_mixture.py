from __future__ import annotations

import json

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.rag.config import TrainConfig
from dataprune.rag.corpora import example_from_sentences
from dataprune.rag.train_mixture import bridge_examples, evidence_training_examples


def _hotpot(n: int) -> list[dict]:
    recs = []
    for i in range(n):
        ctx = [[f"G{i}a", [f"A{i} is a band.", f"A{i} was formed by B{i}."]]]
        ctx += [[f"G{i}b", [f"B{i} was born in C{i}."]]]
        ctx += [[f"D{i}{k}", [f"Distractor {k} of {i}."]] for k in range(6)]
        recs.append(
            {
                "_id": f"q{i}",
                "question": f"Where was the founder of A{i} born?",
                "answer": f"C{i}",
                "context": ctx,
                "supporting_facts": [[f"G{i}a", 1], [f"G{i}b", 0]],
            }
        )
    return recs


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "hotpotqa_train").mkdir()
    (tmp_path / "hotpotqa_train" / "qa_train.json").write_text(json.dumps(_hotpot(20)))
    return tmp_path


def test_bridge_examples_extend_the_query_with_the_other_gold_evidence():
    q = "Where was the founder of A born?"
    g1 = example_from_sentences(q, ["A is a band.", "A was formed by B."], [1], qid="x")
    g2 = example_from_sentences(q, ["B was born in C."], [0], qid="x")
    d = example_from_sentences(q, ["Nothing here."], [], qid="x")
    out = bridge_examples([g1, g2, d], np.random.default_rng(0))
    assert [e.kind for e in out] == ["bridge", "bridge", "bridge_negative"]
    assert out[0].query == q + " B was born in C." and out[0].labels == g1.labels
    assert out[1].query == q + " A was formed by B." and out[1].labels == g2.labels
    assert out[2].query == q + " A was formed by B. B was born in C." and out[2].labels == [0]
    assert bridge_examples([g1, d], np.random.default_rng(0)) == []


def test_mixture_splits_by_question_keeps_distractors_and_records_provenance(data_dir):
    cfg = TrainConfig(
        evidence_sets=("hotpotqa",),
        evidence_data=str(data_dir),
        distractors_per_question=2,
        evidence_val_share=0.25,
    )
    (part,) = evidence_training_examples(cfg)
    train_q, val_q = {e.qid for e in part.train}, {e.qid for e in part.val}
    assert len(val_q) == 5 and len(train_q) == 15 and not train_q & val_q
    per_q = [e for e in part.val if e.qid == sorted(val_q)[0]]
    assert sum(e.kind == "answerable" for e in per_q) == 2 and len(per_q) == 4
    assert part.kinds == {
        "answerable": 30,
        "bridge": 30,
        "bridge_negative": 15,
        "hard_negative": 30,
    }
    d = part.to_dict()
    assert d["licence"] == "CC BY-SA 4.0" and len(d["sha256"]) == 64 and d["n_questions"] == 20
    again = evidence_training_examples(cfg)[0]
    assert [(e.qid, e.query, e.passage) for e in again.train] == [
        (e.qid, e.query, e.passage) for e in part.train
    ]
    (nob,) = evidence_training_examples(
        TrainConfig(evidence_sets=("hotpotqa",), evidence_data=str(data_dir), bridge_examples=False)
    )
    assert not any(e.kind.startswith("bridge") for e in nob.train)


def test_licences_and_options_are_checked(data_dir):
    with pytest.raises(DataValidationError, match="evaluation only"):
        evidence_training_examples(TrainConfig(evidence_sets=("wikiqa",), evidence_data="x"))
    with pytest.raises(DataValidationError, match="nothing to train on"):
        TrainConfig(include_squad=False)
    with pytest.raises(DataValidationError, match="target_compression"):
        TrainConfig(target_compression=1.5)
    assert TrainConfig(evidence_sets="hotpotqa,selqa").evidence_sets == ("hotpotqa", "selqa")
    restored = TrainConfig.from_dict(TrainConfig(evidence_sets=("selqa",)).to_dict())
    assert restored.evidence_sets == ("selqa",)
