"""Per-source triage: sample groups (a dataset, file or source field) on the EU plane.

PPL and entropy live on different scales for different sources: an Alpaca answer has a higher
PPL and entropy under a small chat model than a GSM8K solution, so one plane over a mixed pool
can put much of a source on the Q1 (noise) side and keep it below its share (8.4% Alpaca kept
against 13% of the development pool of ``benchmarks/qtuning_outcome.py --split dev-fill``).
With ``groups``, each score is replaced by its quantile rank *within its group* before the
triage (:func:`dataprune.qtuning.quadrants.within_group_ranks`), so every group's ranks spread
over (0, 1) alike and the quantile corners and the Q1 side are each group's own; the abrupt-end
rule compares each end-of-turn NLL with its own group's median.

How ``K`` is shared (``QTuningConfig.group_budget``): ``"share"`` (the default) splits ``K``
over the groups in proportion to their sizes (:func:`split_budget`, largest remainder) and
triages each group on its own, so the kept set has the pool's source mix exactly (a random subset
has it only in expectation) and the triage only chooses *within* each source. ``"pooled"``
triages all groups together on their within-group ranks with one ``K``: a group whose PPL and
entropy agree less has more samples in its corners and is kept above its share (31% Alpaca kept
against 24.5% of the un-flagged pairs on the held-out pool of ``benchmarks/qtuning_outcome.py``,
with ``fill="uniform"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["group_codes", "group_medians", "quantile_ranks", "split_budget", "within_group_ranks"]


def group_codes(groups: Any, n_samples: int) -> np.ndarray:
    """Validate ``groups`` (one hashable label per sample) and return integer codes.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        Group label per sample (str or int).
    n_samples : int

    Returns
    -------
    ndarray of shape (n_samples,), int64
        ``0 .. n_groups - 1`` in order of first appearance.

    Raises
    ------
    DataValidationError
        When the length differs from ``n_samples`` or a label is missing (None / NaN).
    """
    labels = list(groups)
    if len(labels) != n_samples:
        raise DataValidationError(
            f"groups has {len(labels)} labels; expected one per sample ({n_samples})"
        )
    codes = np.empty(n_samples, dtype=np.int64)
    seen: dict[Any, int] = {}
    for i, g in enumerate(labels):
        if g is None or (isinstance(g, float) and np.isnan(g)):
            raise DataValidationError(
                "missing group label; expected a str or int", record=i, field="groups"
            )
        codes[i] = seen.setdefault(g, len(seen))
    return codes


def group_medians(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each sample's group median of ``x`` over its group's non-NaN values (NaN if none)."""
    out = np.full(len(x), np.nan)
    for g in np.unique(codes):
        idx = np.flatnonzero(codes == g)
        ok = idx[~np.isnan(x[idx])]
        if len(ok):
            out[idx] = float(np.median(x[ok]))
    return out


def quantile_ranks(x: np.ndarray) -> np.ndarray:
    """Average quantile ranks of ``x`` scaled to (0, 1): ``(rank + 0.5) / n``, ties averaged.

    Parameters
    ----------
    x : ndarray of shape (n_samples,)

    Returns
    -------
    ndarray of shape (n_samples,)
        Higher = higher value.
    """
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    sx = x[order]
    bounds = np.flatnonzero(np.diff(sx) != 0) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(x)]):
        if hi - lo > 1:
            ranks[order[lo:hi]] = (lo + hi - 1) / 2.0
    return (ranks + 0.5) / len(x)


def within_group_ranks(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Average quantile rank of each value within its group, scaled to (0, 1).

    Parameters
    ----------
    x : ndarray of shape (n_samples,)
    codes : ndarray of shape (n_samples,), int
        Group codes (:func:`group_codes`).

    Returns
    -------
    ndarray of shape (n_samples,)
        ``(rank + 0.5) / n_group``, ties averaged (higher = higher within the group).
    """
    out = np.empty(len(x), dtype=np.float64)
    for g in np.unique(codes):
        idx = np.flatnonzero(codes == g)
        out[idx] = quantile_ranks(x[idx])
    return out


def split_budget(k: int, sizes: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split ``k`` over groups in proportion to ``sizes``, no group above its cap.

    A group whose proportional quota reaches its cap gets the cap and the others share what is
    left, in proportion to their sizes; the last split is
    :func:`dataprune.distributed.clustered.split_budget` (largest remainder, ties to the lower
    index).

    Parameters
    ----------
    k : int
        Budget, at most ``caps.sum()``.
    sizes : ndarray of shape (n_groups,), int
        The groups' sizes (weights).
    caps : ndarray of shape (n_groups,), int
        Most each group can take.

    Returns
    -------
    ndarray of shape (n_groups,), int64
        Sums to ``k``.
    """
    from dataprune.distributed.clustered import split_budget as proportional

    sizes = np.asarray(sizes, dtype=np.int64)
    caps = np.asarray(caps, dtype=np.int64)
    if k > int(caps.sum()):
        raise ValueError(f"budget {k} exceeds the groups' capacity {int(caps.sum())}")
    out = np.zeros(len(sizes), dtype=np.int64)
    free = caps > 0
    left = int(k)
    while left > 0:
        w = np.where(free, sizes, 0)
        full = free & (left * w >= caps * w.sum())  # quota >= cap
        if not full.any():
            scale = -(-left // int(w.sum()))  # the split needs left <= sum of weights
            out += proportional(w * scale, left)  # every quota below its cap: floor + 1 fits
            break
        out[full] = caps[full]
        left -= int(caps[full].sum())
        free &= ~full
    return out
