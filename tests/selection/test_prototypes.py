from __future__ import annotations

import numpy as np
import pytest

from dataprune.errors import DataValidationError
from dataprune.selection import Prototypes


def _blobs(n_per=60, dim=16, spread=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim, dtype=np.float32)[:3]
    X = np.concatenate([c + spread * rng.standard_normal((n_per, dim)) for c in centres])
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    return X, centres, np.repeat(np.arange(3), n_per)


def test_easy_and_hard_follow_distance_to_prototype():
    X, centres, _ = _blobs()
    true_dist = 1 - (X @ centres.T).max(axis=1)
    easy = Prototypes(n_samples=30, keep="easy", n_clusters=3, random_state=0).fit(X)
    hard = Prototypes(n_samples=30, keep="hard", n_clusters=3, random_state=0).fit(X)
    # k-means recovers the blobs, so its distances rank like the true ones
    assert np.corrcoef(easy.distances_, true_dist)[0, 1] > 0.95
    assert true_dist[easy.selected_indices_].mean() < true_dist.mean()
    assert true_dist[hard.selected_indices_].mean() > true_dist.mean()
    assert not set(easy.selected_indices_) & set(hard.selected_indices_)
    assert easy.distances_[easy.selected_indices_].max() <= np.sort(easy.distances_)[29] + 1e-9
    assert len(np.unique(easy.labels_)) == 3 and easy.cluster_centers_.shape == (3, 16)


def test_deterministic_and_default_clusters():
    X, _, _ = _blobs(seed=1)
    a = Prototypes(fraction=0.2, random_state=5).fit(X)
    b = Prototypes(fraction=0.2, random_state=5).fit(X)
    np.testing.assert_array_equal(a.selected_indices_, b.selected_indices_)
    assert a.cluster_centers_.shape[0] == round(np.sqrt(len(X)))
    assert np.all((a.distances_ >= -1e-6) & (a.distances_ <= 2 + 1e-6))


def test_bad_keep():
    X, _, _ = _blobs()
    with pytest.raises(DataValidationError, match="keep"):
        Prototypes(n_samples=3, keep="medium").fit(X)
