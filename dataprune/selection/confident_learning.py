"""Selection that drops likely label errors found by confident learning, then samples the rest."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.selection.base import BaseSelector

logger = logging.getLogger(__name__)

__all__ = ["ConfidentLearningSelector"]


class ConfidentLearningSelector(BaseSelector):
    """Remove likely label errors (Northcutt et al. 2021), then fill the budget from the rest.

    ``fit(X, y)``: ``X`` are embeddings, ``y`` the labels. Out-of-fold probabilities come from
    ``n_folds`` proxy heads; :func:`~dataprune.scores.find_label_issues` flags records whose given
    label disagrees confidently with the prediction. The budget is drawn uniformly from the
    unflagged records (``fill="random"``) or by decreasing self-confidence (``fill="quality"``);
    flagged records are used last, most likely correct first.

    Parameters
    ----------
    n_samples, fraction : int or float
        Budget (exactly one).
    random_state : int, optional
        Seed for the folds, the proxy heads and the fill.
    n_folds : int, default=5
        Cross-validation folds for the out-of-sample probabilities.
    fill : {"random", "quality"}, default="random"
    proxy : ProxyConfig or dict, optional
        Proxy head and schedule.

    Fitted attributes (besides the base ones)
    -----------------------------------------
    label_quality_ : ndarray of shape (n_samples,)
        Out-of-sample probability of the given label (higher = keep).
    is_label_issue_ : ndarray of shape (n_samples,), bool
    pred_probs_ : ndarray of shape (n_samples, n_classes)
    classes_ : ndarray of shape (n_classes,)
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
        n_folds: int = 5,
        fill: str = "random",
        proxy: Any = None,
        show_progress_bar: bool | None = None,
    ) -> None:
        super().__init__(n_samples=n_samples, fraction=fraction, random_state=random_state)
        self.n_folds = n_folds
        self.fill = fill
        self.proxy = proxy
        self.show_progress_bar = show_progress_bar

    def fit(self, X: Any, y: Any = None, *, pred_probs: Any = None) -> ConfidentLearningSelector:
        """Select from ``X`` (embeddings) with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, dim)
        y : array-like of shape (n_samples,)
            Given labels.
        pred_probs : array-like of shape (n_samples, n_classes), optional
            Out-of-sample probabilities computed elsewhere (columns in sorted class order); skips
            the proxy cross-validation (e.g. to reuse them across budgets).
        """
        self._pred_probs = pred_probs
        try:
            return super().fit(X, y)  # type: ignore[return-value]
        finally:
            self._pred_probs = None

    def _check_params(self) -> None:
        if self.fill not in ("random", "quality"):
            raise DataValidationError(f"fill must be 'random' or 'quality', got {self.fill!r}")

    def _select(self, X, y, k, rng):
        from dataprune.scores._validation import check_probs, encode_labels
        from dataprune.scores.label_issues import _compute_label_issues
        from dataprune.scores.proxy import cross_val_probs

        if y is None:
            raise DataValidationError("confident learning needs labels (y / label_field)")
        seed = int(rng.integers(0, 2**31 - 1))
        given = getattr(self, "_pred_probs", None)
        if given is not None:
            codes, classes = encode_labels(y, X.shape[0])
            probs = check_probs(given, name="pred_probs")
            if probs.shape != (X.shape[0], len(classes)):
                raise DataValidationError(
                    f"pred_probs must have shape ({X.shape[0]}, {len(classes)}), got {probs.shape}"
                )
        else:
            probs, codes, classes = cross_val_probs(
                X,
                y,
                n_folds=self.n_folds,
                config=self.proxy,
                random_state=seed,
                show_progress_bar=self.show_progress_bar,
            )
        quality = probs[np.arange(len(codes)), codes]
        issues = _compute_label_issues(probs, codes)
        n = len(codes)
        idx = np.arange(n)
        by_quality = np.lexsort((idx, -quality))
        clean = by_quality[~issues[by_quality]]
        flagged = by_quality[issues[by_quality]]
        if self.fill == "random" and len(clean) >= k:
            chosen = rng.choice(clean, size=k, replace=False)
        else:
            chosen = np.concatenate([clean, flagged])[:k]
        if len(clean) < k:
            logger.info(
                "confident learning: %d records are not flagged, budget %d; using %d flagged ones",
                len(clean),
                k,
                k - len(clean),
            )
        self.label_quality_ = quality
        self.is_label_issue_ = issues
        self.pred_probs_ = probs
        self.classes_ = classes
        self.n_label_issues_ = int(issues.sum())
        return chosen, quality
