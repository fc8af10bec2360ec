from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError, UnknownOptionError
from dataprune.selection import ConfidentLearningSelector, EL2NSelector


def noisy_blobs(n_per=80, n_classes=4, dim=16, noise=0.1, seed=0):
    """Separable classes with a known set of flipped labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim)) * 3
    y_true = np.repeat(np.arange(n_classes), n_per)
    X = centres[y_true] + rng.standard_normal((len(y_true), dim))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    y = y_true.copy()
    flip = rng.choice(len(y), size=round(noise * len(y)), replace=False)
    y[flip] = (y[flip] + rng.integers(1, n_classes, size=len(flip))) % n_classes
    flipped = np.zeros(len(y), bool)
    flipped[flip] = True
    return X, y, flipped


def test_el2n_ranks_flipped_labels_hardest_and_offset_skips_them():
    X, y, flipped = noisy_blobs()
    n_flip = int(flipped.sum())
    hard = EL2NSelector(n_samples=n_flip, n_runs=3, random_state=0).fit(X, y)
    assert flipped[hard.selected_indices_].mean() > 0.8
    offset = EL2NSelector(n_samples=n_flip, n_runs=3, offset=flipped.mean(), random_state=0).fit(
        X, y
    )
    assert flipped[offset.selected_indices_].mean() < 0.3
    easy = EL2NSelector(n_samples=100, n_runs=3, keep="easy", random_state=0).fit(X, y)
    assert flipped[easy.selected_indices_].mean() < 0.02
    assert hard.el2n_.shape == hard.grand_.shape == (len(y),)
    assert hard.proxy_scores_.n_runs == 3


def test_grand_and_mlp_proxy():
    X, y, flipped = noisy_blobs(seed=1)
    sel = EL2NSelector(
        n_samples=30,
        score="grand",
        n_runs=2,
        proxy={"model": "mlp", "hidden_size": 32, "epochs": 10},
        random_state=0,
    ).fit(X, y)
    assert flipped[sel.selected_indices_].mean() > 0.6
    assert np.all(sel.grand_ >= 0)


def test_el2n_needs_labels_and_valid_options():
    X, y, _ = noisy_blobs()
    with pytest.raises(DataValidationError, match="needs labels"):
        EL2NSelector(n_samples=3).fit(X)
    with pytest.raises(DataValidationError, match="score"):
        EL2NSelector(n_samples=3, score="forgetting").fit(X, y)
    with pytest.raises(UnknownOptionError, match="unknown ProxyConfig field"):
        EL2NSelector(n_samples=3, proxy={"layers": 3}).fit(X, y)


def test_el2n_selector_is_deterministic():
    X, y, _ = noisy_blobs(seed=2)
    a = EL2NSelector(fraction=0.3, n_runs=2, random_state=11).fit(X, y)
    b = EL2NSelector(fraction=0.3, n_runs=2, random_state=11).fit(X, y)
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)
    np.testing.assert_allclose(a.el2n_, b.el2n_)


def test_confident_learning_finds_flips_and_avoids_them():
    X, y, flipped = noisy_blobs(n_per=100, seed=3)
    sel = ConfidentLearningSelector(fraction=0.5, random_state=0).fit(X, y)
    issues = sel.is_label_issue_
    precision = flipped[issues].mean()
    recall = issues[flipped].mean()
    assert precision > 0.7 and recall > 0.6, (precision, recall)
    assert not issues[sel.selected_indices_].any()
    assert sel.label_quality_[flipped].mean() < sel.label_quality_[~flipped].mean()
    # reuse out-of-fold probabilities across budgets
    again = ConfidentLearningSelector(n_samples=50, random_state=0).fit(
        X, y, pred_probs=sel.pred_probs_
    )
    np.testing.assert_array_equal(again.is_label_issue_, issues)
    with pytest.raises(DataValidationError, match="pred_probs must have shape"):
        ConfidentLearningSelector(n_samples=5).fit(X, y, pred_probs=sel.pred_probs_[:10])


def test_confident_learning_quality_fill_uses_flagged_last():
    X, y, _ = noisy_blobs(n_per=50, seed=4)
    sel = ConfidentLearningSelector(fraction=1.0, fill="quality", random_state=0).fit(X, y)
    order = sel.selected_indices_
    n_clean = int((~sel.is_label_issue_).sum())
    assert not sel.is_label_issue_[order[:n_clean]].any()
    assert sel.is_label_issue_[order[n_clean:]].all()
