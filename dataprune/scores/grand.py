"""Last-layer GraNd (Paul et al. 2021), in the closed form DeepCore computes."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.scores._validation import check_labels, check_probs
from dataprune.scores.el2n import _compute_el2n

__all__ = ["grand_scores"]


def grand_scores(probs: Any, labels: Any, features: Any, *, bias: bool = True) -> np.ndarray:
    """Norm of the cross-entropy gradient with respect to the last linear layer.

    For a last layer ``z = W h + b`` the gradient of the loss is ``(p - onehot(y)) [h, 1]^T``,
    whose Frobenius norm is ``EL2N * sqrt(||h||^2 + 1)`` (``sqrt(||h||^2)`` without a bias).

    Parameters
    ----------
    probs : array-like of shape (n_samples, n_classes)
        Predicted class probabilities (rows sum to 1).
    labels : array-like of shape (n_samples,)
        Integer class indices.
    features : array-like of shape (n_samples, n_features)
        Penultimate features ``h`` (the input of the last layer).
    bias : bool, default=True
        Whether the last layer has a bias.

    Returns
    -------
    ndarray of shape (n_samples,), float64
        Higher = larger expected gradient = harder.
    """
    p = check_probs(probs)
    y = check_labels(labels, p.shape[0], p.shape[1])
    h = np.asarray(features, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] != p.shape[0]:
        raise DataValidationError(
            f"features must have shape ({p.shape[0]}, n_features), got {h.shape}"
        )
    if not np.all(np.isfinite(h)):
        raise DataValidationError("features contain NaN or infinite values")
    return _compute_grand(p, y, np.einsum("ij,ij->i", h, h), bias=bias)


def _compute_grand(
    p: np.ndarray, y: np.ndarray, feature_sq_norm: np.ndarray, *, bias: bool = True
) -> np.ndarray:
    return _compute_el2n(p, y) * np.sqrt(feature_sq_norm + (1.0 if bias else 0.0))
