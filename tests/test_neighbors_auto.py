from __future__ import annotations

import numpy as np

from dataprune.cell_join import CELL_NITER, resolve_cell_params
from dataprune.neighbors import KNN_METHODS, knn_graph
from dataprune.neighbors_auto import CHECK_MARGIN, CHECK_NITER


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(approx, exact)]))


def _clustered(rng, n, d=32, centres=40, spread=0.3):
    """Separated clusters: neighbourhoods follow the coarse cells. (Much tighter ones, spread
    0.05, defeat the cells' bfloat16 candidate scoring: near-equal similarities; recall 0.32
    with every cell probed, and ``auto`` then builds HNSW, as it should.)"""
    C = rng.standard_normal((centres, d))
    X = C[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def _uniform(rng, n, d=24):
    """Rows spread evenly over the sphere: a cell's neighbours lie in many other cells."""
    X = rng.standard_normal((n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_auto_is_registered():
    assert "auto" in KNN_METHODS


def test_auto_keeps_the_cells_when_their_sampled_recall_reaches_the_target():
    X = _clustered(np.random.default_rng(0), 6000)
    _es, ei = knn_graph(X, 10, exact=True, show_progress_bar=False)
    _s, i, info = knn_graph(X, 10, method="auto", show_progress_bar=False, return_info=True)
    assert info["method"] == "auto" and info["chosen"] == "cells" and "hnsw" not in info
    c = info["cells"]
    assert c["sample_recall"] - 2 * c["sample_recall_se"] >= 0.95
    assert c["candidate_recall"] >= c["sample_recall"]  # the covered share bounds the recall
    assert c["candidate_recall_niter"] == CELL_NITER  # the k-means went on to its end
    assert {k: c[k] for k in ("nlist", "nprobe", "spill")} == resolve_cell_params(len(X))
    # the graph is the cells' graph, and as accurate as its sample said
    _sc, ic = knn_graph(X, 10, method="cells", show_progress_bar=False)
    np.testing.assert_array_equal(i, ic)
    assert _recall(i, ei) >= 0.95
    assert (i != np.arange(len(X))[:, None]).all()


def test_auto_falls_back_to_hnsw_when_the_cells_miss_neighbours():
    # 50,000 rows: 50 cells of ~1,000, 16 probed; uniform rows have neighbours in the others
    X = _uniform(np.random.default_rng(1), 50_000)
    _es, ei = knn_graph(X, 10, exact=True, show_progress_bar=False)
    _sc, ic = knn_graph(X, 10, method="cells", show_progress_bar=False)
    _s, i, info = knn_graph(X, 10, method="auto", show_progress_bar=False, return_info=True)
    assert info["chosen"] == "hnsw"
    cells = info["cells"]
    # the cells' candidates cover too few of the sampled neighbours, so the join is skipped;
    # the share is an upper bound of the join's recall, and close to it
    assert "sample_recall" not in cells
    assert cells["candidate_recall"] + 2 * cells["candidate_recall_se"] < 0.95
    # ... far enough below it to skip after the k-means' first iterations
    assert cells["candidate_recall_niter"] == CHECK_NITER
    assert cells["candidate_recall"] + 2 * cells["candidate_recall_se"] + CHECK_MARGIN < 0.95
    assert _recall(ic, ei) <= cells["candidate_recall"] + 3 * cells["candidate_recall_se"]
    assert abs(cells["candidate_recall"] - _recall(ic, ei)) < 0.05
    assert info["hnsw"]["sample_recall"] >= 0.95
    assert _recall(i, ei) >= 0.95
    # the same graph as HNSW on its own (its tuning reused the cells' exact sample)
    _sh, ih = knn_graph(X, 10, method="hnsw", show_progress_bar=False)
    np.testing.assert_array_equal(i, ih)
