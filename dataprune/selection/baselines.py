"""Baseline selectors: uniform random, class-balanced random, and ranking by a given score.

Random is the baseline every other method must beat; ``ScoreSelector`` keeps the records with the
highest (or lowest) value of any per-record score, with an optional offset that skips the most
extreme values first (EL2N-with-offset), and ``LongestSelector`` is that rule on response lengths.
"""

from __future__ import annotations

import logging

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.scores._validation import encode_labels
from dataprune.selection.base import BaseSelector

logger = logging.getLogger(__name__)

__all__ = [
    "ClassBalancedSelector",
    "LongestSelector",
    "RandomSelector",
    "ScoreSelector",
    "as_score_vector",
    "encode_labels",
]


def as_score_vector(X: np.ndarray, *, what: str = "scores") -> np.ndarray:
    """A validated float64 vector of shape (n_samples,) from an (n, 1) or (n,) input."""
    a = np.asarray(X)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise DataValidationError(
            f"expected one {what} value per record (shape (n_samples,)), got shape {a.shape}"
        )
    try:
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise DataValidationError(f"expected numeric {what}, got dtype {a.dtype}") from None
    bad = np.flatnonzero(~np.isfinite(a))
    if len(bad):
        raise DataValidationError(
            f"{what} must be finite; {len(bad)} are NaN or infinite", record=int(bad[0])
        )
    return a


class RandomSelector(BaseSelector):
    """Uniform random subset (the baseline).

    Every record gets a random priority; the ``k`` highest are kept. With a fixed
    ``random_state`` the subsets for growing budgets are nested, and ``ranking_`` is a random order.

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Seed.
    """

    def _select(self, X, y, k, rng):
        n = X.shape[0]
        priority = rng.permutation(n).astype(np.float64)  # higher = keep
        order = np.argsort(-priority, kind="stable")
        return order[:k], priority / max(n - 1, 1)


class ClassBalancedSelector(BaseSelector):
    """Random subset with classes as equal in size as the data allows.

    Quotas are water-filled: a class smaller than its equal share gives all its records, and the
    rest of the budget is split evenly over the larger classes (leftover units go to randomly
    chosen classes). Inside a class, records are drawn uniformly at random.

    ``fit(X, y)`` needs ``y`` (labels of shape (n_samples,)); ``X`` only gives the record count.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    classes_ : ndarray of shape (n_classes,)
    quota_ : ndarray of shape (n_classes,), int64
        Records kept per class.
    """

    def _select(self, X, y, k, rng):
        n = X.shape[0]
        codes, classes = encode_labels(y, n)
        sizes = np.bincount(codes, minlength=len(classes))
        quota = _water_fill(sizes, k, rng)
        priority = np.zeros(n)
        chosen = []
        for c in range(len(classes)):
            members = np.flatnonzero(codes == c)
            perm = rng.permutation(members)
            chosen.append(perm[: quota[c]])
            # rank inside the class: earlier draws first
            priority[perm] = 1.0 - np.arange(len(perm)) / max(len(perm), 1)
        selected = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        selected = rng.permutation(selected)
        self.classes_ = classes
        self.quota_ = quota.astype(np.int64)
        return selected, priority


def _water_fill(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Per-class counts summing to ``k``, as equal as ``sizes`` allow."""
    quota = np.zeros(len(sizes), dtype=np.int64)
    remaining = k
    open_ = [c for c in np.argsort(sizes, kind="stable") if sizes[c] > 0]
    while remaining > 0 and open_:
        share = remaining // len(open_)
        if share == 0:
            # fewer units than open classes: give one each to randomly chosen classes
            for c in rng.choice(open_, size=remaining, replace=False):
                quota[c] += 1
            remaining = 0
            break
        still = []
        for c in open_:
            take = min(share, sizes[c] - quota[c])
            quota[c] += take
            remaining -= take
            if quota[c] < sizes[c]:
                still.append(c)
        open_ = still
    return quota


class ScoreSelector(BaseSelector):
    """Keep the records with the highest (or lowest) score, optionally skipping an offset first.

    ``fit(scores)`` takes one value per record (shape (n_samples,) or (n_samples, 1)).

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Unused (the rule is deterministic; ties break by record index).
    keep : {"high", "low", "hard", "easy"}, default="high"
        ``"high"`` keeps the largest scores (e.g. hardest by EL2N), ``"low"`` the smallest;
        ``"hard"``/``"easy"`` are aliases for difficulty scores (higher = harder).
    offset : float, default=0.0
        Fraction of all records, taken from the ``keep`` end, skipped before keeping (Paul et al.:
        the very highest EL2N scores are often mislabelled). When the budget does not fit in what is
        left, the skipped records closest to the kept ones are added back.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    raw_scores_ : ndarray of shape (n_samples,)
        The input scores.
    n_offset_ : int
        Records actually skipped.
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        keep: str = "high",
        offset: float = 0.0,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.keep = keep
        self.offset = offset

    def _check_params(self) -> None:
        if self.keep not in ("high", "low", "hard", "easy"):
            raise DataValidationError(
                f"keep must be 'high', 'low', 'hard' or 'easy', got {self.keep!r}"
            )
        try:
            off = float(self.offset)
        except (TypeError, ValueError):
            off = float("nan")
        if not 0.0 <= off < 1.0:
            raise DataValidationError(f"offset must be in [0, 1), got {self.offset!r}")

    def _select(self, X, y, k, rng):
        scores = as_score_vector(X)
        return self._select_by_score(scores, k)

    def _select_by_score(self, scores: np.ndarray, k: int):
        off = float(self.offset)
        n = len(scores)
        idx = np.arange(n)
        key = -scores if self.keep in ("high", "hard") else scores
        order = np.lexsort((idx, key))  # most extreme first, ties by index
        n_off = min(round(off * n), n - k)
        # preference: after the offset in order, then the skipped ones nearest the boundary first
        pref = np.concatenate([order[n_off:], order[:n_off][::-1]])
        rank_score = np.empty(n)
        rank_score[pref] = 1.0 - np.arange(n) / n
        self.raw_scores_ = scores
        self.n_offset_ = int(n_off)
        return pref[:k], rank_score


class LongestSelector(ScoreSelector):
    """Keep the longest records (``fit(lengths)``: e.g. response tokens per record).

    The baseline of Zhao et al. 2024 ("Long is more for alignment"). Ties break by record index.
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            n_samples=n_samples, fraction=fraction, random_state=random_state, keep="high"
        )

    def _select(self, X, y, k, rng):
        lengths = as_score_vector(X, what="lengths")
        if np.any(lengths < 0):
            raise DataValidationError("lengths must be >= 0", record=int(np.argmin(lengths)))
        return self._select_by_score(lengths, k)
