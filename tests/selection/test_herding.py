from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.selection import Herding, RandomSelector


def _gap(X: np.ndarray, idx: np.ndarray) -> float:
    return float(np.linalg.norm(X[idx].mean(axis=0) - X.mean(axis=0)))


def test_mean_matches_far_better_than_random_subsets():
    X = np.random.default_rng(0).standard_normal((3000, 48))
    h = Herding(n_samples=32).fit(X)
    random_gaps = [
        _gap(X, RandomSelector(n_samples=32, random_state=s).fit(X).selected_indices_)
        for s in range(50)
    ]
    assert _gap(X, h.selected_indices_) < 0.5 * min(random_gaps)
    assert h.mean_gap_.shape == (32,)
    assert h.mean_gap_[-1] == pytest.approx(_gap(X, h.selected_indices_))


def test_first_pick_is_the_record_nearest_the_mean_and_ties_go_to_the_lower_index():
    X = np.array([[0.0, 0.0], [4.0, 0.0], [-4.0, 0.0], [0.0, 0.0]])
    h = Herding(n_samples=3).fit(X)
    assert h.selected_indices_[0] == 0
    assert h.scores_.argmax() == 0
    # after one record at the mean, the two opposite ones keep it there: +4 then -4 (or reverse)
    assert set(h.selected_indices_[1:].tolist()) <= {1, 2, 3}


def test_every_record_when_the_budget_is_everything():
    X = np.random.default_rng(1).standard_normal((7, 3))
    h = Herding(n_samples=7).fit(X)
    assert sorted(h.selected_indices_.tolist()) == list(range(7))
    assert h.mean_gap_[-1] == pytest.approx(0.0, abs=1e-12)


def test_non_finite_embedding_names_the_record():
    X = np.zeros((4, 2))
    X[2, 1] = np.nan
    with pytest.raises(DataValidationError, match="record 2"):
        Herding(n_samples=2).fit(X)
