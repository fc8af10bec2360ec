"""Nearest-neighbour search on normalised embeddings (faiss); near-duplicate pairs built on it are
:mod:`dataprune.near_duplicates`.

Memory is O(n_samples * k): neighbours are computed block by block and never as an n x n matrix.
"""

from __future__ import annotations

import logging

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = [
    "KNN_METHODS",
    "check_knn_params",
    "default_ivf_params",
    "exact_knn_rows",
    "knn_graph",
]

_EXACT_LIMIT = 100_000

#: kNN methods of :func:`knn_graph` (``method=``), each with what it does.
KNN_METHODS: dict[str, str] = {
    "exact": "float32 matrix products over the symmetric similarity matrix's tiles, each computed "
    "once, and a running top-k (default up to 100k rows)",
    "hnsw": "faiss HNSW graph, built reproducibly (on all threads where faiss's build is "
    "deterministic), efSearch tuned to a recall target on a sample; over the leading principal "
    "components (8-bit codes), re-scored exactly, when few of them hold most of the variance",
    "ivf": "faiss IVF-Flat with a quantizer trained on a sample",
    "cells": "cell self-join: queries batched by coarse cell, bfloat16 matrix products",
    "auto": "the cell self-join when its recall on a sample searched exactly reaches the target, "
    "else HNSW (default above 100k rows)",
}


def _as_float32(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_samples, dim), got shape {X.shape}")
    if X.dtype != np.float32 or not X.flags.c_contiguous:
        X = np.ascontiguousarray(X, dtype=np.float32)
    return X


def default_ivf_params(n_samples: int, *, nlist: int | None = None) -> dict[str, int]:
    """Default faiss IVF parameters of :func:`knn_graph` for ``n_samples`` rows.

    ``nlist = max(16, int(4 * sqrt(n_samples)))`` lists (about 4,000 at 1M rows), ``nprobe = 16``
    lists visited per query whatever ``n_samples`` is, and the quantizer trained on a random
    sample of ``n_train = min(n_samples, max(40 * nlist, 10_000))`` rows.

    Parameters
    ----------
    n_samples : int
        Rows in the index.
    nlist : int, optional
        Lists to use instead of the default; ``n_train`` follows it.

    Returns
    -------
    dict
        ``nlist``, ``nprobe``, ``n_train``.
    """
    nlist = int(nlist) if nlist is not None else max(16, int(4 * np.sqrt(n_samples)))
    return {"nlist": nlist, "nprobe": 16, "n_train": int(min(n_samples, max(40 * nlist, 10_000)))}


def knn_graph(
    X: np.ndarray,
    k: int,
    *,
    exact: bool | None = None,
    block_size: int = 16384,
    nlist: int | None = None,
    nprobe: int | None = None,
    random_state: int = 0,
    show_progress_bar: bool | None = None,
    method: str | None = None,
    ef_search: int | None = None,
    target_recall: float = 0.95,
    return_info: bool = False,
):
    """k nearest neighbours of every row by inner product (cosine for normalised rows), self
    excluded.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        Rows, ideally L2-normalised float32.
    k : int
        Neighbours per row (clipped to ``n_samples - 1``).
    exact : bool, optional
        Exact search by blockwise matrix products (default when ``n_samples <= 100_000``)
        or an approximate one (``method="auto"``). ``method`` overrides it.
    block_size : int, default=16384
        Query rows per search call (IVF); the exact search cuts the rows into blocks of
        ``min(block_size, 4096)`` and computes each tile of the (symmetric) similarity matrix
        once, for both of its blocks (at most 64 MiB of float32 similarities per tile),
        keeping a running top-k per row.
    nlist : int, optional
        Coarse cells (IVF lists or the cells of ``method="cells"``). Default (``None``): the
        method's own rule, which scales with ``n_samples``: IVF ``max(16, int(4 * sqrt(n)))``
        (:func:`default_ivf_params`), cells ``round(n / 1000)``
        (:func:`dataprune.cell_join.default_cell_params`). Ignored by exact search.
    nprobe : int, optional
        Cells visited per query. Default (``None``): the method's own, 16 for IVF
        (:func:`default_ivf_params`) and ``min(nlist, 16)`` for cells
        (:func:`~dataprune.cell_join.default_cell_params`); a value given is used by either
        method, with or without ``nlist``. Ignored by exact search and HNSW. At the IVF defaults
        the approximate graph matches the exact one on embedding-like (clustered) data
        (recall@10 >= 0.99 in the tests); on structureless, uniformly spread vectors recall falls
        (about 0.85 at 16 dimensions, lower in higher dimension, 0.48 at 100k rows of rank-24
        data in ``benchmarks/knn_scale.py``): raise ``nprobe`` (up to ``nlist``, which is exact)
        for such data, or use HNSW.
    random_state : int, default=0
        Seed for the IVF training sample (``min(n, max(40 * nlist, 10_000))`` rows) or the cell
        centroids. The HNSW graph does not depend on it (faiss's fixed level seed).
    method : {"exact", "auto", "hnsw", "ivf", "cells"}, optional
        Overrides ``exact`` (:data:`KNN_METHODS`). Default (``None``): ``"exact"`` up to 100k rows,
        ``"auto"`` above. ``"auto"`` (:func:`dataprune.neighbors_auto.auto_knn`): the cell
        self-join, kept when its recall@k on a seeded sample of 2,000 rows searched exactly, less
        two standard errors, reaches ``target_recall``, else the HNSW graph; the join is skipped
        when the share of the sample's neighbours its cells would score at all is already below
        the target (measured at 300k rows, k = 32: clustered embeddings 34.8 s at recall 0.991
        against HNSW's 117.7 s; structureless low-rank data 51.5 s at 0.953, the join skipped,
        against HNSW's 45.6 s). ``"hnsw"``: a faiss HNSW graph
        (:func:`dataprune.neighbors_hnsw.hnsw_knn`), built so that the same rows give the same
        graph (with all threads where faiss's build is deterministic, else one), searched by
        all threads with ``efSearch`` tuned on a sample to ``target_recall``; when few principal
        components hold most of the variance (low-rank rows), the graph is built over them
        (stored as 8-bit codes) and each row's candidates are re-scored exactly in the full
        space (:mod:`dataprune.neighbors_projection`). ``"ivf"``: the
        faiss IVF index above. ``"cells"``: the cell self-join of
        :func:`dataprune.cell_join.cell_join_knn` (queries batched by coarse cell, bfloat16
        matrix products, exact re-scoring; ``nlist`` / ``nprobe`` passed through, each ``None``
        meaning its own default).
    ef_search : int, optional
        HNSW candidate-list size per query (at least ``k + 1``); default (``None``): tuned per
        call, the first of ``(k + 1) * (1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 8, 12, 16)`` whose recall@k on a
        seeded sample of 2,000 rows (searched exactly), less two standard errors, reaches
        ``target_recall`` (:func:`dataprune.neighbors_hnsw.default_hnsw_params`). Higher is
        slower and closer to exact. Given without ``method``, above the exact limit it selects
        HNSW; ignored by the other methods.
    target_recall : float, default=0.95
        Recall@k the ``"auto"`` check and the HNSW tuning aim for (ignored with ``ef_search``
        or other methods).
    return_info : bool, default=False
        Also return a dict of what ran (``method`` and its parameters; for HNSW the tuned
        ``efSearch`` and the sample's recall).

    Returns
    -------
    sims : ndarray of shape (n_samples, k), float32
        Similarities, descending per row (``-inf`` where fewer neighbours were found).
    idx : ndarray of shape (n_samples, k), int64
        Neighbour indices (``-1`` where missing). Exact search orders equal similarities by
        increasing index (and keeps the lowest indices among ties at the ``k``-th place).
    info : dict
        Only with ``return_info=True``.
    """
    X = _as_float32(X)
    k = int(min(k, X.shape[0] - 1))
    if not 0.0 < float(target_recall) <= 1.0:
        raise DataValidationError(f"target_recall must be in (0, 1], got {target_recall!r}")
    sims, idx, info = _knn_graph(
        X,
        k,
        exact=exact,
        block_size=block_size,
        nlist=nlist,
        nprobe=nprobe,
        random_state=random_state,
        show_progress_bar=show_progress_bar,
        method=method,
        ef_search=ef_search,
        target_recall=float(target_recall),
    )
    return (sims, idx, info) if return_info else (sims, idx)


def _knn_graph(
    X: np.ndarray,
    k: int,
    *,
    exact: bool | None,
    block_size: int,
    nlist: int | None,
    nprobe: int | None,
    random_state: int,
    show_progress_bar: bool | None,
    method: str | None,
    ef_search: int | None,
    target_recall: float,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """:func:`knn_graph` on checked float32 rows: ``(sims, idx, info)``."""
    import faiss

    n, d = X.shape
    if k < 1:
        empty = np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        return (*empty, {"method": "none"})
    check_knn_params(method, nlist=nlist, nprobe=nprobe, ef_search=ef_search)
    if method == "cells":
        from dataprune.cell_join import cell_join_knn, resolve_cell_params

        sims, idx = cell_join_knn(
            X,
            k,
            nlist=nlist,
            nprobe=nprobe,
            random_state=random_state,
            show_progress_bar=show_progress_bar,
        )
        return sims, idx, {"method": "cells", **resolve_cell_params(n, nlist, nprobe)}
    if method is None:
        if exact is None:
            exact = n <= _EXACT_LIMIT
        # a fixed efSearch asks for the HNSW graph
        method = "exact" if exact else ("hnsw" if ef_search is not None else "auto")
    if method == "auto":
        from dataprune.neighbors_auto import auto_knn

        return auto_knn(
            X,
            k,
            target_recall=target_recall,
            random_state=random_state,
            block_size=block_size,
            show_progress_bar=show_progress_bar,
        )
    if method == "exact":
        sims, idx = _exact_knn(X, k, block_size=block_size, show_progress_bar=show_progress_bar)
        return sims, idx, {"method": "exact"}
    if method == "hnsw":
        from dataprune.neighbors_hnsw import hnsw_knn

        return hnsw_knn(
            X,
            k,
            ef_search=ef_search,
            target_recall=target_recall,
            random_state=random_state,
            block_size=block_size,
            show_progress_bar=show_progress_bar,
        )
    params = default_ivf_params(n, nlist=nlist)
    nlist = int(params["nlist"])
    nprobe = int(params["nprobe"] if nprobe is None else nprobe)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(random_state)
    train = X[np.sort(rng.choice(n, size=int(params["n_train"]), replace=False))]
    index.cp.seed = int(random_state)
    index.train(train)
    index.nprobe = nprobe
    index.add(X)
    sims, idx = _search_without_self(index, X, k, block_size, show_progress_bar)
    return sims, idx, {"method": "ivf", "nlist": nlist, "nprobe": nprobe}


def check_knn_params(
    method: str | None,
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    ef_search: int | None = None,
) -> None:
    """Validate :func:`knn_graph`'s method and index options before any work (a selector calls
    it before its rows are embedded).

    Raises
    ------
    DataValidationError
        An unknown ``method`` (with the valid names), or an ``nlist``, ``nprobe`` or
        ``ef_search`` that is not ``None`` or an integer >= 1.
    """
    if method is not None and method not in KNN_METHODS:
        valid = ", ".join(sorted(KNN_METHODS))
        raise DataValidationError(f"unknown kNN method {method!r}; valid: {valid}")
    for name, value in (("nlist", nlist), ("nprobe", nprobe), ("ef_search", ef_search)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise DataValidationError(f"{name} must be an integer >= 1 or None, got {value!r}")


def _search_without_self(
    index,
    X: np.ndarray,
    k: int,
    block_size: int,
    show_progress_bar: bool | None,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Search the rows of ``X`` (``rows``, default all) in the faiss ``index`` for ``k + 1`` hits
    each, self dropped; arrays of shape ``(len(rows), k)``."""
    rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    n = len(rows)
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    for lo in progress(
        range(0, n, block_size), show_progress_bar=show_progress_bar, desc="kNN", unit="block"
    ):
        hi = min(n, lo + block_size)
        s, i = index.search(np.ascontiguousarray(X[rows[lo:hi]]), k + 1)
        # drop self (or the last hit when self was not returned, e.g. exact duplicates tie)
        keep = i != rows[lo:hi, None]
        keep[keep.all(axis=1), -1] = False
        sims[lo:hi] = s[keep].reshape(hi - lo, k)
        idx[lo:hi] = i[keep].reshape(hi - lo, k)
    return sims, idx


def _as_tensor(a: np.ndarray):
    """``torch.from_numpy(a)`` without a copy, also for a read-only array (memory map).

    torch warns that it does not support non-writable tensors; the warning is silenced for such
    arrays only, so the caller must never write to the returned tensor.
    """
    import warnings

    import torch

    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():  # read-only memmaps: the tensor is never written
        warnings.filterwarnings("ignore", message=".*not writable", category=UserWarning)
        return torch.from_numpy(a)


#: Exact search: query rows per block (at most) and float32 similarities per tile (128 MiB).
_EXACT_QUERY_ROWS = 4096
_EXACT_TILE_ELEMENTS = 2**25


def _best_k(v: np.ndarray, i: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row by (similarity descending, index ascending), in that order."""
    o = np.lexsort((i, -v), axis=1)[:, :k]
    return np.take_along_axis(v, o, 1), np.take_along_axis(i, o, 1)


def _tile_top_k(S, k: int, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best ``min(k, width)`` columns of each row of ``S`` (a tensor), unordered, as (values,
    indices). ``index`` (same shape as ``S``) names each entry; default: its column. Among equal
    similarities at the ``k``-th place, the lowest indices."""
    import torch

    if S.shape[1] <= k:
        idx = np.broadcast_to(np.arange(S.shape[1]), S.shape) if index is None else index
        return S.numpy().copy(), idx
    v, i = torch.topk(S, k + 1, dim=1)
    v, i = v.numpy(), i.numpy()
    tie = np.flatnonzero(v[:, k - 1] == v[:, k])  # a tie straddles the k-th place
    v, i = v[:, :k], i[:, :k]
    if index is not None:
        i = np.take_along_axis(index, i, 1)
    if len(tie):  # rare (duplicate rows): the lowest indices among the tied ones
        rows = S.numpy()[tie]
        names = np.broadcast_to(np.arange(S.shape[1]), rows.shape) if index is None else index[tie]
        v[tie], i[tie] = _best_k(rows, names, k)
    return v, i


def _exact_knn(
    X: np.ndarray,
    k: int,
    *,
    block_size: int,
    show_progress_bar: bool | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN by float32 matrix products over square tiles of the similarity matrix, each
    computed once (self excluded).

    The rows are cut into blocks of ``b = min(block_size, 4096)`` rows; the tile of blocks
    ``(i, j)``, ``j >= i``, is computed once and serves both blocks: its rows update block
    ``i``'s running best ``k``, its transpose (copied contiguous: ``topk`` along strided rows is
    3x slower) block ``j``'s. This halves the arithmetic of a query-by-key pass (``X @ X.T`` is
    symmetric) and makes ``sim(a, b) == sim(b, a)`` exactly. A block's best is final once its
    row of tiles is done. Equal similarities are ordered by increasing index. torch's GEMM +
    ``topk`` is 2-3x faster than a faiss flat index on this kind of CPU; the small merges run in
    numpy.
    """
    import torch

    n = X.shape[0]
    keys = _as_tensor(X)
    b = int(max(1, min(block_size, _EXACT_QUERY_ROWS, n)))
    spans = [(lo, min(n, lo + b)) for lo in range(0, n, b)]
    pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)

    def merge(blk: int, v: np.ndarray, i: np.ndarray) -> None:
        # tiles' candidates wait and are merged 8 tiles at a time (one selection, not one each)
        p = pending.setdefault(blk, [])
        p.append((v, i))
        if len(p) >= _MERGE_EVERY:
            pending[blk] = [_select_k(*p, k=k)]

    with torch.inference_mode():
        # two reused tile buffers: a fresh 64 MiB tensor per tile costs more in page faults
        # than the transposed copy itself
        buf_s, buf_t = torch.empty(b * b), torch.empty(b * b)
        for bi in progress(
            range(len(spans)), show_progress_bar=show_progress_bar, desc="kNN", unit="block"
        ):
            lo, hi = spans[bi]
            for bj in range(bi, len(spans)):
                klo, khi = spans[bj]
                S = buf_s[: (hi - lo) * (khi - klo)].view(hi - lo, khi - klo)
                torch.mm(keys[lo:hi], keys[klo:khi].T, out=S)
                if bj == bi:  # never its own neighbour
                    r = np.arange(hi - lo)
                    S.numpy()[r, r] = -np.inf
                v, i = _tile_top_k(S, k)
                merge(bi, v, i + klo)
                if bj > bi:
                    T = buf_t[: S.numel()].view(khi - klo, hi - lo)
                    T.copy_(S.T)
                    v, i = _tile_top_k(T, k)
                    merge(bj, v, i + lo)
            sims[lo:hi], idx[lo:hi] = _select_k(*pending.pop(bi), k=k)
    return sims, idx


_MERGE_EVERY = 8


def _select_k(*parts: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of the candidate columns of every row (``parts``: (values, indices)
    pairs of equal row count), ordered by similarity descending, then index ascending.

    :func:`_tile_top_k` picks them (ties at the ``k``-th place by index), :func:`_best_k` orders
    them.
    """
    import torch

    v = np.concatenate([p[0] for p in parts], axis=1) if len(parts) > 1 else parts[0][0]
    i = np.concatenate([p[1] for p in parts], axis=1) if len(parts) > 1 else parts[0][1]
    v, i = _tile_top_k(torch.from_numpy(np.ascontiguousarray(v)), k, index=i)
    return _best_k(v, i, k)


def _knn_of_queries(keys, queries, query_rows: np.ndarray, k: int, k_rows: int):
    """Exact top-``k`` of ``queries`` (tensor, rows ``query_rows`` of ``keys``) against every
    key, the query's own row excluded: key tiles of ``k_rows`` rows, each tile's best merged
    into a running best (similarity descending, index ascending). Call under inference mode."""
    n = keys.shape[0]
    best_v = best_i = None
    for klo in range(0, n, k_rows):
        khi = min(n, klo + k_rows)
        S = queries @ keys[klo:khi].T
        own = np.flatnonzero((query_rows >= klo) & (query_rows < khi))
        if len(own):  # never its own neighbour
            S.numpy()[own, query_rows[own] - klo] = -np.inf
        v, i = _tile_top_k(S, k)
        i = i + klo
        if best_v is not None:
            v, i = np.concatenate([best_v, v], axis=1), np.concatenate([best_i, i], axis=1)
        best_v, best_i = _best_k(v, i, k)
    return best_v, best_i


def exact_knn_rows(X: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours (inner product, self excluded) of the rows ``X[rows]``
    among all rows of ``X`` — e.g. the ground truth of a recall estimate.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        Rows (float32; a read-only memory map works).
    rows : ndarray of shape (n_queries,), int
        Query rows (distinct).
    k : int
        Neighbours per query (``<= n_samples - 1``).

    Returns
    -------
    sims, idx : ndarray of shape (n_queries, k)
        Similarities (descending) and indices. Keys are read once, in tiles of at most 128 MiB
        of similarities.
    """
    import torch

    X = _as_float32(X)
    rows = np.asarray(rows, dtype=np.int64)
    keys = _as_tensor(X)
    Q = torch.from_numpy(np.ascontiguousarray(X[rows], dtype=np.float32))
    step = int(min(X.shape[0], max(k, _EXACT_TILE_ELEMENTS // max(1, len(rows)))))
    with torch.inference_mode():
        return _knn_of_queries(keys, Q, rows, k, step)
