from __future__ import annotations

import numpy as np
import pytest

from dataprune.qtuning.groups import quantile_ranks, split_budget, within_group_ranks


def test_split_budget_is_proportional_and_sums_to_k():
    assert split_budget(500, np.array([1500, 500]), np.array([1500, 500])).tolist() == [375, 125]
    # largest remainders: quotas 3.33, 3.33, 3.33 -> the first (ties by size, then index) gets 4
    assert split_budget(10, np.array([3, 3, 3]), np.array([9, 9, 9])).tolist() == [4, 3, 3]
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(1, 50, size=rng.integers(1, 6))
        caps = np.minimum(sizes, rng.integers(0, 50, size=len(sizes)))
        k = int(rng.integers(0, caps.sum() + 1))
        out = split_budget(k, sizes, caps)
        assert out.sum() == k and np.all(out <= caps) and np.all(out >= 0)


def test_split_budget_gives_a_capped_groups_share_to_the_others():
    # the first group's quota (50) exceeds its 10 un-flagged samples: it keeps them all
    assert split_budget(100, np.array([100, 100]), np.array([10, 100])).tolist() == [10, 90]
    # the rest is shared in proportion among the uncapped groups
    assert split_budget(100, np.array([100, 100, 300]), np.array([5, 100, 300])).tolist() == [
        5,
        24,
        71,
    ]
    with pytest.raises(ValueError, match="exceeds the groups' capacity"):
        split_budget(11, np.array([5, 5]), np.array([5, 5]))


def test_quantile_ranks_average_ties_and_stay_within_groups():
    r = quantile_ranks(np.array([3.0, 1.0, 3.0, 2.0]))
    assert r.tolist() == pytest.approx([3.0 / 4, 0.5 / 4, 3.0 / 4, 1.5 / 4])
    codes = np.array([0, 1, 0, 1])
    w = within_group_ranks(np.array([5.0, 100.0, 1.0, 200.0]), codes)
    assert w.tolist() == pytest.approx([0.75, 0.25, 0.25, 0.75])
