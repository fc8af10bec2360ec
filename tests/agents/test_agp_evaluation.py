"""``evaluate_agp``: AGP against the per-position majority on random splits of the records."""

from __future__ import annotations

import numpy as np
import pytest

from dataprune.agents import AGPConfig
from dataprune.agents.agp.evaluation import (
    METRICS,
    AGPEvaluation,
    evaluate_agp,
    majority_prediction,
    mask_scores,
)
from dataprune.agents.records import validate_agp_records
from dataprune.errors import DataValidationError

FAST = AGPConfig(hidden_dim=16, epochs=20)


def _record(task: str, keep: list[int]) -> dict:
    n = len(keep)
    edge = [[float(keep[i] and keep[j] and i != j) for j in range(n)] for i in range(n)]
    return {"task": task, "edge_weight": edge, "mask": [1 - k for k in keep]}


def _query_dependent(n_per_type: int = 30) -> list[dict]:
    """Arithmetic questions keep agents 0 and 1, coding requests agents 2 and 3."""
    recs = []
    for i in range(n_per_type):
        recs.append(_record(f"What is {i + 3} times {2 * i + 7}? Give the number.", [1, 1, 0, 0]))
        recs.append(
            _record(f"Write a Python function that reverses list number {i}.", [0, 0, 1, 1])
        )
    return recs


def test_mask_scores_and_majority():
    keep = np.array([[1, 0, 1], [1, 1, 0]], dtype=float)
    edge = np.zeros((2, 3, 3))
    edge[0, 0, 2] = 1.0
    s = mask_scores(keep, edge, keep > 0.5, edge)
    assert s == {
        "node_mask_accuracy": 1.0,
        "exact_mask_rate": 1.0,
        "edge_accuracy": 1.0,
        "edge_mae": 0.0,
    }
    pred = np.array([[True, True, True], [True, True, True]])
    s = mask_scores(keep, edge, pred, np.full((2, 3, 3), 0.5))
    assert s["node_mask_accuracy"] == pytest.approx(4 / 6) and s["exact_mask_rate"] == 0.0
    assert s["edge_mae"] == pytest.approx(0.5) and s["edge_accuracy"] == pytest.approx(1 / 12)
    train = validate_agp_records(
        [_record("a", [1, 1, 0]), _record("b", [1, 0, 0]), _record("c", [1, 1, 1])]
    )
    k, e = majority_prediction(train, 4)
    assert k.shape == (4, 3) and k[0].tolist() == [True, True, False]
    assert e.shape == (4, 3, 3) and e[2, 0, 1] == pytest.approx(2 / 3)


def test_agp_beats_the_fixed_topology_when_the_query_decides(isolated_cache):
    """Real MiniLM: two query types with opposite agent sets; the majority gets half right."""
    ev = evaluate_agp(_query_dependent(), config=FAST, n_splits=3, random_state=0)
    assert len(ev.splits) == 3 and all(s["n_test"] == 12 for s in ev.splits)
    assert ev.mean("agp", "node_mask_accuracy") > 0.9
    assert ev.mean("majority", "node_mask_accuracy") < 0.75
    assert ev.paired("node_mask_accuracy")["verdict"] == "better"
    assert "better than one fixed set" in ev.lines()[-1]
    d = ev.to_dict()
    assert set(d["paired"]) == set(METRICS) and d["config"]["epochs"] == 20


def test_same_seed_same_report(hashing_encoder):
    recs = _query_dependent(10)
    a = evaluate_agp(recs, config=FAST, encoder=hashing_encoder, n_splits=2, random_state=4)
    b = evaluate_agp(recs, config=FAST, encoder=hashing_encoder, n_splits=2, random_state=4)
    assert a.splits == b.splits


def test_paired_verdicts_follow_each_metrics_direction():
    def ev(agp, maj):
        splits = [
            {
                "n_train": 8,
                "n_test": 2,
                "agp": dict(zip(METRICS, a)),
                "majority": dict(zip(METRICS, m)),
            }
            for a, m in zip(agp, maj)
        ]
        return AGPEvaluation(splits, n_records=10, n_agents=3, test_fraction=0.2, random_state=0)

    good = ev(
        [(0.9, 0.5, 0.9, 0.1), (0.91, 0.5, 0.9, 0.11)],
        [(0.5, 0.5, 0.9, 0.3), (0.52, 0.5, 0.9, 0.31)],
    )
    assert good.paired("node_mask_accuracy")["verdict"] == "better"
    assert good.paired("edge_mae")["verdict"] == "better"  # lower error
    assert good.paired("exact_mask_rate")["verdict"] == "no significant difference"
    bad = ev(
        [(0.5, 0.5, 0.9, 0.3), (0.52, 0.5, 0.9, 0.31)],
        [(0.9, 0.5, 0.9, 0.1), (0.91, 0.5, 0.9, 0.11)],
    )
    assert bad.paired("node_mask_accuracy")["verdict"] == "worse"
    assert "worse than one fixed set" in bad.lines()[-1]
    one = ev([(0.9, 0.5, 0.9, 0.1)], [(0.5, 0.5, 0.9, 0.3)])
    assert one.paired("node_mask_accuracy")["ci"] is None
    with pytest.raises(DataValidationError, match="unknown metric 'f1'"):
        good.paired("f1")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_splits": 0}, "n_splits: expected an integer >= 1"),
        ({"test_fraction": 1.0}, r"test_fraction: expected a number in \(0, 1\)"),
        ({"test_fraction": "0.2"}, r"test_fraction: expected a number in \(0, 1\)"),
    ],
)
def test_bad_options(hashing_encoder, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        evaluate_agp(_query_dependent(5), encoder=hashing_encoder, **kwargs)


def test_too_few_records_to_split(hashing_encoder):
    with pytest.raises(DataValidationError, match="2 records: too few to hold out 1"):
        evaluate_agp(_query_dependent(1), encoder=hashing_encoder)
