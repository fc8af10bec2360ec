"""EL2N, the error L2 norm (Paul et al. 2021, "Deep Learning on a Data Diet")."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.scores._validation import check_labels, check_probs

__all__ = ["el2n_from_token_stats", "el2n_scores"]


def el2n_scores(probs: Any, labels: Any) -> np.ndarray:
    """EL2N of every sample: ``||softmax(f(x)) - onehot(y)||_2``.

    Computed in closed form, ``sqrt(1 - 2 p_y + sum_v p_v^2)``, with no one-hot matrix. Average the
    result over several independently trained models (seeds) for the published score.

    Parameters
    ----------
    probs : array-like of shape (n_samples, n_classes)
        Predicted class probabilities (rows sum to 1).
    labels : array-like of shape (n_samples,)
        Given labels as integer class indices.

    Returns
    -------
    ndarray of shape (n_samples,), float64
        In ``[0, sqrt(2)]``; higher = harder (larger error). Keeping high-EL2N records is "keep
        hard".
    """
    p = check_probs(probs)
    y = check_labels(labels, p.shape[0], p.shape[1])
    return _compute_el2n(p, y)


def _compute_el2n(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p_y = p[np.arange(len(y)), y]
    return np.sqrt(np.clip(1.0 - 2.0 * p_y + np.einsum("ij,ij->i", p, p), 0.0, None))


def el2n_from_token_stats(p_true: Any, sum_p2: Any) -> np.ndarray:
    """Per-token EL2N from the target probability and the sum of squared probabilities.

    Parameters
    ----------
    p_true, sum_p2 : array-like of shape (n_tokens,)
        ``p[y_t]`` and ``sum_v p_v^2`` of each token's predictive distribution (as produced by
        :func:`dataprune.lm_scoring.score_sft`).

    Returns
    -------
    ndarray of shape (n_tokens,), float64
        Higher = harder.
    """
    pt = np.asarray(p_true, dtype=np.float64)
    s2 = np.asarray(sum_p2, dtype=np.float64)
    if pt.shape != s2.shape or pt.ndim != 1:
        raise DataValidationError(
            f"p_true and sum_p2 must be 1-D of equal length, got {pt.shape} and {s2.shape}"
        )
    if np.any((pt < -1e-6) | (pt > 1 + 1e-6)) or np.any((s2 < -1e-6) | (s2 > 1 + 1e-6)):
        raise DataValidationError("p_true and sum_p2 must lie in [0, 1]")
    return _compute_token_el2n(pt, s2)


def _compute_token_el2n(p_true: np.ndarray, sum_p2: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(1.0 - 2.0 * p_true + sum_p2, 0.0, None))
