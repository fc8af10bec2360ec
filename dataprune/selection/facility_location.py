"""Facility-location coreset selection by lazy greedy on a sparse kNN similarity graph.

Objective (Mirchandani & Francis; used for data subsets by Wei et al. 2015, apricot, CRAIG)::

    f(S) = sum_i max_{j in S} sim(i, j)

``sim`` is the cosine similarity made non-negative (``similarity="clip"``: ``max(cos, 0)``;
``"shift"``: ``(1 + cos) / 2``) and kept only for each record's ``n_neighbors`` nearest neighbours
(faiss, :func:`dataprune.neighbors.knn_graph`: exact below 100k rows, IVF above) plus the record
itself (similarity 1). Everything else counts as 0, so memory is O(n_samples * n_neighbors), never
O(n_samples^2). ``f`` is monotone submodular, so greedy is a (1 - 1/e)-approximation.

Lazy greedy (Minoux 1978): a candidate's gain can only shrink as ``S`` grows, so stale gains are
upper bounds. Candidates never re-evaluated stay in one array sorted by their initial gain; re-
evaluated ones go to a ``heapq``. Each round pops the 32 best bounds, re-evaluates them in one
vectorised pass over their reverse-neighbour lists (CSR arrays) and takes the best if it still beats
every other bound. The selection equals plain greedy (ties: smallest index).
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.progress import progress
from dataprune.selection.base import BaseSelector

logger = logging.getLogger(__name__)

__all__ = ["FacilityLocation", "facility_location_objective"]

_SIMILARITIES = ("clip", "shift")
_NORM_TOL = 1e-3


def _transform(sims: np.ndarray, similarity: str) -> np.ndarray:
    """Cosine -> non-negative similarity (monotone, so it commutes with max)."""
    if similarity == "clip":
        return np.maximum(sims, 0.0)
    return np.clip((1.0 + sims) * 0.5, 0.0, 1.0)


def _check_similarity(similarity: str) -> None:
    if similarity not in _SIMILARITIES:
        raise UnknownOptionError(
            f"unknown similarity {similarity!r}; valid: {', '.join(_SIMILARITIES)}"
        )


def _normalised_rows(X: Any, block_size: int = 65536) -> np.ndarray:
    """float32 C-contiguous L2-normalised rows; no copy when the input already is (memmap ok)."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.ndim != 2:
        raise DataValidationError(f"expected a 2-D array (n_samples, dim), got shape {X.shape}")
    if X.dtype != np.float32 or not X.flags.c_contiguous:
        X = np.ascontiguousarray(X, dtype=np.float32)
    norms = np.empty(X.shape[0], np.float32)
    for lo in range(0, X.shape[0], block_size):
        blk = np.asarray(X[lo : lo + block_size])
        norms[lo : lo + len(blk)] = np.sqrt(np.einsum("ij,ij->i", blk, blk))
    if not np.isfinite(norms).all():
        bad = int(np.flatnonzero(~np.isfinite(norms))[0])
        raise DataValidationError("embeddings contain NaN or infinite values", record=bad)
    if (norms == 0).any():
        bad = int(np.flatnonzero(norms == 0)[0])
        raise DataValidationError(
            "embedding is all zeros; cosine similarity is undefined", record=bad
        )
    if np.abs(norms - 1.0).max() > _NORM_TOL:
        logger.warning("embeddings are not L2-normalised; normalising a float32 copy")
        X = np.asarray(X, dtype=np.float32) / norms[:, None]
    return X


def _coverage_csr(
    sims: np.ndarray, idx: np.ndarray, similarity: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reverse-neighbour lists: for each candidate ``j``, the records it covers and how well.

    ``sims[i, c]`` / ``idx[i, c]`` is record ``i``'s ``c``-th neighbour. Candidate ``j`` covers
    ``i`` when ``j`` is among ``i``'s neighbours (similarity ``sim(i, j)``) and always covers itself
    (similarity 1). Zero similarities are dropped.

    Returns
    -------
    indptr : ndarray of shape (n_samples + 1,), int64
    indices : ndarray of shape (nnz,), int32 (int64 above 2**31 rows)
        Covered records, grouped by candidate (self first, then by covered index).
    data : ndarray of shape (nnz,), float32
        Similarities in [0, 1].
    """
    n, kk = idx.shape
    itype = np.int32 if n < 2**31 - 1 else np.int64
    vals = _transform(sims, similarity).astype(np.float32, copy=False).ravel()
    cand = idx.ravel()
    keep = (cand >= 0) & (vals > 0)
    covered = np.repeat(np.arange(n, dtype=itype), kk)[keep]
    cand = cand[keep].astype(itype)
    vals = vals[keep]
    selfs = np.arange(n, dtype=itype)
    cand = np.concatenate([selfs, cand])
    covered = np.concatenate([selfs, covered])
    vals = np.concatenate([np.ones(n, np.float32), vals])
    del keep
    order = np.argsort(cand, kind="stable")
    counts = np.bincount(cand, minlength=n)
    del cand
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, covered[order], vals[order]


def _gains(
    cands: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    coverage: np.ndarray,
) -> np.ndarray:
    """Marginal gains ``sum_i max(sim(i, j) - coverage[i], 0)`` of the candidates ``cands``.

    One vectorised pass over the candidates' coverage lists; every gain in this module is computed
    here, so a candidate's value depends only on its list and ``coverage`` (not on the batch).
    """
    starts = indptr[cands]
    lens = indptr[cands + 1] - starts  # >= 1: every candidate covers itself
    offsets = np.cumsum(lens) - lens
    pos = np.arange(int(lens.sum()), dtype=np.int64) + np.repeat(starts - offsets, lens)
    contrib = data[pos] - coverage[indices[pos]]
    np.maximum(contrib, 0.0, out=contrib)
    return np.add.reduceat(contrib, offsets)


def _lazy_greedy(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    k: int,
    *,
    batch: int = 32,
    show_progress_bar: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Lazy greedy facility location on the coverage CSR arrays of :func:`_coverage_csr`.

    Each round pops the ``batch`` best upper bounds, re-evaluates them in one vectorised call and
    takes the best fresh gain if it beats every remaining bound (ties: smallest index); the other
    fresh gains go back as tighter bounds. Same selection as plain greedy with :func:`_gains`.

    Returns
    -------
    selected : ndarray of shape (k,), int64
        In selection order.
    gains : ndarray of shape (k,), float64
        Marginal gain of each selected candidate when it was taken (non-increasing).
    coverage : ndarray of shape (n_samples,), float64
        ``max_{j in S} sim(i, j)`` for every record.
    nearest : ndarray of shape (n_samples,), int64
        The selected record giving that maximum (-1 when none covers it).
    n_evaluations : int
        Gain evaluations done (plain greedy would do about ``n_samples * k``).
    """
    n = len(indptr) - 1
    cur = np.zeros(n, np.float64)
    nearest = np.full(n, -1, np.int64)
    # initial bounds (coverage 0), slightly inflated: bounds only decide the evaluation order
    init = _gains(np.arange(n), indptr, indices, data, cur) if n else np.zeros(0)
    init = init * (1.0 + 1e-9) + 1e-12
    order = np.lexsort((np.arange(n), -init))
    # never-evaluated candidates, best first; re-evaluated ones live in `heap`
    arr_key = (-init[order]).tolist()
    arr_idx = order.tolist()
    del init, order
    heap: list[tuple[float, int]] = []
    selected: list[int] = []
    gains: list[float] = []
    p = 0
    push, pop = heapq.heappush, heapq.heappop
    bar = progress(
        total=k, show_progress_bar=show_progress_bar, desc="facility location", unit="pick"
    )
    n_evals = 0
    while len(selected) < k:
        cands: list[int] = []
        while len(cands) < batch and (p < n or heap):
            if p < n and (not heap or (arr_key[p], arr_idx[p]) < heap[0]):
                cands.append(arr_idx[p])
                p += 1
            else:
                cands.append(pop(heap)[1])
        ca = np.asarray(cands, dtype=np.int64)
        g = _gains(ca, indptr, indices, data, cur)
        n_evals += len(cands)
        best = g.max()
        tied = np.flatnonzero(g == best)
        b = int(tied[np.argmin(ca[tied])]) if len(tied) > 1 else int(tied[0])
        j, gj = cands[b], float(best)
        if p < n:
            nxt = (arr_key[p], arr_idx[p])
            if heap and heap[0] < nxt:
                nxt = heap[0]
        elif heap:
            nxt = heap[0]
        else:
            nxt = None
        take = nxt is None or (-gj, j) < nxt
        for i, (c, gc) in enumerate(zip(cands, g.tolist())):
            if not (take and i == b):
                push(heap, (-gc, c))  # fresh gains stay valid upper bounds
        if take:
            a_, b_ = indptr[j], indptr[j + 1]
            rows = indices[a_:b_]
            vals = data[a_:b_]
            better = vals > cur[rows]
            r = rows[better]
            cur[r] = vals[better]
            nearest[r] = j
            selected.append(j)
            gains.append(gj)
            bar.update(1)
    bar.close()
    logger.debug("lazy greedy: %d gain evaluations for %d picks", n_evals, k)
    return (
        np.asarray(selected, dtype=np.int64),
        np.asarray(gains, dtype=np.float64),
        cur,
        nearest,
        n_evals,
    )


def _all_gains(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, coverage: np.ndarray
) -> np.ndarray:
    """Marginal gain of every candidate given the final coverage (blocked, vectorised)."""
    n = len(indptr) - 1
    out = np.zeros(n, np.float64)
    block = 1 << 16
    for lo in range(0, n, block):
        out[lo : min(n, lo + block)] = _gains(
            np.arange(lo, min(n, lo + block)), indptr, indices, data, coverage
        )
    return out


class FacilityLocation(BaseSelector):
    """Facility-location selection (lazy greedy on a faiss kNN graph).

    Parameters
    ----------
    n_samples : int, optional
        Number of records to keep (exactly one of ``n_samples`` / ``fraction``).
    fraction : float, optional
        Fraction of records to keep, in (0, 1].
    random_state : int, optional
        Seed of the IVF index training (``knn_method="ivf"``); the exact and HNSW graphs do
        not depend on it.
    n_neighbors : int, default=32
        Neighbours kept per record in the similarity graph (memory ~ 12 bytes per edge).
    similarity : {"clip", "shift"}, default="clip"
        Non-negative similarity from the cosine: ``max(cos, 0)`` or ``(1 + cos) / 2``.
    exact_knn : bool, optional
        Force an exact or approximate (HNSW) kNN graph; default: exact up to 100k rows.
    knn_method : {"exact", "auto", "hnsw", "ivf", "cells"}, optional
        The kNN method of :func:`dataprune.neighbors.knn_graph` (overrides ``exact_knn``);
        default (``None``): exact up to 100k rows, ``"auto"`` above (the cell self-join when a
        sample says its recall@k reaches 0.95, else HNSW; with ``ef_search`` given, HNSW).
    nprobe : int, optional
        Cells visited per query by ``knn_method="ivf"`` or ``"cells"``; default (``None``): the
        method's own (:func:`dataprune.neighbors.default_ivf_params`).
    ef_search : int, optional
        HNSW candidate list per query; default (``None``): tuned per fit until the recall@k of a
        2,000-row sample searched exactly reaches 0.95
        (:func:`dataprune.neighbors_hnsw.default_hnsw_params`).
    show_progress_bar : bool, optional
        Show tqdm bars (default: when the ``dataprune`` logger is at INFO).

    Attributes
    ----------
    selected_indices_ : ndarray of shape (k,), int64
        Kept records in greedy order.
    gains_ : ndarray of shape (k,), float64
        Marginal gain of each kept record when it was added (non-increasing).
    objective_ : float
        ``f(S)`` on the kNN graph (``== gains_.sum()`` up to rounding).
    scores_ : ndarray of shape (n_samples,), float64
        Higher = keep. Kept records: their ``gains_``; the others: the marginal gain they would
        still add to the final subset. Every kept score is >= every other score.
    coverage_ : ndarray of shape (n_samples,), float64
        ``max_{j in S} sim(i, j)`` for each record (1 for kept records; 0 when no kept record is
        among its neighbours).
    nearest_selected_ : ndarray of shape (n_samples,), int64
        The kept record that represents each record (-1 when none is among its neighbours).
    n_gain_evaluations_ : int
        Gain (re-)evaluations done by the lazy greedy (plain greedy would do ~ n_samples * k).
    timings_ : dict
        Seconds spent in ``knn_graph_s``, ``coverage_lists_s`` and ``lazy_greedy_s``.
    knn_info_ : dict
        What built the kNN graph (``knn_graph(..., return_info=True)``: the method and its
        parameters; for ``"auto"`` which graph was kept and the sample's recall).
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        n_neighbors: int = 32,
        similarity: str = "clip",
        exact_knn: bool | None = None,
        knn_method: str | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.n_neighbors = n_neighbors
        self.similarity = similarity
        self.exact_knn = exact_knn
        self.knn_method = knn_method
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.show_progress_bar = show_progress_bar

    def _check_params(self) -> None:
        from dataprune.neighbors import check_knn_params

        _check_similarity(self.similarity)
        if isinstance(self.n_neighbors, bool) or int(self.n_neighbors) < 1:
            raise DataValidationError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        check_knn_params(self.knn_method, nprobe=self.nprobe, ef_search=self.ef_search)

    def _select(self, X: np.ndarray, y: Any, k: int, rng: np.random.Generator):
        import time

        from dataprune.neighbors import knn_graph

        t0 = time.perf_counter()
        X = _normalised_rows(X)
        n = X.shape[0]
        seed = int(rng.integers(2**31 - 1))
        sims, idx, self.knn_info_ = knn_graph(
            X,
            int(self.n_neighbors),
            exact=self.exact_knn,
            method=self.knn_method,
            nprobe=None if self.nprobe is None else int(self.nprobe),
            ef_search=None if self.ef_search is None else int(self.ef_search),
            random_state=seed,
            show_progress_bar=self.show_progress_bar,
            return_info=True,
        )
        t1 = time.perf_counter()
        indptr, indices, data = _coverage_csr(sims, idx, self.similarity)
        del sims, idx
        t2 = time.perf_counter()
        selected, gains, coverage, nearest, n_evals = _lazy_greedy(
            indptr, indices, data, k, show_progress_bar=self.show_progress_bar
        )
        self.timings_ = {
            "knn_graph_s": t1 - t0,
            "coverage_lists_s": t2 - t1,
            "lazy_greedy_s": time.perf_counter() - t2,
        }
        self.n_gain_evaluations_ = int(n_evals)
        scores = _all_gains(indptr, indices, data, coverage)
        scores[selected] = gains
        self.gains_ = gains
        self.objective_ = float(coverage.sum())
        self.coverage_ = coverage
        self.nearest_selected_ = nearest
        logger.info(
            "facility location: %d of %d records, objective %.2f (%.4f per record), "
            "%d gain evaluations",
            k,
            n,
            self.objective_,
            self.objective_ / n,
            self.n_gain_evaluations_,
        )
        return selected, scores


def facility_location_objective(
    X: Any,
    indices: Any,
    *,
    similarity: str = "clip",
    block_size: int = 65536,
) -> float:
    """Exact (dense) facility-location value ``sum_i max_{j in S} sim(i, j)`` of a subset.

    Computed without an n x n matrix: a flat inner-product index over the subset, queried in
    blocks for each record's most similar member. Use it to compare subsets chosen by different
    methods (or by the kNN-sparse greedy) on the full objective.

    Parameters
    ----------
    X : array-like of shape (n_samples, dim)
        Embeddings (normalised here when they are not).
    indices : array-like of int, shape (k,)
        The subset ``S``.
    similarity : {"clip", "shift"}, default="clip"
        As in :class:`FacilityLocation`.

    Returns
    -------
    float
        The objective (between 0 and ``n_samples``).
    """
    import faiss

    _check_similarity(similarity)
    X = _normalised_rows(X)
    sel = np.asarray(indices, dtype=np.int64).ravel()
    if sel.size == 0:
        return 0.0
    if sel.min() < 0 or sel.max() >= X.shape[0]:
        raise DataValidationError(f"indices must lie in [0, {X.shape[0]})")
    index = faiss.IndexFlatIP(X.shape[1])
    index.add(np.ascontiguousarray(X[np.sort(sel)]))
    total = 0.0
    for lo in range(0, X.shape[0], block_size):
        s, _ = index.search(np.asarray(X[lo : lo + block_size]), 1)
        total += float(_transform(s[:, 0].astype(np.float64), similarity).sum())
    return total
