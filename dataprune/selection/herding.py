"""Herding: a subset whose mean embedding matches the whole set's (Welling 2009; Chen et al. 2010).

Greedy *mean matching*: after ``t`` picks with sum ``s``, the next pick is the record ``x`` that
brings the subset's mean closest to the data's mean ``mu``, i.e. that minimises
``||(t + 1) * mu - s - x||^2``. A random subset of ``k`` records matches ``mu`` only to
``O(1 / sqrt(k))``; herding's error shrinks like ``O(1 / k)`` on bounded features, so a small
subset carries the first-moment statistics of a much larger random sample. That is what a
calibration set is for: a pruner such as Wanda scores weights by statistics of the calibration
activations, and those statistics should be the population's, not those of a lucky or unlucky
draw (:func:`dataprune.calibration.build_calibration_set` with ``space="activations"``). DeepCore
ships the same criterion as its ``Herding`` baseline for image coresets.
"""

from __future__ import annotations

import logging

import numpy as np

from dataprune.selection.base import BaseSelector

logger = logging.getLogger(__name__)

__all__ = ["Herding"]


class Herding(BaseSelector):
    """Keep the records whose running mean tracks the data's mean most closely (greedy herding).

    Deterministic: ``random_state`` is accepted for the common interface and unused (ties go to
    the lower index).

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Unused (the selection is deterministic).

    Fitted attributes (besides the base ones)
    -----------------------------------------
    mean_gap_ : ndarray of shape (k,), float64
        ``||mean(selected[:t + 1]) - mu||_2`` after each pick (lower = better matched).
    scores_ : ndarray of shape (n_samples,)
        ``-||x - mu||_2``: higher = closer to the data's mean (orders the records not kept).
    """

    def _select(self, X, y, k, rng):
        from dataprune.selection.kcenter import _sq_norms  # also rejects NaN / inf, by record

        sq = _sq_norms(X, 65536).astype(np.float64)
        order, scores, self.mean_gap_ = _compute_herding(np.asarray(X, dtype=np.float64), sq, k)
        return order, scores


def _compute_herding(
    X: np.ndarray, sq: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy mean matching on validated ``X`` (float64, finite) with squared row norms ``sq``:
    the picks in order, the per-record scores and the gap after each pick."""
    n = X.shape[0]
    mu = X.mean(axis=0)
    s = np.zeros_like(mu)
    taken = np.zeros(n, dtype=bool)
    order = np.empty(k, dtype=np.int64)
    gaps = np.empty(k, dtype=np.float64)
    for t in range(k):
        r = (t + 1) * mu - s
        # ||r - x||^2 = ||r||^2 - 2 r.x + ||x||^2: minimise -2 r.x + ||x||^2
        cost = sq - 2.0 * (X @ r)
        cost[taken] = np.inf
        j = int(np.argmin(cost))  # first (lowest) index among ties
        order[t] = j
        taken[j] = True
        s += X[j]
        gaps[t] = float(np.linalg.norm(s / (t + 1) - mu))
    scores = -np.linalg.norm(X - mu, axis=1)
    return order, scores, gaps
