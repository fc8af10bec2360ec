"""Base class and budget rules shared by every selector."""

from __future__ import annotations

import logging
import numbers
from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.estimator import BaseEstimator, check_fitted

logger = logging.getLogger(__name__)

__all__ = ["BaseSelector", "resolve_budget"]


def resolve_budget(
    n_total: int, *, n_samples: int | None = None, fraction: float | None = None
) -> int:
    """Number of records to keep.

    Exactly one of ``n_samples`` (1 <= n_samples <= n_total) or ``fraction`` (0 < fraction <= 1,
    giving ``max(1, round(fraction * n_total))``) must be given.

    Raises
    ------
    DataValidationError
        For a missing/double budget, a budget of 0, more than the dataset, or a fraction outside (0, 1].
    """
    if (n_samples is None) == (fraction is None):
        raise DataValidationError("give exactly one budget: n_samples or fraction")
    if n_total < 1:
        raise DataValidationError("the dataset is empty; nothing to select from")
    if n_samples is not None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral):
            raise DataValidationError(f"n_samples must be an integer, got {n_samples!r}")
        if n_samples < 1:
            raise DataValidationError(f"n_samples must be >= 1, got {n_samples}")
        if n_samples > n_total:
            raise DataValidationError(
                f"n_samples={n_samples} is more than the {n_total} records available"
            )
        return int(n_samples)
    f = float(fraction)  # type: ignore[arg-type]
    if not (0.0 < f <= 1.0) or np.isnan(f):
        raise DataValidationError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, min(n_total, round(f * n_total)))


class BaseSelector(BaseEstimator):
    """Base for selectors.

    Subclasses implement ``_select(X, y, k, rng) -> (selected_indices, scores)`` where
    ``selected_indices`` is in selection order (length ``k``, unique) and ``scores`` has shape
    (n_samples,) with higher = keep (or ``None``).

    Fitted attributes
    -----------------
    selected_indices_ : ndarray of shape (k,), int64
        Kept records in selection order.
    scores_ : ndarray of shape (n_samples,), float64
        Per-record score, higher = keep (selector-specific meaning).
    ranking_ : ndarray of shape (n_samples,), int64
        Rank of each record: selected records get 0..k-1 in selection order, the rest follow by
        decreasing score (ties by index).
    n_samples_seen_ : int
        Records seen by ``fit``.
    """

    def __init__(
        self,
        *,
        n_samples: int | None = None,
        fraction: float | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_samples = n_samples
        self.fraction = fraction
        self.random_state = random_state

    # -- estimator API --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> BaseSelector:
        """Select ``n_samples`` (or ``fraction``) records from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings or features (selectors that need no features accept any sized input).
        y : array-like of shape (n_samples,), optional
            Labels or per-record scores, when the selector uses them.
        """
        self._check_params()
        X = self._validate_data(X)
        n = X.shape[0]
        k = resolve_budget(n, n_samples=self.n_samples, fraction=self.fraction)
        rng = np.random.default_rng(self.random_state)
        selected, scores = self._select(X, y, k, rng)
        selected = np.asarray(selected, dtype=np.int64)
        if selected.shape != (k,) or len(np.unique(selected)) != k:
            raise RuntimeError(
                f"{type(self).__name__} returned {len(selected)} indices, expected {k} unique"
            )
        self.selected_indices_ = selected
        self.scores_ = np.zeros(n) if scores is None else np.asarray(scores, dtype=np.float64)
        self.ranking_ = _ranking(n, selected, self.scores_)
        self.n_samples_seen_ = n
        return self

    def get_support(self) -> np.ndarray:
        """Boolean mask of shape (n_samples,), True for kept records."""
        check_fitted(self, "selected_indices_")
        mask = np.zeros(self.n_samples_seen_, dtype=bool)
        mask[self.selected_indices_] = True
        return mask

    def _check_params(self) -> None:
        """Validate the parameters alone (no data): called first by ``fit``, and by
        :meth:`~dataprune.selection.methods.MethodSpec.check_options` before any loading."""

    def _validate_data(self, X: Any) -> np.ndarray:
        if hasattr(X, "__len__") and not hasattr(X, "shape"):
            X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(-1, 1)
        if X.ndim != 2:
            raise DataValidationError(
                f"expected a 2-D array (n_samples, n_features), got shape {X.shape}"
            )
        if X.shape[0] == 0:
            raise DataValidationError("the dataset is empty; nothing to select from")
        return X

    def _select(self, X: np.ndarray, y: Any, k: int, rng: np.random.Generator):  # pragma: no cover
        raise NotImplementedError


def _ranking(n: int, selected: np.ndarray, scores: np.ndarray) -> np.ndarray:
    ranking = np.empty(n, dtype=np.int64)
    ranking[selected] = np.arange(len(selected))
    rest = np.setdiff1d(np.arange(n), selected, assume_unique=True)
    order = rest[np.lexsort((rest, -scores[rest]))]
    ranking[order] = np.arange(len(selected), n)
    return ranking
