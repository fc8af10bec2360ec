from __future__ import annotations

import logging

import numpy as np
import pytest
from neighbor_data import lowrank, recall

from dataprune import neighbors
from dataprune.errors import DataValidationError
from dataprune.neighbors import KNN_METHODS, knn_graph
from dataprune.neighbors_hnsw import (
    HNSW_EF_STEPS,
    default_hnsw_params,
    deterministic_parallel_build,
    hnsw_knn,
)


def test_default_hnsw_params():
    p = default_hnsw_params(1_000_000, 32)
    assert (p["M"], p["efConstruction"], p["efSearch"]) == (32, 40, "auto")
    assert p["ef_candidates"][0] == 33 and p["ef_candidates"] == sorted(p["ef_candidates"])
    assert len(p["ef_candidates"]) == len(HNSW_EF_STEPS)
    assert p["n_tune_samples"] == 2000 and p["target_recall"] == 0.95
    assert default_hnsw_params(500, 32)["n_tune_samples"] == 500
    fixed = default_hnsw_params(1_000_000, 32, ef_search=8)
    assert fixed["efSearch"] == 33 and fixed["ef_candidates"] == [] and fixed["n_tune_samples"] == 0
    assert default_hnsw_params(1_000_000, 32, ef_search=200)["efSearch"] == 200


def test_hnsw_reaches_the_target_recall_on_structureless_data_and_is_reproducible():
    """Where the IVF defaults miss neighbours (no clusters), the tuned HNSW graph does not; its
    deterministic build makes two runs identical."""
    X = lowrank(np.random.default_rng(3), 6000)
    _es, ei = knn_graph(X, 16, exact=True, show_progress_bar=False)
    s, i, info = knn_graph(X, 16, method="hnsw", show_progress_bar=False, return_info=True)
    steps = info["ef_candidates"]
    assert info["method"] == "hnsw" and steps[0] <= info["efSearch"] <= steps[-1]
    assert info["sample_recall"] >= 0.95
    assert recall(i, ei) >= 0.95  # the sample's lower bound holds for all rows
    assert (i != np.arange(len(X))[:, None]).all()  # self excluded
    assert np.all(np.diff(s, axis=1) <= 1e-6)  # descending
    np.testing.assert_allclose(s, np.einsum("nd,nkd->nk", X, X[i]), atol=1e-5)
    s2, i2 = knn_graph(X, 16, method="hnsw", show_progress_bar=False)
    np.testing.assert_array_equal(i, i2)
    np.testing.assert_array_equal(s, s2)
    _, iv = knn_graph(X, 16, method="ivf", show_progress_bar=False)
    assert recall(iv, ei) < recall(i, ei)
    # a higher target costs a larger efSearch and gets closer to exact
    _s, ih, hi = knn_graph(
        X, 16, method="hnsw", target_recall=0.995, show_progress_bar=False, return_info=True
    )
    assert hi["efSearch"] >= info["efSearch"]
    assert recall(ih, ei) >= recall(i, ei) - 0.002


def test_efsearch_is_bisected_below_the_first_step_that_reaches_the_target():
    """The tuned efSearch reaches the target on the sample itself; the ladder step below it does
    not, and the value is off the ladder when bisection found a smaller one that passes."""
    from dataprune.neighbors import exact_knn_rows
    from dataprune.neighbors_hnsw import recall_sample_rows, sample_recall

    X = lowrank(np.random.default_rng(3), 6000, rank=24)
    rows = recall_sample_rows(len(X))
    truth = exact_knn_rows(X, rows, 16)[1]
    target = 0.999
    _s, i, info = hnsw_knn(X, 16, project=False, target_recall=target, show_progress_bar=False)
    ef, steps = info["efSearch"], info["ef_candidates"]
    assert ef not in steps  # bisected (on this data the ladder alone would keep 51)
    below = max(step for step in steps if step < ef)
    for value, reached in ((below, False), (ef, True)):
        _s, found, _ = hnsw_knn(X, 16, ef_search=value, project=False, show_progress_bar=False)
        r, se = sample_recall(found[rows], truth)
        assert (r - 2 * se >= target) is reached
    np.testing.assert_array_equal(found, i)  # the tuned graph is the fixed one at that efSearch


@pytest.mark.parametrize("project", [False, None])
def test_the_graph_does_not_depend_on_the_thread_count(project):
    """With faiss's deterministic build the graph is built by all threads, and one thread gives
    the same neighbours; without it the build uses one thread whatever the caller's setting.
    Both for the full-space graph and the projected one (8-bit codes)."""
    import faiss

    X = lowrank(np.random.default_rng(11), 5000)
    threads = faiss.omp_get_max_threads()
    s, i, info = hnsw_knn(X, 8, project=project, show_progress_bar=False)
    faiss.omp_set_num_threads(1)
    try:
        s1, i1, info1 = hnsw_knn(X, 8, project=project, show_progress_bar=False)
    finally:
        faiss.omp_set_num_threads(threads)
    assert (info["projection"]["dim"] is None) is (project is False)
    assert info.get("storage") == (None if project is False else "sq8")
    assert info1["build_threads"] == 1
    assert info["build_threads"] == (threads if deterministic_parallel_build() else 1)
    assert faiss.omp_get_max_threads() == threads  # the caller's setting is restored
    np.testing.assert_array_equal(i, i1)
    np.testing.assert_array_equal(s, s1)


def test_unreachable_target_warns_and_uses_the_largest_step(caplog):
    X = lowrank(np.random.default_rng(5), 1500)
    with caplog.at_level(logging.WARNING, logger="dataprune"):
        _s, _i, info = knn_graph(
            X, 8, method="hnsw", target_recall=1.0, show_progress_bar=False, return_info=True
        )
    if info["sample_recall"] < 1.0:  # a perfect graph is possible on small data; else it warns
        assert info["efSearch"] == info["ef_candidates"][-1]
        assert "below the target" in caplog.text
    if info["projection"]["dim"] is None:  # the projected graph missed: the full one was built
        assert info["projection_fallback"]["dim"] == 16
        assert info["projection_fallback"]["sample_recall"] < 1.0


def test_approximate_default_above_the_exact_limit_is_auto(monkeypatch):
    X = lowrank(np.random.default_rng(4), 3000)
    monkeypatch.setattr(neighbors, "_EXACT_LIMIT", 1000)
    _s, i, info = knn_graph(X, 8, show_progress_bar=False, return_info=True)
    assert info["method"] == "auto" and info["chosen"] in ("cells", "hnsw")
    _as, ai2 = knn_graph(X, 8, method="auto", show_progress_bar=False)
    np.testing.assert_array_equal(i, ai2)
    _, ai = knn_graph(X, 8, exact=False, show_progress_bar=False)
    np.testing.assert_array_equal(ai, i)
    # a fixed efSearch asks for HNSW
    _s, _hi, hinfo = knn_graph(X, 8, ef_search=40, show_progress_bar=False, return_info=True)
    assert hinfo["method"] == "hnsw" and hinfo["efSearch"] == 40
    with pytest.raises(DataValidationError, match="valid: " + ", ".join(sorted(KNN_METHODS))):
        knn_graph(X, 8, method="annoy")
    with pytest.raises(DataValidationError, match="ef_search"):
        knn_graph(X, 8, method="hnsw", ef_search=0)
    with pytest.raises(DataValidationError, match="target_recall"):
        knn_graph(X, 8, method="hnsw", target_recall=1.5)
