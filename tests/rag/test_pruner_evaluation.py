from __future__ import annotations

import pytest

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.rag.labelled import examples_from_records
from dataprune.rag.pruner_evaluation import evaluate_pruner, evaluation_lines

TEXTS = [
    "The zebra lives in Africa. Paris is the capital of France. It rained all day.",
    "Warsaw was founded in the 13th century. The river Vistula flows through Warsaw.",
    "Bananas are yellow. The zebra has black and white stripes. Cars need fuel.",
]


def _examples():
    return examples_from_records(
        ["where do zebras live?", "where do zebras live?", "what do zebras look like?"],
        TEXTS,
        [["lives in Africa"], [], ["black and white stripes"]],
    )


def test_threshold_zero_keeps_everything_and_one_keeps_nothing(tiny_pruner):
    ex = _examples()
    keep_all = evaluate_pruner(tiny_pruner, ex, threshold=0.0, baselines=["bm25"], n_boot=200)
    assert keep_all["evidence_passages"]["recall"] == 1.0
    assert keep_all["evidence_passages"]["compression"] == 0.0
    assert keep_all["all_passages"]["compression"] == 0.0
    assert keep_all["against"]["bm25"]["recall"] == 1.0  # bm25 keeping everything too
    assert keep_all["n_evidence_passages"] == 2 and keep_all["n_queries"] == 2
    assert 0 < keep_all["oracle_compression"] < 1
    assert keep_all["evidence_retention"] == 1.0
    none = evaluate_pruner(tiny_pruner, ex, threshold=1.0, baselines=[], n_boot=200)
    assert none["evidence_passages"]["recall"] == 0.0
    assert none["evidence_passages"]["compression"] == 1.0
    assert none["evidence_retention"] == 0.0
    text = "\n".join(evaluation_lines(keep_all))
    assert "keeps 100.0% of the evidence sentences, removes 0.0%" in text
    assert "bm25" in text


def test_passage_weight_applies_within_each_query(tiny_pruner):
    ex = _examples()
    # (the tiny model's passage scores are 0.80 and 0.77 for the two zebra-lives passages:
    # weight 3 scales the second one's sentences by 0.89, from 0.78 / 0.73 to 0.69 / 0.64)
    off = evaluate_pruner(tiny_pruner, ex, threshold=0.66, baselines=[], n_boot=200)
    on = evaluate_pruner(
        tiny_pruner, ex, threshold=0.66, baselines=[], n_boot=200, passage_weight=3.0
    )
    assert off["passage_weight"] == 0.0 and on["passage_weight"] == 3.0
    # the two zebra-lives passages share a query: the lower-ranked one loses text; the third
    # passage is its query's only one and prunes as without the weight
    assert on["all_passages"]["compression"] > off["all_passages"]["compression"]
    lone = examples_from_records([ex[2].query], [TEXTS[2]], [["black and white stripes"]])
    same = [
        evaluate_pruner(tiny_pruner, lone, threshold=0.66, baselines=[], n_boot=200,
                        passage_weight=w)["evidence_passages"]
        for w in (0.0, 3.0)
    ]  # fmt: skip
    assert same[0] == same[1]
    assert "passage weight 3" in "\n".join(evaluation_lines(on))
    with pytest.raises(DataValidationError, match="passage_weight"):
        evaluate_pruner(tiny_pruner, ex, baselines=[], passage_weight=-1.0)


def test_same_seed_same_report_and_its_lines(tiny_pruner):
    ex = _examples()
    a = evaluate_pruner(tiny_pruner, ex, baselines=["bm25"], n_boot=200, random_state=3)
    b = evaluate_pruner(tiny_pruner, ex, baselines=["bm25"], n_boot=200, random_state=3)
    assert a == b or str(a) == str(b)  # NaN-safe equality
    assert evaluation_lines(a) == evaluation_lines(b)


def test_errors(tiny_pruner):
    ex = _examples()
    with pytest.raises(UnknownOptionError, match="valid: bm25, embedding"):
        evaluate_pruner(tiny_pruner, ex, baselines=["tfidf"])
    no_evidence = examples_from_records(["q"], [TEXTS[0]], [[]])
    with pytest.raises(DataValidationError, match="no passage holds evidence"):
        evaluate_pruner(tiny_pruner, no_evidence, baselines=["bm25"])
    with pytest.raises(DataValidationError, match="target_compression"):
        evaluate_pruner(tiny_pruner, ex, baselines=["bm25"], target_compression=1.0)
    with pytest.raises(DataValidationError, match="threshold"):
        evaluate_pruner(tiny_pruner, ex, threshold=1.5, baselines=["bm25"])
