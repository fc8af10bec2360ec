"""Facility location: lazy greedy == plain greedy, objective, scores, budget, memmap, peers."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.neighbors import knn_graph
from dataprune.selection.facility_location import (
    FacilityLocation,
    _coverage_csr,
    _gains,
    _lazy_greedy,
    facility_location_objective,
)


def _clustered(n: int, dim: int = 16, n_clusters: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    X = centres[rng.integers(n_clusters, size=n)] + 0.6 * rng.standard_normal((n, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)


def _plain_greedy(indptr, indices, data, k):
    """Textbook greedy: every step re-evaluates every candidate (same gain function)."""
    n = len(indptr) - 1
    cur = np.zeros(n)
    chosen: list[int] = []
    gains: list[float] = []
    for _ in range(k):
        g = _gains(np.arange(n), indptr, indices, data, cur)
        g[chosen] = -np.inf
        best = int(np.argmax(g))  # smallest index among ties
        chosen.append(best)
        gains.append(float(g[best]))
        a, b = indptr[best], indptr[best + 1]
        cur[indices[a:b]] = np.maximum(cur[indices[a:b]], data[a:b])
    return np.array(chosen), np.array(gains), cur


def test_gains_match_a_python_loop():
    X = _clustered(200, seed=7)
    sims, idx = knn_graph(X, 6)
    indptr, indices, data = _coverage_csr(sims, idx, "clip")
    cur = np.random.default_rng(0).uniform(0, 1, 200)
    g = _gains(np.arange(200), indptr, indices, data, cur)
    for j in range(200):
        a, b = indptr[j], indptr[j + 1]
        ref = sum(max(float(v) - cur[i], 0.0) for v, i in zip(data[a:b], indices[a:b]))
        assert g[j] == pytest.approx(ref, abs=1e-12)
    # self first, with similarity 1; covered lists are the reverse kNN lists
    assert all(indices[indptr[j]] == j and data[indptr[j]] == 1.0 for j in range(200))
    assert len(data) == 200 + np.count_nonzero(np.maximum(sims, 0) > 0)


def _sparse_objective(sims, idx, selected, similarity="clip"):
    """f(S) straight from the neighbour lists (independent of the CSR construction)."""
    S = set(int(s) for s in selected)
    total = 0.0
    for i in range(len(idx)):
        if i in S:
            total += 1.0
            continue
        best = 0.0
        for s, j in zip(sims[i], idx[i]):
            if int(j) in S:
                v = max(float(s), 0.0) if similarity == "clip" else (1 + float(s)) / 2
                best = max(best, v)
        total += best
    return total


@pytest.mark.parametrize("similarity", ["clip", "shift"])
def test_lazy_greedy_equals_plain_greedy(similarity):
    X = _clustered(300)
    sims, idx = knn_graph(X, 8)
    indptr, indices, data = _coverage_csr(sims, idx, similarity)
    plain, pgains, pcov = _plain_greedy(indptr, indices, data, 40)
    for batch in (1, 3, 16):
        lazy, lgains, cov, _, n_evals = _lazy_greedy(indptr, indices, data, 40, batch=batch)
        np.testing.assert_array_equal(lazy, plain)
        np.testing.assert_array_equal(lgains, pgains)
        np.testing.assert_array_equal(cov, pcov)
        assert n_evals < 300 * 40 / 4  # laziness pays

    fl = FacilityLocation(n_samples=40, n_neighbors=8, similarity=similarity).fit(X)
    np.testing.assert_array_equal(fl.selected_indices_, plain)
    assert fl.objective_ == pytest.approx(_sparse_objective(sims, idx, plain, similarity))


def test_gains_objective_and_scores():
    X = _clustered(500, seed=1)
    fl = FacilityLocation(fraction=0.1, n_neighbors=10).fit(X)
    s, g = fl.selected_indices_, fl.gains_
    assert len(s) == 50 and len(np.unique(s)) == 50
    assert np.all(np.diff(g) <= 1e-12) and np.all(g > 0)  # non-increasing, positive
    assert np.all(np.diff(np.cumsum(g)) > 0)  # objective monotone along the selection
    assert fl.objective_ == pytest.approx(g.sum())
    np.testing.assert_allclose(fl.scores_[s], g)
    rest = np.delete(np.arange(500), s)
    assert fl.scores_[s].min() >= fl.scores_[rest].max()  # higher = keep
    # unselected scores are true marginal gains: adding j raises the objective by scores_[j]
    sims, idx = knn_graph(X, 10)
    base = _sparse_objective(sims, idx, s)
    for j in rest[:5]:
        assert _sparse_objective(sims, idx, [*s, j]) - base == pytest.approx(fl.scores_[j])
    np.testing.assert_array_equal(fl.coverage_[s], 1.0)
    covered = fl.nearest_selected_ >= 0
    assert set(fl.nearest_selected_[covered]) <= set(s.tolist())
    sim_to_rep = np.einsum("ij,ij->i", X[covered], X[fl.nearest_selected_[covered]])
    np.testing.assert_allclose(fl.coverage_[covered], np.maximum(sim_to_rep, 0), atol=1e-5)
    assert fl.n_gain_evaluations_ >= 50
    assert set(fl.timings_) == {"knn_graph_s", "coverage_lists_s", "lazy_greedy_s"}


def test_complete_graph_equals_dense_brute_force():
    X = _clustered(60, dim=8, seed=2)
    k = 8
    fl = FacilityLocation(n_samples=k, n_neighbors=59).fit(X)
    S = np.maximum(X.astype(np.float64) @ X.T.astype(np.float64), 0.0)
    np.fill_diagonal(S, 1.0)
    cur = np.zeros(60)
    chosen = []
    for _ in range(k):
        gains = np.maximum(S - cur[:, None], 0).sum(axis=0)
        gains[chosen] = -1
        j = int(np.argmax(gains))
        chosen.append(j)
        cur = np.maximum(cur, S[:, j])
    np.testing.assert_array_equal(fl.selected_indices_, chosen)
    assert fl.objective_ == pytest.approx(cur.sum(), rel=1e-5)
    assert facility_location_objective(X, chosen) == pytest.approx(cur.sum(), rel=1e-5)


@pytest.mark.slow  # importing apricot compiles numba kernels (~5-70 s on a busy 2-core machine)
def test_matches_apricot_dense_on_the_same_similarity():
    apricot = pytest.importorskip("apricot")
    X = _clustered(120, dim=8, seed=3)
    S = np.maximum(X.astype(np.float64) @ X.T.astype(np.float64), 0.0)
    np.fill_diagonal(S, 1.0)
    ref = apricot.FacilityLocationSelection(10, metric="precomputed", optimizer="lazy").fit(S)
    fl = FacilityLocation(n_samples=10, n_neighbors=119).fit(X)
    np.testing.assert_array_equal(fl.selected_indices_, ref.ranking)
    np.testing.assert_allclose(fl.gains_, ref.gains, rtol=1e-5)


def test_determinism_memmap_and_normalisation(tmp_path, caplog):
    X = _clustered(400, dim=24, seed=4)
    path = tmp_path / "emb.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    a = FacilityLocation(n_samples=30, random_state=0).fit(mm)
    b = FacilityLocation(n_samples=30, random_state=0).fit(X)
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    np.testing.assert_array_equal(np.load(path), X)
    with caplog.at_level(logging.WARNING, logger="dataprune"):
        c = FacilityLocation(n_samples=30, random_state=0).fit(3.0 * X.astype(np.float64))
    assert "not L2-normalised" in caplog.text
    np.testing.assert_array_equal(c.selected_indices_, b.selected_indices_)


@pytest.mark.parametrize("knn_method", [None, "ivf"])
def test_approximate_graph_is_deterministic_under_random_state(knn_method):
    X = _clustered(3000, dim=16, n_clusters=30, seed=5)
    kw = {"n_samples": 100, "exact_knn": False, "knn_method": knn_method, "random_state": 3}
    a = FacilityLocation(**kw).fit(X)
    b = FacilityLocation(**kw).fit(X)
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)
    # nprobe None is IVF's default (16); knn_method None above the exact limit is "auto"
    assert a.nprobe is None and a.ef_search is None
    assert a.knn_info_["method"] == (knn_method or "auto")
    explicit = {"nprobe": 16} if knn_method == "ivf" else {"knn_method": "auto"}
    c = FacilityLocation(**{**kw, **explicit}).fit(X)
    np.testing.assert_array_equal(a.selected_indices_, c.selected_indices_)
    exact = FacilityLocation(n_samples=100, random_state=3).fit(X)
    # the approximate graph loses little of the objective measured on the dense function
    fa = facility_location_objective(X, a.selected_indices_)
    fe = facility_location_objective(X, exact.selected_indices_)
    assert fa >= 0.97 * fe


def test_errors_and_params():
    X = _clustered(50)
    with pytest.raises(UnknownOptionError, match="clip"):
        FacilityLocation(n_samples=5, similarity="rbf").fit(X)
    with pytest.raises(DataValidationError, match="n_neighbors"):
        FacilityLocation(n_samples=5, n_neighbors=0).fit(X)
    with pytest.raises(DataValidationError):
        FacilityLocation(fraction=1.5).fit(X)
    zero = X.copy()
    zero[3] = 0
    with pytest.raises(DataValidationError, match="all zeros"):
        FacilityLocation(n_samples=5).fit(zero)
    with pytest.raises(DataValidationError):
        facility_location_objective(X, [50])
    fl = FacilityLocation(n_samples=5, n_neighbors=7, similarity="shift")
    assert fl.get_params()["n_neighbors"] == 7 and fl.get_params()["similarity"] == "shift"


def test_tiny_inputs():
    one = np.ones((1, 4), np.float32) / 2
    fl = FacilityLocation(n_samples=1).fit(one)
    np.testing.assert_array_equal(fl.selected_indices_, [0])
    assert fl.objective_ == 1.0
    X = _clustered(5)
    fl = FacilityLocation(fraction=1.0).fit(X)
    assert sorted(fl.selected_indices_.tolist()) == [0, 1, 2, 3, 4]
    assert fl.objective_ == pytest.approx(5.0)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 50),
    frac=st.floats(0.01, 1.0),
    n_neighbors=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_property_budget_unique_equals_plain(n, frac, n_neighbors, seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(-1, 2, size=(n, 3)).astype(np.float32)  # ties and exact duplicates
    X[np.abs(X).sum(axis=1) == 0] = [1, 0, 0]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    k = max(1, min(n, round(frac * n)))
    fl = FacilityLocation(n_samples=k, n_neighbors=n_neighbors, random_state=seed).fit(X)
    s = fl.selected_indices_
    assert len(s) == k and len(np.unique(s)) == k
    sims, idx = knn_graph(X, n_neighbors)
    plain, _, _ = _plain_greedy(*_coverage_csr(sims, idx, "clip"), k)
    np.testing.assert_array_equal(s, plain)
