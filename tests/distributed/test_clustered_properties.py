"""Property tests of the per-cluster stages on small random problems (local engine)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataprune.distributed.clustered import ClusteredFacilityLocation, fit_with_engine
from dataprune.selection import Prototypes, SemDeDup

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problem(draw):
    n = draw(st.integers(2, 80))
    k = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2**16))
    n_clusters = draw(st.one_of(st.none(), st.integers(1, 12)))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8)).astype(np.float32)
    if n > 4 and draw(st.booleans()):  # exact duplicates
        X[: n // 4] = X[n // 4 : 2 * (n // 4)]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, k, seed, n_clusters


@SETTINGS
@given(problem())
def test_engine_stages_equal_selectors_and_keep_the_budget(p):
    X, k, seed, n_clusters = p
    for cls, kw in (
        (Prototypes, {}),
        (SemDeDup, {"eps": 0.05}),
        (ClusteredFacilityLocation, {"n_neighbors": 5}),
    ):
        a = cls(n_samples=k, random_state=seed, n_clusters=n_clusters, **kw).fit(X)
        b = fit_with_engine(cls(n_samples=k, random_state=seed, n_clusters=n_clusters, **kw), X)
        idx = b.selected_indices_
        assert len(idx) == k and len(np.unique(idx)) == k, cls.__name__
        np.testing.assert_array_equal(a.selected_indices_, idx, err_msg=cls.__name__)
        np.testing.assert_array_equal(a.scores_, b.scores_, err_msg=cls.__name__)
        assert set(np.flatnonzero(b.ranking_ < k)) == set(idx.tolist())
        if cls is ClusteredFacilityLocation:
            assert sum(b.cluster_budget_) == k
            assert (
                np.bincount(b.labels_[idx], minlength=len(b.cluster_budget_)) == b.cluster_budget_
            ).all()
