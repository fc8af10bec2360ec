from __future__ import annotations

import numpy as np

from dataprune.neighbors import duplicate_groups, knn_graph, near_duplicate_pairs


def _unit(rng, n, d):
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    X = _unit(rng, 300, 8)
    sims, idx = knn_graph(X, 5, block_size=64)
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    ref = np.argsort(-S, axis=1)[:, :5]
    np.testing.assert_allclose(sims, np.take_along_axis(S, ref, 1), rtol=1e-5)
    assert not (idx == np.arange(300)[:, None]).any()


def test_ivf_knn_is_close_to_exact():
    rng = np.random.default_rng(1)
    X = _unit(rng, 4000, 16)
    _, exact = knn_graph(X, 5, exact=True)
    _, approx = knn_graph(X, 5, exact=False, nlist=32, nprobe=32)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(exact, approx)])
    assert recall > 0.95


def test_near_duplicates_and_groups():
    rng = np.random.default_rng(2)
    X = _unit(rng, 50, 32)
    X[10] = X[3] + 0.01 * rng.standard_normal(32)
    X[11] = X[3]
    X[20] = X[40]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    pairs = near_duplicate_pairs(X, threshold=0.98)
    keys = {(p.i, p.j) for p in pairs}
    assert {(3, 10), (3, 11), (10, 11), (20, 40)} <= keys
    assert all(p.i < p.j for p in pairs)
    groups = duplicate_groups(50, pairs)
    assert groups == [[3, 10, 11], [20, 40]]
