"""weight_by_passage: a query's passages weighted by their score relative to its best one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.rag import calibrate_threshold
from dataprune.rag.inference import PassageScores
from dataprune.rag.passage_weight import DEFAULT_PASSAGE_WEIGHT, weight_by_passage
from dataprune.rag.pruner import ContextPruner
from dataprune.rag.selection import select_passages
from dataprune.rag.sentences import split_sentences

TEXTS = ["Aaaaa aaa. Bbbbb bbb.", "Ccccc ccc. Ddddd ddd.", "Eeeee eee. Fffff fff."]


def _scores(text: str, probs: list[float], passage_score: float) -> PassageScores:
    sents = split_sentences(text)
    tp = [np.array([p], dtype=np.float32) for p in probs]
    return PassageScores(sents, tp, np.ones(len(sents), int), passage_score, 0.0, 1)


def test_each_passage_is_scaled_by_its_score_relative_to_the_best():
    sc = [_scores(TEXTS[0], [0.5, 0.25], 0.8), _scores(TEXTS[1], [0.5, 0.25], 0.4)]
    before = [p.copy() for s in sc for p in s.token_probs]
    out = weight_by_passage(sc, 2.0)
    assert out[0] is sc[0]  # the best passage keeps its scores
    np.testing.assert_allclose(out[1].sentence_scores, [0.5 * 0.25, 0.25 * 0.25], rtol=1e-6)
    assert out[1].passage_score == 0.4 and out[1].token_probs[0].dtype == np.float32
    assert all(np.array_equal(a, b) for a, b in zip(before, (p for s in sc for p in s.token_probs)))
    # a larger weight scales harder; 0 is off
    assert out[1].sentence_scores[0] < weight_by_passage(sc, 1.0)[1].sentence_scores[0]
    assert weight_by_passage(sc, 0.0) == sc


def test_a_single_passage_or_all_zero_passage_scores_are_left_as_they_are():
    one = [_scores(TEXTS[0], [0.5, 0.25], 0.1)]
    assert weight_by_passage(one, 5.0)[0] is one[0]
    zeros = [_scores(TEXTS[0], [0.5, 0.25], 0.0), _scores(TEXTS[1], [0.5, 0.25], 0.0)]
    assert all(a is b for a, b in zip(weight_by_passage(zeros, 2.0), zeros))


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True, "2"])
def test_bad_weights_give_one_clear_error(bad):
    with pytest.raises(DataValidationError, match="passage_weight must be a finite number >= 0"):
        weight_by_passage([_scores(TEXTS[0], [0.5, 0.5], 0.5)], bad)


def test_selection_drops_sentences_of_passages_ranked_well_below_the_best():
    sc = [_scores(TEXTS[0], [0.9, 0.3], 0.9), _scores(TEXTS[1], [0.9, 0.3], 0.3)]
    off = select_passages(TEXTS[:2], sc, threshold=0.2, passage_weight=0.0)
    on = select_passages(TEXTS[:2], sc, threshold=0.2, passage_weight=2.0)
    assert [r.kept_sentences for r in off] == [[0, 1], [0, 1]]
    # second passage at 1/3 of the best: 0.9 / 9 = 0.1 and 0.3 / 9 fall below 0.2
    assert [r.kept_sentences for r in on] == [[0, 1], []]
    assert on[1].sentence_scores == pytest.approx([0.1, 0.3 / 9], rel=1e-6)
    # budgets see the weighted scores: the low-ranked passage's sentences go first
    budget = select_passages(TEXTS[:2], sc, threshold=0.0, passage_weight=2.0, rate=0.5)
    assert [r.kept_sentences for r in budget] == [[0, 1], []]


class TablePruner(ContextPruner):
    """Scores from a table: (token probabilities, passage score) per passage text."""

    def __init__(self) -> None:
        super().__init__(model=None, tokenizer=None)
        self.table = {
            TEXTS[0]: ([0.9, 0.3], 0.9),
            TEXTS[1]: ([0.9, 0.3], 0.3),
            TEXTS[2]: ([0.6, 0.1], 0.2),
        }

    def score(self, queries, passages, *, show_progress_bar=None):
        return [[_scores(p, *self.table[p]) for p in ps] for ps in passages]


def test_calibration_weights_within_each_query_not_across_the_pool():
    pr = TablePruner()
    # one passage per query: the weight changes nothing, whatever the passage scores
    single = [calibrate_threshold(pr, ["q", "r", "s"], [[t] for t in TEXTS],
                                  target_compression=0.5, on="all", passage_weight=w)
              for w in (0.0, 2.0)]  # fmt: skip
    assert single[0] == single[1]
    # both passages with one query: the second is scaled by (0.3 / 0.9) ** 2 to [0.1, 0.033],
    # so dropping the first passage's weaker sentence (0.3) and all of the second reaches 0.7;
    # unweighted, both passages keep their 0.9 sentence until the threshold reaches it
    kw = {"target_compression": 0.7, "on": "all", "step": None}
    together = calibrate_threshold(pr, "q", TEXTS[:2], passage_weight=2.0, **kw)
    assert together.threshold == pytest.approx(0.3)
    assert calibrate_threshold(
        pr, "q", TEXTS[:2], passage_weight=0.0, **kw
    ).threshold == pytest.approx(0.9)


def test_the_shipped_pruner_keeps_a_lone_passage_as_it_is_and_never_keeps_more(default_pruner):
    q = "Where does the zebra live?"
    best = "The zebra lives in Africa. It has black and white stripes."
    other = "Paris is the capital of France. The Seine flows through Paris."
    alone = [default_pruner.prune(q, [best], passage_weight=w)[0] for w in (0.0, 4.0)]
    assert alone[0].kept_sentences == alone[1].kept_sentences
    assert alone[0].sentence_scores == alone[1].sentence_scores
    off = default_pruner.prune(q, [best, other], threshold=0.01)
    on = default_pruner.prune(q, [best, other], threshold=0.01, passage_weight=2.0)
    assert on[0].passage_score > on[1].passage_score  # the ranker puts the zebra first
    assert on[0].kept_sentences == off[0].kept_sentences
    assert set(on[1].kept_sentences) <= set(off[1].kept_sentences)
    assert max(on[1].sentence_scores) < max(off[1].sentence_scores)


def test_off_by_default_so_default_calls_prune_as_before():
    # the held-out multi-hop benchmark does not support turning it on (module docstring)
    assert DEFAULT_PASSAGE_WEIGHT == 0.0
    sc = [_scores(TEXTS[0], [0.9, 0.3], 0.9), _scores(TEXTS[1], [0.9, 0.3], 0.1)]
    assert [r.kept_sentences for r in select_passages(TEXTS[:2], sc, threshold=0.2)] == [
        [0, 1],
        [0, 1],
    ]
