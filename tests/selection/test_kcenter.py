"""k-center greedy: exactness against a naive implementation, both strategies, budget, memmap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.selection.kcenter import KCenterGreedy


def _clustered(n: int, dim: int = 16, n_clusters: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    X = centres[rng.integers(n_clusters, size=n)] + 0.3 * rng.standard_normal((n, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)


def _naive_kcenter(X: np.ndarray, k: int, start: list[int]):
    """Farthest-first traversal with full float64 distance rows (DeepCore-style reference)."""
    X = X.astype(np.float64)
    mind = np.full(len(X), np.inf)
    selected, dists = [], []
    for c in start:
        selected.append(c)
        mind = np.minimum(mind, np.linalg.norm(X - X[c], axis=1))
    mask = np.zeros(len(X), bool)
    mask[selected] = True
    while len(selected) < k:
        cand = np.where(mask, -1.0, mind)
        c = int(np.argmax(cand))  # smallest index among ties
        selected.append(c)
        dists.append(mind[c])
        mask[c] = True
        mind = np.minimum(mind, np.linalg.norm(X - X[c], axis=1))
    return np.array(selected), np.array(dists), mind


@pytest.mark.parametrize("algorithm", ["full", "batched"])
def test_matches_naive_implementation(algorithm):
    X = _clustered(600)
    sel = KCenterGreedy(
        n_samples=60, initial_centers=[17], algorithm=algorithm, batch_size=7, pool_size=50
    ).fit(X)
    ref_sel, ref_d, ref_mind = _naive_kcenter(X, 60, [17])
    np.testing.assert_array_equal(sel.selected_indices_, ref_sel)
    np.testing.assert_allclose(sel.scores_[ref_sel[1:]], ref_d, atol=1e-5)
    np.testing.assert_allclose(sel.min_distances_, ref_mind, atol=1e-5)
    assert sel.coverage_radius_ == pytest.approx(ref_mind.max(), abs=1e-5)
    assert sel.algorithm_ == algorithm


def test_random_start_matches_naive_both_strategies():
    X = _clustered(3000, dim=24, n_clusters=40, seed=3)
    full = KCenterGreedy(n_samples=300, random_state=5, algorithm="full").fit(X)
    batched = KCenterGreedy(
        n_samples=300, random_state=5, algorithm="batched", batch_size=32, pool_size=200
    ).fit(X)
    ref_sel, _, _ = _naive_kcenter(X, 300, [int(full.selected_indices_[0])])
    np.testing.assert_array_equal(full.selected_indices_, ref_sel)
    np.testing.assert_array_equal(batched.selected_indices_, ref_sel)
    np.testing.assert_allclose(batched.min_distances_, full.min_distances_, atol=1e-5)
    np.testing.assert_array_equal(batched.nearest_center_, full.nearest_center_)
    assert full.n_distance_evaluations_ == 3000 * 300


def test_greedy_is_within_twice_the_optimal_radius():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 3)).astype(np.float32)
    k = 3
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    best = min(D[:, list(S)].min(axis=1).max() for S in itertools.combinations(range(10), k))
    for start in range(10):
        r = KCenterGreedy(n_samples=k, initial_centers=[start]).fit(X).coverage_radius_
        assert r <= 2 * best + 1e-5


def test_scores_direction_and_fitted_attributes():
    X = _clustered(800, seed=2)
    sel = KCenterGreedy(fraction=0.1, random_state=0).fit(X)
    s = sel.selected_indices_
    assert len(s) == 80 and len(np.unique(s)) == 80
    kept = sel.scores_[s]
    assert np.all(np.diff(kept) <= 1e-7)  # non-increasing along the selection order
    rest = np.delete(sel.scores_, s)
    assert kept.min() >= rest.max() - 1e-7  # higher = keep
    np.testing.assert_array_equal(sel.min_distances_[s], 0.0)
    np.testing.assert_allclose(rest, np.delete(sel.min_distances_, s), rtol=1e-6)
    assert set(np.unique(sel.nearest_center_)) <= set(s.tolist())
    d = np.linalg.norm(X - X[sel.nearest_center_], axis=1)
    np.testing.assert_allclose(d, sel.min_distances_, atol=1e-5)
    np.testing.assert_array_equal(np.sort(sel.ranking_[s]), np.arange(80))
    assert sel.get_support().sum() == 80


def test_initial_centers_and_errors():
    X = _clustered(200)
    sel = KCenterGreedy(n_samples=10, initial_centers=[5, 9, 100]).fit(X)
    np.testing.assert_array_equal(sel.selected_indices_[:3], [5, 9, 100])
    assert len(sel.selected_indices_) == 10
    assert np.all(sel.scores_[[5, 9, 100]] >= sel.scores_[sel.selected_indices_[3]])
    with pytest.raises(DataValidationError, match="outside"):
        KCenterGreedy(n_samples=5, initial_centers=[200]).fit(X)
    with pytest.raises(DataValidationError, match="duplicate"):
        KCenterGreedy(n_samples=5, initial_centers=[1, 1]).fit(X)
    with pytest.raises(DataValidationError, match="budget"):
        KCenterGreedy(n_samples=2, initial_centers=[1, 2, 3]).fit(X)
    with pytest.raises(UnknownOptionError, match="batched"):
        KCenterGreedy(n_samples=2, algorithm="fastest").fit(X)
    with pytest.raises(DataValidationError, match="pool_size"):
        KCenterGreedy(n_samples=2, pool_size=0).fit(X)
    with pytest.raises(DataValidationError):
        KCenterGreedy(n_samples=0).fit(X)
    with pytest.raises(DataValidationError):
        KCenterGreedy(n_samples=201).fit(X)
    bad = X.copy()
    bad[7, 0] = np.nan
    with pytest.raises(DataValidationError, match="NaN"):
        KCenterGreedy(n_samples=5).fit(bad)


def test_params_are_stored_unchanged():
    init = [3, 4]
    sel = KCenterGreedy(n_samples=5, initial_centers=init, algorithm="full", block_size=7)
    params = sel.get_params()
    assert params["initial_centers"] is init
    assert params["block_size"] == 7 and params["algorithm"] == "full"
    assert "KCenterGreedy(" in repr(sel)


@pytest.mark.parametrize("algorithm", ["full", "batched"])
def test_exact_duplicates_never_reselect(algorithm):
    base = _clustered(30, dim=8)
    X = np.repeat(base, 4, axis=0)  # 120 rows, 30 distinct
    sel = KCenterGreedy(
        n_samples=100, random_state=0, algorithm=algorithm, batch_size=8, pool_size=16
    ).fit(X)
    s = sel.selected_indices_
    assert len(np.unique(s)) == 100
    # the first 30 picks cover every distinct point; the rest are exact copies at distance 0
    assert len({X[i].tobytes() for i in s[:30]}) == 30
    np.testing.assert_array_equal(sel.scores_[s[30:]], 0.0)
    ref_sel, _, _ = _naive_kcenter(X, 100, [int(s[0])])
    np.testing.assert_array_equal(s, ref_sel)


def test_memmap_input_not_copied_or_modified(tmp_path):
    X = _clustered(2500, dim=32, seed=4)
    path = tmp_path / "emb.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    a = KCenterGreedy(n_samples=100, random_state=1, algorithm="batched", pool_size=64).fit(mm)
    b = KCenterGreedy(n_samples=100, random_state=1, algorithm="full").fit(X)
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)
    np.testing.assert_array_equal(np.load(path), X)


def test_auto_uses_batched_for_large_budgets():
    from threadpoolctl import threadpool_info

    X = _clustered(6000, dim=8, n_clusters=50, seed=6)
    before = [p["num_threads"] for p in threadpool_info()]
    sel = KCenterGreedy(n_samples=300, random_state=0).fit(X)
    assert [p["num_threads"] for p in threadpool_info()] == before  # BLAS threads restored
    assert sel.algorithm_ == "batched"
    full = KCenterGreedy(n_samples=300, random_state=0, algorithm="full").fit(X)
    np.testing.assert_array_equal(sel.selected_indices_, full.selected_indices_)
    small = KCenterGreedy(n_samples=10, random_state=0).fit(X[:500])
    assert small.algorithm_ == "full"


def test_float64_and_list_inputs():
    X = _clustered(100)
    a = KCenterGreedy(n_samples=10, random_state=0).fit(X.astype(np.float64))
    b = KCenterGreedy(n_samples=10, random_state=0).fit(X.tolist())
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    dim=st.integers(1, 5),
    frac=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**16),
    algorithm=st.sampled_from(["full", "batched"]),
)
def test_property_budget_unique_deterministic(n, dim, frac, seed, algorithm):
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)  # many exact ties/duplicates
    k = max(1, min(n, round(frac * n)))
    a = KCenterGreedy(
        n_samples=k, random_state=seed, algorithm=algorithm, batch_size=3, pool_size=5
    ).fit(X)
    b = KCenterGreedy(
        n_samples=k, random_state=seed, algorithm=algorithm, batch_size=3, pool_size=5
    ).fit(X)
    s = a.selected_indices_
    assert len(s) == k and len(np.unique(s)) == k
    np.testing.assert_array_equal(s, b.selected_indices_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    ref_sel, _, _ = _naive_kcenter(X, k, [int(s[0])])
    np.testing.assert_array_equal(s, ref_sel)
