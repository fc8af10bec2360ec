"""k-center greedy (farthest-first traversal) coreset selection (Sener & Savarese, 2018).

Start from a random (or given) centre and repeatedly add the record farthest from its nearest
chosen centre. The result is a 2-approximation of the minimax-cover ("k-center") problem: every
record lies within ``coverage_radius_`` of a kept record.

Memory is O(n_samples) on top of the input (which may be an ``np.memmap``); distance work is
done in float32 blocks, never as an n x n or n x k matrix.

Two strategies produce the same selection (ties: smallest index; the two compute distances with
different float32 summation orders, so only candidates within ~1e-6 of each other could swap):

- ``"full"``: one blocked matrix-vector product over all rows per new centre, O(n_samples * k *
  dim) memory-bandwidth-bound work. This is the straightforward method (DeepCore's loop, without
  its k x n distance matrix).
- ``"batched"``: the running min-distance vector is only brought up to date every ``batch_size``
  centres, with one matrix-matrix product (BLAS-3, compute-bound: several times faster per
  distance on a CPU). In between, the few rows that can still be the farthest (those whose
  stale distance bound is among the ``pool_size`` largest) are kept exact against each new centre;
  stale bounds only overestimate, so the farthest row found in the pool is the true farthest row.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.progress import progress
from dataprune.selection.base import BaseSelector

logger = logging.getLogger(__name__)

__all__ = ["KCenterGreedy"]

_ALGORITHMS = ("auto", "full", "batched")
# Below this fraction of |x|^2 + |c|^2 the squared distance is recomputed as |x - c|^2.
_RECOMPUTE = 1e-2


class KCenterGreedy(BaseSelector):
    """k-center greedy selection on embeddings (Euclidean distance).

    For L2-normalised rows the Euclidean distance is ``sqrt(2 - 2 cos)``, so this is farthest-first
    traversal in cosine geometry.

    Parameters
    ----------
    n_samples : int, optional
        Number of records to keep (exactly one of ``n_samples`` / ``fraction``).
    fraction : float, optional
        Fraction of records to keep, in (0, 1].
    random_state : int, optional
        Seed for the random first centre.
    initial_centers : array-like of int, optional
        Indices of records to start from instead of one random record. They are the first entries
        of ``selected_indices_`` and count towards the budget.
    algorithm : {"auto", "full", "batched"}, default="auto"
        ``"full"`` updates every row per new centre (matvec); ``"batched"`` updates all rows every
        ``batch_size`` centres (matmul) and keeps only the candidate rows exact in between. Both
        give the same selection. ``"auto"`` uses ``"batched"`` when ``n_samples >= 5000`` and
        ``k >= 64``.
    batch_size : int, default=256
        Pending centres applied together (``"batched"``); temporary memory ~ 16384 x batch_size
        float32.
    pool_size : int, default=2048
        Candidate rows kept exact between batches (``"batched"``).
    block_size : int, default=65536
        Rows per block in the ``"full"`` strategy and the initial passes.
    show_progress_bar : bool, optional
        Show a tqdm bar (default: when the ``dataprune`` logger is at INFO).

    Attributes
    ----------
    selected_indices_ : ndarray of shape (k,), int64
        Kept records in selection order (initial centres first).
    scores_ : ndarray of shape (n_samples,), float64
        Higher = keep. For a selected record: its distance to the nearest already-chosen centre at
        the moment it was chosen (initial centres get the covering radius right after they were
        placed); for the others: their final distance to the nearest selected record. Scores are
        non-increasing along the selection order and every selected score is >= every unselected
        one, so re-thresholding the scores reproduces a k-center prefix.
    min_distances_ : ndarray of shape (n_samples,), float32
        Final distance of every record to its nearest selected record (0 for selected records).
    nearest_center_ : ndarray of shape (n_samples,), int64
        Index (into the input) of each record's nearest selected record.
    coverage_radius_ : float
        ``max(min_distances_)``: every record is within this distance of a kept one.
    n_distance_evaluations_ : int
        Row-to-centre distances computed (``n_samples * k`` for ``"full"``; for ``"batched"`` also
        the pool rows kept exact between batches).
    algorithm_ : str
        Strategy actually used.
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        initial_centers: Any = None,
        algorithm: str = "auto",
        batch_size: int = 256,
        pool_size: int = 2048,
        block_size: int = 65536,
        show_progress_bar: bool | None = None,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.initial_centers = initial_centers
        self.algorithm = algorithm
        self.batch_size = batch_size
        self.pool_size = pool_size
        self.block_size = block_size
        self.show_progress_bar = show_progress_bar

    # ------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.algorithm not in _ALGORITHMS:
            raise UnknownOptionError(
                f"unknown k-center algorithm {self.algorithm!r}; valid: {', '.join(_ALGORITHMS)}"
            )
        for name in ("block_size", "batch_size", "pool_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) < 1:
                raise DataValidationError(f"{name} must be an integer >= 1, got {value!r}")

    def _select(self, X: np.ndarray, y: Any, k: int, rng: np.random.Generator):
        X = _as_float32_rows(X)
        n = X.shape[0]
        initial = self._initial_centers(n, k, rng)
        algorithm = self.algorithm
        if algorithm == "auto":
            algorithm = "batched" if n >= 5000 and k >= 64 else "full"
        self.algorithm_ = algorithm
        from threadpoolctl import threadpool_info, threadpool_limits

        # The per-centre matvecs are memory-bound and tiny per call: a multi-threaded BLAS only adds
        # synchronisation (on a busy machine OpenBLAS gemv runs 10-50x slower with 2 threads than
        # with 1). Only the batched matrix-matrix products use every BLAS thread.
        blas_threads = max(
            [int(p.get("num_threads", 1)) for p in threadpool_info() if p["user_api"] == "blas"],
            default=1,
        )
        with threadpool_limits(limits=1, user_api="blas"):
            state: _FullState | _BatchedState
            if algorithm == "batched":
                state = _BatchedState(
                    X,
                    int(self.block_size),
                    int(self.batch_size),
                    int(self.pool_size),
                    gemm_threads=blas_threads,
                )
            else:
                state = _FullState(X, int(self.block_size))
            selected, sel_scores = self._traverse(state, initial, k)
            mind, nearest = state.result()
        scores = mind.astype(np.float64)
        scores[selected] = sel_scores
        self.min_distances_ = mind
        self.nearest_center_ = nearest
        self.coverage_radius_ = float(mind.max())
        self.n_distance_evaluations_ = int(state.n_evaluations)
        logger.info(
            "k-center greedy (%s): %d of %d records, coverage radius %.4f, %d distance evaluations",
            algorithm,
            k,
            n,
            self.coverage_radius_,
            self.n_distance_evaluations_,
        )
        return selected, scores

    def _traverse(self, state, initial: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        selected = np.empty(k, np.int64)
        sel_scores = np.empty(k, np.float64)
        for t, c in enumerate(initial):
            selected[t] = c
            state.add(int(c))
        n0 = len(initial)
        radius, nxt = state.farthest()
        sel_scores[:n0] = radius
        for t in progress(
            range(n0, k),
            show_progress_bar=self.show_progress_bar,
            desc="k-center",
            unit="centre",
            total=k - n0,
        ):
            selected[t] = nxt
            sel_scores[t] = radius
            state.add(nxt)
            radius, nxt = state.farthest()
        return selected, sel_scores

    def _initial_centers(self, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
        if self.initial_centers is None:
            return np.array([int(rng.integers(n))], dtype=np.int64)
        init = np.asarray(self.initial_centers)
        if init.ndim == 0:
            init = init.reshape(1)
        if init.ndim != 1 or init.size == 0 or not np.issubdtype(init.dtype, np.integer):
            raise DataValidationError(
                f"initial_centers must be a non-empty 1-D list of record indices, got {init!r}"
            )
        init = init.astype(np.int64)
        bad = init[(init < 0) | (init >= n)]
        if bad.size:
            raise DataValidationError(
                f"initial_centers contains index {int(bad[0])}, outside [0, {n})"
            )
        if len(np.unique(init)) != len(init):
            raise DataValidationError("initial_centers contains duplicate indices")
        if len(init) > k:
            raise DataValidationError(
                f"{len(init)} initial_centers given but the budget is only {k} records"
            )
        return init


# ---------------------------------------------------------------------------------------------
def _as_float32_rows(X: np.ndarray) -> np.ndarray:
    """float32 C-contiguous rows, without copying a float32 array or memmap."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.dtype != np.float32 or not X.flags.c_contiguous:
        X = np.ascontiguousarray(X, dtype=np.float32)
    return X


def _sq_norms(X: np.ndarray, block_size: int) -> np.ndarray:
    out = np.empty(X.shape[0], np.float32)
    for lo in range(0, X.shape[0], block_size):
        blk = np.asarray(X[lo : lo + block_size])
        out[lo : lo + len(blk)] = np.einsum("ij,ij->i", blk, blk)
    if not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise DataValidationError("embeddings contain NaN or infinite values", record=bad)
    return out


def _distances(rows: np.ndarray, sqn_rows: np.ndarray, xc: np.ndarray, sqn_c) -> np.ndarray:
    """Euclidean distances from ``rows`` to ``xc`` (float32; the one formula both strategies use).

    ``|x|^2 + |c|^2 - 2 x.c`` loses all precision for near-identical rows (an exact duplicate
    would come out ~3e-4 away), so rows closer than ~14% of the norm are recomputed directly.
    """
    d2 = rows @ xc
    d2 *= np.float32(-2.0)
    d2 += sqn_rows
    d2 += sqn_c
    near = d2 < np.float32(_RECOMPUTE) * (sqn_rows + sqn_c)
    if near.any():
        near = np.flatnonzero(near)
        diff = rows[near] - xc
        d2[near] = np.einsum("ij,ij->i", diff, diff)
    np.maximum(d2, np.float32(0.0), out=d2)
    return np.sqrt(d2, out=d2)


class _FullState:
    """Running min-distance vector updated by a blocked matvec over all rows per new centre."""

    def __init__(self, X: np.ndarray, block_size: int) -> None:
        self.X = X
        self.block_size = block_size
        self.sqn = _sq_norms(X, block_size)
        n = X.shape[0]
        # -1 marks selected records (so exact ties at distance 0 never re-select them)
        self.mind = np.full(n, np.inf, np.float32)
        self.nearest = np.full(n, -1, np.int64)
        self.n_evaluations = 0

    def add(self, c: int) -> None:
        X, sqn, mind, nearest = self.X, self.sqn, self.mind, self.nearest
        xc = np.array(X[c], dtype=np.float32)
        sqn_c = sqn[c]
        for lo in range(0, X.shape[0], self.block_size):
            hi = min(X.shape[0], lo + self.block_size)
            d = _distances(np.asarray(X[lo:hi]), sqn[lo:hi], xc, sqn_c)
            better = np.flatnonzero(d < mind[lo:hi])
            mind[lo + better] = d[better]
            nearest[lo + better] = c
        self.n_evaluations += X.shape[0]
        mind[c] = -1.0
        nearest[c] = c

    def farthest(self) -> tuple[float, int]:
        i = int(np.argmax(self.mind))
        return float(max(self.mind[i], 0.0)), i

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return np.maximum(self.mind, 0.0), self.nearest


class _BatchedState:
    """Same selection as :class:`_FullState`, with new centres applied to all rows in batches.

    ``mind`` holds exact distances to the *flushed* centres, hence upper bounds of the true
    distances. A pool of the rows with the largest bounds (every row with bound >= ``thr``) is kept
    exact against the pending centres (one small matvec per new centre); while the pool's exact
    maximum is >= ``thr`` it is the global farthest row (every other row is below ``thr``). When the
    pool runs dry, or ``batch_size`` centres are pending, the pending centres are applied to all
    rows at once with a matrix-matrix product (BLAS-3, compute-bound instead of memory-bound).
    """

    def __init__(
        self,
        X: np.ndarray,
        block_size: int,
        batch_size: int,
        pool_size: int,
        *,
        gemm_threads: int = 1,
    ) -> None:
        self.X = X
        self.gemm_threads = gemm_threads
        n = X.shape[0]
        self.block_size = max(1, min(block_size, 16384))
        self.batch_size = max(1, batch_size)
        self.pool_size = max(1, min(pool_size, n))
        self.sqn = _sq_norms(X, block_size)
        self.mind = np.full(n, np.inf, np.float32)  # -1 marks selected rows
        self.nearest = np.full(n, -1, np.int64)
        self.pending: list[int] = []
        self.pool = np.zeros(0, np.int64)
        self.pool_val = np.zeros(0, np.float32)
        self.pool_near = np.zeros(0, np.int64)
        self.pool_X = np.zeros((0, X.shape[1]), np.float32)
        self.pool_sqn = np.zeros(0, np.float32)
        self.thr = np.inf
        self.n_evaluations = 0
        self.n_flushes = 0

    def add(self, c: int) -> None:
        self.pending.append(c)
        self.mind[c] = -1.0
        self.nearest[c] = c
        if len(self.pending) >= self.batch_size:
            self._flush()
            return
        if self.pool.size:
            xc = np.array(self.X[c], dtype=np.float32)
            d = _distances(self.pool_X, self.pool_sqn, xc, self.sqn[c])
            self.n_evaluations += self.pool.size
            d[self.pool == c] = -1.0
            better = d < self.pool_val
            self.pool_val[better] = d[better]
            self.pool_near[better] = c
            # rows below thr cannot be the farthest before the next flush: compact now and then
            active = self.pool_val >= self.thr
            if 2 * int(active.sum()) < self.pool.size:
                self._set_pool(
                    self.pool[active],
                    self.pool_val[active],
                    self.pool_near[active],
                    self.pool_X[active],
                )

    def _set_pool(self, pool, val, near, rows) -> None:
        self.pool, self.pool_val, self.pool_near = pool, val, near
        self.pool_X = np.ascontiguousarray(rows, dtype=np.float32)
        self.pool_sqn = self.sqn[pool]

    def _flush(self) -> None:
        from threadpoolctl import threadpool_limits

        X, sqn = self.X, self.sqn
        n = X.shape[0]
        if self.pending:
            cent = np.asarray(self.pending, dtype=np.int64)
            B = np.ascontiguousarray(X[cent], dtype=np.float32)
            sqb = sqn[cent]
            thresh = np.float32(_RECOMPUTE)
            with threadpool_limits(limits=self.gemm_threads, user_api="blas"):
                self._apply(cent, B, sqb, thresh)
            self.n_evaluations += n * len(cent)
            self.pending = []
            self.n_flushes += 1
        self._rebuild_pool()

    def _apply(self, cent: np.ndarray, B: np.ndarray, sqb: np.ndarray, thresh) -> None:
        """min over the pending centres for every row: two passes over each (rows x m) block."""
        X, sqn, mind, nearest = self.X, self.sqn, self.mind, self.nearest
        n = X.shape[0]
        Bm2 = np.float32(-2.0) * B  # exact scaling: blk @ Bm2.T == -2 * (blk @ B.T)
        sqb_max = np.float32(sqb.max())
        for lo in range(0, n, self.block_size):
            hi = min(n, lo + self.block_size)
            blk = np.asarray(X[lo:hi])
            v = blk @ Bm2.T
            v += sqb[None, :]  # |c|^2 - 2 x.c: same argmin over centres as the distance
            j = np.argmin(v, axis=1)  # first pending centre among ties, as sequential updates
            rows = np.arange(hi - lo)
            d2 = v[rows, j] + sqn[lo:hi]
            # near-identical rows: recompute |x - c|^2 exactly against every pending centre
            near = np.flatnonzero(d2 < thresh * (sqn[lo:hi] + sqb_max))
            for r in near.tolist():
                diff = B - blk[r]
                exact = np.einsum("ij,ij->i", diff, diff)
                j[r] = int(np.argmin(exact))
                d2[r] = exact[j[r]]
            dmin = np.sqrt(np.maximum(d2, np.float32(0.0)))
            better = np.flatnonzero(dmin < mind[lo:hi])
            mind[lo + better] = dmin[better]
            nearest[lo + better] = cent[j[better]]

    def _rebuild_pool(self) -> None:
        mind, nearest = self.mind, self.nearest
        n = len(mind)
        # rebuild the pool: every row whose bound is >= the pool_size-th largest bound
        if self.pool_size >= n:
            self.thr = -np.inf
            self.pool = np.arange(n, dtype=np.int64)
        else:
            self.thr = np.partition(mind, n - self.pool_size)[n - self.pool_size]
            self.pool = np.flatnonzero(mind >= self.thr)
        self._set_pool(
            self.pool, mind[self.pool].copy(), nearest[self.pool].copy(), self.X[self.pool]
        )

    def farthest(self) -> tuple[float, int]:
        if self.pool.size == 0 or self.pool_val.max() < self.thr:
            self._flush()
        i = int(np.argmax(self.pool_val))  # pool is sorted by index: smallest index among ties
        return float(max(self.pool_val[i], 0.0)), int(self.pool[i])

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self.pending:
            self._flush()
        return np.maximum(self.mind, 0.0), self.nearest
