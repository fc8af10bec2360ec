from __future__ import annotations

import numpy as np
import pytest
from neighbor_data import unit_rows

from dataprune.dedup.components import component_labels, duplicate_components
from dataprune.errors import DataValidationError
from dataprune.near_duplicates import duplicate_groups, near_duplicate_pairs


def test_near_duplicates_and_groups():
    rng = np.random.default_rng(2)
    X = unit_rows(rng, 50, 32)
    X[10] = X[3] + 0.01 * rng.standard_normal(32)
    X[11] = X[3]
    X[20] = X[40]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    pairs = near_duplicate_pairs(X, threshold=0.98)
    keys = {(p.i, p.j) for p in pairs}
    assert {(3, 10), (3, 11), (10, 11), (20, 40)} <= keys
    assert all(p.i < p.j for p in pairs)
    groups = duplicate_groups(50, pairs)
    assert groups == [[3, 10, 11], [20, 40]]


def test_threshold_outside_the_cosine_range_is_an_error():
    with pytest.raises(DataValidationError, match="threshold"):
        near_duplicate_pairs(np.eye(4, dtype=np.float32), threshold=1.5)


def test_components_join_chains_and_leave_singletons_out():
    # 0-5-2 is one chain (through 5), 3-4 another, 1 and 6 have no edge
    i, j = [5, 3, 2], [0, 4, 5]
    labels = component_labels(7, i, j)
    assert labels[0] == labels[2] == labels[5] and labels[3] == labels[4]
    assert len({labels[0], labels[3], labels[1], labels[6]}) == 4
    assert duplicate_components(7, i, j) == [[0, 2, 5], [3, 4]]
    assert duplicate_components(3, [], []) == []
