from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.selection import (
    ClassBalancedSelector,
    LongestSelector,
    RandomSelector,
    ScoreSelector,
)


def test_random_exact_budget_unique_and_deterministic():
    X = np.zeros((100, 3))
    a = RandomSelector(n_samples=37, random_state=1).fit(X)
    b = RandomSelector(n_samples=37, random_state=1).fit(X)
    c = RandomSelector(n_samples=37, random_state=2).fit(X)
    assert len(a.selected_indices_) == 37 == len(set(a.selected_indices_.tolist()))
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)
    assert set(a.selected_indices_) != set(c.selected_indices_)
    assert a.get_support().sum() == 37


def test_random_budgets_are_nested_and_ranking_is_a_permutation():
    X = np.zeros((50, 1))
    small = RandomSelector(n_samples=10, random_state=3).fit(X)
    big = RandomSelector(n_samples=30, random_state=3).fit(X)
    assert set(small.selected_indices_) <= set(big.selected_indices_)
    assert sorted(big.ranking_.tolist()) == list(range(50))


def test_random_is_roughly_uniform():
    X = np.zeros((20, 1))
    counts = np.zeros(20)
    for seed in range(400):
        counts[RandomSelector(n_samples=5, random_state=seed).fit(X).selected_indices_] += 1
    # each index is kept with probability 1/4 -> expected 100 of 400
    assert counts.min() > 60 and counts.max() < 140


def test_class_balanced_equal_quotas_and_small_classes():
    y = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 4)
    sel = ClassBalancedSelector(n_samples=40, random_state=0).fit(np.zeros(len(y)), y)
    kept = y[sel.selected_indices_]
    counts = {c: int((kept == c).sum()) for c in "abc"}
    assert counts == {"a": 18, "b": 18, "c": 4}
    assert sel.quota_.tolist() == [18, 18, 4]
    assert sel.classes_.tolist() == ["a", "b", "c"]


def test_class_balanced_remainder_and_full_budget():
    y = np.repeat([0, 1, 2], 10)
    sel = ClassBalancedSelector(n_samples=8, random_state=0).fit(np.zeros(30), y)
    q = np.bincount(y[sel.selected_indices_], minlength=3)
    assert sorted(q.tolist()) == [2, 3, 3]
    full = ClassBalancedSelector(fraction=1.0, random_state=0).fit(np.zeros(30), y)
    assert sorted(full.selected_indices_.tolist()) == list(range(30))


def test_class_balanced_needs_labels():
    with pytest.raises(DataValidationError, match="labels"):
        ClassBalancedSelector(n_samples=2).fit(np.zeros(5))
    with pytest.raises(DataValidationError, match="missing label"):
        ClassBalancedSelector(n_samples=2).fit(np.zeros(3), [1, None, 2])
    with pytest.raises(DataValidationError, match="expected 3 labels"):
        ClassBalancedSelector(n_samples=2).fit(np.zeros(3), [1, 2])


def test_score_selector_high_low_and_ties():
    s = np.array([0.5, 0.9, 0.1, 0.9, 0.3])
    assert ScoreSelector(n_samples=2).fit(s).selected_indices_.tolist() == [1, 3]
    assert ScoreSelector(n_samples=2, keep="low").fit(s).selected_indices_.tolist() == [2, 4]
    assert ScoreSelector(n_samples=2, keep="hard").fit(s).selected_indices_.tolist() == [1, 3]
    assert ScoreSelector(n_samples=2, keep="easy").fit(s).selected_indices_.tolist() == [2, 4]


def test_score_selector_offset_skips_most_extreme():
    s = np.arange(10, dtype=float)  # record i has score i
    sel = ScoreSelector(n_samples=3, offset=0.2).fit(s)
    assert sel.selected_indices_.tolist() == [7, 6, 5]
    assert sel.n_offset_ == 2
    # a budget that does not fit after the offset adds back the skipped ones nearest the boundary
    big = ScoreSelector(n_samples=9, offset=0.2).fit(s)
    assert big.n_offset_ == 1
    assert 9 not in big.selected_indices_ and 8 in big.selected_indices_
    # scores_ follow the preference: kept >= not kept
    assert big.scores_[big.selected_indices_].min() > big.scores_[9]


@pytest.mark.parametrize("bad", [[1.0, np.nan, 2.0], [1.0, np.inf, 0.0]])
def test_score_selector_rejects_non_finite(bad):
    with pytest.raises(DataValidationError, match="finite"):
        ScoreSelector(n_samples=1).fit(np.array(bad))


def test_score_selector_rejects_bad_options():
    with pytest.raises(DataValidationError, match="offset"):
        ScoreSelector(n_samples=1, offset=1.0).fit([1.0, 2.0])
    with pytest.raises(DataValidationError, match="keep"):
        ScoreSelector(n_samples=1, keep="middle").fit([1.0, 2.0])
    with pytest.raises(DataValidationError, match="one scores value per record"):
        ScoreSelector(n_samples=1).fit(np.zeros((3, 2)))


def test_longest():
    lengths = [5, 1, 9, 2, 9]
    assert LongestSelector(n_samples=3).fit(lengths).selected_indices_.tolist() == [2, 4, 0]
    with pytest.raises(DataValidationError, match=">= 0"):
        LongestSelector(n_samples=1).fit([3, -1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 0}, ">= 1"),
        ({"n_samples": 11}, "more than the 10"),
        ({"fraction": 0.0}, r"\(0, 1\]"),
        ({"fraction": 1.5}, r"\(0, 1\]"),
        ({}, "exactly one"),
        ({"n_samples": 2, "fraction": 0.5}, "exactly one"),
    ],
)
def test_budget_errors(kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        RandomSelector(**kwargs).fit(np.zeros((10, 2)))
