"""Nearest-neighbour search on normalised embeddings (faiss), and near-duplicate detection.

Memory is O(n_samples * k): neighbours are computed block by block and never as an n x n matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["DuplicatePair", "duplicate_groups", "knn_graph", "near_duplicate_pairs"]

_EXACT_LIMIT = 100_000


def _as_float32(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_samples, dim), got shape {X.shape}")
    if X.dtype != np.float32 or not X.flags.c_contiguous:
        X = np.ascontiguousarray(X, dtype=np.float32)
    return X


def knn_graph(
    X: np.ndarray,
    k: int,
    *,
    exact: bool | None = None,
    block_size: int = 16384,
    nlist: int | None = None,
    nprobe: int = 16,
    random_state: int = 0,
    show_progress_bar: bool | None = None,
    method: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of every row by inner product (cosine for normalised rows), self excluded.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        Rows, ideally L2-normalised float32.
    k : int
        Neighbours per row (clipped to ``n_samples - 1``).
    exact : bool, optional
        Exact search by blockwise matrix products (default when ``n_samples <= 100_000``)
        or a faiss IVF index.
    block_size : int, default=16384
        Query rows per search call.
    nlist : int, optional
        IVF cells (default ``4 * sqrt(n_samples)``).
    nprobe : int, default=16
        IVF cells visited per query. At the defaults the approximate graph matches the exact one
        on embedding-like (clustered) data (recall@10 >= 0.99 in the tests); on structureless,
        uniformly spread vectors recall falls (about 0.85 at 16 dimensions, lower in higher
        dimension): raise ``nprobe`` (up to ``nlist``, which is exact) for such data.
    random_state : int, default=0
        Seed for the IVF training sample.
    method : {"exact", "ivf", "cells"}, optional
        Overrides ``exact``: ``"ivf"`` is the faiss IVF index above; ``"cells"`` the cell
        self-join of :func:`dataprune.cell_join.cell_join_knn` (queries batched by coarse cell,
        bfloat16 matrix products, exact re-scoring; ``nlist`` / ``nprobe`` passed through when
        given, else its own defaults).

    Returns
    -------
    sims : ndarray of shape (n_samples, k), float32
        Similarities, descending per row (``-inf`` where fewer neighbours were found).
    idx : ndarray of shape (n_samples, k), int64
        Neighbour indices (``-1`` where missing).
    """
    import faiss

    X = _as_float32(X)
    n, d = X.shape
    k = int(min(k, n - 1))
    if k < 1:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    if method is not None and method not in ("exact", "ivf", "cells"):
        raise DataValidationError(f"unknown kNN method {method!r}; valid: cells, exact, ivf")
    if method == "cells":
        from dataprune.cell_join import cell_join_knn

        return cell_join_knn(
            X,
            k,
            nlist=nlist,
            nprobe=nprobe if nlist else None,
            random_state=random_state,
            show_progress_bar=show_progress_bar,
        )
    if method is not None:
        exact = method == "exact"
    if exact is None:
        exact = n <= _EXACT_LIMIT
    if exact:
        return _exact_knn(X, k, block_size=block_size, show_progress_bar=show_progress_bar)
    nlist = nlist or max(16, int(4 * np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(random_state)
    n_train = min(n, max(nlist * 40, 10_000))
    train = X[np.sort(rng.choice(n, size=n_train, replace=False))]
    index.cp.seed = int(random_state)
    index.train(train)
    index.nprobe = nprobe
    index.add(X)
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    for lo in progress(
        range(0, n, block_size), show_progress_bar=show_progress_bar, desc="kNN", unit="block"
    ):
        hi = min(n, lo + block_size)
        s, i = index.search(X[lo:hi], k + 1)
        rows = np.arange(lo, hi)[:, None]
        is_self = i == rows
        # drop self (or the last column when self was not returned, e.g. exact duplicates tie)
        keep = ~is_self
        no_self = keep.all(axis=1)
        keep[no_self, -1] = False
        sims[lo:hi] = s[keep].reshape(hi - lo, k)
        idx[lo:hi] = i[keep].reshape(hi - lo, k)
    return sims, idx


def _exact_knn(
    X: np.ndarray, k: int, *, block_size: int, show_progress_bar: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN by blockwise float32 matrix products and top-k (self excluded).

    torch's GEMM + ``topk`` is 2-3x faster than a faiss flat index on this kind of CPU; a block
    holds at most ~64 MiB of similarities whatever ``n_samples`` is.
    """
    import warnings

    import torch

    n = X.shape[0]
    with warnings.catch_warnings():  # read-only memmaps: the tensor is never written
        warnings.simplefilter("ignore", UserWarning)
        keys = torch.from_numpy(X)
    rows = int(max(1, min(block_size, 2**24 // n)))
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    with torch.inference_mode():
        for lo in progress(
            range(0, n, rows), show_progress_bar=show_progress_bar, desc="kNN", unit="block"
        ):
            hi = min(n, lo + rows)
            S = keys[lo:hi] @ keys.T
            S[torch.arange(hi - lo), torch.arange(lo, hi)] = -torch.inf  # never its own neighbour
            v, i = torch.topk(S, k, dim=1)
            sims[lo:hi] = v.numpy()
            idx[lo:hi] = i.numpy()
    return sims, idx


@dataclass(frozen=True)
class DuplicatePair:
    """Two records whose embeddings have cosine similarity >= the threshold (``i < j``)."""

    i: int
    j: int
    similarity: float


def near_duplicate_pairs(
    X: np.ndarray,
    *,
    threshold: float = 0.95,
    k: int = 10,
    show_progress_bar: bool | None = None,
) -> list[DuplicatePair]:
    """Pairs of rows with cosine similarity >= ``threshold`` among each row's ``k`` neighbours.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        L2-normalised embeddings.
    threshold : float, default=0.95
        Minimum cosine similarity.
    k : int, default=10
        Neighbours examined per row.

    Returns
    -------
    list of DuplicatePair
        Sorted by decreasing similarity, each unordered pair once.
    """
    if not -1.0 <= threshold <= 1.0:
        raise DataValidationError(f"threshold must be in [-1, 1], got {threshold}")
    sims, idx = knn_graph(X, k, show_progress_bar=show_progress_bar)
    pairs: dict[tuple[int, int], float] = {}
    rows, cols = np.nonzero(sims >= threshold)
    for r, c in zip(rows.tolist(), cols.tolist()):
        j = int(idx[r, c])
        if j < 0:
            continue
        key = (min(r, j), max(r, j))
        pairs[key] = max(pairs.get(key, -1.0), float(sims[r, c]))
    return sorted(
        (DuplicatePair(i, j, s) for (i, j), s in pairs.items()),
        key=lambda p: (-p.similarity, p.i, p.j),
    )


def duplicate_groups(n_samples: int, pairs: list[DuplicatePair]) -> list[list[int]]:
    """Connected components (size >= 2) of the duplicate-pair graph, each sorted, largest first."""
    parent = list(range(n_samples))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for p in pairs:
        ra, rb = find(p.i), find(p.j)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for a in range(n_samples):
        groups.setdefault(find(a), []).append(a)
    out = [g for g in groups.values() if len(g) > 1]
    return sorted(out, key=lambda g: (-len(g), g[0]))
