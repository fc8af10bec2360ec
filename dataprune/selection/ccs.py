"""Coverage-centric coreset selection (CCS, Zheng et al. 2023) over any difficulty score."""

from __future__ import annotations

import logging

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.selection.base import BaseSelector
from dataprune.selection.baselines import as_score_vector

logger = logging.getLogger(__name__)

__all__ = ["CCS"]


class CCS(BaseSelector):
    """Stratified sampling over a difficulty score, after dropping the hardest records.

    ``fit(scores)`` takes one difficulty value per record (higher = harder: EL2N, GraNd, AUM
    negated, forgetting counts, LM EL2N ...). The hardest ``beta`` fraction is dropped (likely
    mislabelled or noise); the remaining score range is split into ``n_strata`` equal-width strata
    and the budget is spread over the non-empty strata from the smallest to the largest (each gets
    ``min(size, remaining // strata_left)``); records are sampled uniformly inside a stratum.
    This keeps easy, medium and hard examples in proportion to coverage rather than density, which
    is what wins at high pruning rates.

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Seed for the within-stratum sampling.
    beta : float, default=0.1
        Fraction of all records (the hardest) removed before stratifying; reduced when the budget
        would not fit in what is left.
    n_strata : int, default=50
        Equal-width strata over the remaining score range.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    difficulty_ : ndarray of shape (n_samples,)
        The input scores.
    stratum_ : ndarray of shape (n_samples,), int64
        Stratum of every record (-1 for the dropped hardest ones).
    strata_edges_ : ndarray of shape (n_strata + 1,)
    n_per_stratum_ : ndarray of shape (n_strata,), int64
        Records kept per stratum.
    n_dropped_hard_ : int
    scores_ : ndarray of shape (n_samples,)
        The sampling rate of the record's stratum (0 for dropped records); higher = keep.
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        beta: float = 0.1,
        n_strata: int = 50,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.beta = beta
        self.n_strata = n_strata

    def _check_params(self) -> None:
        if not 0.0 <= float(self.beta) < 1.0:
            raise DataValidationError(f"beta must be in [0, 1), got {self.beta!r}")
        if not isinstance(self.n_strata, (int, np.integer)) or self.n_strata < 1:
            raise DataValidationError(f"n_strata must be a positive integer, got {self.n_strata!r}")

    def _select(self, X, y, k, rng):
        difficulty = as_score_vector(X, what="difficulty scores")
        n = len(difficulty)
        idx = np.arange(n)
        hardest_first = np.lexsort((idx, -difficulty))
        n_drop = min(round(float(self.beta) * n), n - k)
        if n_drop < round(float(self.beta) * n):
            logger.info(
                "CCS: budget %d leaves room to drop only %d of the hardest records", k, n_drop
            )
        dropped = hardest_first[:n_drop]
        pool = np.sort(hardest_first[n_drop:])
        lo, hi = float(difficulty[pool].min()), float(difficulty[pool].max())
        edges = np.linspace(lo, hi, self.n_strata + 1)
        if hi > lo:
            strata = np.clip(
                ((difficulty[pool] - lo) / (hi - lo) * self.n_strata).astype(np.int64),
                0,
                self.n_strata - 1,
            )
        else:
            strata = np.zeros(len(pool), dtype=np.int64)
        sizes = np.bincount(strata, minlength=self.n_strata)
        take = np.zeros(self.n_strata, dtype=np.int64)
        remaining = k
        nonempty = [s for s in np.argsort(sizes, kind="stable") if sizes[s] > 0]
        for pos, s in enumerate(nonempty):
            t = min(int(sizes[s]), remaining // (len(nonempty) - pos))
            take[s] = t
            remaining -= t
        chosen = []
        rate = np.zeros(n)
        for s in range(self.n_strata):
            members = pool[strata == s]
            if take[s]:
                chosen.append(rng.choice(members, size=take[s], replace=False))
            if len(members):
                rate[members] = take[s] / len(members)
        selected = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        if remaining > 0:  # cannot happen with sizes summing to >= k; kept as a guard
            rest = np.setdiff1d(pool, selected)
            selected = np.concatenate([selected, rng.choice(rest, size=remaining, replace=False)])
        stratum = np.full(n, -1, dtype=np.int64)
        stratum[pool] = strata
        self.difficulty_ = difficulty
        self.stratum_ = stratum
        self.strata_edges_ = edges
        self.n_per_stratum_ = take
        self.n_dropped_hard_ = len(dropped)
        return selected, rate
