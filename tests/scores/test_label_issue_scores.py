from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.scores import confident_joint, find_label_issues, label_quality_scores


def _planted(n_per=50, c=3, n_flip=10, seed=0):
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(c), n_per)
    p = np.full((len(y_true), c), 0.05)
    p[np.arange(len(y_true)), y_true] = 0.9
    p += rng.random(p.shape) * 0.02
    p /= p.sum(1, keepdims=True)
    y = y_true.copy()
    flip = rng.choice(len(y), size=n_flip, replace=False)
    y[flip] = (y[flip] + 1) % c
    return p, y, flip


def test_confident_joint_counts_flips_off_diagonal():
    p, y, flip = _planted()
    cj = confident_joint(y, p)
    assert cj.shape == (3, 3)
    np.testing.assert_allclose(cj.sum(1), np.bincount(y, minlength=3))
    assert round(cj.sum() - np.trace(cj)) == len(flip)


def test_find_label_issues_recovers_planted_flips():
    p, y, flip = _planted()
    issues = find_label_issues(y, p)
    assert set(np.flatnonzero(issues).tolist()) == set(flip.tolist())


def test_no_issues_on_clean_labels_and_quality():
    p, y, _ = _planted(n_flip=0)
    assert not find_label_issues(y, p).any()
    np.testing.assert_allclose(label_quality_scores(y, p), p[np.arange(len(y)), y])


def test_validation():
    with pytest.raises(DataValidationError, match="pred_probs"):
        find_label_issues([0, 1, 0], np.ones((3, 2)))
    p, y, _ = _planted()
    with pytest.raises(DataValidationError, match="cleanlab's order"):
        find_label_issues(p, y)
