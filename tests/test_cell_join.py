from __future__ import annotations

import warnings

import numpy as np
import pytest

from dataprune import cell_join
from dataprune.cell_join import cell_join_knn, default_cell_params, resolve_cell_params
from dataprune.errors import DataValidationError
from dataprune.neighbors import KNN_METHODS, knn_graph


def _norm(a):
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(0)
    cent = rng.normal(size=(60, 32))
    return _norm(cent[rng.integers(60, size=6000)] + 0.4 * rng.normal(size=(6000, 32)))


def _recall(a, b):
    return np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b)])


def test_cell_join_matches_exact_search_on_clustered_data(clustered):
    _es, ei = knn_graph(clustered, 10, exact=True)
    s, i = cell_join_knn(clustered, 10, nlist=30, nprobe=6)
    assert _recall(i, ei) >= 0.95
    rows = np.arange(len(clustered))[:, None]
    assert not (i == rows).any() and (i >= 0).all()
    # similarities are exact inner products (float32 re-scoring), descending per row
    np.testing.assert_allclose(s, np.einsum("nd,nkd->nk", clustered, clustered[i]), atol=1e-5)
    assert (np.diff(s, axis=1) <= 1e-7).all()
    _s2, i2 = cell_join_knn(clustered, 10, nlist=30, nprobe=6)
    assert np.array_equal(i, i2)  # same random_state, same graph


def test_probing_every_cell_is_exact_in_float32(clustered):
    X = clustered[:1500]
    es, ei = knn_graph(X, 5, exact=True)
    s, i = cell_join_knn(X, 5, nlist=8, nprobe=8, spill=1, dtype="float32")
    np.testing.assert_allclose(s, es, atol=1e-5)
    assert _recall(i, ei) > 0.99


def test_small_inputs_and_options():
    X = _norm(np.random.default_rng(1).normal(size=(5, 4)))
    s, i = cell_join_knn(X, 4)  # one cell: everything is a candidate
    es, _ei = knn_graph(X, 4, exact=True)
    np.testing.assert_allclose(s, es, atol=1e-5)
    assert default_cell_params(1_000_000) == {"nlist": 1000, "nprobe": 16, "spill": 2}
    assert default_cell_params(500)["nlist"] == 1
    with pytest.raises(ValueError, match="dtype"):
        cell_join_knn(X, 2, dtype="float16")
    s, i = knn_graph(X, 2, method="cells")
    assert i.shape == (5, 2)
    with pytest.raises(DataValidationError, match="valid: " + ", ".join(sorted(KNN_METHODS))):
        knn_graph(X, 2, method="annoy")


def test_knn_graph_passes_nprobe_and_nlist_to_the_cell_join(monkeypatch, clustered):
    seen = []

    def fake(X, k, **kw):
        seen.append({key: kw[key] for key in ("nlist", "nprobe")})
        return np.zeros((len(X), k), np.float32), np.zeros((len(X), k), np.int64)

    monkeypatch.setattr(cell_join, "cell_join_knn", fake)
    knn_graph(clustered, 5, method="cells")
    knn_graph(clustered, 5, method="cells", nprobe=3)
    knn_graph(clustered, 5, method="cells", nlist=12)
    knn_graph(clustered, 5, method="cells", nlist=12, nprobe=4)
    assert seen == [
        {"nlist": None, "nprobe": None},
        {"nlist": None, "nprobe": 3},
        {"nlist": 12, "nprobe": None},
        {"nlist": 12, "nprobe": 4},
    ]
    # the info reports what ran: nlist alone keeps nprobe at min(nlist, 16)
    _s, _i, info = knn_graph(clustered, 5, method="cells", nlist=12, return_info=True)
    assert info == {"method": "cells", **resolve_cell_params(len(clustered), 12)}
    assert info["nprobe"] == 12 and info["nlist"] == 12


def test_resolve_cell_params_bounds():
    assert resolve_cell_params(1_000_000) == default_cell_params(1_000_000)
    assert resolve_cell_params(1_000_000, nlist=8) == {"nlist": 8, "nprobe": 8, "spill": 2}
    assert resolve_cell_params(100, nlist=500, nprobe=900) == {
        "nlist": 100,
        "nprobe": 100,
        "spill": 2,
    }


def test_nprobe_alone_changes_the_cell_join(clustered):
    X = clustered[:3000]  # default: nlist 3, nprobe 3 = every cell (exact up to bf16)
    _s, full = knn_graph(X, 10, method="cells")
    _s, one = knn_graph(X, 10, method="cells", nprobe=1)
    _s, one_direct = cell_join_knn(X, 10, nprobe=1)
    np.testing.assert_array_equal(one, one_direct)
    assert not np.array_equal(one, full)


def test_read_only_memmap_input_is_used_without_warning(tmp_path, clustered):
    X = clustered[:2000]
    np.save(tmp_path / "x.npy", X)
    M = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert not M.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, i = cell_join_knn(M, 5, nlist=4, nprobe=2)
    s2, i2 = cell_join_knn(X, 5, nlist=4, nprobe=2)
    np.testing.assert_array_equal(s, s2)
    np.testing.assert_array_equal(i, i2)


def test_train_cells_continued_from_its_own_centroids_equals_one_run(clustered):
    # the auto check trains CHECK_NITER iterations, looks, then goes on: the same centroids
    once = cell_join.train_cells(clustered, 20, niter=cell_join.CELL_NITER, random_state=3)
    first = cell_join.train_cells(clustered, 20, niter=5, random_state=3)
    assert not np.array_equal(first, once)
    more = cell_join.train_cells(
        clustered, 20, niter=cell_join.CELL_NITER - 5, random_state=3, init_centroids=first
    )
    np.testing.assert_array_equal(more, once)


@pytest.mark.parametrize(("fast", "same_as"), [(True, "bfloat16"), (False, "float32")])
def test_auto_dtype_is_bf16_only_where_the_cpu_is_fast_at_it(monkeypatch, clustered, fast, same_as):
    from dataprune import precision

    X = clustered[:1500]
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"amx_bf16"} if fast else ()))
    auto = cell_join_knn(X, 5, nlist=8, nprobe=3)
    fixed = cell_join_knn(X, 5, nlist=8, nprobe=3, dtype=same_as)
    np.testing.assert_array_equal(auto[1], fixed[1])
    np.testing.assert_array_equal(auto[0], fixed[0])
