from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.selection import SemDeDup


def _with_copies(n=200, dim=32, n_src=20, copies=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    src = rng.choice(n, size=n_src, replace=False)
    dup_rows, dup_src = [], []
    for s in src:
        for _ in range(copies):
            dup_rows.append(X[s] + 0.02 * rng.standard_normal(dim).astype(np.float32))
            dup_src.append(int(s))
    X = np.concatenate([X, np.array(dup_rows)])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, np.array(dup_src), src


def test_finds_planted_duplicates_and_reports_groups():
    X, dup_src, src = _with_copies()
    n = 200
    sel = SemDeDup(n_samples=150, random_state=0, n_clusters=8).fit(X)
    # exactly one member per planted group survives; random vectors are never near-duplicates
    assert sel.n_duplicates_ == len(dup_src)
    groups = {frozenset(g) for g in sel.duplicate_groups_}
    expected = {
        frozenset([int(s), *(n + np.flatnonzero(dup_src == s)).tolist()]) for s in src.tolist()
    }
    assert groups == expected
    for g in sel.duplicate_groups_:
        assert not sel.is_duplicate_[g[0]] and sel.is_duplicate_[g[1:]].all()
        assert all(sel.duplicate_of_[i] in g for i in g[1:])
    # the budget fits in the non-duplicates, so no duplicate is kept
    assert not sel.is_duplicate_[sel.selected_indices_].any()
    assert len(set(sel.selected_indices_.tolist())) == 150


def test_budget_larger_than_unique_adds_least_redundant_duplicates():
    X, dup_src, _ = _with_copies()
    n_unique = len(X) - len(dup_src)
    sel = SemDeDup(n_samples=n_unique + 5, random_state=0, n_clusters=8).fit(X)
    kept_dups = np.flatnonzero(sel.is_duplicate_ & sel.get_support())
    assert len(kept_dups) == 5
    dups = np.flatnonzero(sel.is_duplicate_)
    assert sel.max_similarity_[kept_dups].max() <= np.sort(sel.max_similarity_[dups])[4] + 1e-7


def test_fill_unique_prefers_low_redundancy_and_keep_rules():
    X, _, _ = _with_copies(seed=3)
    uniq = SemDeDup(n_samples=50, fill="unique", random_state=0, n_clusters=4).fit(X)
    order = np.argsort(uniq.max_similarity_, kind="stable")
    assert set(uniq.selected_indices_) == set(order[:50].tolist())
    assert np.all(uniq.scores_ == -uniq.max_similarity_)
    for keep in ("easy", "random"):
        s = SemDeDup(n_samples=50, keep=keep, random_state=0, n_clusters=4).fit(X)
        assert s.n_duplicates_ == uniq.n_duplicates_


def test_eps_controls_threshold_and_determinism():
    X, _, _ = _with_copies(seed=4)
    strict = SemDeDup(n_samples=10, eps=0.0, random_state=0, n_clusters=4).fit(X)
    assert strict.n_duplicates_ == 0
    a = SemDeDup(n_samples=60, random_state=9).fit(X)
    b = SemDeDup(n_samples=60, random_state=9).fit(X)
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)
    assert a.duplicate_groups_ == b.duplicate_groups_


def test_bad_options():
    X, _, _ = _with_copies()
    with pytest.raises(DataValidationError, match="fill"):
        SemDeDup(n_samples=3, fill="best").fit(X)
    with pytest.raises(DataValidationError, match="keep"):
        SemDeDup(n_samples=3, keep="far").fit(X)
