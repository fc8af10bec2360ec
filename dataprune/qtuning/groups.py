"""Per-source triage: sample groups (a dataset, file or source field) on the EU plane.

PPL and entropy live on different scales for different sources: an Alpaca answer has a higher
PPL and entropy under a small chat model than a GSM8K solution, so one plane over a mixed pool
can put much of a source on the Q1 (noise) side and keep it below its share (8.7% Alpaca kept
against 13% of the development pool of ``benchmarks/qtuning_outcome.py --split dev-fill``).
With ``groups``, each score is replaced by its quantile rank *within its group* before the
triage (:func:`dataprune.qtuning.quadrants.within_group_ranks`), so every group's ranks spread
over (0, 1) alike and the quantile corners and the Q1 side are each group's own; the abrupt-end
rule compares each end-of-turn NLL with its own group's median. ``K`` is not split by group: a group
whose PPL and entropy agree less has more samples in its corners and can be kept above its
share (31% Alpaca kept against 24.5% of the un-flagged pairs on the held-out pool of
``benchmarks/qtuning_outcome.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["group_codes", "group_medians"]


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
