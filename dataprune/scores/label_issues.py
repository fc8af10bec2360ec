"""Confident-learning label-issue detection (Northcutt et al. 2021, as in cleanlab).

Needs out-of-sample predicted probabilities (each record scored by a model that did not train on
it), e.g. from :func:`dataprune.scores.proxy.cross_val_probs`. Arguments come in cleanlab's order,
``(labels, pred_probs)``, so code written for cleanlab calls these the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dataprune.errors import DataValidationError
from dataprune.scores._validation import check_labels, check_probs

__all__ = ["confident_joint", "find_label_issues", "label_quality_scores"]


def _check_inputs(labels: Any, pred_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    if np.ndim(labels) == 2 and np.ndim(pred_probs) == 1:
        raise DataValidationError(
            "labels is 2-D and pred_probs 1-D: the arguments are (labels, pred_probs), in "
            "cleanlab's order"
        )
    p = check_probs(pred_probs, name="pred_probs")
    y = check_labels(labels, p.shape[0], p.shape[1])
    return p, y


def label_quality_scores(labels: Any, pred_probs: Any) -> np.ndarray:
    """Self-confidence ``p[y]``: the predicted probability of the given label.

    Returns
    -------
    ndarray of shape (n_samples,)
        In [0, 1]; higher = the label is more likely correct (= keep).
    """
    p, y = _check_inputs(labels, pred_probs)
    return p[np.arange(len(y)), y]


def confident_joint(labels: Any, pred_probs: Any) -> np.ndarray:
    """The calibrated confident joint ``C[given, true]`` of shape (n_classes, n_classes).

    A record with given label ``i`` counts towards ``C[i, j]`` where ``j`` is its most probable class
    among those whose probability reaches the class threshold ``t_j`` (the mean ``p_j`` over records
    labelled ``j``). Rows are then rescaled to the number of records with each given label.
    """
    p, y = _check_inputs(labels, pred_probs)
    return _compute_confident_joint(p, y)


def _compute_confident_joint(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    _n, c = p.shape
    counts = np.bincount(y, minlength=c)
    thresholds = np.array(
        [p[y == j, j].mean() if counts[j] else np.inf for j in range(c)], dtype=np.float64
    )
    above = p >= thresholds[None, :] - 1e-12
    masked = np.where(above, p, -np.inf)
    has = above.any(axis=1)
    true_guess = masked.argmax(axis=1)
    cj = np.zeros((c, c), dtype=np.float64)
    np.add.at(cj, (y[has], true_guess[has]), 1.0)
    row = cj.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cal = np.where(row > 0, cj / row * counts[:, None], 0.0)
    return cal


def find_label_issues(labels: Any, pred_probs: Any) -> np.ndarray:
    """Flag likely label errors (cleanlab's ``prune_by_noise_rate``).

    For every off-diagonal cell ``(i, j)`` of the calibrated confident joint, the ``round(C[i, j])``
    records labelled ``i`` with the largest margin ``p_j - p_i`` are flagged.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Given labels as integer class indices.
    pred_probs : array-like of shape (n_samples, n_classes)
        Out-of-sample predicted probabilities.

    Returns
    -------
    ndarray of shape (n_samples,), bool
        True for likely label issues.
    """
    p, y = _check_inputs(labels, pred_probs)
    if p.shape[0] < 2:
        raise DataValidationError("need at least 2 records to estimate label noise")
    return _compute_label_issues(p, y)


def _compute_label_issues(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    n, c = p.shape
    cj = _compute_confident_joint(p, y)
    issues = np.zeros(n, dtype=bool)
    for i in range(c):
        members = np.flatnonzero(y == i)
        if len(members) < 2:
            continue
        # at most n_i - 1 flags per class, as cleanlab keeps at least one record per class
        budget = len(members) - 1
        for j in range(c):
            if i == j:
                continue
            m = round(cj[i, j])
            if m <= 0:
                continue
            margin = p[members, j] - p[members, i]
            take = members[np.argsort(-margin, kind="stable")[: min(m, budget)]]
            issues[take] = True
        flagged = issues[members].sum()
        if flagged > budget:  # several cells picked distinct records: keep the most confident one
            keep = members[np.argmax(p[members, i])]
            issues[keep] = False
    return issues
