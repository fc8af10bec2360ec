"""Approximate kNN self-join by coarse cells and blockwise matrix products.

For the kNN *graph* every row is a query, so queries can be batched by where they live: rows are
grouped by their nearest coarse centroid (a cell), and all queries of one cell are scored at once
against the rows of the ``nprobe`` cells whose centroids are nearest to that cell's centroid, with
one dense matrix product per block instead of one index lookup per query. Each row is stored in its
``spill`` nearest cells, so a neighbour just across a cell boundary is still a candidate. Candidate
similarities are computed in bfloat16 on CPUs with AVX512-BF16 or AMX (several times the float32
GEMM rate there; ``dtype="auto"`` keeps float32 on other CPUs, where bf16 products are emulated
and about 100x slower) and the best ``k + rerank_extra`` candidates are then re-scored exactly in
float32, so the returned similarities are exact inner products.

Cost: about ``n * nprobe * spill * n / nlist * dim`` multiply-adds; memory O(n * (k + spill)) plus
one block of at most ``max_block_elements`` similarities.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from dataprune.neighbors import _as_tensor
from dataprune.progress import progress

logger = logging.getLogger(__name__)

__all__ = [
    "CELL_NITER",
    "cell_candidate_recall",
    "cell_join_knn",
    "default_cell_params",
    "resolve_cell_params",
    "train_cells",
]

#: k-means iterations of the cells' centroids (:func:`train_cells`, :func:`cell_join_knn`).
CELL_NITER = 20


def default_cell_params(n_samples: int) -> dict[str, int]:
    """Default ``nlist`` / ``nprobe`` / ``spill`` for ``n_samples`` rows.

    Cells of about 1,000 rows (``nlist = n / 1000``, at least 1) keep each block a large matrix
    product; ``nprobe = 16`` cells (all of them when there are fewer) and ``spill = 2``.

    Parameters
    ----------
    n_samples : int

    Returns
    -------
    dict
        ``nlist``, ``nprobe``, ``spill``.
    """
    nlist = max(1, round(n_samples / 1000))
    return {"nlist": nlist, "nprobe": min(nlist, 16), "spill": 2 if nlist > 1 else 1}


def resolve_cell_params(
    n_samples: int,
    nlist: int | None = None,
    nprobe: int | None = None,
    spill: int | None = None,
) -> dict[str, int]:
    """The ``nlist`` / ``nprobe`` / ``spill`` :func:`cell_join_knn` runs with.

    ``nlist`` defaults to :func:`default_cell_params`'s; ``nprobe`` and ``spill`` default to the
    same rule applied to the ``nlist`` in use (``min(nlist, 16)``; 2, or 1 with one cell). Then
    ``nlist <= n_samples`` and ``nprobe``, ``spill <= nlist`` (a value above its bound is
    lowered to it).

    Returns
    -------
    dict
        ``nlist``, ``nprobe``, ``spill``.
    """
    nl = int(min(n_samples, nlist or default_cell_params(n_samples)["nlist"]))
    return {
        "nlist": nl,
        "nprobe": int(min(nl, nprobe or 16)),
        "spill": int(min(nl, spill or (2 if nl > 1 else 1))),
    }


def _top_cells(X: np.ndarray, C: np.ndarray, m: int, block: int = 65536) -> np.ndarray:
    """Indices of the ``m`` most similar centroids of every row, shape (n, m), best first."""
    import torch

    out = np.empty((X.shape[0], m), dtype=np.int64)
    ct = _as_tensor(C)
    with torch.inference_mode():
        for lo in range(0, X.shape[0], block):
            s = _as_tensor(X[lo : lo + block]) @ ct.T
            out[lo : lo + block] = torch.topk(s, m, dim=1).indices.numpy()
    return out


def train_cells(
    X: np.ndarray,
    nlist: int,
    *,
    n_train: int | None = None,
    niter: int = CELL_NITER,
    random_state: int = 0,
    spherical: bool = True,
    init_centroids: np.ndarray | None = None,
) -> np.ndarray:
    """The spherical k-means centroids of :func:`cell_join_knn`, shape ``(nlist, dim)``, float32.

    Trained on ``min(n, n_train or 64 * nlist)`` rows sampled with ``random_state`` (at most
    ``ceil(n_train / nlist)`` points per centroid), ``niter`` iterations, seeded.
    ``spherical=False``: plain (L2) k-means, for rows that are not normalised.
    ``init_centroids``: continue from these centroids (the result of an earlier call with the
    same rows, ``nlist``, ``n_train``, ``random_state`` and ``spherical``) instead of a seeded
    start; ``a`` iterations and then ``b`` more give the same centroids as ``a + b`` at once
    (faiss's iterations are deterministic; checked in the tests).
    """
    import faiss

    n, d = X.shape
    rng = np.random.default_rng(random_state)
    n_tr = int(min(n, n_train or 64 * nlist))
    sample = X[np.sort(rng.choice(n, size=n_tr, replace=False))]
    km = faiss.Kmeans(
        d, nlist, niter=niter, seed=int(random_state), spherical=spherical,
        max_points_per_centroid=max(1, math.ceil(n_tr / nlist)),
    )  # fmt: skip
    init = None if init_centroids is None else np.ascontiguousarray(init_centroids, np.float32)
    km.train(np.ascontiguousarray(sample, dtype=np.float32), init_centroids=init)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def cell_candidate_recall(
    X: np.ndarray,
    centroids: np.ndarray,
    rows: np.ndarray,
    truth: np.ndarray,
    *,
    nprobe: int,
    spill: int,
) -> np.ndarray:
    """Per sampled row, the share of its exact neighbours that the cell self-join with these
    centroids would score at all: neighbours stored (in one of their ``spill`` nearest cells) in
    one of the ``nprobe`` cells probed for the row's own cell. An upper bound of the join's
    recall@k on those rows (the join re-scores its best candidates exactly), computed from the
    cells of ``rows`` and of their neighbours only, without the join.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim)
        Rows.
    centroids : ndarray of shape (nlist, dim)
        Cell centroids (:func:`train_cells`).
    rows : ndarray of shape (n_rows,), int
        Sampled rows.
    truth : ndarray of shape (n_rows, k), int
        Their exact neighbours.

    Returns
    -------
    ndarray of shape (n_rows,)
        The covered share per row, in ``[0, 1]``.
    """
    C = np.ascontiguousarray(centroids, dtype=np.float32)
    own = _top_cells(np.ascontiguousarray(X[rows], dtype=np.float32), C, 1)[:, 0]
    probes = _top_cells(C, C, int(min(nprobe, len(C))))[own]  # (n_rows, nprobe)
    flat = np.asarray(truth, dtype=np.int64).ravel()
    nb = _top_cells(np.ascontiguousarray(X[flat], dtype=np.float32), C, int(min(spill, len(C))))
    nb = nb.reshape(truth.shape[0], truth.shape[1], -1)  # (n_rows, k, spill)
    hit = (nb[:, :, :, None] == probes[:, None, None, :]).any(axis=(2, 3))
    return hit.mean(axis=1)


def cell_join_knn(
    X: np.ndarray,
    k: int,
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    spill: int | None = None,
    n_train: int | None = None,
    niter: int = CELL_NITER,
    dtype: str = "auto",
    rerank_extra: int = 8,
    max_block_elements: int = 2**25,
    random_state: int = 0,
    show_progress_bar: bool | None = None,
    centroids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of every row by inner product, self excluded, by a cell self-join.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim), float32, C-contiguous
        Rows, ideally L2-normalised. A read-only or memory-mapped array is read in place (the
        bfloat16 working copy is the only copy of the matrix).
    k : int
        Neighbours per row (``1 <= k < n_samples``).
    nlist, nprobe, spill : int, optional
        Cells, cells probed per query cell, cells each row is stored in; each ``None`` takes its
        default (:func:`resolve_cell_params`), which scales with ``n_samples``:
        ``nlist = max(1, round(n / 1000))``, ``nprobe = min(nlist, 16)``, ``spill = 2`` (1 with
        one cell), the last two from the ``nlist`` in use. ``nprobe = nlist`` is exact.
    n_train : int, optional
        Rows sampled to train the centroids (default ``min(n, 64 * nlist)``).
    niter : int, default=20
        k-means iterations.
    dtype : {"auto", "bfloat16", "float32"}, default="auto"
        Precision of the candidate scoring; the kept neighbours are re-scored in float32.
        ``"auto"``: bfloat16 on CPUs with AMX or AVX512-BF16, float32 elsewhere, where bf16
        products are emulated and far slower (:func:`dataprune.precision.resolve_dtype`).
    rerank_extra : int, default=8
        Candidates beyond ``k`` re-scored exactly per row (bfloat16 only).
    max_block_elements : int, default=2**25
        Similarities per matrix product at most (memory bound of one block).
    random_state : int, default=0
        Seeds the training sample and k-means.
    centroids : ndarray of shape (nlist, dim), optional
        Cell centroids already trained (:func:`train_cells` with the same ``nlist``); default:
        trained here.

    Returns
    -------
    sims : ndarray of shape (n_samples, k), float32
        Inner products, descending per row (``-inf`` where fewer candidates than ``k``).
    idx : ndarray of shape (n_samples, k), int64
        Neighbour indices (``-1`` where missing).
    """
    import torch

    n, d = X.shape
    p = resolve_cell_params(n, nlist, nprobe, spill)
    nlist, nprobe, spill = p["nlist"], p["nprobe"], p["spill"]
    if dtype not in ("auto", "bfloat16", "float32"):
        raise ValueError(f"dtype must be 'auto', 'bfloat16' or 'float32', got {dtype!r}")
    from dataprune.precision import resolve_dtype

    dtype = resolve_dtype(dtype, "cpu")
    cdt = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    if nlist > 1:
        if centroids is None:
            centroids = train_cells(X, nlist, n_train=n_train, niter=niter,
                                    random_state=random_state)  # fmt: skip
        C = np.ascontiguousarray(centroids, dtype=np.float32)
        if C.shape != (nlist, d):
            raise ValueError(f"centroids must have shape ({nlist}, {d}), got {C.shape}")
        top = _top_cells(X, C, spill)
        probes = _top_cells(C, C, nprobe)
    else:
        C = X[:1]
        top = np.zeros((n, 1), dtype=np.int64)
        probes = np.zeros((1, 1), dtype=np.int64)
    primary = top[:, 0]
    order = np.argsort(primary, kind="stable")
    starts = np.searchsorted(primary[order], np.arange(nlist + 1))
    # database lists: every row in each of its `spill` cells
    flat_cells = top.ravel()
    flat_rows = np.repeat(np.arange(n, dtype=np.int64), top.shape[1])
    db_order = np.argsort(flat_cells, kind="stable")
    db_rows = flat_rows[db_order]
    db_starts = np.searchsorted(flat_cells[db_order], np.arange(nlist + 1))

    keys32 = _as_tensor(X)  # read-only / memory-mapped input: no copy, never written
    keys = keys32.to(cdt) if cdt != torch.float32 else keys32
    m = k + (rerank_extra if cdt != torch.float32 else 0)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    idx = np.full((n, k), -1, dtype=np.int64)
    with torch.inference_mode():
        for c in progress(range(nlist), show_progress_bar=show_progress_bar, desc="kNN cells"):
            q_rows = order[starts[c] : starts[c + 1]]
            if not len(q_rows):
                continue
            cand = np.unique(
                np.concatenate([db_rows[db_starts[p] : db_starts[p + 1]] for p in probes[c]])
            )
            cand_t = torch.from_numpy(cand)
            kc = keys.index_select(0, cand_t)
            mm = min(m, len(cand) - 1)
            if mm < 1:
                continue
            step = max(1, max_block_elements // len(cand))
            for lo in range(0, len(q_rows), step):
                qr = q_rows[lo : lo + step]
                S = keys.index_select(0, torch.from_numpy(qr)) @ kc.T
                self_pos = np.searchsorted(cand, qr)
                hit = (self_pos < len(cand)) & (cand[np.minimum(self_pos, len(cand) - 1)] == qr)
                r = np.flatnonzero(hit)
                S[torch.from_numpy(r), torch.from_numpy(self_pos[r])] = -torch.inf
                top_i = torch.topk(S, mm, dim=1).indices
                nb = cand_t[top_i]  # (rows, mm) candidate row ids
                if cdt != torch.float32:  # exact re-score of the best candidates
                    exact = torch.einsum(
                        "rd,rmd->rm", keys32.index_select(0, torch.from_numpy(qr)), keys32[nb]
                    )
                    exact[nb == torch.from_numpy(qr)[:, None]] = -torch.inf
                    v, j = torch.topk(exact, min(k, mm), dim=1)
                    nb = torch.gather(nb, 1, j)
                else:
                    v = torch.gather(S, 1, top_i)[:, :k]
                    nb = nb[:, :k]
                kk = nb.shape[1]
                sims[qr, :kk] = v.numpy()
                idx[qr, :kk] = nb.numpy()
    idx[~np.isfinite(sims)] = -1
    return sims, idx
