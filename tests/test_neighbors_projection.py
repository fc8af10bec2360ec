from __future__ import annotations

import numpy as np
import pytest
from neighbor_data import lowrank, recall

from dataprune.neighbors import exact_knn_rows, knn_graph
from dataprune.neighbors_hnsw import hnsw_knn
from dataprune.neighbors_projection import (
    PROJECTION_VARIANCE,
    exact_rescore,
    principal_projection,
    project_rows,
)


def test_projection_applies_only_when_few_components_hold_most_variance():
    rng = np.random.default_rng(0)
    V, info = principal_projection(lowrank(rng, 4000), random_state=0)
    assert V is not None and V.shape == (64, info["dim"]) and info["dim"] == 16
    assert info["needed"] <= 8 and info["variance"] >= PROJECTION_VARIANCE
    np.testing.assert_allclose(V.T @ V, np.eye(16), atol=1e-5)  # orthonormal directions
    iso = rng.standard_normal((4000, 64)).astype(np.float32)  # variance spread evenly
    V2, info2 = principal_projection(iso, random_state=0)
    assert V2 is None and info2["dim"] is None and info2["needed"] > 16
    Z = project_rows(lowrank(rng, 100), V, block=7)
    assert Z.shape == (100, 16) and Z.dtype == np.float32 and Z.flags.c_contiguous


def test_exact_rescore_keeps_the_best_candidates_by_the_full_inner_product():
    rng = np.random.default_rng(1)
    X = lowrank(rng, 300)
    rows = np.array([0, 5, 299])
    cand = rng.choice(300, size=(3, 20), replace=False)
    cand[0, 3] = 0  # self, excluded
    cand[1, 7] = -1  # missing, excluded
    s, i = exact_rescore(X, rows, cand, 4, block=2)
    for r, row in enumerate(rows):
        pool = [c for c in cand[r] if c >= 0 and c != row]
        want = sorted(pool, key=lambda c: -float(X[row] @ X[c]))[:4]
        assert i[r].tolist() == want
        np.testing.assert_allclose(s[r], X[want] @ X[row], rtol=1e-5)
    with pytest.raises(ValueError, match="more than k"):
        exact_rescore(X, rows, cand[:, :4], 4)


def test_hnsw_over_principal_components_reaches_the_target_and_is_exact_where_it_finds():
    X = lowrank(np.random.default_rng(3), 6000)
    _es, ei = knn_graph(X, 16, exact=True, show_progress_bar=False)
    s, i, info = hnsw_knn(X, 16, show_progress_bar=False)
    assert info["projection"]["dim"] == 16 and info["sample_recall"] >= 0.95
    assert recall(i, ei) >= 0.95
    assert (i != np.arange(len(X))[:, None]).all()
    np.testing.assert_allclose(s, np.einsum("nd,nkd->nk", X, X[i]), atol=1e-5)  # re-scored
    assert np.all(np.diff(s, axis=1) <= 1e-6)
    s2, i2, _ = hnsw_knn(X, 16, show_progress_bar=False)
    np.testing.assert_array_equal(i, i2)  # seeded sample, deterministic build
    np.testing.assert_array_equal(s, s2)
    _sf, i_full, full = hnsw_knn(X, 16, project=False, show_progress_bar=False)
    assert full["projection"]["dim"] is None and recall(i_full, ei) >= 0.95
    # a fixed efSearch searches the full space as given
    _s, _i, fixed = hnsw_knn(X, 16, ef_search=40, show_progress_bar=False)
    assert fixed["projection"]["dim"] is None and fixed["efSearch"] == 40


def test_a_projection_that_misses_the_target_falls_back_to_the_full_graph(monkeypatch):
    from dataprune import neighbors_projection

    X = lowrank(np.random.default_rng(4), 3000)
    _es, ei = knn_graph(X, 8, exact=True, show_progress_bar=False)

    def noise_directions(X, random_state=0):  # the 16 weakest directions: neighbours are lost
        _w, V = np.linalg.eigh(np.cov(X.astype(np.float64), rowvar=False))
        return np.ascontiguousarray(V[:, :16], dtype=np.float32), {"dim": 16, "variance": 0.0}

    monkeypatch.setattr(neighbors_projection, "principal_projection", noise_directions)
    _s, i, info = hnsw_knn(X, 8, show_progress_bar=False)
    assert info["projection"]["dim"] is None
    assert info["projection_fallback"]["dim"] == 16
    assert info["projection_fallback"]["sample_recall"] < 0.95 <= info["sample_recall"]
    assert recall(i, ei) >= 0.95


def test_the_locality_order_renumbers_the_graph_without_changing_the_neighbours(monkeypatch):
    """Above LOCALITY_MIN_ROWS the projected graph is renumbered by k-means cell and searched in
    that order; the neighbours are those of the same graph searched row by row."""
    from dataprune import neighbors_hnsw
    from dataprune.neighbors_hnsw import locality_order

    X = lowrank(np.random.default_rng(7), 60_000)
    s, i, info = hnsw_knn(X, 8, show_progress_bar=False)
    assert info["projection"]["dim"] == 16 and info["search_order"] == "cells"
    perm = locality_order(X[:, :16].copy(), random_state=0)
    assert np.array_equal(np.sort(perm), np.arange(len(X)))  # a permutation
    monkeypatch.setattr(neighbors_hnsw, "LOCALITY_MIN_ROWS", 10**9)
    s2, i2, info2 = hnsw_knn(X, 8, show_progress_bar=False)
    assert info2["search_order"] == "rows" and info2["efSearch"] == info["efSearch"]
    np.testing.assert_array_equal(i, i2)
    np.testing.assert_array_equal(s, s2)
    sample = np.random.default_rng(0).choice(len(X), 500, replace=False)
    _es, ei = exact_knn_rows(X, sample, 8)
    assert recall(i[sample], ei) >= 0.95
