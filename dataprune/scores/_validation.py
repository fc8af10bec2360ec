"""Input checks shared by the score functions (cleanlab-style: validate, then ``_compute_*``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.errors import DataValidationError

__all__ = ["check_labels", "check_probs", "encode_labels"]


def check_probs(probs: Any, *, name: str = "probs", atol: float = 1e-3) -> np.ndarray:
    """A float64 matrix of shape (n_samples, n_classes) whose rows are probability vectors."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise DataValidationError(
            f"{name} must have shape (n_samples, n_classes) with n_classes >= 2, got {p.shape}"
        )
    if not np.all(np.isfinite(p)):
        bad = int(np.flatnonzero(~np.isfinite(p).all(axis=1))[0])
        raise DataValidationError(f"{name} contains NaN or infinite values", record=bad)
    if p.min() < -atol or p.max() > 1 + atol:
        raise DataValidationError(f"{name} must lie in [0, 1] (softmax outputs, not logits)")
    sums = p.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > atol * max(1, p.shape[1] / 100))
    if len(off):
        raise DataValidationError(
            f"{name} rows must sum to 1 (softmax outputs); row sums to {sums[off[0]]:.4f}",
            record=int(off[0]),
        )
    return np.clip(p, 0.0, 1.0)


def check_labels(labels: Any, n_samples: int, n_classes: int) -> np.ndarray:
    """Integer labels of shape (n_samples,) in ``[0, n_classes)``."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n_samples:
        raise DataValidationError(f"labels must have shape ({n_samples},), got {y.shape}")
    if y.dtype.kind not in "iub":
        raise DataValidationError(
            f"labels must be integer class indices, got dtype {y.dtype} "
            "(encode string labels first, e.g. with numpy.unique(..., return_inverse=True))"
        )
    y = y.astype(np.int64)
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if len(bad):
        raise DataValidationError(
            f"label {y[bad[0]]} is outside [0, {n_classes}) for probs with {n_classes} columns",
            record=int(bad[0]),
        )
    return y


def encode_labels(y: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to ``0..n_classes-1`` in sorted class order.

    Returns
    -------
    codes : ndarray of shape (n_samples,), int64
    classes : ndarray of shape (n_classes,)
    """
    if y is None:
        raise DataValidationError("this method needs class labels (y / label_field)")
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if arr.ndim != 1 or len(arr) != n_samples:
        raise DataValidationError(
            f"expected {n_samples} labels (one per record), got shape {np.shape(arr)}"
        )
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            raise DataValidationError("missing label; expected a class label", record=i)
    try:
        classes, codes = np.unique(arr, return_inverse=True)
    except TypeError:
        # mixed types (e.g. 1 and "1"): compare them as strings
        classes, codes = np.unique(np.array([str(v) for v in arr]), return_inverse=True)
    return codes.astype(np.int64).ravel(), classes
