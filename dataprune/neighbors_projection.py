"""A principal-component projection for the HNSW kNN graph: candidates found in a few dimensions,
re-scored exactly in all of them.

Why: on rows whose variance sits in a few directions (low-rank data: embeddings of a narrow
domain, or any rows with a dominant subspace), an HNSW graph over all dimensions spends its time
on distances dominated by those few directions. Built over the leading principal components
instead, each distance is several times cheaper, and re-scoring the graph's candidates by the
exact inner product in the full space puts back what the projection dropped. In
``benchmarks/results/knn_scale.md`` (k = 32, rows of rank 24 + noise in 384 dimensions) the
graph over 24 components (stored as 8-bit codes, see :mod:`dataprune.neighbors_hnsw`) reached
recall@32 0.953 in 45.6 s at 300k rows, where the full-dimensional graph (built the same way,
efSearch swept, an earlier run) took about 158 s for recall 0.955; at 1M rows 234.4 s for 0.953
against about 606 s for 0.956.

The projection is used only when it is cheap and faithful: when the leading components that hold
:data:`PROJECTION_VARIANCE` of the variance (of a seeded sample of rows) number at most
:data:`PROJECTION_MAX_SHARE` of the dimensions. Recall is still measured on the exact sample and
tuned, so data the projection does not suit costs time, never accuracy.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "PROJECTION_MAX_SHARE",
    "PROJECTION_VARIANCE",
    "exact_rescore",
    "principal_projection",
    "project_rows",
]

#: Share of the (sampled) variance the leading components must hold.
PROJECTION_VARIANCE = 0.80
#: The projection is used only when it keeps at most this share of the dimensions.
PROJECTION_MAX_SHARE = 0.25
#: Rows sampled (seeded) to estimate the principal components.
PROJECTION_SAMPLE = 65536
#: The projected dimension is rounded up to a multiple of this, and is at least :data:`_MIN_DIM`.
_DIM_MULTIPLE = 8
_MIN_DIM = 16


def principal_projection(
    X: np.ndarray, *, random_state: int = 0
) -> tuple[np.ndarray | None, dict[str, object]]:
    """The leading principal directions of ``X``, when few enough hold most of its variance.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim), float32
        Rows.
    random_state : int, default=0
        Seeds the sample of ``min(n_samples, 65536)`` rows the components are estimated from.

    Returns
    -------
    components : ndarray of shape (dim, n_components), float32, or None
        Orthonormal directions, by decreasing variance; ``None`` when the projection does not
        apply (more than :data:`PROJECTION_MAX_SHARE` of the dimensions are needed to hold
        :data:`PROJECTION_VARIANCE` of the variance).
    info : dict
        ``dim`` (the projected dimension, or ``None``), ``variance`` (the share it holds) and
        ``needed`` (the components needed for :data:`PROJECTION_VARIANCE`).
    """
    n, d = X.shape
    rng = np.random.default_rng([int(random_state), 2])
    rows = np.sort(rng.choice(n, size=min(n, PROJECTION_SAMPLE), replace=False))
    S = np.asarray(X[rows], dtype=np.float64)
    S -= S.mean(axis=0)
    w, V = np.linalg.eigh(S.T @ S)
    w, V = np.clip(w[::-1], 0.0, None), V[:, ::-1]
    total = float(w.sum())
    if total <= 0.0:
        return None, {"dim": None, "variance": None, "needed": None}
    share = np.cumsum(w) / total
    needed = int(np.searchsorted(share, PROJECTION_VARIANCE) + 1)
    dim = max(_MIN_DIM, _DIM_MULTIPLE * math.ceil(needed / _DIM_MULTIPLE))
    if dim > PROJECTION_MAX_SHARE * d:
        return None, {"dim": None, "variance": None, "needed": needed}
    info = {"dim": dim, "variance": round(float(share[dim - 1]), 4), "needed": needed}
    return np.ascontiguousarray(V[:, :dim], dtype=np.float32), info


def project_rows(X: np.ndarray, components: np.ndarray, block: int = 65536) -> np.ndarray:
    """``X @ components`` (float32, C-contiguous), computed in blocks of rows (no full-size
    temporary; ``X`` may be a memory map). Uncentred: distances between rows are unchanged by
    the centring."""
    out = np.empty((X.shape[0], components.shape[1]), dtype=np.float32)
    for lo in range(0, X.shape[0], block):
        out[lo : lo + block] = np.asarray(X[lo : lo + block], dtype=np.float32) @ components
    return out


def exact_rescore(
    X: np.ndarray, rows: np.ndarray, candidates: np.ndarray, k: int, block: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row's candidates by the exact inner product in the full space,
    self and missing candidates (``-1``) excluded.

    Parameters
    ----------
    X : ndarray of shape (n_samples, dim), float32
        All rows.
    rows : ndarray of shape (n_rows,), int
        The query rows.
    candidates : ndarray of shape (n_rows, n_candidates), int
        Candidate neighbours per query row (``n_candidates > k``).
    k : int
        Neighbours kept per row.
    block : int, optional
        Query rows per step; default: as many as keep the gathered candidate rows near 8 MiB
        (at 1M x 384 rows and 132 candidates, 64 MiB blocks took 1.5 to 2.3 times as long:
        each block's buffer is allocated anew).

    Returns
    -------
    sims, idx : ndarray of shape (n_rows, k)
        Similarities, descending per row (``-inf`` / ``-1`` where fewer than ``k`` candidates
        remained), and indices.
    """
    import torch

    from dataprune.neighbors import _as_tensor

    rows = np.asarray(rows, dtype=np.int64)
    n_rows, c = candidates.shape
    if c <= k:
        raise ValueError(f"exact_rescore needs more than k={k} candidates per row, got {c}")
    if block is None:
        block = max(16, 2**23 // (c * X.shape[1] * 4))
    keys = _as_tensor(X)  # read in place (a memory map too), never written
    sims = np.empty((n_rows, k), dtype=np.float32)
    idx = np.empty((n_rows, k), dtype=np.int64)
    with torch.inference_mode():
        for lo in range(0, n_rows, block):
            hi = min(n_rows, lo + block)
            cand = torch.from_numpy(np.ascontiguousarray(candidates[lo:hi], dtype=np.int64))
            q = torch.from_numpy(rows[lo:hi])
            gathered = keys.index_select(0, cand.clamp(min=0).reshape(-1)).view(hi - lo, c, -1)
            s = torch.bmm(gathered, keys.index_select(0, q)[:, :, None])[:, :, 0]
            s[(cand < 0) | (cand == q[:, None])] = -torch.inf
            v, j = torch.topk(s, k, dim=1)  # sorted, descending
            found = torch.gather(cand, 1, j)
            found[~torch.isfinite(v)] = -1
            sims[lo:hi] = v.numpy()
            idx[lo:hi] = found.numpy()
    return sims, idx
