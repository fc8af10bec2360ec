"""Locality-sensitive hashing (banding) of MinHash signatures.

Two records whose Jaccard similarity is ``s`` agree on one MinHash entry with probability
``s``, on a band of ``rows`` entries with probability ``s**rows``, and share at least one of
``bands`` bands with probability ``P(s) = 1 - (1 - s**rows)**bands``: an S-curve whose steep
part sits near ``(1 / bands) ** (1 / rows)``.
"""

from __future__ import annotations

import logging

import numpy as np

from dataprune.dedup.minhash import EMPTY_HASH
from dataprune.errors import DataValidationError

__all__ = ["lsh_candidate_pairs", "lsh_params"]

logger = logging.getLogger(__name__)

_U64 = np.uint64
_MAX_NODES = 512  # Gauss-Legendre nodes per integral (exact below num_perm = 1023)


def lsh_params(
    threshold: float,
    num_perm: int,
    *,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """Bands and rows minimising the weighted false positive and false negative probability.

    The criterion of datasketch's ``MinHashLSH``: for every ``(bands, rows)`` with
    ``bands * rows <= num_perm``, the false positive probability ``FP = ∫_0^t P(s) ds`` and the
    false negative probability ``FN = ∫_t^1 (1 - P(s)) ds`` (``P`` in the module docstring,
    ``t = threshold``, similarities uniform on [0, 1]); the pair with the smallest
    ``false_positive_weight * FP + false_negative_weight * FN`` wins (fewest bands, then fewest
    rows, on ties). ``P`` is a polynomial of degree ``bands * rows``, so the Gauss-Legendre
    rule used here with ``num_perm // 2 + 1`` nodes (at most 512) integrates it exactly for
    ``num_perm < 1024``; all pairs are evaluated at once with numpy.

    Parameters
    ----------
    threshold : float
        Jaccard similarity above which a pair should become a candidate, in (0, 1].
    num_perm : int
        Signature length (>= 1).
    false_positive_weight, false_negative_weight : float
        Non-negative weights (not both 0).

    Returns
    -------
    (bands, rows) : tuple of int
        ``bands * rows <= num_perm``.
    """
    if not 0.0 < float(threshold) <= 1.0:
        raise DataValidationError(f"threshold must be in (0, 1], got {threshold!r}")
    if isinstance(num_perm, bool) or not isinstance(num_perm, (int, np.integer)) or num_perm < 1:
        raise DataValidationError(f"num_perm must be an integer >= 1, got {num_perm!r}")
    w_fp, w_fn = float(false_positive_weight), float(false_negative_weight)
    if w_fp < 0 or w_fn < 0 or w_fp + w_fn == 0:
        raise DataValidationError("the weights must be >= 0 and not both 0")
    t = float(threshold)
    b = np.concatenate([np.full(num_perm // k, k) for k in range(1, num_perm + 1)])
    r = np.concatenate([np.arange(1, num_perm // k + 1) for k in range(1, num_perm + 1)])
    x, w = np.polynomial.legendre.leggauss(min(num_perm // 2 + 1, _MAX_NODES))
    lo_s, lo_w = t * (x + 1) / 2, w * t / 2  # nodes and weights on [0, t]
    hi_s, hi_w = t + (1 - t) * (x + 1) / 2, w * (1 - t) / 2  # on [t, 1]
    error = np.empty(len(b))
    for s in range(0, len(b), 2048):  # bounded (pairs x nodes) blocks
        bb, rr = b[s : s + 2048, None].astype(float), r[s : s + 2048, None].astype(float)
        fp = (1 - (1 - lo_s**rr) ** bb) @ lo_w
        fn = ((1 - hi_s**rr) ** bb) @ hi_w
        error[s : s + 2048] = w_fp * fp + w_fn * fn
    best = int(np.argmin(error))  # first minimum: b ascending, then r ascending
    return int(b[best]), int(r[best])


def _band_keys(block: np.ndarray) -> np.ndarray:
    """One uint64 key per row of an ``(n, rows)`` uint32 block (exact for rows <= 2)."""
    n, rows = block.shape
    if rows == 1:
        return block[:, 0].astype(_U64)
    if rows == 2:
        return (block[:, 0].astype(_U64) << _U64(32)) | block[:, 1].astype(_U64)
    key = np.full(n, _U64(0xCBF29CE484222325))
    for c in range(rows):
        key ^= block[:, c]
        key *= _U64(0x100000001B3)
        key ^= key >> _U64(29)
    key *= _U64(0xBF58476D1CE4E5B9)
    key ^= key >> _U64(32)
    return key


def lsh_candidate_pairs(
    signatures: np.ndarray, *, bands: int, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs: records that share every entry of at least one band.

    Band ``k`` is columns ``k * rows`` to ``(k + 1) * rows - 1``; its ``rows`` values become one
    64-bit key (exact for ``rows <= 2``, otherwise a 64-bit hash, so unrelated records collide
    with probability about ``2**-64``), and records with equal keys are grouped with a stable
    sort. To keep memory linear in n, a bucket of ``m`` records yields the ``m - 1`` star edges
    ``(first member, other member)`` rather than its ``m (m - 1) / 2`` pairs: at most
    ``bands * (n - 1)`` edges, the same connected components. Rows that are entirely
    :data:`~dataprune.dedup.minhash.EMPTY_HASH` (empty records) take part in no pair.

    Parameters
    ----------
    signatures : ndarray of shape (n, num_perm), uint32
        From :func:`~dataprune.dedup.minhash.minhash_signatures`.
    bands, rows : int
        ``bands * rows <= num_perm``; the first ``bands * rows`` columns are used.

    Returns
    -------
    i, j : ndarray of shape (n_pairs,), int64
        Distinct pairs with ``i < j``, sorted by ``(i, j)``.
    """
    sig = np.asarray(signatures)
    if sig.ndim != 2 or sig.dtype != np.uint32:
        raise DataValidationError(
            f"signatures must be a 2-D uint32 array, got {sig.dtype} {sig.shape}"
        )
    for name, v in (("bands", bands), ("rows", rows)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise DataValidationError(f"{name} must be an integer >= 1, got {v!r}")
    if bands * rows > sig.shape[1]:
        raise DataValidationError(
            f"bands * rows = {bands * rows} exceeds num_perm = {sig.shape[1]}"
        )
    return _compute_pairs(sig, int(bands), int(rows))


def _compute_pairs(sig: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    n = sig.shape[0]
    live = np.flatnonzero((sig[:, : bands * rows] != EMPTY_HASH).any(axis=1))
    codes = []
    for k in range(bands if len(live) > 1 else 0):
        keys = _band_keys(sig[live, k * rows : (k + 1) * rows])
        order = np.argsort(keys, kind="stable")  # equal keys: ascending record index
        sk = keys[order]
        new = np.r_[True, sk[1:] != sk[:-1]]
        first = order[np.maximum.accumulate(np.where(new, np.arange(len(sk)), 0))]
        member = ~new
        i, j = live[first[member]], live[order[member]]
        codes.append(i.astype(np.int64) * n + j)
    code = np.unique(np.concatenate(codes)) if codes else np.empty(0, dtype=np.int64)
    logger.debug("LSH: %d bands x %d rows, %d candidate pairs", bands, rows, len(code))
    return code // n, code % n
