from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.selection import CCS


def test_drops_hardest_beta_and_exact_budget():
    rng = np.random.default_rng(0)
    s = rng.random(1000)
    sel = CCS(n_samples=200, beta=0.1, random_state=0).fit(s)
    hardest = np.argsort(-s)[:100]
    assert not set(hardest.tolist()) & set(sel.selected_indices_.tolist())
    assert sel.n_dropped_hard_ == 100
    assert len(np.unique(sel.selected_indices_)) == 200
    assert (sel.stratum_[hardest] == -1).all()


def test_allocation_rule_smallest_strata_first():
    # strata sizes 1, 2, 3 and 94 over 4 equal-width strata; budget 20
    s = np.concatenate([[0.1], [0.3] * 2, [0.6] * 3, np.linspace(0.76, 1.0, 94)])
    s = np.concatenate([[0.0], s])  # the minimum sets the range start
    sel = CCS(n_samples=20, beta=0.0, n_strata=4, random_state=0).fit(s)
    # sizes: [0.0, 0.1] -> 2, [0.3]x2 -> 2, [0.6]x3 -> 3, rest -> 94
    assert sel.n_per_stratum_.tolist() == [2, 2, 3, 13]


def test_coverage_beats_density_on_skewed_scores():
    rng = np.random.default_rng(1)
    s = np.concatenate([rng.random(900) * 0.1, 0.1 + rng.random(100) * 0.9])  # few hard ones
    sel = CCS(n_samples=100, beta=0.0, random_state=0).fit(s)
    frac_hard = (s[sel.selected_indices_] > 0.1).mean()
    assert frac_hard > 0.5  # random would keep ~10% hard records


def test_beta_reduced_when_budget_needs_the_records():
    s = np.arange(10, dtype=float)
    sel = CCS(n_samples=10, beta=0.5, random_state=0).fit(s)
    assert sel.n_dropped_hard_ == 0 and len(sel.selected_indices_) == 10


def test_constant_scores_and_determinism():
    sel = CCS(n_samples=5, random_state=1).fit(np.ones(30))
    assert len(sel.selected_indices_) == 5
    a = CCS(fraction=0.3, random_state=4).fit(np.linspace(0, 1, 100))
    b = CCS(fraction=0.3, random_state=4).fit(np.linspace(0, 1, 100))
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)


def test_bad_options():
    with pytest.raises(DataValidationError, match="beta"):
        CCS(n_samples=2, beta=1.0).fit(np.ones(5))
    with pytest.raises(DataValidationError, match="n_strata"):
        CCS(n_samples=2, n_strata=0).fit(np.ones(5))
