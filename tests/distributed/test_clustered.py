"""Per-cluster selection on the local engine: equal to the in-process selectors, budget split."""

from __future__ import annotations

import numpy as np
import pytest

from dataprune.distributed.clustered import (
    ClusteredFacilityLocation,
    cluster_rows,
    fit_with_engine,
    split_budget,
)
from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.selection import FacilityLocation, KCenterGreedy, Prototypes, SemDeDup
from dataprune.selection.clustering import assign_to_centroids, spherical_kmeans


def _data(n=1500, dim=16, n_dup=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    X = np.concatenate([X, X[:n_dup] + 0.01 * rng.standard_normal((n_dup, dim)).astype(np.float32)])
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _same(a, b):
    assert np.array_equal(a.selected_indices_, b.selected_indices_)
    assert np.array_equal(a.scores_, b.scores_)
    assert np.array_equal(a.ranking_, b.ranking_)


@pytest.mark.parametrize(
    "cls,kw",
    [
        (Prototypes, {}),
        (Prototypes, {"keep": "easy", "n_clusters": 7}),
        (SemDeDup, {}),
        (SemDeDup, {"keep": "random", "fill": "unique", "eps": 0.1}),
        (SemDeDup, {"keep": "easy", "n_clusters": 5}),
    ],
)
def test_local_engine_equals_in_process_selector(cls, kw):
    X = _data()
    a = cls(fraction=0.3, random_state=3, **kw).fit(X)
    b = fit_with_engine(cls(fraction=0.3, random_state=3, **kw), X, engine="local")
    _same(a, b)
    assert np.array_equal(a.labels_, b.labels_)
    if cls is SemDeDup:
        assert a.duplicate_groups_ == b.duplicate_groups_
        assert b.n_duplicates_ >= 150  # the injected near-duplicates are found


def test_memmap_input_gives_the_same_selection(tmp_path):
    X = _data()
    np.save(tmp_path / "x.npy", X)
    M = np.load(tmp_path / "x.npy", mmap_mode="r")
    a = SemDeDup(n_samples=400, random_state=0).fit(X)
    b = fit_with_engine(SemDeDup(n_samples=400, random_state=0), M, engine="local")
    _same(a, b)


def test_cluster_rows_equals_spherical_kmeans():
    X = _data(n=3000)
    a = spherical_kmeans(X, 20, random_state=11)
    b = cluster_rows(X, 20, random_state=11, engine="local")
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.similarity, b.similarity)
    assert np.array_equal(a.centroids, b.centroids)


def test_assignment_does_not_depend_on_faiss_threads():
    import faiss

    X = _data(n=5000, dim=32)
    C = spherical_kmeans(X, 40, random_state=0).centroids
    l2, s2 = assign_to_centroids(X, C)
    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        l1, s1 = assign_to_centroids(X, C, block_size=777)
    finally:
        faiss.omp_set_num_threads(prev)
    assert np.array_equal(l1, l2) and np.array_equal(s1, s2)
    np.testing.assert_allclose(s2, np.einsum("ij,ij->i", X, C[l2]), atol=1e-6)
    assert np.array_equal(l2, np.argmax(X @ C.T, axis=1))


def test_split_budget_is_proportional_and_exact():
    sizes = np.array([10, 0, 5, 5, 80, 1])
    for k in range(0, 102):
        q = split_budget(sizes, k)
        assert q.sum() == k and (q <= sizes).all() and (q >= 0).all()
        assert (np.abs(q - k * sizes / sizes.sum()) < 1).all()
    assert split_budget(np.array([1, 1, 1]), 2).tolist() == [1, 1, 0]  # ties: lower cluster id
    with pytest.raises(DataValidationError):
        split_budget(sizes, 200)


def test_clustered_facility_location_respects_the_cluster_budget():
    X = _data()
    sel = ClusteredFacilityLocation(n_samples=170, random_state=0, n_clusters=6).fit(X)
    picked = np.bincount(sel.labels_[sel.selected_indices_], minlength=6)
    sizes = np.bincount(sel.labels_, minlength=6)
    assert picked.tolist() == sel.cluster_budget_ == split_budget(sizes, 170).tolist()
    assert np.all(np.diff(sel.gains_) <= 0)
    assert np.isfinite(sel.scores_).all()
    kept = sel.get_support()
    assert sel.scores_[kept].min() >= 0 and (sel.coverage_[kept] == 1).all()
    # every record is represented by a pick of its own cluster (or by none)
    near = sel.nearest_selected_
    ok = near >= 0
    assert (sel.labels_[near[ok]] == sel.labels_[ok]).all()
    again = fit_with_engine(
        ClusteredFacilityLocation(n_samples=170, random_state=0, n_clusters=6), X
    )
    _same(sel, again)


def test_one_cluster_is_plain_facility_location():
    X = _data(n=800, n_dup=50)
    a = FacilityLocation(n_samples=80, random_state=0).fit(X)
    b = ClusteredFacilityLocation(n_samples=80, random_state=0, n_clusters=1).fit(X)
    assert np.array_equal(a.selected_indices_, b.selected_indices_)
    np.testing.assert_allclose(a.gains_, b.gains_)


def test_unsupported_selectors_and_bad_options():
    X = _data(n=300, n_dup=0)
    for sel in (FacilityLocation(n_samples=10), KCenterGreedy(n_samples=10)):
        with pytest.raises(UnknownOptionError, match="cluster_facility_location"):
            fit_with_engine(sel, X)
    with pytest.raises(UnknownOptionError, match="valid: local, ray"):
        fit_with_engine(Prototypes(n_samples=10), X, engine="spark")
    with pytest.raises(DataValidationError, match="keep"):
        fit_with_engine(Prototypes(n_samples=10, keep="middle"), X)
    with pytest.raises(DataValidationError, match="more than"):
        fit_with_engine(SemDeDup(n_samples=10_000), X)
    with pytest.raises(DataValidationError, match="n_neighbors"):
        ClusteredFacilityLocation(n_samples=5, n_neighbors=0).fit(X)


def test_missing_ray_gives_an_install_hint(monkeypatch):
    import sys

    from dataprune.distributed.engines import get_engine
    from dataprune.errors import OptionalDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(OptionalDependencyError, match=r"pip install 'dataprune\[ray\]'"):
        get_engine("ray")
    with pytest.raises(OptionalDependencyError, match="ray"):
        fit_with_engine(Prototypes(n_samples=3), _data(n=50, n_dup=0), engine="ray")
