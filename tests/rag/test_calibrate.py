"""calibrate_threshold: the smallest threshold reaching a target compression, from one scoring."""

from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.rag import ThresholdCalibration, calibrate_threshold
from dataprune.rag.inference import PassageScores
from dataprune.rag.pruner import ContextPruner
from dataprune.rag.sentences import split_sentences

# four sentences of 10 characters each: compression moves in steps of 0.25 per passage
A = "Aaaaa aaa. Bbbbb bbb. Ccccc ccc. Ddddd ddd."
B = "Eeeee eee. Fffff fff. Ggggg ggg. Hhhhh hhh."
# probabilities exact in float32 (the token probabilities are float32)
PROBS = {A: [0.0625, 0.25, 0.5, 0.875], B: [0.125, 0.375, 0.625, 0.9375]}


class StubPruner(ContextPruner):
    """Scores from a table (one token per sentence); counts calls to ``score``."""

    def __init__(self) -> None:
        super().__init__(model=None, tokenizer=None)
        self.calls = 0

    def score(self, queries, passages, *, show_progress_bar=None):
        self.calls += 1
        out = []
        for ps in passages:
            row = []
            for p in ps:
                sents = split_sentences(p)
                probs = PROBS.get(p, [0.5] * len(sents))
                tp = [np.array([x], dtype=np.float32) for x in probs]
                row.append(PassageScores(sents, tp, np.ones(len(sents), int), 0.5, 0.0, 1))
            out.append(row)
        return out


def test_smallest_grid_threshold_reaching_the_target():
    pr = StubPruner()
    cal = calibrate_threshold(pr, ["q"], [[A, B]], target_compression=0.5, on="all")
    assert isinstance(cal, ThresholdCalibration) and pr.calls == 1
    # a sentence goes once its probability is <= t; mean compression >= 0.5 first holds at
    # t = 0.375 (A: 0.0625, 0.25 dropped -> 0.5; B: 0.125, 0.375 dropped -> 0.5)
    assert cal.threshold == pytest.approx(0.375)
    assert cal.compression == pytest.approx(0.5) and cal.n_passages == 2
    assert cal.recall is None and cal.target_compression == 0.5
    # one grid step lower does not reach it
    below = calibrate_threshold(pr, ["q"], [[A, B]], target_compression=0.5 + 1e-9, on="all")
    assert below.threshold > cal.threshold


def test_exact_breakpoints_and_consistency_with_prune_selection():
    pr = StubPruner()
    cal = calibrate_threshold(pr, "q", [A, B], target_compression=0.6, on="all", step=None)
    # >= 0.6 needs five of the eight sentences gone: the fifth lowest probability, 0.5
    assert cal.threshold == 0.5 and cal.compression == pytest.approx(0.625)
    off_grid = calibrate_threshold(pr, "q", [A, B], target_compression=0.1, on="all", step=None)
    assert off_grid.threshold == 0.0625  # exact, not on the 0.005 grid
    grid = calibrate_threshold(pr, "q", [A, B], target_compression=0.1, on="all")
    assert grid.threshold == pytest.approx(0.065)


def test_answer_bearing_passages_and_recall():
    pr = StubPruner()
    labels = [[[0, 0, 1, 1], [0, 0, 0, 0]]]  # only A holds an answer
    cal = calibrate_threshold(pr, ["q"], [[A, B]], labels, target_compression=0.5)
    assert cal.n_passages == 1
    assert cal.threshold == pytest.approx(0.25) and cal.compression == pytest.approx(0.5)
    assert cal.recall == pytest.approx(1.0)
    hard = calibrate_threshold(pr, ["q"], [[A, B]], labels, target_compression=0.75)
    assert hard.threshold == pytest.approx(0.5) and hard.recall == pytest.approx(0.5)
    every = calibrate_threshold(pr, ["q"], [[A, B]], labels, target_compression=0.5, on="all")
    assert every.n_passages == 2 and every.recall == pytest.approx(1.0)


def test_title_rule_is_applied():
    pr = StubPruner()
    cal = calibrate_threshold(
        pr, "q", [A], target_compression=1.0, on="all", always_select_title=True
    )
    # with the title rule the title goes once the last other sentence (0.875) goes
    assert cal.threshold == pytest.approx(0.875) and cal.compression == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": None}, "on='answer_bearing' needs per-sentence labels"),
        ({"labels": [[[0, 1, 0, 0]]]}, r"labels\[0\]: expected a list of 2 label lists"),
        ({"labels": [[[0, 1], [0, 0, 0, 0]]]}, r"labels\[0\]\[0\]: expected 4 labels"),
        ({"labels": [[[0, 2, 0, 0], [0, 0, 0, 0]]]}, r"labels\[0\]\[0\]: expected only 0 and 1"),
        ({"labels": [[[0] * 4, [0] * 4]]}, "no answer-bearing passages"),
        ({"target_compression": 1.5, "on": "all"}, "target_compression: expected a number"),
        ({"on": "some"}, "on: expected 'answer_bearing' or 'all'"),
        ({"on": "all", "step": 0}, "step: expected a number"),
        ({"on": "all", "aggregation": "max"}, "unknown aggregation"),
    ],
)
def test_bad_arguments_give_clear_errors(kwargs, match):
    pr = StubPruner()
    kw = {"target_compression": 0.5, **kwargs}
    labels = kw.pop("labels", None)
    with pytest.raises(Exception, match=match) as err:
        calibrate_threshold(pr, ["q"], [[A, B]], labels, **kw)
    assert "\n" not in str(err.value)
    if "aggregation" not in kwargs:
        assert isinstance(err.value, DataValidationError)
    assert pr.calls == 0  # checked before any scoring


def test_mismatched_queries_and_passages():
    with pytest.raises(DataValidationError, match="2 queries but 1 passage lists"):
        calibrate_threshold(StubPruner(), ["q", "r"], [[A]], target_compression=0.5, on="all")


def test_calibrated_threshold_gives_the_compression_when_pruning(default_pruner):
    queries = ["When was Warsaw founded?", "Where does the zebra live?"]
    passages = [
        [
            "Warsaw was founded in the 13th century. The river Vistula flows through Warsaw. "
            "Its old town was rebuilt after the war.",
            "Paris is the capital of France. Berlin is in Germany. Madrid is in Spain.",
        ],
        ["The zebra lives in Africa. It has stripes. Dogs bark loudly at night."],
    ]
    calls = []
    score = default_pruner.score

    def counting(*a, **k):
        calls.append(1)
        return score(*a, **k)

    default_pruner.score = counting
    try:
        cal = calibrate_threshold(
            default_pruner, queries, passages, target_compression=0.5, on="all"
        )
    finally:
        del default_pruner.score
    assert len(calls) == 1
    out = default_pruner.prune_batch(queries, passages, threshold=cal.threshold)
    comps = [p.compression_chars for ps in out for p in ps]
    assert np.mean(comps) == pytest.approx(cal.compression) and cal.compression >= 0.5
    lower = default_pruner.prune_batch(queries, passages, threshold=cal.threshold - 0.005)
    assert np.mean([p.compression_chars for ps in lower for p in ps]) < 0.5
